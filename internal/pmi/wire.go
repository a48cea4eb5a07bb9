package pmi

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// PMI-1: one request per line, "cmd=NAME k=v k=v\n"; answers alike.

// call1 sends the PMI-1 command cmd with args and reads the answer, which
// must be of command want.
func (c *Client) call1(cmd string, args [][2]string, want string) (map[string]string, error) {
	var b strings.Builder
	b.WriteString("cmd=" + cmd)
	for _, kv := range args {
		b.WriteString(" " + kv[0] + "=" + kv[1])
	}
	b.WriteByte('\n')
	if _, err := io.WriteString(c.rw, b.String()); err != nil {
		return nil, err
	}
	m, err := c.readLine1()
	if err != nil {
		return nil, err
	}
	return m, check(m, want)
}

// readLine1 reads one PMI-1 line into a map.
func (c *Client) readLine1() (map[string]string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("reading from the PMI server: %w", err)
	}
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m, nil
}

// PMI-2: a 6-byte decimal length, then "cmd=NAME;k=v;k=v;".

// call2 sends the PMI-2 command cmd with args and reads the answer, which
// must be of command want.
func (c *Client) call2(cmd string, args [][2]string, want string) (map[string]string, error) {
	var b strings.Builder
	b.WriteString("cmd=" + cmd + ";")
	for _, kv := range args {
		b.WriteString(kv[0] + "=" + kv[1] + ";")
	}
	body := b.String()
	if _, err := fmt.Fprintf(c.rw, "%-6d%s", len(body), body); err != nil {
		return nil, err
	}
	m, err := c.read2()
	if err != nil {
		return nil, err
	}
	return m, check(m, want)
}

// read2 reads one PMI-2 message into a map.
func (c *Client) read2() (map[string]string, error) {
	var hdr [6]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return nil, fmt.Errorf("reading from the PMI server: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(hdr[:])))
	if err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("the PMI server sent a bad length %q", hdr[:])
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return nil, fmt.Errorf("reading from the PMI server: %w", err)
	}
	m := map[string]string{}
	for f := range strings.SplitSeq(string(body), ";") {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// The key-value space.

// Put stores value under key, visible to every rank after the next Fence.
// A value longer than fits one PMI value is split across keys key.p0,
// key.p1, ...; key and value must not hold spaces, '=' in the key, or ';'
// (encode binary data). Errors: the server's.
func (c *Client) Put(key, value string) error {
	if strings.ContainsAny(key, " =;\n") || strings.ContainsAny(value, " ;\n") {
		return fmt.Errorf("pmi: Put %q: key or value holds a separator", key)
	}
	n := (len(value) + chunk - 1) / chunk
	if err := c.put1(key, strconv.Itoa(n)); err != nil {
		return err
	}
	for i := range n {
		if err := c.put1(key+".p"+strconv.Itoa(i), value[i*chunk:min((i+1)*chunk, len(value))]); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) put1(key, value string) error {
	var err error
	if c.version == PMI1 {
		_, err = c.call1("put", [][2]string{{"kvsname", c.kvs}, {"key", key}, {"value", value}}, "put_result")
	} else {
		_, err = c.call2("kvs-put", [][2]string{{"key", key}, {"value", value}}, "kvs-put-response")
	}
	if err != nil {
		return fmt.Errorf("pmi: put %s: %w", key, err)
	}
	return nil
}

// Fence returns when every rank has called it; what they Put before is
// then visible to Get. It is collective over the job.
func (c *Client) Fence() error {
	var err error
	if c.version == PMI1 {
		_, err = c.call1("barrier_in", nil, "barrier_out")
	} else {
		_, err = c.call2("kvs-fence", nil, "kvs-fence-response")
	}
	if err != nil {
		return fmt.Errorf("pmi: fence: %w", err)
	}
	return nil
}

// Get returns the value a rank Put under key before the last Fence.
func (c *Client) Get(key string) (string, error) {
	ns, err := c.get1(key)
	if err != nil {
		return "", err
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n < 0 {
		return "", fmt.Errorf("pmi: get %s: not a value of Put (%q)", key, ns)
	}
	var b strings.Builder
	for i := range n {
		part, err := c.get1(key + ".p" + strconv.Itoa(i))
		if err != nil {
			return "", err
		}
		b.WriteString(part)
	}
	return b.String(), nil
}

// get1 reads one key, as the server holds it.
func (c *Client) get1(key string) (string, error) {
	if c.version == PMI1 {
		m, err := c.call1("get", [][2]string{{"kvsname", c.kvs}, {"key", key}}, "get_result")
		if err != nil {
			return "", fmt.Errorf("pmi: get %s: %w", key, err)
		}
		return m["value"], nil
	}
	m, err := c.call2("kvs-get", [][2]string{{"key", key}}, "kvs-get-response")
	if err == nil && m["found"] != "TRUE" {
		err = fmt.Errorf("not found")
	}
	if err != nil {
		return "", fmt.Errorf("pmi: get %s: %w", key, err)
	}
	return m["value"], nil
}

// ProcessMapping returns the launcher's PMI_process_mapping, "" if it has
// none.
func (c *Client) ProcessMapping() (string, error) {
	if c.version == PMI1 {
		m, err := c.call1("get", [][2]string{{"kvsname", c.kvs}, {"key", "PMI_process_mapping"}}, "get_result")
		if err != nil {
			return "", nil // not every server has it
		}
		return m["value"], nil
	}
	m, err := c.call2("info-getjobattr", [][2]string{{"key", "PMI_process_mapping"}}, "info-getjobattr-response")
	if err != nil || m["found"] != "TRUE" {
		return "", nil
	}
	return m["value"], nil
}

// Abort asks the launcher to end the whole job with msg (no spaces are
// kept in PMI-1).
func (c *Client) Abort(code int, msg string) error {
	msg = strings.NewReplacer(" ", "_", ";", ",", "\n", "_").Replace(msg)
	var err error
	if c.version == PMI1 {
		_, err = fmt.Fprintf(c.rw, "cmd=abort exitcode=%d\n", code)
	} else {
		body := "cmd=abort;isworldabort=TRUE;msg=" + msg + ";"
		_, err = fmt.Fprintf(c.rw, "%-6d%s", len(body), body)
	}
	return err
}

// Finalize tells the server this rank is done, and closes the connection.
func (c *Client) Finalize() error {
	var err error
	if c.version == PMI1 {
		_, err = c.call1("finalize", nil, "finalize_ack")
	} else {
		_, err = c.call2("finalize", nil, "finalize-response")
	}
	if cerr := c.rw.Close(); err == nil {
		err = cerr
	}
	return err
}

// ParseMapping expands a PMI_process_mapping value, "(vector,(first,
// count,per),...)", into the node index of each of size ranks: each block
// gives per consecutive ranks to each of count nodes from first, and the
// blocks repeat until every rank has a node.
func ParseMapping(s string, size int) ([]int, error) {
	bad := func() ([]int, error) { return nil, fmt.Errorf("pmi: bad process mapping %q", s) }
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "(vector,")
	if !ok || !strings.HasSuffix(rest, ")") {
		return bad()
	}
	rest = strings.TrimSuffix(rest, ")")
	type block struct{ first, count, per int }
	var blocks []block
	for rest != "" {
		if !strings.HasPrefix(rest, "(") {
			return bad()
		}
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return bad()
		}
		f := strings.Split(rest[1:end], ",")
		if len(f) != 3 {
			return bad()
		}
		var b block
		var e1, e2, e3 error
		b.first, e1 = strconv.Atoi(strings.TrimSpace(f[0]))
		b.count, e2 = strconv.Atoi(strings.TrimSpace(f[1]))
		b.per, e3 = strconv.Atoi(strings.TrimSpace(f[2]))
		if e1 != nil || e2 != nil || e3 != nil || b.first < 0 || b.count < 1 || b.per < 1 {
			return bad()
		}
		blocks = append(blocks, b)
		rest = strings.TrimPrefix(rest[end+1:], ",")
	}
	if len(blocks) == 0 {
		return bad()
	}
	nodes := make([]int, 0, size)
	for len(nodes) < size {
		for _, b := range blocks {
			for n := range b.count {
				for range b.per {
					if len(nodes) < size {
						nodes = append(nodes, b.first+n)
					}
				}
			}
		}
	}
	return nodes, nil
}

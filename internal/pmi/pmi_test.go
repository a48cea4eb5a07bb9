package pmi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeServer is a PMI server with both protocols, answering in the field
// orders the real ones use (Hydra's for PMI-1, Slurm's for PMI-2, left- or
// right-justified lengths alternately), for size ranks.
type fakeServer struct {
	size int
	mu   sync.Mutex
	kvs  map[string]string
	// the barrier
	arrived int
	gen     int
	cond    *sync.Cond
	aborted string
}

func newFake(size int) *fakeServer {
	s := &fakeServer{size: size, kvs: map[string]string{"PMI_process_mapping": "(vector,(0,2,1))"}}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *fakeServer) fence() {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gen
	s.arrived++
	if s.arrived == s.size {
		s.arrived, s.gen = 0, s.gen+1
		s.cond.Broadcast()
		return
	}
	for s.gen == g {
		s.cond.Wait()
	}
}

func (s *fakeServer) get(k string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.kvs[k]
	return v, ok
}

func (s *fakeServer) put(k, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kvs[k] = v
}

// serve answers one rank on conn.
func (s *fakeServer) serve(conn net.Conn, rank int) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	if strings.Contains(line, "pmi_version=2") {
		fmt.Fprintf(conn, "cmd=response_to_init rc=0 pmi_version=2 pmi_subversion=0\n")
		s.serve2(conn, r, rank)
		return
	}
	fmt.Fprintf(conn, "cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		m := map[string]string{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			m[k] = v
		}
		switch m["cmd"] {
		case "get_my_kvsname":
			fmt.Fprintf(conn, "cmd=my_kvsname kvsname=kvs_1_0_2_vm\n")
		case "put":
			s.put(m["key"], m["value"])
			fmt.Fprintf(conn, "cmd=put_result rc=0 msg=success\n")
		case "barrier_in":
			s.fence()
			fmt.Fprintf(conn, "cmd=barrier_out\n")
		case "get":
			if v, ok := s.get(m["key"]); ok {
				fmt.Fprintf(conn, "cmd=get_result rc=0 msg=success value=%s\n", v)
			} else {
				fmt.Fprintf(conn, "cmd=get_result rc=-1 msg=key_%s_not_found value=unknown\n", m["key"])
			}
		case "abort":
			s.mu.Lock()
			s.aborted = line
			s.mu.Unlock()
			return
		case "finalize":
			fmt.Fprintf(conn, "cmd=finalize_ack\n")
			return
		}
	}
}

func (s *fakeServer) serve2(conn net.Conn, r *bufio.Reader, rank int) {
	n := 0
	reply := func(body string) {
		n++
		if n%2 == 0 {
			fmt.Fprintf(conn, "%6d%s", len(body), body) // Hydra: right-justified
		} else {
			fmt.Fprintf(conn, "%-6d%s", len(body), body) // Slurm: left-justified
		}
	}
	for {
		var hdr [6]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		l, _ := strconv.Atoi(strings.TrimSpace(string(hdr[:])))
		body := make([]byte, l)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		m := map[string]string{}
		for f := range strings.SplitSeq(string(body), ";") {
			if k, v, ok := strings.Cut(f, "="); ok {
				m[k] = v
			}
		}
		switch m["cmd"] {
		case "fullinit":
			if m["pmirank"] != strconv.Itoa(rank) || m["threaded"] != "FALSE" {
				reply("cmd=fullinit-response;rc=3;")
				return
			}
			reply(fmt.Sprintf("cmd=fullinit-response;rc=0;pmi-version=2;pmi-subversion=0;rank=%d;size=%d;appnum=-1;debugged=FALSE;pmiverbose=FALSE;", rank, s.size))
		case "job-getid":
			reply("cmd=job-getid-response;rc=0;jobid=59.0;")
		case "info-getjobattr":
			v, _ := s.get(m["key"])
			reply("cmd=info-getjobattr-response;rc=0;found=TRUE;value=" + v + ";")
		case "kvs-put":
			s.put(m["key"], m["value"])
			reply("cmd=kvs-put-response;rc=0;")
		case "kvs-fence":
			s.fence()
			reply("cmd=kvs-fence-response;rc=0;")
		case "kvs-get":
			if v, ok := s.get(m["key"]); ok {
				reply("cmd=kvs-get-response;rc=0;found=TRUE;value=" + v + ";")
			} else {
				reply("cmd=kvs-get-response;found=FALSE;rc=0;")
			}
		case "finalize":
			reply("cmd=finalize-response;rc=0;")
			return
		}
	}
}

// TestExchange: every rank puts a long value (split across keys), fences,
// and reads every rank's, over both protocols.
func TestExchange(t *testing.T) {
	for _, v := range []Version{PMI1, PMI2} {
		t.Run(fmt.Sprint("PMI-", v), func(t *testing.T) {
			const size = 3
			srv := newFake(size)
			var wg sync.WaitGroup
			errs := make([]error, size)
			for rank := range size {
				a, b := net.Pipe()
				go srv.serve(b, rank)
				wg.Go(func() {
					errs[rank] = exchange(a, v, rank, size)
				})
			}
			wg.Wait()
			for r, err := range errs {
				if err != nil {
					t.Errorf("rank %d: %v", r, err)
				}
			}
		})
	}
}

func value(rank int) string {
	return strings.Repeat(strconv.Itoa(rank)+"abc=/+", 300) // 2100 bytes: three pieces
}

func exchange(conn net.Conn, v Version, rank, size int) error {
	env := map[string]string{"PMI_RANK": strconv.Itoa(rank), "PMI_SIZE": strconv.Itoa(size)}
	if v == PMI2 {
		env["PMI_JOBID"] = "59.0"
	}
	c, err := NewClient(conn, v, func(k string) string { return env[k] })
	if err != nil {
		return err
	}
	if c.Rank() != rank || c.Size() != size {
		return fmt.Errorf("rank %d size %d, want %d %d", c.Rank(), c.Size(), rank, size)
	}
	if err := c.Put("card-"+strconv.Itoa(rank), value(rank)); err != nil {
		return err
	}
	if err := c.Fence(); err != nil {
		return err
	}
	for r := range size {
		got, err := c.Get("card-" + strconv.Itoa(r))
		if err != nil {
			return err
		}
		if got != value(r) {
			return fmt.Errorf("card %d: %d bytes, want %d", r, len(got), len(value(r)))
		}
	}
	if _, err := c.Get("nosuchkey"); err == nil {
		return fmt.Errorf("a missing key was found")
	}
	m, err := c.ProcessMapping()
	if err != nil || m != "(vector,(0,2,1))" {
		return fmt.Errorf("mapping %q, %v", m, err)
	}
	if err := c.Put("bad key", "x"); err == nil {
		return fmt.Errorf("a key with a space was accepted")
	}
	return c.Finalize()
}

func TestParseMapping(t *testing.T) {
	for _, tc := range []struct {
		s    string
		size int
		want []int
	}{
		{"(vector,(0,1,2))", 2, []int{0, 0}},
		{"(vector,(0,2,2))", 4, []int{0, 0, 1, 1}},
		{"(vector,(0,2,1))", 2, []int{0, 1}},
		{"(vector,(0,1,2),(1,1,1))", 3, []int{0, 0, 1}},
		{"(vector,(0,2,1),(0,1,1),(0,1,1))", 4, []int{0, 1, 0, 0}},
		{"(vector,(0,1,1))", 2, []int{0, 0}},
		{"(vector,(0,1,3),(1,1,1))", 4, []int{0, 0, 0, 1}},
	} {
		got, err := ParseMapping(tc.s, tc.size)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseMapping(%q, %d) = %v, %v; want %v", tc.s, tc.size, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "(vector)", "(vector,(0,1))", "(vector,(0,0,1))", "(vector,(a,1,1))", "vector,(0,1,1)"} {
		if _, err := ParseMapping(bad, 2); err == nil {
			t.Errorf("ParseMapping(%q) accepted", bad)
		}
	}
}

func TestDialWithoutPMI(t *testing.T) {
	if _, err := Dial(func(string) string { return "" }); err != ErrNotPMI {
		t.Fatalf("Dial without PMI_FD: %v", err)
	}
	if _, err := Dial(func(k string) string { return map[string]string{"PMI_FD": "x"}[k] }); err == nil {
		t.Fatal("Dial with PMI_FD=x succeeded")
	}
}

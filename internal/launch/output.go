package launch

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
)

// maxLine bounds how much of one line is held back waiting for its
// newline. A longer line is forwarded in pieces, each ended by a newline,
// so that a rank printing without newlines cannot grow gorun without bound.
const maxLine = 1 << 20

// maxTailLine bounds each remembered stderr line.
const maxTailLine = 512

// readSize is the read chunk; every complete line in a chunk goes out in
// one Write.
const readSize = 64 << 10

// dest is one output destination. Its mutex is what keeps lines whole:
// every Write to w carries only complete lines.
type dest struct {
	mu     *sync.Mutex
	w      io.Writer
	broken bool // a Write failed; later output is dropped; guarded by mu
}

func (d *dest) write(p []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken {
		return
	}
	if _, err := d.w.Write(p); err != nil {
		// Keep draining the ranks' pipes so they never block on a full
		// pipe, but stop writing.
		d.broken = true
	}
}

// output is where all ranks' lines and gorun's messages go.
type output struct {
	stdout, stderr *dest
	// labelAll, once set (a timeout's dumps are coming), makes every
	// line carry its rank's label, tagged output or not.
	labelAll atomic.Bool
}

func newOutput(stdout, stderr io.Writer) *output {
	if stdout == nil {
		stdout = os.Stdout
	}
	if stderr == nil {
		stderr = os.Stderr
	}
	o := &output{stdout: &dest{mu: new(sync.Mutex), w: stdout}}
	if sameWriter(stdout, stderr) {
		// One lock, or a stdout line and a stderr line could interleave
		// on the shared terminal or buffer.
		o.stderr = &dest{mu: o.stdout.mu, w: stderr}
	} else {
		o.stderr = &dest{mu: new(sync.Mutex), w: stderr}
	}
	return o
}

func sameWriter(a, b io.Writer) bool {
	fa, ok1 := a.(*os.File)
	fb, ok2 := b.(*os.File)
	if ok1 && ok2 {
		sa, err1 := fa.Stat()
		sb, err2 := fb.Stat()
		return err1 == nil && err2 == nil && os.SameFile(sa, sb)
	}
	ta := reflect.TypeOf(a)
	return ta == reflect.TypeOf(b) && ta != nil && ta.Comparable() && a == b
}

// notef writes one gorun message to stderr, "gorun: " before each line.
func (o *output) notef(format string, args ...any) {
	msg := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	var b bytes.Buffer
	for line := range strings.SplitSeq(msg, "\n") {
		b.WriteString("gorun: ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	o.stderr.write(b.Bytes())
}

// forward copies r to d line by line until r ends, with prefix before each
// line (or label, without a prefix, once labelAll is set); a final line
// without a newline gets one. Lines also go to tail if it is not nil.
func (o *output) forward(r io.Reader, d *dest, prefix, label []byte, tl *tail) {
	buf := make([]byte, readSize)
	var partial []byte // start of a line whose newline has not come yet
	var batch []byte
	emit := func(line []byte) { // line includes its '\n'
		if prefix == nil && o.labelAll.Load() {
			batch = append(batch, label...)
		}
		batch = append(batch, prefix...)
		batch = append(batch, line...)
		if tl != nil {
			tl.add(line[:len(line)-1])
		}
	}
	for {
		n, err := r.Read(buf)
		data := buf[:n]
		batch = batch[:0]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				partial = append(partial, data...)
				if len(partial) >= maxLine {
					emit(append(partial, '\n'))
					partial = partial[:0]
				}
				break
			}
			if len(partial) > 0 {
				partial = append(partial, data[:i+1]...)
				emit(partial)
				partial = partial[:0]
			} else {
				emit(data[:i+1])
			}
			data = data[i+1:]
		}
		if err != nil && len(partial) > 0 {
			emit(append(partial, '\n'))
			partial = nil
		}
		if len(batch) > 0 {
			d.write(batch)
		}
		if err != nil {
			return
		}
		if cap(batch) > 4*readSize {
			batch = nil // after a huge line, do not keep its buffer
		}
	}
}

// tail keeps the last lines written to it, and reads a Go goroutine dump
// going through it for the call the main goroutine is blocked in.
type tail struct {
	mu    sync.Mutex
	lines []string
	next  int // ring position once full

	inMain         bool   // the dump is at goroutine 1
	state          string // goroutine 1's wait state
	blockedIn, via string // its innermost gorun call, and the caller of the outermost
}

func newTail(n int) *tail { return &tail{lines: make([]string, 0, n)} }

func (t *tail) add(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(line) > maxTailLine {
		line = append(line[:maxTailLine:maxTailLine], "…"...)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.scan(string(line))
	if len(t.lines) < cap(t.lines) {
		t.lines = append(t.lines, string(line))
		return
	}
	t.lines[t.next] = string(line)
	t.next = (t.next + 1) % len(t.lines)
}

// gorunPkg is the prefix of the runtime's functions in a stack dump.
const gorunPkg = "github.com/gorun-hpc/gorun/"

// scan follows a goroutine dump: in goroutine 1's stack, the outermost of
// the innermost run of frames in gorun's packages is the call it waits in,
// and the frame after it is the application's caller.
func (t *tail) scan(line string) {
	switch {
	case strings.HasPrefix(line, "goroutine "):
		f := strings.Fields(line)
		t.inMain = len(f) > 1 && f[1] == "1"
		if t.inMain {
			_, st, _ := strings.Cut(line, "[")
			t.state, _, _ = strings.Cut(st, "]")
			t.blockedIn, t.via = "", ""
		}
	case !t.inMain || line == "" || strings.HasPrefix(line, "\t") || t.via != "":
	case strings.HasPrefix(line, gorunPkg):
		fn, _, _ := strings.Cut(strings.TrimPrefix(line, gorunPkg), "(0x")
		t.blockedIn = strings.ReplaceAll(strings.TrimSuffix(fn, "(...)"), "[...]", "")
	case t.blockedIn != "":
		t.via, _, _ = strings.Cut(line, "(")
	}
}

// blocked says where the main goroutine of the last dump waited, or "".
func (t *tail) blocked() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.blockedIn == "" {
		return ""
	}
	s := t.blockedIn
	if t.via != "" {
		s += ", called from " + t.via
	}
	return s + " [" + t.state + "]"
}

// get returns the remembered lines, oldest first.
func (t *tail) get() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.lines))
	out = append(out, t.lines[t.next:]...)
	return append(out, t.lines[:t.next]...)
}

package launch

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestForwardLines(t *testing.T) {
	tests := []struct {
		name, in string
		tag      bool
		want     string
	}{
		{"plain", "a\nb\n", false, "a\nb\n"},
		{"tagged", "a\nb\n", true, "[3] a\n[3] b\n"},
		{"final partial line", "a\nb", true, "[3] a\n[3] b\n"},
		{"empty lines", "\n\n", true, "[3] \n[3] \n"},
		{"nothing", "", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			o := newOutput(&out, io.Discard)
			var prefix []byte
			if tt.tag {
				prefix = []byte("[3] ")
			}
			// One byte per Read, to exercise lines split across reads.
			o.forward(&oneByteReader{s: tt.in}, o.stdout, prefix, nil, nil)
			if out.String() != tt.want {
				t.Fatalf("got %q, want %q", out.String(), tt.want)
			}
		})
	}
}

type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

func TestForwardLongLine(t *testing.T) {
	var out bytes.Buffer
	o := newOutput(&out, io.Discard)
	in := strings.Repeat("x", maxLine+10) + "\nend\n"
	o.forward(strings.NewReader(in), o.stdout, nil, nil, nil)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || len(lines[0]) < maxLine || lines[2] != "end" {
		t.Fatalf("got %d lines of lengths %d...", len(lines), len(lines[0]))
	}
}

// lineChecker fails on any Write that is not made of whole lines from one
// writer, and detects concurrent Writes.
type lineChecker struct {
	t      *testing.T
	active sync.Mutex
	lines  int
}

func (c *lineChecker) Write(p []byte) (int, error) {
	if !c.active.TryLock() {
		c.t.Error("concurrent Write")
		return len(p), nil
	}
	defer c.active.Unlock()
	if len(p) == 0 || p[len(p)-1] != '\n' {
		c.t.Errorf("Write of %d bytes does not end a line", len(p))
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(p), "\n"), "\n") {
		tag, body, _ := strings.Cut(line, " ")
		if strings.Trim(body, tag[1:2]) != "" {
			c.t.Errorf("mixed line %.60q", line)
		}
		c.lines++
	}
	return len(p), nil
}

func TestForwardNoInterleaving(t *testing.T) {
	c := &lineChecker{t: t}
	o := newOutput(c, c) // the same writer: stderr lines share the lock
	var wg sync.WaitGroup
	for r := range 4 {
		for _, d := range []*dest{o.stdout, o.stderr} {
			pr, pw := io.Pipe()
			wg.Go(func() { o.forward(pr, d, fmt.Appendf(nil, "[%d] ", r), nil, nil) })
			wg.Go(func() {
				line := strings.Repeat(fmt.Sprint(r), 3000) + "\n"
				for range 200 {
					// Write a line in uneven pieces.
					pw.Write([]byte(line[:1000]))
					pw.Write([]byte(line[1000:]))
				}
				pw.Close()
			})
		}
	}
	wg.Wait()
	if c.lines != 4*2*200 {
		t.Fatalf("%d lines, want %d", c.lines, 4*2*200)
	}
}

func TestTail(t *testing.T) {
	tl := newTail(3)
	if got := tl.get(); len(got) != 0 {
		t.Fatalf("empty tail = %q", got)
	}
	for i := range 5 {
		tl.add(fmt.Appendf(nil, "line %d\r", i))
	}
	if got, want := tl.get(), []string{"line 2", "line 3", "line 4"}; !slices.Equal(got, want) {
		t.Fatalf("tail = %q, want %q", got, want)
	}
	tl.add([]byte(strings.Repeat("y", 2*maxTailLine)))
	if got := tl.get(); len(got[2]) > maxTailLine+len("…") {
		t.Fatalf("long line kept with %d bytes", len(got[2]))
	}
}

func TestSameWriter(t *testing.T) {
	var a, b bytes.Buffer
	if !sameWriter(&a, &a) || sameWriter(&a, &b) {
		t.Error("sameWriter on buffers")
	}
	if sameWriter(io.Discard, &a) {
		t.Error("sameWriter on different types")
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if !sameWriter(f, g) {
		t.Error("two *os.File on one file are not the same destination")
	}
}

func TestPlacement(t *testing.T) {
	tests := []struct {
		np, nodes int
		want      [][3]int // node, local, localSize per rank
	}{
		{1, 1, [][3]int{{0, 0, 1}}},
		{4, 1, [][3]int{{0, 0, 4}, {0, 1, 4}, {0, 2, 4}, {0, 3, 4}}},
		{4, 2, [][3]int{{0, 0, 2}, {0, 1, 2}, {1, 0, 2}, {1, 1, 2}}},
		{5, 2, [][3]int{{0, 0, 3}, {0, 1, 3}, {0, 2, 3}, {1, 0, 2}, {1, 1, 2}}},
		{7, 3, [][3]int{{0, 0, 3}, {0, 1, 3}, {0, 2, 3}, {1, 0, 2}, {1, 1, 2}, {2, 0, 2}, {2, 1, 2}}},
		{3, 3, [][3]int{{0, 0, 1}, {1, 0, 1}, {2, 0, 1}}},
	}
	for _, tt := range tests {
		for r, want := range tt.want {
			n, l, ls := placement(r, tt.np, tt.nodes)
			if [3]int{n, l, ls} != want {
				t.Errorf("placement(%d, %d, %d) = %d,%d,%d, want %v", r, tt.np, tt.nodes, n, l, ls, want)
			}
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2", "A=3"}, []string{"B=4", "C=5", "C=6"})
	if want := []string{"A=3", "B=4", "C=6"}; !slices.Equal(got, want) {
		t.Fatalf("mergeEnv = %q, want %q", got, want)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		res  Result
		want int
	}{
		{"all zero", Result{Exits: []RankExit{{}, {}}}, 0},
		{"exit code", Result{Failed: &RankExit{Code: 3}}, 3},
		{"signal", Result{Failed: &RankExit{Code: -1, Signal: syscall.SIGKILL}}, 137},
		{"abort then exit 0", Result{Failed: &RankExit{}, Cause: "x"}, 1},
		{"timeout", Result{TimedOut: true}, 124},
		{"ctx", Result{Interrupted: true}, 130},
		{"sigterm", Result{Interrupted: true, intrSig: syscall.SIGTERM}, 143},
	}
	for _, tt := range tests {
		if got := tt.res.ExitCode(); got != tt.want {
			t.Errorf("%s: ExitCode = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// checkGoroutines fails t if goroutines of this package outlive it.
func checkGoroutines(t *testing.T) {
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			var leaked []string
			for _, g := range strings.Split(string(buf), "\n\n") {
				if strings.Contains(g, "internal/launch.(*") || strings.Contains(g, "internal/bootstrap.(*") {
					leaked = append(leaked, g)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

package patterns_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorun-hpc/gorun/patterns"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// The controller's tests port mpilock's suite (test_readwrite,
// test_nesting, test_contention, test_progress_starvation) without its
// timings: exclusion is checked in memory every goroutine rank sees, and
// the starvation cases become "the master computes without calling the
// library and everyone still gets through".

// ctlPaths are the goroutine-rank configurations the controller runs on.
var ctlPaths = []struct {
	name string
	cfg  runtime.Config
}{
	{"node", runtime.Config{}},
	{"nodes2", runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}},
	{"tcp", runtime.Config{LocalNodes: 4, Transports: []string{"self", "tcp"}}},
}

// guard counts the ranks inside reads and writes and fails on overlap.
type guard struct {
	readers, writers atomic.Int64
	counter          int64 // changed under the write lock only, not atomically
	fail             atomic.Value
}

func (g *guard) bad(format string, args ...any) {
	g.fail.CompareAndSwap(nil, fmt.Sprintf(format, args...))
}

func (g *guard) read() error {
	g.readers.Add(1)
	if w := g.writers.Load(); w != 0 {
		g.bad("a reader ran while %d writers did", w)
	}
	goruntime.Gosched()
	g.readers.Add(-1)
	return nil
}

func (g *guard) write() error {
	if w := g.writers.Add(1); w != 1 {
		g.bad("%d writers at once", w)
	}
	if r := g.readers.Load(); r != 0 {
		g.bad("a writer ran while %d readers did", r)
	}
	v := g.counter
	goruntime.Gosched()
	g.counter = v + 1
	g.writers.Add(-1)
	return nil
}

func (g *guard) err() error {
	if s, ok := g.fail.Load().(string); ok {
		return errors.New(s)
	}
	return nil
}

func TestControllerExclusion(t *testing.T) {
	const rounds = 40
	for _, p := range ctlPaths {
		t.Run(p.name, func(t *testing.T) {
			var g guard
			cfg := ranktest.Config{Runtime: p.cfg}
			cfg.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
				wc, err := patterns.NewWindowController(c, patterns.ControllerConfig{Master: 1})
				if err != nil {
					t.Fatal(err)
				}
				defer wc.Close()
				for i := range rounds {
					if (i+c.Rank())%3 == 0 {
						err = wc.Write(g.write)
					} else {
						err = wc.Read(g.read)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
			})
			if err := g.err(); err != nil {
				t.Fatal(err)
			}
			want := int64(0)
			for r := range 4 {
				for i := range rounds {
					if (i+r)%3 == 0 {
						want++
					}
				}
			}
			if g.counter != want {
				t.Fatalf("counter %d after the writes, want %d (a lost update)", g.counter, want)
			}
		})
	}
}

// TestControllerNesting: every nesting of mpilock's test_nesting and the
// nested cases of test_contention, with the exclusion checks, on ranks
// that all nest at once.
func TestControllerNesting(t *testing.T) {
	for _, p := range ctlPaths[:2] {
		t.Run(p.name, func(t *testing.T) {
			var g guard
			var spans sync.Map // rank -> []patterns.Span
			var stats0 atomic.Value
			cfg := ranktest.Config{Runtime: p.cfg}
			cfg.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
				var mine []patterns.Span
				wc, err := patterns.NewWindowController(c, patterns.ControllerConfig{
					Trace: func(s patterns.Span) { mine = append(mine, s) },
				})
				if err != nil {
					t.Fatal(err)
				}
				defer wc.Close()
				for range 5 {
					steps := []error{
						// read in read
						wc.Read(func() error { return wc.Read(g.read) }),
						// write in write
						wc.Write(func() error { return wc.Write(g.write) }),
						// read in write: still excludes the others
						wc.Write(func() error {
							return wc.Read(func() error {
								if g.writers.Load() != 0 {
									g.bad("a nested read in a write ran beside a writer")
								}
								return g.write()
							})
						}),
						// write in read: promotion
						wc.Read(func() error {
							if err := g.read(); err != nil {
								return err
							}
							if err := wc.Write(g.write); err != nil {
								return err
							}
							return g.read()
						}),
						// write in read in write
						wc.Write(func() error {
							return wc.Read(func() error { return wc.Write(g.write) })
						}),
					}
					for _, err := range steps {
						if err != nil {
							t.Fatal(err)
						}
					}
				}
				spans.Store(c.Rank(), mine)
				if c.Rank() == 0 {
					stats0.Store(wc.Stats())
				}
			})
			if err := g.err(); err != nil {
				t.Fatal(err)
			}
			if want := int64(3 * 5 * 4); g.counter != want {
				t.Fatalf("counter %d, want %d", g.counter, want)
			}
			v, _ := spans.Load(0)
			ss := v.([]patterns.Span)
			// One round: R(R), W(W), W(R), R(Wp), W(R(W)) ends inner first.
			var nested, promoted int
			for _, s := range ss {
				if s.Nested {
					nested++
				}
				if s.Promoted {
					promoted++
					if !s.Write || s.Nested {
						t.Errorf("a promoted span %+v", s)
					}
				}
				if s.Acquired.Before(s.Start) || s.Released.Before(s.Acquired) {
					t.Errorf("span times out of order: %+v", s)
				}
			}
			if st := stats0.Load().(patterns.ControllerStats); st.Reads+st.Writes+st.Nested != int64(len(ss)) || st.Nested != int64(nested) || st.Promotions != int64(promoted) {
				t.Errorf("Stats %+v do not count the %d spans (%d nested, %d promoted)", st, len(ss), nested, promoted)
			}
			if len(ss) != 5*11 || nested != 5*5 || promoted != 5 {
				t.Fatalf("spans %d (want 55), nested %d (want 25), promoted %d (want 5)", len(ss), nested, promoted)
			}
		})
	}
}

// TestControllerMasterBusy: the master computes without calling the
// library while the others read and write through its window (mpilock
// needs its progress pump for this).
func TestControllerMasterBusy(t *testing.T) {
	for _, p := range ctlPaths {
		t.Run(p.name, func(t *testing.T) {
			var g guard
			var done atomic.Int64
			cfg := ranktest.Config{Runtime: p.cfg}
			cfg.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
				wc, err := patterns.NewWindowController(c, patterns.ControllerConfig{})
				if err != nil {
					t.Fatal(err)
				}
				defer wc.Close()
				if c.Rank() == 0 {
					x := 1.0
					for done.Load() < 3 { // pure computation
						for range 1000 {
							x = x*1.0000001 + 1e-9
						}
					}
					_ = x
					return
				}
				for i := range 30 {
					if i%2 == 0 {
						err = wc.Write(g.write)
					} else {
						err = wc.Read(g.read)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				done.Add(1)
			})
			if err := g.err(); err != nil {
				t.Fatal(err)
			}
			if g.counter != 3*15 {
				t.Fatalf("counter %d, want 45", g.counter)
			}
		})
	}
}

func TestSingleWrite(t *testing.T) {
	type point struct {
		X, Y float64
		N    int32
	}
	for _, p := range ctlPaths[:2] {
		t.Run(p.name, func(t *testing.T) {
			var ran atomic.Int64
			cfg := ranktest.Config{Runtime: p.cfg}
			cfg.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
				wc, err := patterns.NewWindowController(c, patterns.ControllerConfig{})
				if err != nil {
					t.Fatal(err)
				}
				defer wc.Close()
				last := c.Size() - 1
				// A fixed-size result, from the last rank.
				pt, err := patterns.SingleWrite(wc, last, func() (point, error) {
					ran.Add(1)
					return point{1.5, -2, int32(c.Rank())}, nil
				})
				if err != nil || pt != (point{1.5, -2, int32(last)}) {
					t.Fatalf("SingleWrite gave %v, %v", pt, err)
				}
				// A result gob carries, longer than the inline bytes.
				long := strings.Repeat("gorun ", 50)
				s, err := patterns.SingleWrite(wc, 0, func() ([]string, error) {
					ran.Add(1)
					return []string{long, strconv.Itoa(c.Rank())}, nil
				})
				if err != nil || len(s) != 2 || s[0] != long || s[1] != "0" {
					t.Fatalf("SingleWrite gave %q, %v", s, err)
				}
				// An error on the writer: every rank gets its words.
				_, err = patterns.SingleWrite(wc, 1, func() (int, error) {
					return 0, fmt.Errorf("the file is gone: %w", runtime.ErrInvalid)
				})
				if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "the file is gone") {
					t.Fatalf("rank %d: SingleWrite returned %v", c.Rank(), err)
				}
				// A panic: an error naming the writer on every rank.
				_, err = patterns.SingleWrite(wc, 2, func() (int, error) { panic("out of paper") })
				if err == nil || !strings.Contains(err.Error(), "rank 2 panicked in SingleWrite: out of paper") {
					t.Errorf("rank %d: after a panic SingleWrite returned %v", c.Rank(), err)
				}
				// What gob drops, it drops on the writer too: every rank
				// returns the same value.
				type hidden struct {
					A string
					b int
				}
				h, err := patterns.SingleWrite(wc, 0, func() (hidden, error) { return hidden{"x", 7}, nil })
				if err != nil || h != (hidden{A: "x"}) {
					t.Errorf("rank %d: SingleWrite gave %+v, %v; want {A:x b:0} everywhere", c.Rank(), h, err)
				}
				// Inside a Read on a rank that is not the writer: the same
				// error everywhere, no hang.
				err = wc.Read(func() error {
					_, err := patterns.SingleWrite(wc, 0, func() (int, error) { return 1, nil })
					return err
				})
				if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "inside Read or Write on rank 1") {
					t.Errorf("rank %d: SingleWrite inside Read returned %v", c.Rank(), err)
				}
				// The writer alone nested: fine.
				err = nil
				if c.Rank() == 3 {
					err = wc.Read(func() error {
						_, err := patterns.SingleWrite(wc, 3, func() (int, error) { return 1, nil })
						return err
					})
				} else {
					_, err = patterns.SingleWrite(wc, 3, func() (int, error) { return 1, nil })
				}
				if err != nil {
					t.Errorf("rank %d: SingleWrite with the writer in a Read returned %v", c.Rank(), err)
				}
				// The lock was released: a write still works.
				if err := wc.Write(func() error { return nil }); err != nil {
					t.Fatal(err)
				}
				// A bad rank on one rank: the same error everywhere.
				r := 0
				if c.Rank() == 1 {
					r = 9
				}
				_, err = patterns.SingleWrite(wc, r, func() (int, error) { return 1, nil })
				if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "rank 9 is out of range") {
					t.Fatalf("rank %d: SingleWrite with a bad rank returned %v", c.Rank(), err)
				}
			})
			if n := ran.Load(); n != 2 {
				t.Fatalf("the functions ran %d times, want 2 (on the writers only)", n)
			}
		})
	}
}

func TestControllerSerialAndClose(t *testing.T) {
	for _, c := range []*runtime.Comm{nil} {
		wc, err := patterns.NewWindowController(c, patterns.ControllerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		if err := wc.Write(func() error { return wc.Read(func() error { n++; return nil }) }); err != nil || n != 1 {
			t.Fatal(err, n)
		}
		v, err := patterns.SingleWrite(wc, 0, func() (string, error) { return "one", nil })
		if v != "one" || err != nil {
			t.Fatal(v, err)
		}
		if err := wc.Close(); err != nil {
			t.Fatal(err)
		}
		if err := wc.Close(); err != nil {
			t.Fatal("a second Close:", err)
		}
		if err := wc.Read(func() error { return nil }); !errors.Is(err, runtime.ErrClosed) {
			t.Fatalf("Read after Close returned %v", err)
		}
	}
	ranktest.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
		// A master out of range on one rank: the same error on every rank.
		m := 0
		if c.Rank() == 2 {
			m = 3
		}
		_, err := patterns.NewWindowController(c, patterns.ControllerConfig{Master: m})
		if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "root 3 is out of range") {
			t.Fatalf("rank %d: NewWindowController with a bad master returned %v", c.Rank(), err)
		}
		wc, err := patterns.NewWindowController(c, patterns.ControllerConfig{Master: 2})
		if err != nil {
			t.Fatal(err)
		}
		if wc.Master() != 2 || wc.Rank() != c.Rank() {
			t.Fatalf("Master %d Rank %d", wc.Master(), wc.Rank())
		}
		// Close from inside a Read gives the registration back.
		if err := wc.Read(func() error { return wc.Close() }); err != nil {
			t.Fatal(err)
		}
		if err := wc.Write(func() error { return nil }); !errors.Is(err, runtime.ErrClosed) {
			t.Fatalf("Write after Close returned %v", err)
		}
	})
}

// The process test: ranks on two nodes append to one file under the write
// lock, read-modify-write of a counter in it; nothing is lost.
func init() {
	ranktest.Register("controller-file", func(c *runtime.Comm) error {
		wc, err := patterns.NewWindowController(c, patterns.ControllerConfig{Master: c.Size() - 1})
		if err != nil {
			return err
		}
		defer wc.Close()
		path := os.Getenv("CONTROLLER_FILE")
		for range 10 {
			err := wc.Write(func() error {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				n, err := strconv.Atoi(strings.TrimSpace(string(b)))
				if err != nil {
					return err
				}
				return os.WriteFile(path, []byte(strconv.Itoa(n+1)), 0o600)
			})
			if err != nil {
				return err
			}
			if err := wc.Read(func() error { _, err := os.ReadFile(path); return err }); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestControllerProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("process ranks")
	}
	path := filepath.Join(t.TempDir(), "counter")
	if err := os.WriteFile(path, []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONTROLLER_FILE", path)
	cfg := ranktest.SpawnConfig{Nodes: 2}
	cfg.Spawn(t, 4, "controller-file")
	b, _ := os.ReadFile(path)
	if string(b) != "40" {
		t.Fatalf("the counter is %q after 4 ranks × 10 writes, want 40", b)
	}
}

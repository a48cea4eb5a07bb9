package patterns

// The tests of Lock. They are in the package (not patterns_test) so that
// the FIFO test can watch the queue's tail on the root.

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/rma"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// lockLayouts are the goroutine-rank layouts of the lock tests: one node
// (the direct path), every rank its own node (every operation a message,
// over the in-process transport and over TCP), and two nodes over
// shared-memory rings and TCP.
var lockLayouts = []struct {
	name string
	np   int
	cfg  runtime.Config
}{
	{"np2", 2, runtime.Config{}},
	{"np3", 3, runtime.Config{}},
	{"np4", 4, runtime.Config{}},
	{"messages", 4, runtime.Config{LocalNodes: 4}},
	{"tcp", 4, runtime.Config{LocalNodes: 4, Transports: []string{"self", "tcp"}}},
	{"mixed", 4, runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}},
}

// lockExclusion has every rank take the lock iters times and, holding it,
// read, increment and write back a counter on rank 0 with plain Get and
// Put (a lost update if two ranks overlap), and count itself in and out
// of an "inside" word with atomics (any overlap seen at once). inside, if
// not nil, is a second such word in this process's memory (goroutine
// ranks). The lock's root is the last rank.
func lockExclusion(c *runtime.Comm, iters int, inside *atomic.Int32) error {
	l, err := NewLock(c, c.Size()-1)
	if err != nil {
		return err
	}
	defer l.Close()
	w, err := rma.Allocate[int64](c, 2)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.LockAll(); err != nil {
		return err
	}
	const counter, flag = 0, 1
	buf := []int64{0}
	for i := range iters {
		if err := l.Lock(); err != nil {
			return fmt.Errorf("Lock %d: %w", i, err)
		}
		if old, err := w.FetchAndOp(1, 0, flag, runtime.Sum); err != nil {
			return err
		} else if old != 0 {
			return fmt.Errorf("acquisition %d: %d other ranks hold the lock too", i, old)
		}
		if inside != nil {
			if n := inside.Add(1); n != 1 {
				return fmt.Errorf("acquisition %d: %d ranks inside", i, n)
			}
		}
		if err := w.Get(buf, 0, counter); err != nil {
			return err
		}
		if err := w.Flush(0); err != nil {
			return err
		}
		buf[0]++
		goruntime.Gosched() // let the others run: an overlap, if any, shows
		if err := w.Put(buf, 0, counter); err != nil {
			return err
		}
		if err := w.Flush(0); err != nil {
			return err
		}
		if inside != nil {
			inside.Add(-1)
		}
		if old, err := w.FetchAndOp(-1, 0, flag, runtime.Sum); err != nil {
			return err
		} else if old != 1 {
			return fmt.Errorf("release %d: the inside word was %d, want 1", i, old)
		}
		if err := l.Unlock(); err != nil {
			return fmt.Errorf("Unlock %d: %w", i, err)
		}
	}
	if err := w.UnlockAll(); err != nil {
		return err
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	if c.Rank() == 0 {
		if got, want := w.Local()[counter], int64(iters*c.Size()); got != want {
			return fmt.Errorf("counter %d, want %d (lost updates)", got, want)
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return l.Close()
}

func init() {
	ranktest.Register("patterns-lock-exclusion", func(c *runtime.Comm) error {
		return lockExclusion(c, 200, nil)
	})
}

func TestLockExclusion(t *testing.T) {
	for _, l := range lockLayouts {
		t.Run(l.name, func(t *testing.T) {
			var inside atomic.Int32
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, l.np, func(t testing.TB, c *runtime.Comm) {
				if err := lockExclusion(c, 300, &inside); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
	t.Run("processes-nodes2", func(t *testing.T) {
		if testing.Short() {
			t.Skip("process ranks")
		}
		cfg := ranktest.SpawnConfig{Nodes: 2}
		cfg.Spawn(t, 4, "patterns-lock-exclusion")
	})
}

// pshmem's test_lock: five rounds of lock and unlock per rank, in a
// lock made and closed around them; with a nil communicator and one rank.
func TestLockRounds(t *testing.T) {
	rounds := func(c *runtime.Comm) error {
		l, err := NewLock(c, 0)
		if err != nil {
			return err
		}
		for range 5 {
			if err := l.Lock(); err != nil {
				return err
			}
			if err := l.Unlock(); err != nil {
				return err
			}
		}
		return l.Close()
	}
	if err := rounds(nil); err != nil {
		t.Fatal(err)
	}
	for _, np := range []int{1, 2, 3, 4} {
		ranktest.Run(t, np, func(t testing.TB, c *runtime.Comm) {
			if err := rounds(c); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// lockTail reads the queue's tail on the root: the rank last enqueued,
// plus one, or 0.
func lockTail(l *Lock) (int64, error) {
	q := l.q
	return q.win.FetchAndOp(0, q.root, qTail, runtime.NoOp)
}

// The lock is granted in the order asked: rank 0 holds it, ranks 1, 2, 3
// ask one after the other (each once the one before is in the queue), and
// they get it in that order.
func TestLockFIFO(t *testing.T) {
	for _, l := range lockLayouts {
		if l.np < 3 {
			continue
		}
		t.Run(l.name, func(t *testing.T) {
			np := l.np
			var (
				mu    sync.Mutex
				order []int
			)
			goAhead := make([]chan struct{}, np)
			for i := range goAhead {
				goAhead[i] = make(chan struct{})
			}
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
				me := c.Rank()
				lk, err := NewLock(c, 1) // the root is not the first holder
				if err != nil {
					t.Fatal(err)
				}
				defer lk.Close()
				if me == 0 {
					if err := lk.Lock(); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.Barrier(); err != nil {
					t.Fatal(err)
				}
				if me == 0 {
					for r := 1; r < np; r++ {
						close(goAhead[r])
						for {
							tail, err := lockTail(lk)
							if err != nil {
								t.Fatal(err)
							}
							if tail == int64(r+1) {
								break
							}
							time.Sleep(100 * time.Microsecond)
						}
					}
					if err := lk.Unlock(); err != nil {
						t.Fatal(err)
					}
				} else {
					<-goAhead[me]
					if err := lk.Lock(); err != nil {
						t.Fatal(err)
					}
					mu.Lock()
					order = append(order, me)
					mu.Unlock()
					if err := lk.Unlock(); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.Barrier(); err != nil {
					t.Fatal(err)
				}
				if tail, err := lockTail(lk); err != nil || tail != 0 {
					t.Errorf("the tail after everyone left: %d, %v; want 0", tail, err)
				}
				if err := lk.Close(); err != nil {
					t.Fatal(err)
				}
			})
			for i, r := range order {
				if r != i+1 {
					t.Fatalf("granted in the order %v, want 1..%d", order, np-1)
				}
			}
			if len(order) != np-1 {
				t.Fatalf("granted to %v, want 1..%d", order, np-1)
			}
		})
	}
}

// The others lock and unlock while the root computes without calling the
// library (no progress thread needed): the root waits, spinning on memory
// of this process, until they are all done.
func TestLockBusyRoot(t *testing.T) {
	for _, l := range lockLayouts {
		if l.name != "np3" && l.name != "tcp" && l.name != "mixed" {
			continue
		}
		t.Run(l.name, func(t *testing.T) {
			var done atomic.Int32
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, l.np, func(t testing.TB, c *runtime.Comm) {
				lk, err := NewLock(c, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer lk.Close()
				if err := c.Barrier(); err != nil {
					t.Fatal(err)
				}
				if c.Rank() == 0 {
					// Compute: no call of the library until the others are
					// done (a generous bound turns a stall into a failure).
					deadline := time.Now().Add(30 * time.Second)
					x := 0
					for done.Load() < int32(c.Size()-1) {
						for i := range 1000 {
							x += i
						}
						if time.Now().After(deadline) {
							t.Fatalf("the others did not finish while the root computed (%d of %d done)", done.Load(), c.Size()-1)
						}
					}
					_ = x
				} else {
					for i := range 100 {
						if err := lk.Lock(); err != nil {
							t.Fatalf("Lock %d: %v", i, err)
						}
						if err := lk.Unlock(); err != nil {
							t.Fatalf("Unlock %d: %v", i, err)
						}
					}
					done.Add(1)
				}
				if err := lk.Close(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// lockErrs collects one error per rank, to compare once the ranks are done.
type lockErrs struct {
	mu   sync.Mutex
	errs [][]error
}

func (b *lockErrs) put(i, rank, np int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.errs) <= i {
		b.errs = append(b.errs, make([]error, np))
	}
	b.errs[i][rank] = err
}

// Misuse is an error, not a silent no-op; after Close, ErrClosed.
func TestLockMisuse(t *testing.T) {
	misuse := func(c *runtime.Comm) error {
		l, err := NewLock(c, 0)
		if err != nil {
			return err
		}
		if err := l.Unlock(); !errors.Is(err, runtime.ErrInvalid) {
			return fmt.Errorf("Unlock without the lock: %v, want ErrInvalid", err)
		}
		for round := range 3 {
			if err := l.Lock(); err != nil {
				return err
			}
			if err := l.Lock(); !errors.Is(err, runtime.ErrInvalid) {
				return fmt.Errorf("Lock while holding it: %v, want ErrInvalid", err)
			}
			if err := l.Unlock(); err != nil {
				return fmt.Errorf("round %d: %w", round, err)
			}
			if err := l.Unlock(); !errors.Is(err, runtime.ErrInvalid) {
				return fmt.Errorf("second Unlock: %v, want ErrInvalid", err)
			}
		}
		// Close while holding releases it to the others.
		if err := l.Lock(); err != nil {
			return err
		}
		if err := l.Close(); err != nil {
			return err
		}
		if err := l.Close(); err != nil {
			return fmt.Errorf("second Close: %v", err)
		}
		if err := l.Lock(); !errors.Is(err, runtime.ErrClosed) {
			return fmt.Errorf("Lock after Close: %v, want ErrClosed", err)
		}
		if err := l.Unlock(); !errors.Is(err, runtime.ErrClosed) {
			return fmt.Errorf("Unlock after Close: %v, want ErrClosed", err)
		}
		var oe *OpError
		if err := l.Lock(); !errors.As(err, &oe) || oe.Op != "Lock" {
			return fmt.Errorf("Lock after Close: %v, want an *OpError of Lock", err)
		}
		return nil
	}
	t.Run("serial", func(t *testing.T) {
		if err := misuse(nil); err != nil {
			t.Fatal(err)
		}
		if _, err := NewLock(nil, 1); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("NewLock(nil, 1): %v, want ErrInvalid", err)
		}
	})
	for _, np := range []int{1, 3} {
		t.Run(fmt.Sprintf("np%d", np), func(t *testing.T) {
			ranktest.Run(t, np, func(t testing.TB, c *runtime.Comm) {
				if err := misuse(c); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// A bad root on one rank, or roots that differ, are the same ErrInvalid on
// every rank with the same words; a good NewLock follows.
func TestLockBadRoot(t *testing.T) {
	const np = 4
	var errs lockErrs
	cases := []func(me int) int{
		func(me int) int { // out of range on one rank
			if me == 2 {
				return np
			}
			return 0
		},
		func(me int) int { // negative on one rank
			if me == 3 {
				return -1
			}
			return 0
		},
		func(me int) int { // out of range on all
			return np + 3
		},
		func(me int) int { // in range everywhere but not the same
			if me == 1 {
				return 2
			}
			return 0
		},
	}
	for _, l := range lockLayouts {
		if l.np != np || l.name == "messages" || l.name == "tcp" {
			continue
		}
		t.Run(l.name, func(t *testing.T) {
			errs = lockErrs{}
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
				for i, root := range cases {
					lk, err := NewLock(c, root(c.Rank()))
					if err == nil {
						lk.Close()
					}
					errs.put(i, c.Rank(), np, err)
					if err := lockExclusion(c, 5, nil); err != nil {
						t.Fatalf("after case %d: %v", i, err)
					}
				}
			})
			for i, byRank := range errs.errs {
				var first string
				for r, err := range byRank {
					var oe *OpError
					if !errors.Is(err, runtime.ErrInvalid) || !errors.As(err, &oe) {
						t.Errorf("case %d: rank %d: %v, want an ErrInvalid *OpError", i, r, err)
						continue
					}
					if r == 0 {
						first = oe.Err.Error()
						t.Logf("case %d: %s", i, first)
					} else if msg := oe.Err.Error(); msg != first {
						t.Errorf("case %d: rank %d says %q, rank 0 %q", i, r, msg, first)
					}
				}
			}
		})
	}
}

// Two locks on one communicator are independent: each is held by one rank
// at a time, both may be held at once by different ranks, and the tokens
// of one never reach the other.
func TestLockTwoInstances(t *testing.T) {
	for _, l := range lockLayouts {
		if l.np != 4 || l.name == "tcp" {
			continue
		}
		t.Run(l.name, func(t *testing.T) {
			var insideA, insideB atomic.Int32
			var countA, countB atomic.Int64
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
				me := c.Rank()
				a, err := NewLock(c, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				b, err := NewLock(c, 0) // same root, same communicator
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				// Rank 0 holds a and rank 1 holds b at the same time.
				switch me {
				case 0:
					if err := a.Lock(); err != nil {
						t.Fatal(err)
					}
				case 1:
					if err := b.Lock(); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.Barrier(); err != nil {
					t.Fatal(err)
				}
				switch me {
				case 0:
					if err := a.Unlock(); err != nil {
						t.Fatal(err)
					}
				case 1:
					if err := b.Unlock(); err != nil {
						t.Fatal(err)
					}
				}
				// Then everyone takes them, nested in both orders on
				// different ranks' turns (a then b always, so no deadlock),
				// or alone.
				take := func(lk *Lock, inside *atomic.Int32, count *atomic.Int64) error {
					if err := lk.Lock(); err != nil {
						return err
					}
					if n := inside.Add(1); n != 1 {
						return fmt.Errorf("%d ranks inside one lock", n)
					}
					count.Add(1)
					inside.Add(-1)
					return nil
				}
				for i := range 200 {
					var err error
					switch (i + me) % 3 {
					case 0:
						if err = take(a, &insideA, &countA); err == nil {
							if err = take(b, &insideB, &countB); err == nil {
								err = errors.Join(b.Unlock(), a.Unlock())
							}
						}
					case 1:
						if err = take(a, &insideA, &countA); err == nil {
							err = a.Unlock()
						}
					case 2:
						if err = take(b, &insideB, &countB); err == nil {
							err = b.Unlock()
						}
					}
					if err != nil {
						t.Fatalf("iteration %d: %v", i, err)
					}
				}
				if err := errors.Join(b.Close(), a.Close()); err != nil {
					t.Fatal(err)
				}
			})
			// Per rank: 200 iterations, a in 2 of 3 kinds, b in 2 of 3.
			var wantA, wantB int64
			for me := range 4 {
				for i := range 200 {
					switch (i + me) % 3 {
					case 0:
						wantA++
						wantB++
					case 1:
						wantA++
					case 2:
						wantB++
					}
				}
			}
			if countA.Load() != wantA || countB.Load() != wantB {
				t.Errorf("counts %d, %d; want %d, %d", countA.Load(), countB.Load(), wantA, wantB)
			}
		})
	}
}

// The program of TestLockKill: rank PATTERNS_VICTIM takes the lock and
// dies by SIGKILL holding it; the others wait in Lock and get ErrAborted.
func init() {
	ranktest.Register("patterns-lock-kill", func(c *runtime.Comm) error {
		victim, err := strconv.Atoi(os.Getenv("PATTERNS_VICTIM"))
		if err != nil {
			return err
		}
		l, err := NewLock(c, 0)
		if err != nil {
			return err
		}
		if c.Rank() == victim {
			if err := l.Lock(); err != nil {
				return err
			}
		}
		err = c.Barrier()
		if c.Rank() == victim {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		// The victim may die before the others have left the Barrier.
		if err == nil {
			err = l.Lock()
		}
		fmt.Printf("waiter: %v\n", err)
		if !errors.Is(err, runtime.ErrAborted) {
			return fmt.Errorf("the lock waiter got %v, want ErrAborted", err)
		}
		return nil
	})
}

// A holder killed with SIGKILL: the waiters get ErrAborted, the job ends
// with the cause.
func TestLockKill(t *testing.T) {
	if testing.Short() {
		t.Skip("process ranks")
	}
	for _, tc := range []struct {
		name   string
		nodes  int
		victim int
	}{
		{"node-holder", 1, 1},
		{"nodes3-root-holder", 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ranktest.SpawnConfig{Nodes: tc.nodes, Env: []string{"PATTERNS_VICTIM=" + strconv.Itoa(tc.victim)}}
			out, res := cfg.SpawnResult(t, 3, "patterns-lock-kill")
			if res.ExitCode() == 0 {
				t.Fatalf("the job succeeded with a rank killed:\n%s", out)
			}
			if strings.Count(out, "waiter: ") != 2 || !strings.Contains(out, "aborted") {
				t.Fatalf("the waiters did not report ErrAborted:\n%s", out)
			}
			if strings.Contains(out, "the lock waiter got") {
				t.Fatalf("wrong error:\n%s", out)
			}
		})
	}
}

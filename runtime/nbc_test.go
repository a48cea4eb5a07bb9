package runtime_test

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/collcheck"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// The nonblocking collectives against the naive versions (collcheck.
// Nonblocking: all in progress at once, a blocking Allreduce among them,
// completed in reverse order or as they finish), at 1 to 9 ranks, on one
// node and over the real transports across two emulated nodes; the
// v-forms likewise (collcheck.VariedNonblocking). Processes run them
// through collcheck.All.
func TestNonblockingCollectives(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		for _, np := range rankCounts {
			if np < sc.cfg.LocalNodes {
				continue
			}
			t.Run(fmt.Sprint(sc.name, "/np", np), func(t *testing.T) {
				cfg := ranktest.Config{Runtime: sc.cfg}
				cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
					for _, m := range []int{0, 1, 7, 20011} {
						for seed := range uint64(2) {
							if err := collcheck.Nonblocking(c, seed+uint64(31*m+np), m); err != nil {
								t.Fatalf("len %d seed %d: %v", m, seed, err)
							}
						}
					}
					for seed := range uint64(4) {
						if err := collcheck.VariedNonblocking(c, seed); err != nil {
							t.Fatalf("v-forms seed %d: %v", seed, err)
						}
					}
				})
			})
		}
	}
}

// Bad input on one rank (collcheck.NonblockingBadCases), on the paths of
// TestBadInput: no hang, no nil with wrong data; the same ErrInvalid
// everywhere for the calls that pass errors on, else a world abort naming
// the cause — on a one-node communicator too, where nonblocking calls do
// not compare in shared memory.
func TestNonblockingBadInput(t *testing.T) {
	for _, bc := range badConfigs {
		for _, cs := range collcheck.NonblockingBadCases {
			t.Run(bc.name+"/"+cs.Name, func(t *testing.T) {
				outs := make([]collcheck.Outcome, bc.n)
				cfg := ranktest.Config{Runtime: bc.cfg}
				cfg.Run(t, bc.n, func(t testing.TB, c *runtime.Comm) {
					outs[c.Rank()] = collcheck.RunBad(c, cs, 0)
				})
				if err := collcheck.Judge(cs, bc.n, false, outs); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// nbGoroutines counts the goroutines of nonblocking collectives in this
// process.
func nbGoroutines() int {
	buf := make([]byte, 1<<22)
	buf = buf[:goruntime.Stack(buf, true)]
	return strings.Count(string(buf), "runtime.(*nbOp).run(")
}

// noNBGoroutines fails t if goroutines of nonblocking collectives are left
// once their requests completed: they end right after, so it gives them
// a few seconds.
func noNBGoroutines(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for nbGoroutines() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of nonblocking collectives left", nbGoroutines())
		}
		time.Sleep(time.Millisecond)
	}
}

// A nonblocking collective progresses while its rank blocks in something
// else: rank 0 starts one and then blocks in Recv for messages the others
// send only once theirs completed — which needs rank 0's part. Ibarrier;
// an Ibcast from rank 0 large enough for rendezvous (rank 0's sends wait
// for receivers while it blocks); an Ireduce to rank 0 whose tree passes
// through rank 1, which blocks likewise.
func TestNonblockingProgress(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		for _, np := range []int{2, 3, 5} {
			t.Run(fmt.Sprint(sc.name, "/np", np), func(t *testing.T) {
				cfg := ranktest.Config{Runtime: sc.cfg}
				cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
					me, n := c.Rank(), c.Size()
					const m = 100_000
					blocker := func(rq *runtime.Request, err error, who int) {
						t.Helper()
						if err != nil {
							t.Fatal(err)
						}
						if me == who {
							// Blocked until every other rank's request completed.
							for range n - 1 {
								if _, err := runtime.Recv(c, []int{0}, runtime.AnySource, 5); err != nil {
									t.Fatal(err)
								}
							}
						}
						if _, err := rq.Wait(); err != nil {
							t.Fatal(err)
						}
						if me != who {
							if err := runtime.Send(c, []int{me}, who, 5); err != nil {
								t.Fatal(err)
							}
						}
					}
					rq, err := c.Ibarrier()
					blocker(rq, err, 0)

					buf := make([]int64, m)
					if me == 0 {
						for i := range buf {
							buf[i] = int64(i)
						}
					}
					rq, err = runtime.Ibcast(c, buf, 0)
					blocker(rq, err, 0)
					for i, v := range buf {
						if v != int64(i) {
							t.Fatalf("Ibcast: [%d] = %d", i, v)
						}
					}

					in := make([]int64, m)
					for i := range in {
						in[i] = int64(me)
					}
					var out []int64
					if me == 0 {
						out = make([]int64, m)
					}
					rq, err = runtime.Ireduce(c, in, out, runtime.Sum, 0)
					blocker(rq, err, 1%n)
					if me == 0 && out[m-1] != int64(n*(n-1)/2) {
						t.Fatalf("Ireduce: %d, want %d", out[m-1], n*(n-1)/2)
					}
				})
				noNBGoroutines(t)
			})
		}
	}
}

// Close of a communicator with nonblocking collectives in progress: their
// requests complete with ErrClosed, no goroutine of theirs is left once
// Close returns, and their buffers are the caller's again (a rendezvous
// send no receiver took goes on from a copy). Later calls on it fail with
// ErrClosed; the world goes on.
func TestNonblockingClose(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		t.Run(sc.name, func(t *testing.T) {
			cfg := ranktest.Config{Runtime: sc.cfg}
			cfg.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
				d, err := c.Dup()
				if err != nil {
					t.Fatal(err)
				}
				if c.Rank() == 0 {
					// The others make none of these calls.
					big := make([]int64, 100_000)
					var reqs []*runtime.Request
					add := func(rq *runtime.Request, err error) {
						if err != nil {
							t.Fatal(err)
						}
						reqs = append(reqs, rq)
					}
					add(d.Ibarrier())
					add(runtime.Ibcast(d, big, 0))
					add(runtime.Iallreduce(d, []int64{1}, make([]int64, 1), runtime.Sum))
					add(runtime.Ialltoall(d, big[:99_999], make([]int64, 99_999)))
					if err := d.Close(); err != nil {
						t.Fatal(err)
					}
					if n := nbGoroutines(); n != 0 {
						t.Errorf("%d goroutines of nonblocking collectives after Close", n)
					}
					for i, rq := range reqs {
						if done, _, err := rq.Test(); !done || !errors.Is(err, runtime.ErrClosed) {
							t.Errorf("request %d after Close: done %v, err %v; want ErrClosed", i, done, err)
						}
					}
					for i := range big {
						big[i] = -1 // the caller's again
					}
					if _, err := d.Ibarrier(); !errors.Is(err, runtime.ErrClosed) {
						t.Errorf("Ibarrier on a closed communicator: %v, want ErrClosed", err)
					}
				}
				if err := c.Barrier(); err != nil {
					t.Fatal(err)
				}
				if c.Rank() != 0 {
					d.Close()
				}
				sum := []int{0}
				if err := runtime.Allreduce(c, []int{1}, sum, runtime.Sum); err != nil || sum[0] != 3 {
					t.Fatalf("world after the Close: %v %v", sum, err)
				}
			})
			noNBGoroutines(t)
		})
	}
}

// A rank that closed a communicator with a nonblocking collective in
// progress has left it: a peer that then makes the call and waits for that
// rank learns why (ErrAborted naming it) instead of waiting forever. Here
// rank 2 relays an Ibcast from rank 0 to rank 3 in the binomial tree.
func TestNonblockingClosedPeer(t *testing.T) {
	ranktest.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
		d, err := c.Dup()
		if err != nil {
			t.Fatal(err)
		}
		buf := []int64{int64(c.Rank())}
		if c.Rank() == 2 {
			if _, err := runtime.Ibcast(d, buf, 0); err != nil {
				t.Fatal(err)
			}
			d.Close()
		}
		if err := c.Barrier(); err != nil {
			t.Fatal(err)
		}
		switch c.Rank() {
		case 0, 1:
			if err := wait(runtime.Ibcast(d, buf, 0)); err != nil {
				t.Fatal(err)
			}
		case 3:
			err = wait(runtime.Ibcast(d, buf, 0))
			if !errors.Is(err, runtime.ErrAborted) || !strings.Contains(err.Error(), "rank 2 has closed the communicator") {
				t.Fatalf("err = %v, want ErrAborted because rank 2 closed", err)
			}
		}
		// No rank closes its world before rank 3 has its answer (which
		// aborts this Barrier).
		_ = c.Barrier()
	})
}

func wait(rq *runtime.Request, err error) error {
	if err != nil {
		return err
	}
	_, err = rq.Wait()
	return err
}

// An abort completes the nonblocking collectives in progress with
// ErrAborted and its cause, and their goroutines end.
func TestNonblockingAbort(t *testing.T) {
	ranktest.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
		d, err := c.Dup()
		if err != nil {
			t.Fatal(err)
		}
		var reqs []*runtime.Request
		if c.Rank() != 1 {
			// Rank 1 never comes.
			for _, m := range []int{1, 100_000} {
				rq, err := runtime.Iallreduce(d, make([]int64, m), make([]int64, m), runtime.Sum)
				if err != nil {
					t.Fatal(err)
				}
				reqs = append(reqs, rq)
			}
		}
		if err := c.Barrier(); err != nil {
			t.Fatal(err)
		}
		if c.Rank() == 1 {
			c.Abort(errors.New("rank 1 gives up"))
		}
		for _, rq := range reqs {
			if _, err := rq.Wait(); !errors.Is(err, runtime.ErrAborted) || !strings.Contains(err.Error(), "rank 1 gives up") {
				t.Errorf("err = %v, want ErrAborted by rank 1", err)
			}
		}
	})
	noNBGoroutines(t)
}

package runtime_test

import (
	"fmt"
	goruntime "runtime"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// Allocation budgets: a small Send/Recv, Barrier, Bcast or Allreduce must
// not start allocating. The ranks are goroutines of this process on one
// node, over the real transports: shared memory (rings for messages, the
// node segment for collectives) and loopback TCP (collectives by
// messages). testing.AllocsPerRun counts every malloc of the process, so
// the peers' work is in the count; they run the same number of iterations
// as rank 0, in lock step with it (every iteration of rank 0 waits for the
// others), and the count is per iteration of all ranks together.
//
// What allocates today depends on timing only: a wait that parks makes a
// channel to sleep on (Request.park), and an eager message that arrives
// before its receive is posted is kept in a record with a copy of its
// payload (onEager). TCP receives always park (no caller polls a socket),
// so there every receive of every rank allocates once, or twice when its
// message came first; on shared memory a wait parks only when it polled
// for pollBudget without progress (another process took the core). The
// runtime counts those allocations (TimingAllocs); the budget is what a
// call may allocate besides them: 0 everywhere. The fewest of
// allocAttempts measurements counts.

// allocAttempts is how many times each case is measured; the fewest
// allocations count.
const allocAttempts = 3

// allocRuns is testing.AllocsPerRun's count per attempt.
const allocRuns = 200

// allocOneOffs is how many allocations a measurement may have besides the
// budget's and the timing's, whatever the number of iterations.
const allocOneOffs = 8

var allocPaths = []struct {
	name string
	cfg  runtime.Config
}{
	{"shm", runtime.Config{Transports: []string{"self", "shm"}}},
	{"tcp", runtime.Config{Transports: []string{"self", "tcp"}}},
}

// allocCase is one measured iteration: fn runs on every rank, as often on
// each. budget is the allocations allowed per iteration (all ranks
// together) besides the timing's (TimingAllocs).
type allocCase struct {
	name   string
	nps    []int // numbers of ranks
	fn     func(c *runtime.Comm, send, recv []float64) error
	budget int
}

var allocCases = []allocCase{
	{
		// Rank 0 sends 8 bytes to rank 1 and waits for them back.
		name: "Send/Recv pair of 8 B",
		nps:  []int{2},
		fn: func(c *runtime.Comm, send, recv []float64) error {
			switch c.Rank() {
			case 0:
				if err := runtime.Send(c, send, 1, 0); err != nil {
					return err
				}
				_, err := runtime.Recv(c, recv, 1, 0)
				return err
			case 1:
				if _, err := runtime.Recv(c, recv, 0, 0); err != nil {
					return err
				}
				return runtime.Send(c, recv, 0, 0)
			}
			return nil
		},
		budget: 0, // TCP: and two parked receives (timing)
	},
	{
		name:   "Barrier",
		nps:    []int{2, 4},
		fn:     func(c *runtime.Comm, _, _ []float64) error { return c.Barrier() },
		budget: 0, // TCP: and np*ceil(log2 np) parked receives (dissemination)
	},
	{
		// A root does not wait for anyone, so the iteration is two
		// Bcasts: from rank 0, then from the last rank, which sends only
		// after it received the first; rank 0 receives the second.
		name: "Bcast of 8 B from rank 0 then from the last rank",
		nps:  []int{2, 4},
		fn: func(c *runtime.Comm, send, _ []float64) error {
			if err := runtime.Bcast(c, send, 0); err != nil {
				return err
			}
			return runtime.Bcast(c, send, c.Size()-1)
		},
		budget: 0, // TCP: and 2*(np-1) parked receives
	},
	{
		name: "Allreduce of 8 B (float64 Sum)",
		nps:  []int{2, 4},
		fn: func(c *runtime.Comm, send, recv []float64) error {
			return runtime.Allreduce(c, send, recv, runtime.Sum)
		},
		budget: 0, // TCP: and np*log2(np) parked receives (recursive doubling)
	},
}

func TestAllocBudgets(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation budgets: the race detector allocates on every synchronisation; run without -race")
	}
	for _, p := range allocPaths {
		for _, ac := range allocCases {
			for _, np := range ac.nps {
				t.Run(fmt.Sprintf("%s/np%d/%s", p.name, np, ac.name), func(t *testing.T) {
					m := measureAllocs(t, p.cfg, np, ac.fn)
					msg := fmt.Sprintf("%s at %d ranks over %s: %d allocations in %d iterations of all ranks (AllocsPerRun: %v per iteration), %d of them for parked waits and early messages; budget %d per iteration besides those",
						ac.name, np, p.name, m.allocs, allocRuns, m.perRun, m.timing, ac.budget)
					// One-offs are not the call's: a peer's allocation on
					// the far side of an iteration's edge, a receive
					// goroutine's first nap timer (shmring).
					if m.allocs-m.timing > int64(ac.budget)*allocRuns+allocOneOffs {
						t.Errorf("%s (the fewest of %d measurements of %d iterations)", msg, allocAttempts, allocRuns)
					} else {
						t.Log(msg)
					}
				})
			}
		}
	}
}

// allocCount is one measurement of allocRuns iterations of all ranks:
// allocations, how many of them were the timing's (TimingAllocs), and
// AllocsPerRun's figure (per iteration, rounded down).
type allocCount struct {
	allocs, timing int64
	perRun         float64
}

// measureAllocs runs fn on np goroutine ranks of cfg: allocAttempts times
// allocRuns+1 iterations in lock step, rank 0's under testing.AllocsPerRun
// (which runs one first to warm up, and the others with GOMAXPROCS=1). It
// returns the measurement with the fewest allocations besides the
// timing's. AllocsPerRun's figure is rounded down to whole allocations
// per iteration, and the timing's are not whole, so the allocations are
// also read around the same iterations, as AllocsPerRun reads them.
func measureAllocs(t *testing.T, cfg runtime.Config, np int, fn func(c *runtime.Comm, send, recv []float64) error) allocCount {
	t.Helper()
	var best allocCount
	first := true
	rc := ranktest.Config{Runtime: cfg}
	rc.Run(t, np, func(t testing.TB, c *runtime.Comm) {
		send, recv := []float64{float64(c.Rank() + 1)}, []float64{0}
		one := func() {
			if err := fn(c, send, recv); err != nil {
				t.Fatal(err)
			}
		}
		// Warm up: the node segment, pooled requests, connections.
		for range 20 {
			one()
		}
		var ms goruntime.MemStats
		for range allocAttempts {
			if err := c.Barrier(); err != nil {
				t.Fatal(err)
			}
			if c.Rank() != 0 {
				for range allocRuns + 1 {
					one()
				}
				continue
			}
			calls := 0
			var mallocs uint64
			var timing int64
			perRun := testing.AllocsPerRun(allocRuns, func() {
				if calls++; calls == 2 { // AllocsPerRun has just read its start
					goruntime.ReadMemStats(&ms)
					mallocs, timing = ms.Mallocs, runtime.TimingAllocs()
				}
				one()
			})
			goruntime.ReadMemStats(&ms)
			m := allocCount{
				allocs: int64(ms.Mallocs - mallocs),
				timing: runtime.TimingAllocs() - timing,
				perRun: perRun,
			}
			if first || m.allocs-m.timing < best.allocs-best.timing {
				best, first = m, false
			}
		}
	})
	return best
}

// Package ranktest runs MPI-style code with N ranks inside go test, the way
// net/http/httptest runs servers.
//
// Run starts N ranks as goroutines of the test process, each with its own
// world communicator over an in-memory transport: fast, and visible to the
// race detector. Spawn starts N ranks as real processes by re-executing the
// test binary under the gorun launcher machinery, for code that needs real
// sockets or separate address spaces; it needs Main in the package's
// TestMain.
//
//	func TestSum(t *testing.T) {
//		ranktest.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
//			got := []int{0}
//			if err := runtime.Allreduce(c, []int{c.Rank()}, got, runtime.Sum); err != nil {
//				t.Fatal(err)
//			}
//			if got[0] != 6 {
//				t.Errorf("sum = %d, want 6", got[0])
//			}
//		})
//	}
//
// A rank that calls t.Fatal (or FailNow) aborts the world, so the other
// ranks' pending calls return runtime.ErrAborted instead of hanging, and
// only that rank's goroutine exits. A watchdog aborts the world and logs
// every goroutine's stack if the ranks do not finish in time.
package ranktest

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/runtime"
)

// DefaultTimeout is the watchdog of Run when Config.Timeout is zero.
const DefaultTimeout = 60 * time.Second

// Config configures Run. The zero value is the default.
type Config struct {
	// Timeout is the watchdog: when the ranks have not all returned by
	// then, the world is aborted, every goroutine's stack is logged and
	// the test fails. Zero means DefaultTimeout.
	Timeout time.Duration
	// Runtime configures the ranks' worlds.
	Runtime runtime.Config
}

// Run runs fn as n ranks of one world, each on its own goroutine, and
// returns when all have returned and closed their worlds. It is
// Config{}.Run.
func Run(t testing.TB, n int, fn func(t testing.TB, c *runtime.Comm)) {
	t.Helper()
	var cfg Config
	cfg.Run(t, n, fn)
}

// Run runs fn as n ranks with this configuration.
func (cfg *Config) Run(t testing.TB, n int, fn func(t testing.TB, c *runtime.Comm)) {
	t.Helper()
	comms, err := cfg.Runtime.InitLocal(n)
	if err != nil {
		t.Fatalf("ranktest: %v", err)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var wg sync.WaitGroup
	for i, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt := &rankTB{TB: t, rank: i, comm: c}
			completed := false
			defer func() {
				if !completed && !rt.failed() {
					// fn panicked or called runtime.Goexit: abort so that
					// the other ranks do not wait for this one.
					c.Abort(fmt.Errorf("rank %d did not return normally", i))
				}
				if err := c.Close(); err != nil && !rt.failed() && !errors.Is(err, runtime.ErrAborted) {
					rt.Errorf("Close: %v", err)
				}
			}()
			fn(rt, c)
			completed = true
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(timeout):
	}
	buf := make([]byte, 1<<20)
	buf = buf[:goruntime.Stack(buf, true)]
	t.Errorf("ranktest: %d ranks did not finish within %v; aborting the world. Goroutines:\n%s", n, timeout, buf)
	comms[0].Abort(fmt.Errorf("ranktest watchdog: no finish within %v", timeout))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("ranktest: ranks still running 10s after the abort; giving up (goroutines leak)")
	}
}

// rankTB is the testing.TB a rank sees: failures are reported on the test
// with the rank's number, and FailNow aborts the world before it ends the
// rank's goroutine (FailNow of the real test may only be called from the
// test's own goroutine).
type rankTB struct {
	testing.TB
	rank int
	comm *runtime.Comm

	mu  sync.Mutex
	bad bool
}

func (r *rankTB) failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

func (r *rankTB) markFailed() {
	r.mu.Lock()
	r.bad = true
	r.mu.Unlock()
}

func (r *rankTB) Error(args ...any) {
	r.TB.Helper()
	r.markFailed()
	r.TB.Errorf("rank %d: %s", r.rank, fmt.Sprint(args...))
}

func (r *rankTB) Errorf(format string, args ...any) {
	r.TB.Helper()
	r.markFailed()
	r.TB.Errorf("rank %d: %s", r.rank, fmt.Sprintf(format, args...))
}

func (r *rankTB) Fail() {
	r.markFailed()
	r.TB.Fail()
}

func (r *rankTB) Failed() bool { return r.failed() || r.TB.Failed() }

func (r *rankTB) FailNow() {
	r.markFailed()
	r.TB.Fail()
	r.comm.Abort(fmt.Errorf("rank %d failed its test", r.rank))
	goruntime.Goexit()
}

func (r *rankTB) Fatal(args ...any) {
	r.TB.Helper()
	r.Error(args...)
	r.FailNow()
}

func (r *rankTB) Fatalf(format string, args ...any) {
	r.TB.Helper()
	r.Errorf(format, args...)
	r.FailNow()
}

func (r *rankTB) Log(args ...any) {
	r.TB.Helper()
	r.TB.Logf("rank %d: %s", r.rank, fmt.Sprint(args...))
}

func (r *rankTB) Logf(format string, args ...any) {
	r.TB.Helper()
	r.TB.Logf("rank %d: %s", r.rank, fmt.Sprintf(format, args...))
}

// Skipping one rank would leave the others waiting: it is a failure.
func (r *rankTB) SkipNow() {
	r.Fatalf("ranktest: a rank cannot skip; skip before ranktest.Run")
}

func (r *rankTB) Skip(args ...any)                 { r.SkipNow() }
func (r *rankTB) Skipf(format string, args ...any) { r.SkipNow() }

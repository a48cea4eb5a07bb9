// Package transporttest is the conformance suite every transport must pass:
// ordering, large payloads, payload reuse, concurrent senders, traffic in
// both directions, the close and goodbye rules, peer death and handler
// failure, all as package transport specifies them.
//
// A transport's test calls Run with a MakePair that builds two connected
// endpoints. Every wait in the suite has a timeout that fails the test, so
// a broken transport fails instead of hanging the run.
package transporttest

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// MakePair builds two connected endpoints for ranks 0 and 1: frames sent on
// e0 arrive at h1 with from=0, frames sent on e1 arrive at h0 with from=1.
// kill, if non-nil, simulates the abrupt death of rank 1 (its connection cut
// without a goodbye), after which h0 must see PeerLost and Sends on e0 must
// fail. MakePair registers with t.Cleanup whatever it must release; the
// suite closes e0 and e1 itself.
type MakePair func(t *testing.T, h0, h1 transport.Handler) (e0, e1 transport.Endpoint, kill func())

// Timeout bounds every wait in the suite. It is generous because the race
// detector on a small, busy machine is slow; a correct transport finishes
// each wait in milliseconds.
const Timeout = 60 * time.Second

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, mk MakePair) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, mk) })
	}
}

var cases = []struct {
	name string
	run  func(*testing.T, MakePair)
}{
	{"Headers", testHeaders},
	{"Order", testOrder},
	{"Large", testLarge},
	{"PayloadReuse", testPayloadReuse},
	{"ConcurrentSenders", testConcurrentSenders},
	{"BothDirections", testBothDirections},
	{"SendFromHandler", testSendFromHandler},
	{"BodyMisuse", testBodyMisuse},
	{"CloseUnblocksSend", testCloseUnblocksSend},
	{"ConcurrentClose", testConcurrentClose},
	{"Bye", testBye},
	{"PeerDeath", testPeerDeath},
	{"HandlerError", testHandlerError},
}

// handler is a transport.Handler built from a function; it records PeerLost.
type handler struct {
	frame func(from int, h wire.Header, b transport.Body) error

	mu        sync.Mutex
	lost      []error
	lostFrom  []int
	lostc     chan struct{} // closed at the first PeerLost
	lostOnce  sync.Once
	afterLost bool // a frame arrived after PeerLost
}

func newHandler() *handler { return &handler{lostc: make(chan struct{})} }

func (h *handler) HandleFrame(from int, hd wire.Header, b transport.Body) error {
	h.mu.Lock()
	if len(h.lost) > 0 {
		h.afterLost = true
	}
	f := h.frame
	h.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(from, hd, b)
}

func (h *handler) PeerLost(from int, err error) {
	h.mu.Lock()
	h.lost = append(h.lost, err)
	h.lostFrom = append(h.lostFrom, from)
	h.mu.Unlock()
	h.lostOnce.Do(func() { close(h.lostc) })
}

func (h *handler) lostState() (errs []error, from []int, afterLost bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.lost...), append([]int(nil), h.lostFrom...), h.afterLost
}

// rig is one test's pair of endpoints with their handlers.
type rig struct {
	t        *testing.T
	e0, e1   transport.Endpoint
	h0, h1   *handler
	kill     func()
	failed   chan struct{} // closed by the first errorf
	failOnce sync.Once

	mu    sync.Mutex
	ended bool // cleanup is over: late reports from stray goroutines are dropped
}

// newRig prepares the handlers; set their frame functions, then call start.
func newRig(t *testing.T) *rig {
	return &rig{t: t, h0: newHandler(), h1: newHandler(), failed: make(chan struct{})}
}

// start builds the pair and arranges for it to be closed at the end of the
// test, whether or not the test closed it already.
func (r *rig) start(mk MakePair) {
	r.t.Helper()
	r.startWith(func() (transport.Endpoint, transport.Endpoint, func()) { return mk(r.t, r.h0, r.h1) })
}

// startWith is start for any way of building the pair.
func (r *rig) startWith(mk func() (e0, e1 transport.Endpoint, kill func())) {
	r.t.Helper()
	e0, e1, kill := mk()
	r.mu.Lock()
	r.e0, r.e1, r.kill = e0, e1, kill
	r.mu.Unlock()
	if r.e0 == nil || r.e1 == nil {
		r.t.Fatal("MakePair returned a nil endpoint")
	}
	r.t.Cleanup(func() {
		r.closeBoth()
		r.mu.Lock()
		r.ended = true
		r.mu.Unlock()
	})
}

// endpoint returns e0 or e1 for use in a handler, which may run before
// start has returned (frames cross the socket, which the race detector does
// not see as synchronization).
func (r *rig) endpoint(rank int) transport.Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rank == 0 {
		return r.e0
	}
	return r.e1
}

// errorf reports a failure from any goroutine (a handler, a sender) and
// makes the test's current wait give up at once.
func (r *rig) errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return
	}
	r.t.Errorf(format, args...)
	r.failOnce.Do(func() { close(r.failed) })
}

// wait waits for ch to be closed, failing the test after Timeout or as soon
// as another goroutine reported a failure.
func (r *rig) wait(ch <-chan struct{}, what string) {
	r.t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case <-ch:
	case <-r.failed:
		r.t.FailNow()
	case <-timer.C:
		r.t.Fatalf("timed out after %v waiting for %s", Timeout, what)
	}
}

// done returns a channel that is closed after f returns in its own goroutine.
func done(f func()) <-chan struct{} {
	c := make(chan struct{})
	go func() {
		defer close(c)
		f()
	}()
	return c
}

// do runs f in its own goroutine and waits for it like wait does, so a call
// that hangs fails the test instead of hanging it.
func (r *rig) do(what string, f func()) {
	r.t.Helper()
	r.wait(done(f), what)
}

// closeBoth closes both endpoints concurrently and waits for both.
func (r *rig) closeBoth() {
	r.t.Helper()
	c0 := done(func() { r.e0.Close() })
	c1 := done(func() { r.e1.Close() })
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	for _, c := range []<-chan struct{}{c0, c1} {
		select {
		case <-c:
		case <-timer.C:
			r.t.Errorf("timed out after %v closing the endpoints", Timeout)
			return
		}
	}
}

// send runs Send and fails the test on error.
func (r *rig) send(e transport.Endpoint, h wire.Header, p []byte) bool {
	if err := e.Send(h, p); err != nil {
		r.errorf("Send(%v tag %d, %d bytes): %v", h.Kind, h.Tag, len(p), err)
		return false
	}
	return true
}

// noPeerLost fails the test if either handler saw PeerLost.
func (r *rig) noPeerLost() {
	r.t.Helper()
	for i, h := range []*handler{r.h0, r.h1} {
		if errs, _, _ := h.lostState(); len(errs) > 0 {
			r.t.Errorf("rank %d's handler saw PeerLost: %v", i, errs)
		}
	}
}

// blockUntil blocks a handler until release is closed or the test ends, so
// a failed test never leaves a handler (and so a Close) hanging.
func blockUntil(t *testing.T, release <-chan struct{}) {
	select {
	case <-release:
	case <-t.Context().Done():
	}
}

// randomBytes returns n pseudo-random bytes, the same for the same seed.
func randomBytes(seed byte, n int) []byte {
	var s [32]byte
	s[0] = seed
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

package transporttest

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// counter returns a frame function that counts frames and reads every other
// payload, leaving the rest for the transport to skip. If dying, the peer
// may die mid-frame, so a failed read is expected and returned.
func counter(r *rig, n *atomic.Int64, dying bool) func(int, wire.Header, transport.Body) error {
	return func(from int, h wire.Header, b transport.Body) error {
		if n.Add(1)%2 == 0 {
			if _, err := b.Bytes(); err != nil {
				if dying {
					return err
				}
				r.errorf("frame from %d: %v", from, err)
			}
		}
		return nil
	}
}

// wantClosed checks that Send on a locally closed endpoint fails with
// transport.ErrClosed.
func (r *rig) wantClosed(rank int, e transport.Endpoint) {
	r.t.Helper()
	var err error
	r.do("Send after Close", func() { err = e.Send(wire.Header{Kind: wire.KindEager}, []byte("late")) })
	if !errors.Is(err, transport.ErrClosed) {
		r.t.Errorf("rank %d: Send after Close = %v, want an error wrapping transport.ErrClosed", rank, err)
	}
}

// testCloseUnblocksSend: a Send blocked because the peer does not read
// returns once its endpoint is closed, and Close itself returns. (Over a
// stream transport the aborted frame is cut short, so rank 1 may report
// rank 0 lost; rank 0, which closed, must not report anything.)
func testCloseUnblocksSend(t *testing.T, mk MakePair) {
	r := newRig(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	r.h1.frame = func(from int, h wire.Header, b transport.Body) error {
		once.Do(func() { close(entered) })
		blockUntil(t, release)
		return nil
	}
	r.start(mk)
	payload := make([]byte, 64<<20) // more than any socket buffer holds
	sent := done(func() { r.e0.Send(wire.Header{Kind: wire.KindData}, payload) })
	r.wait(entered, "rank 1's handler to get the frame")
	closed0 := done(func() { r.e0.Close() })
	r.wait(sent, "the blocked Send to return after Close")
	close(release)
	r.wait(closed0, "rank 0's Close")
	r.wait(done(func() { r.e1.Close() }), "rank 1's Close")
	r.wantClosed(0, r.e0)
	if errs, _, _ := r.h0.lostState(); len(errs) > 0 {
		t.Errorf("rank 0 closed its endpoint but its handler saw PeerLost: %v", errs)
	}
}

// testConcurrentClose: both sides stream, then close at the same moment.
// Every frame whose Send returned is delivered, both Closes return, and
// neither side reports the other lost.
func testConcurrentClose(t *testing.T, mk MakePair) {
	const frames = 300
	r := newRig(t)
	var n0, n1 atomic.Int64
	r.h0.frame, r.h1.frame = counter(r, &n0, false), counter(r, &n1, false)
	r.start(mk)
	src := randomBytes(5, 128<<10)
	stream := func(e transport.Endpoint, seed uint64) func() {
		return func() {
			rng := rand.New(rand.NewPCG(seed, 5))
			for i := range frames {
				if !r.send(e, wire.Header{Kind: wire.KindEager, Tag: int32(i)}, src[:rng.IntN(len(src))]) {
					return
				}
			}
		}
	}
	s0, s1 := done(stream(r.e0, 0)), done(stream(r.e1, 1))
	r.wait(s0, "rank 0's sender")
	r.wait(s1, "rank 1's sender")
	r.closeBoth()
	if a, b := n0.Load(), n1.Load(); a != frames || b != frames {
		t.Errorf("frames delivered before Close returned: rank 0 got %d, rank 1 got %d, want %d each", a, b, frames)
	}
	r.noPeerLost()
	r.wantClosed(0, r.e0)
	r.wantClosed(1, r.e1)
}

// testBye: one side closes while the other stays open. Its Close returns
// after its frames were delivered, without the peer closing; nobody
// reports a lost peer; closing twice is harmless.
func testBye(t *testing.T, mk MakePair) {
	const frames = 100
	r := newRig(t)
	var n1 atomic.Int64
	r.h1.frame = counter(r, &n1, false)
	r.start(mk)
	r.do("the sender", func() {
		for i := range frames {
			if !r.send(r.e0, wire.Header{Kind: wire.KindEager, Tag: int32(i)}, make([]byte, i*100)) {
				return
			}
		}
	})
	r.wait(done(func() { r.e0.Close() }), "rank 0's Close while rank 1 stays open")
	if n := n1.Load(); n != frames {
		t.Errorf("rank 1 got %d frames by the time rank 0's Close returned, want %d", n, frames)
	}
	r.wantClosed(0, r.e0)
	r.wait(done(func() { r.e0.Close() }), "a second Close")
	r.wait(done(func() { r.e1.Close() }), "rank 1's Close")
	r.noPeerLost()
}

// testPeerDeath: rank 1 dies abruptly while both sides are sending. Rank 0
// sees PeerLost exactly once, with an error wrapping transport.ErrPeerLost
// and no frame after it; its Sends then fail and none hangs.
func testPeerDeath(t *testing.T, mk MakePair) {
	r := newRig(t)
	var n0 atomic.Int64
	r.h0.frame = counter(r, &n0, true)
	r.start(mk)
	if r.kill == nil {
		t.Skip("MakePair has no kill")
	}
	stop := make(chan struct{})
	pump := func(e transport.Endpoint) func() {
		return func() {
			buf := make([]byte, 64<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if e.Send(wire.Header{Kind: wire.KindEager}, buf) != nil {
					return
				}
			}
		}
	}
	p0, p1 := done(pump(r.e0)), done(pump(r.e1))
	r.wait(done(r.kill), "kill")
	r.wait(r.h0.lostc, "PeerLost on rank 0")
	var err error
	r.do("Send to a lost peer", func() { err = r.e0.Send(wire.Header{Kind: wire.KindEager}, []byte("x")) })
	if !errors.Is(err, transport.ErrPeerLost) {
		t.Errorf("Send to a lost peer = %v, want an error wrapping transport.ErrPeerLost", err)
	}
	close(stop)
	r.wait(p0, "rank 0's sender to stop")
	r.wait(p1, "rank 1's sender to stop")
	r.closeBoth()
	errs, from, after := r.h0.lostState()
	if len(errs) != 1 {
		t.Fatalf("PeerLost called %d times, want once: %v", len(errs), errs)
	}
	if from[0] != 1 || !errors.Is(errs[0], transport.ErrPeerLost) {
		t.Errorf("PeerLost(%d, %v), want rank 1 and an error wrapping transport.ErrPeerLost", from[0], errs[0])
	}
	if after {
		t.Error("HandleFrame called after PeerLost")
	}
	t.Logf("PeerLost: %v", errs[0])
}

// testHandlerError: an error from HandleFrame breaks the connection: no
// more frames are handled, PeerLost reports that error once, and the
// sender's Sends start failing.
func testHandlerError(t *testing.T, mk MakePair) {
	errBoom := errors.New("boom")
	r := newRig(t)
	n := 0
	r.h1.frame = func(from int, h wire.Header, b transport.Body) error {
		if n++; n > 3 {
			r.errorf("frame %d handled after the handler failed", n)
		}
		if n == 3 {
			return errBoom
		}
		return nil
	}
	r.start(mk)
	sending := done(func() {
		for {
			select {
			case <-t.Context().Done():
				return
			default:
			}
			if r.e0.Send(wire.Header{Kind: wire.KindEager}, make([]byte, 1024)) != nil {
				return
			}
		}
	})
	r.wait(r.h1.lostc, "PeerLost after the handler error")
	r.wait(sending, "Sends to fail after the receiver broke the connection")
	r.closeBoth()
	errs, from, after := r.h1.lostState()
	if len(errs) != 1 || from[0] != 0 || !errors.Is(errs[0], errBoom) {
		t.Fatalf("PeerLost calls %v from %v, want one from rank 0 wrapping the handler's error", errs, from)
	}
	if after {
		t.Error("HandleFrame called after PeerLost")
	}
	t.Logf("PeerLost: %v", errs[0])
}

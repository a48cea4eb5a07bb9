package transporttest

import (
	"hash/crc32"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// MakePollPair is MakePair for a transport that is also a
// transport.Poller: p1 is the Poller of rank 1's side, the one that receives
// what e0 sends.
type MakePollPair func(t *testing.T, h0, h1 transport.Handler) (e0, e1 transport.Endpoint, p1 transport.Poller)

// RunPoller runs the transport.Poller part of the suite as subtests of t.
func RunPoller(t *testing.T, mk MakePollPair) {
	t.Run("PollOrder", func(t *testing.T) { testPollOrder(t, mk) })
	t.Run("PollThenIdle", func(t *testing.T) { testPollThenIdle(t, mk) })
}

// Poll runs callers of p until stop is closed, the way the runtime's waits
// do: bursts of Poll between BeginPoll and EndPoll, some ending in a sleep,
// some in a pause. The returned channel is closed when they have stopped.
// Transports use it to run the whole suite with callers polling.
func Poll(p transport.Poller, callers int, seed uint64, stop <-chan struct{}) <-chan struct{} {
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(c)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				p.BeginPoll()
				for range rng.IntN(200) {
					p.Poll()
				}
				sleeping := rng.IntN(3) == 0
				p.EndPoll(sleeping)
				if sleeping {
					time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond)
				}
			}
		})
	}
	return done(wg.Wait)
}

// testPollOrder: frames of random sizes arrive in order and intact while
// three callers poll the receiving side in bursts and the receive goroutine
// takes over between them; the handler never runs twice at once.
func testPollOrder(t *testing.T, mk MakePollPair) {
	const frames = 20000
	const maxSize = 96 << 10
	src := randomBytes(3, 2*maxSize)
	rng := rand.New(rand.NewPCG(5, 6))
	sizes := make([]int, frames)
	for i := range sizes {
		switch {
		case i%3 == 0:
			sizes[i] = rng.IntN(64)
		case i%101 == 0:
			sizes[i] = maxSize
		default:
			sizes[i] = rng.IntN(maxSize + 1)
		}
	}

	r := newRig(t)
	all := make(chan struct{})
	var inside atomic.Int32
	next := 0
	r.h1.frame = func(from int, h wire.Header, b transport.Body) error {
		if inside.Add(1) != 1 {
			r.errorf("two goroutines handle frames of one peer at once")
		}
		defer inside.Add(-1)
		i := next
		next++
		if i >= frames || h.Tag != int32(i) || b.Len() != sizes[i] {
			r.errorf("frame %d: header %+v body %d, want tag %d", i, h, b.Len(), i)
			return nil
		}
		got := make([]byte, b.Len())
		if err := b.ReadInto(got); err != nil {
			r.errorf("frame %d: %v", i, err)
		} else if crc32.ChecksumIEEE(got) != uint32(h.Arg1) {
			r.errorf("frame %d: payload of %d bytes corrupted", i, len(got))
		}
		if i == frames-1 {
			close(all)
		}
		return nil
	}
	p1 := r.startPolled(mk)
	stop := make(chan struct{})
	polled := Poll(p1, 3, 7, stop)
	sent := done(func() {
		for i, n := range sizes {
			off := (i * 31) % maxSize
			pl := src[off : off+n]
			h := wire.Header{Kind: wire.KindEager, Tag: int32(i), Arg1: uint64(crc32.ChecksumIEEE(pl))}
			if !r.send(r.e0, h, pl) {
				return
			}
		}
	})
	r.wait(sent, "the sender")
	r.wait(all, "all frames")
	close(stop)
	r.wait(polled, "the pollers")
}

// testPollThenIdle: after the last caller stopped polling without
// sleeping, frames still arrive, handled by the receive goroutine.
func testPollThenIdle(t *testing.T, mk MakePollPair) {
	r := newRig(t)
	got := make(chan struct{}, 2)
	r.h1.frame = func(int, wire.Header, transport.Body) error {
		got <- struct{}{}
		return nil
	}
	p1 := r.startPolled(mk)
	p1.BeginPoll()
	if r.send(r.e0, wire.Header{Kind: wire.KindEager}, []byte("polled")) {
		deadline := time.Now().Add(Timeout)
		for len(got) == 0 && time.Now().Before(deadline) {
			p1.Poll()
		}
	}
	p1.EndPoll(false)
	r.wait(drained(got, 1), "the polled frame")
	if r.send(r.e0, wire.Header{Kind: wire.KindEager}, []byte("idle")) {
		r.wait(drained(got, 1), "the frame sent after polling stopped")
	}
}

// startPolled is start for a MakePollPair; it returns rank 1's Poller.
func (r *rig) startPolled(mk MakePollPair) transport.Poller {
	r.t.Helper()
	var p1 transport.Poller
	r.startWith(func() (transport.Endpoint, transport.Endpoint, func()) {
		e0, e1, p := mk(r.t, r.h0, r.h1)
		p1 = p
		return e0, e1, nil
	})
	return p1
}

// drained returns a channel closed once n values were taken from c.
func drained(c <-chan struct{}, n int) <-chan struct{} {
	return done(func() {
		for range n {
			<-c
		}
	})
}

package transporttest

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// Connections on first use (transport.Lazy): the cases a transport whose
// Connect returns at once must pass.

// A World is n ranks of one transport after Connect, no channel set up.
type World struct {
	Eps   [][]transport.Endpoint // Eps[i][j]: rank i's endpoint to rank j; nil rows for stand-ins
	Addrs []string               // every rank's listener address
	Close func(rank int)         // the transport's Close for rank (abrupt)
}

// MakeWorld listens n ranks (n = len(hs)) and runs Connect on each with
// handler hs[i], except for the ranks in stand: those are not started, and
// their address in the world is stand[rank] (a listener of the suite's).
// It registers with t.Cleanup the closing of every transport.
type MakeWorld func(t *testing.T, hs []transport.Handler, stand map[int]string) World

// RunLazy runs the lazy-connection cases as subtests of t. network is what
// the transport's addresses are ("tcp" or "unix"), for the suite's own
// listeners and strangers.
func RunLazy(t *testing.T, network string, mk MakeWorld) {
	t.Run("SimultaneousConnect", func(t *testing.T) { testSimultaneous(t, mk) })
	t.Run("SendToGonePeer", func(t *testing.T) { testGonePeer(t, mk) })
	t.Run("CloseDuringConnect", func(t *testing.T) { testCloseDuringConnect(t, network, mk) })
	t.Run("StrangerAfterConnect", func(t *testing.T) { testStrangerAfterConnect(t, network, mk) })
}

// seqHandler checks that the frames from each peer arrive numbered 0, 1,
// 2, ... (Arg0) and carry their sender and number in the payload.
type seqHandler struct {
	*handler
	r    *rig
	self int
	mu   sync.Mutex
	next []uint64
	got  sync.WaitGroup
	want uint64
}

func newSeqHandler(r *rig, self, n int, want uint64) *seqHandler {
	h := &seqHandler{handler: newHandler(), r: r, self: self, next: make([]uint64, n), want: want}
	h.got.Add(n - 1)
	h.frame = func(from int, hd wire.Header, b transport.Body) error {
		p, err := b.Bytes()
		if err != nil {
			r.errorf("rank %d from %d: %v", self, from, err)
			return err
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if hd.Arg0 != h.next[from] || string(p) != fmt.Sprintf("%d->%d #%d", from, self, hd.Arg0) {
			r.errorf("rank %d from %d: frame %d %q, want number %d", self, from, hd.Arg0, p, h.next[from])
			return errors.New("out of order")
		}
		h.next[from]++
		if h.next[from] == h.want {
			h.got.Done()
		}
		return nil
	}
	return h
}

// testSimultaneous: every rank sends to every other at the same instant,
// from one goroutine per peer started in a seeded random order, so both
// ranks of each pair dial at once; every frame arrives once and in order,
// and nobody sees PeerLost. Several seeds, a fresh world each.
func testSimultaneous(t *testing.T, mk MakeWorld) {
	const n, frames = 6, 20
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := newRig(t)
			hs := make([]transport.Handler, n)
			shs := make([]*seqHandler, n)
			for i := range n {
				shs[i] = newSeqHandler(r, i, n, frames)
				hs[i] = shs[i]
			}
			w := mk(t, hs, nil)
			rng := rand.New(rand.NewPCG(seed, 7))
			type pair struct{ from, to int }
			var pairs []pair
			for i := range n {
				for j := range n {
					if i != j {
						pairs = append(pairs, pair{i, j})
					}
				}
			}
			rng.Shuffle(len(pairs), func(a, b int) { pairs[a], pairs[b] = pairs[b], pairs[a] })
			gate := make(chan struct{})
			var senders sync.WaitGroup
			for k, p := range pairs {
				yields := rng.IntN(3)
				try := k%3 == 0 // some start with TrySend, which only starts the connect
				senders.Go(func() {
					<-gate
					for range yields {
						runtime.Gosched()
					}
					e := w.Eps[p.from][p.to]
					for f := range uint64(frames) {
						hd := wire.Header{Kind: wire.KindEager, Arg0: f}
						msg := []byte(fmt.Sprintf("%d->%d #%d", p.from, p.to, f))
						if try && f == 0 {
							if sent, err := e.(transport.TrySender).TrySend(hd, msg); err != nil {
								r.errorf("TrySend %d->%d: %v", p.from, p.to, err)
								return
							} else if sent {
								continue
							}
						}
						if !r.send(e, hd, msg) {
							return
						}
					}
				})
			}
			close(gate)
			r.wait(done(senders.Wait), "the senders")
			for i, h := range shs {
				r.wait(done(h.got.Wait), fmt.Sprintf("rank %d's frames", i))
			}
			closeAll(r, w)
			for i, h := range shs {
				if errs, _, _ := h.lostState(); len(errs) > 0 {
					t.Errorf("rank %d saw PeerLost: %v", i, errs)
				}
			}
		})
	}
}

// closeAll closes every endpoint of w at once and waits.
func closeAll(r *rig, w World) {
	var wg sync.WaitGroup
	for _, row := range w.Eps {
		for _, e := range row {
			if e != nil {
				wg.Go(func() { e.Close() })
			}
		}
	}
	r.wait(done(wg.Wait), "every Close")
}

// testGonePeer: a Send to a peer whose transport closed before any channel
// existed fails, naming the peer, and wraps transport.ErrPeerLost; it does
// not hang. The Sends of two goroutines at once both fail.
func testGonePeer(t *testing.T, mk MakeWorld) {
	r := newRig(t)
	w := mk(t, []transport.Handler{newHandler(), newHandler()}, nil)
	w.Close(1)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = w.Eps[0][1].Send(wire.Header{Kind: wire.KindEager}, []byte("x")) })
	}
	r.wait(done(wg.Wait), "Sends to a gone peer")
	for _, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "rank 1") || !errors.Is(err, transport.ErrPeerLost) {
			t.Errorf("Send to a gone peer = %v, want an error naming rank 1 and wrapping ErrPeerLost", err)
		}
	}
	t.Logf("Send: %v", errs[0])
	r.do("Close", func() { w.Eps[0][1].Close() })
}

// staller is a listener that accepts and then says nothing.
func staller(t *testing.T, network string) (addr string, conns <-chan net.Conn) {
	t.Helper()
	a := "127.0.0.1:0"
	if network == "unix" {
		a = fmt.Sprintf("@transporttest-%d-%d", time.Now().UnixNano(), rand.Int())
	}
	ln, err := net.Listen(network, a)
	if err != nil {
		t.Fatal(err)
	}
	c := make(chan net.Conn, 16)
	stopped := done(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c <- conn
		}
	})
	t.Cleanup(func() {
		ln.Close()
		<-stopped
		close(c)
		for conn := range c {
			conn.Close()
		}
	})
	return ln.Addr().String(), c
}

// testCloseDuringConnect: the transport's Close while a dial is in flight
// (to a peer that stalls the handshake) makes the waiting Sends fail with
// an error wrapping transport.ErrClosed, and leaves no goroutine behind.
func testCloseDuringConnect(t *testing.T, network string, mk MakeWorld) {
	r := newRig(t)
	before := runtime.NumGoroutine()
	addr, conns := staller(t, network)
	w := mk(t, []transport.Handler{newHandler(), nil}, map[int]string{1: addr})
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = w.Eps[0][1].Send(wire.Header{Kind: wire.KindEager}, []byte("x")) })
	}
	var conn net.Conn
	r.wait(done(func() { conn = <-conns }), "the dial")
	defer conn.Close()
	r.do("Close", func() { w.Close(0) })
	r.wait(done(wg.Wait), "Sends after Close")
	for _, err := range errs {
		if !errors.Is(err, transport.ErrClosed) {
			t.Errorf("Send = %v, want an error wrapping transport.ErrClosed", err)
		}
	}
	r.do("endpoint Close", func() { w.Eps[0][1].Close() })
	// The staller's accept goroutine is the suite's: allow for it.
	deadline := time.Now().Add(Timeout)
	for runtime.NumGoroutine() > before+1 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// testStrangerAfterConnect: connections that are no peer (junk, and one
// that says nothing and hangs up) reach a rank's listener after Connect;
// they are dropped, and both ranks still set up their channel from either
// side.
func testStrangerAfterConnect(t *testing.T, network string, mk MakeWorld) {
	r := newRig(t)
	var n0, n1 atomic64
	r.h0.frame = func(int, wire.Header, transport.Body) error { n0.add(); return nil }
	r.h1.frame = func(int, wire.Header, transport.Body) error { n1.add(); return nil }
	w := mk(t, []transport.Handler{r.h0, r.h1}, nil)
	for i, addr := range w.Addrs[:1] {
		junk, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer junk.Close()
		junk.Write([]byte(strings.Repeat("GET / HTTP/1.0\r\n", 10)))
		r.do(fmt.Sprintf("rank %d to hang up on the stranger", i), func() { io.Copy(io.Discard, junk) })
		quiet, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		quiet.Close()
	}
	if !r.send(w.Eps[1][0], wire.Header{Kind: wire.KindEager}, []byte("a")) ||
		!r.send(w.Eps[0][1], wire.Header{Kind: wire.KindEager}, []byte("b")) {
		return
	}
	r.wait(n0.reach(1), "rank 0's frame")
	r.wait(n1.reach(1), "rank 1's frame")
	closeAll(r, w)
	r.noPeerLost()
}

// atomic64 counts, and tells when a count is reached.
type atomic64 struct {
	mu sync.Mutex
	n  int
	c  []chan struct{}
	at []int
}

func (a *atomic64) add() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	for i, c := range a.c {
		if c != nil && a.n >= a.at[i] {
			close(c)
			a.c[i] = nil
		}
	}
}

func (a *atomic64) reach(n int) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := make(chan struct{})
	if a.n >= n {
		close(c)
		return c
	}
	a.c, a.at = append(a.c, c), append(a.at, n)
	return c
}

package tcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/transport/transporttest"
	"github.com/gorun-hpc/gorun/internal/wire"
)

var testSecret = []byte("test job secret")

const testTimeout = 30 * time.Second

func spinAlways() bool { return true }

// pair is a MakePair over real loopback sockets; spin selects the polling
// receive path.
func pair(spin func() bool) transporttest.MakePair {
	return func(t *testing.T, h0, h1 transport.Handler) (transport.Endpoint, transport.Endpoint, func()) {
		ts := listenWorld(t, 2, spin)
		eps := connectWorld(t, ts, []transport.Handler{h0, h1})
		// Rank 1 dials, so e0 is an accepted connection and e1 a dialed one.
		if err := eps[1][0].(transport.Opener).Open(); err != nil {
			t.Fatal(err)
		}
		return eps[0][1], eps[1][0], func() { ts[1].Close() }
	}
}

func TestConformance(t *testing.T) {
	t.Run("Park", func(t *testing.T) { transporttest.Run(t, pair(nil)) })
	t.Run("Spin", func(t *testing.T) { transporttest.Run(t, pair(spinAlways)) })
}

// TestConformancePolled runs the suite while callers poll both sides
// (transport.Poller) in bursts, as waiting runtime calls do.
func TestConformancePolled(t *testing.T) {
	transporttest.Run(t, func(t *testing.T, h0, h1 transport.Handler) (transport.Endpoint, transport.Endpoint, func()) {
		ts := listenWorld(t, 2, nil)
		eps := connectWorld(t, ts, []transport.Handler{h0, h1})
		stop := make(chan struct{})
		p0 := transporttest.Poll(ts[0], 2, 1, stop)
		p1 := transporttest.Poll(ts[1], 2, 2, stop)
		t.Cleanup(func() {
			close(stop)
			<-p0
			<-p1
		})
		if err := eps[1][0].(transport.Opener).Open(); err != nil {
			t.Fatal(err)
		}
		return eps[0][1], eps[1][0], func() { ts[1].Close() }
	})
}

func TestPoller(t *testing.T) {
	for _, spin := range []func() bool{nil, spinAlways} {
		t.Run(fmt.Sprint("spin=", spin != nil), func(t *testing.T) {
			transporttest.RunPoller(t, func(t *testing.T, h0, h1 transport.Handler) (transport.Endpoint, transport.Endpoint, transport.Poller) {
				ts := listenWorld(t, 2, spin)
				eps := connectWorld(t, ts, []transport.Handler{h0, h1})
				if err := eps[1][0].(transport.Opener).Open(); err != nil {
					t.Fatal(err)
				}
				return eps[0][1], eps[1][0], ts[1]
			})
		})
	}
}

// listenWorld opens n transports (ranks 0..n-1) and closes them at cleanup.
func listenWorld(t *testing.T, n int, spin func() bool) []*Transport {
	t.Helper()
	ts := make([]*Transport, n)
	for i := range ts {
		tr, err := Listen(Config{Secret: testSecret, Self: i, Spin: spin})
		if err != nil {
			t.Fatal(err)
		}
		ts[i] = tr
		t.Cleanup(func() { tr.Close() })
	}
	return ts
}

func addrsOf(ts []*Transport) []string {
	addrs := make([]string, len(ts))
	for i, tr := range ts {
		if tr != nil {
			addrs[i] = tr.Addr()
		}
	}
	return addrs
}

// connectWorld runs Connect on every transport at once.
func connectWorld(t *testing.T, ts []*Transport, hs []transport.Handler) [][]transport.Endpoint {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	addrs := addrsOf(ts)
	eps := make([][]transport.Endpoint, len(ts))
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, tr := range ts {
		if tr == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			eps[i], errs[i] = tr.Connect(ctx, addrs, hs[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return eps
}

// waitFor fails the test if ch is not closed within testTimeout.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func goDone(f func()) <-chan struct{} {
	c := make(chan struct{})
	go func() {
		defer close(c)
		f()
	}()
	return c
}

// recorder is a Handler that records frames and PeerLost calls.
type recorder struct {
	mu     sync.Mutex
	frames []string // "from:tag:payload"
	lost   []error
	got    chan struct{} // one token per frame
	lostc  chan struct{}
	once   sync.Once
}

func newRecorder() *recorder {
	return &recorder{got: make(chan struct{}, 1024), lostc: make(chan struct{})}
}

func (r *recorder) HandleFrame(from int, h wire.Header, b transport.Body) error {
	p, err := b.Bytes()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.frames = append(r.frames, fmt.Sprintf("%d:%d:%s", from, h.Tag, p))
	r.mu.Unlock()
	r.got <- struct{}{}
	return nil
}

func (r *recorder) PeerLost(from int, err error) {
	r.mu.Lock()
	r.lost = append(r.lost, fmt.Errorf("from %d: %w", from, err))
	r.mu.Unlock()
	r.once.Do(func() { close(r.lostc) })
}

func (r *recorder) lostErrs() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.lost...)
}

func (r *recorder) waitFrames(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(testTimeout):
			t.Fatalf("timed out waiting for frames")
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCloseAbortsBlockedSend: over TCP a Send blocked on a full socket
// fails with transport.ErrClosed once Close is called.
func TestCloseAbortsBlockedSend(t *testing.T) {
	ts := listenWorld(t, 2, nil)
	release := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	h1 := handlerFunc(func(int, wire.Header, transport.Body) error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	})
	eps := connectWorld(t, ts, []transport.Handler{newRecorder(), h1})
	var err error
	sent := goDone(func() { err = eps[0][1].Send(wire.Header{Kind: wire.KindData}, make([]byte, 64<<20)) })
	waitFor(t, entered, "the frame to arrive")
	closed := goDone(func() { eps[0][1].Close() })
	waitFor(t, sent, "the blocked Send")
	if !errors.Is(err, transport.ErrClosed) {
		t.Errorf("blocked Send returned %v, want an error wrapping transport.ErrClosed", err)
	}
	close(release)
	waitFor(t, closed, "Close")
	waitFor(t, goDone(func() { eps[1][0].Close() }), "rank 1's Close")
}

// TestSendAfterPeerBye: once the peer's Close has returned, Send fails with
// ErrPeerClosed instead of writing into a connection nobody reads.
func TestSendAfterPeerBye(t *testing.T) {
	ts := listenWorld(t, 2, nil)
	r0, r1 := newRecorder(), newRecorder()
	eps := connectWorld(t, ts, []transport.Handler{r0, r1})
	waitFor(t, goDone(func() { eps[0][1].Close() }), "rank 0's Close")
	if err := eps[1][0].Send(wire.Header{Kind: wire.KindEager}, nil); !errors.Is(err, ErrPeerClosed) {
		t.Errorf("Send after the peer closed = %v, want ErrPeerClosed", err)
	}
	waitFor(t, goDone(func() { eps[1][0].Close() }), "rank 1's Close")
	if errs := append(r0.lostErrs(), r1.lostErrs()...); len(errs) > 0 {
		t.Errorf("PeerLost: %v", errs)
	}
}

type handlerFunc func(from int, h wire.Header, b transport.Body) error

func (f handlerFunc) HandleFrame(from int, h wire.Header, b transport.Body) error {
	return f(from, h, b)
}
func (f handlerFunc) PeerLost(int, error) {}

// TestNoGoroutineLeak: after Close, every goroutine the transports started
// is gone, including those of a stalled handshake and of connections cut
// abruptly.
func TestNoGoroutineLeak(t *testing.T) {
	settle := func(want int) int {
		var n int
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if n = runtime.NumGoroutine(); n <= want {
				return n
			}
		}
		return n
	}
	base := settle(runtime.NumGoroutine())
	baseFDs := openFDs(t)
	for _, orderly := range []bool{true, false} {
		ts := make([]*Transport, 3)
		for i := range ts {
			tr, err := Listen(Config{Secret: testSecret, Self: i, Spin: spinAlways})
			if err != nil {
				t.Fatal(err)
			}
			ts[i] = tr
		}
		staller, err := net.Dial("tcp", ts[0].Addr())
		if err != nil {
			t.Fatal(err)
		}
		recs := []transport.Handler{newRecorder(), newRecorder(), newRecorder()}
		eps := connectWorld(t, ts, recs)
		for i := range ts {
			for _, e := range eps[i] {
				if e != nil {
					e.Send(wire.Header{Kind: wire.KindEager}, make([]byte, 100<<10))
				}
			}
		}
		if orderly {
			var wg sync.WaitGroup
			for i := range ts {
				for _, e := range eps[i] {
					if e != nil {
						wg.Add(1)
						go func() { defer wg.Done(); e.Close() }()
					}
				}
			}
			waitFor(t, goDone(wg.Wait), "Closes")
		}
		for _, tr := range ts {
			tr.Close()
		}
		staller.Close()
		if n := settle(base); n > base {
			buf := make([]byte, 1<<20)
			t.Fatalf("orderly=%v: %d goroutines after Close, %d before:\n%s", orderly, n, base, buf[:runtime.Stack(buf, true)])
		}
		// Sockets (the socks' duplicates) and the waker's epoll
		// descriptor are closed too.
		var n int
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if n = len(openFDs(t)); n <= len(baseFDs) {
				break
			}
		}
		if n > len(baseFDs) {
			t.Fatalf("orderly=%v: %d descriptors open after Close, %d before: %v, before %v", orderly, n, len(baseFDs), openFDs(t), baseFDs)
		}
	}
}

// openFDs lists this process's open descriptors by what they are.
func openFDs(t *testing.T) []string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			out = append(out, l)
		}
	}
	return out
}

// TestSpinCalled: with Spin set, an idle receive goroutine consults it, and
// frames still arrive.
func TestSpinCalled(t *testing.T) {
	var calls atomic.Int64
	spin := func() bool { calls.Add(1); return true }
	ts := make([]*Transport, 2)
	for i := range ts {
		tr, err := Listen(Config{Secret: testSecret, Self: i, Spin: spin})
		if err != nil {
			t.Fatal(err)
		}
		ts[i] = tr
		t.Cleanup(func() { tr.Close() })
	}
	r1 := newRecorder()
	eps := connectWorld(t, ts, []transport.Handler{newRecorder(), r1})
	if err := eps[0][1].(transport.Opener).Open(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(testTimeout); calls.Load() == 0; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("Spin never called")
		}
	}
	eps[0][1].Send(wire.Header{Kind: wire.KindEager, Tag: 3}, []byte("after spin"))
	r1.waitFrames(t, 1)
	if r1.frames[0] != "0:3:after spin" {
		t.Errorf("got %q", r1.frames[0])
	}
}

// lostCloser closes its endpoint from PeerLost, as a runtime tidying up
// after a dead peer would.
type lostCloser struct {
	e    chan transport.Endpoint
	done chan struct{}
}

func (h *lostCloser) HandleFrame(int, wire.Header, transport.Body) error { return nil }
func (h *lostCloser) PeerLost(from int, err error) {
	(<-h.e).Close()
	close(h.done)
}

// TestCloseFromPeerLost: closing the lost peer's endpoint from PeerLost
// does not deadlock on the receive goroutine that is running PeerLost.
func TestCloseFromPeerLost(t *testing.T) {
	ts := listenWorld(t, 2, nil)
	h0 := &lostCloser{e: make(chan transport.Endpoint, 1), done: make(chan struct{})}
	eps := connectWorld(t, ts, []transport.Handler{h0, newRecorder()})
	if err := eps[1][0].(transport.Opener).Open(); err != nil {
		t.Fatal(err)
	}
	h0.e <- eps[0][1]
	ts[1].Close()
	waitFor(t, h0.done, "Close called from PeerLost")
	if err := eps[0][1].Send(wire.Header{Kind: wire.KindEager}, nil); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Send after Close = %v", err)
	}
}

// world is a transporttest.MakeWorld over loopback TCP.
func world(t *testing.T, hs []transport.Handler, stand map[int]string) transporttest.World {
	n := len(hs)
	ts := make([]*Transport, n)
	w := transporttest.World{Eps: make([][]transport.Endpoint, n), Addrs: make([]string, n)}
	for i := range n {
		if a, ok := stand[i]; ok {
			w.Addrs[i] = a
			continue
		}
		tr, err := Listen(Config{Secret: testSecret, Self: i})
		if err != nil {
			t.Fatal(err)
		}
		ts[i] = tr
		w.Addrs[i] = tr.Addr()
		t.Cleanup(func() { tr.Close() })
	}
	for i, tr := range ts {
		if tr == nil {
			continue
		}
		eps, err := tr.Connect(context.Background(), w.Addrs, hs[i])
		if err != nil {
			t.Fatal(err)
		}
		w.Eps[i] = eps
	}
	w.Close = func(i int) { ts[i].Close() }
	return w
}

func TestLazy(t *testing.T) { transporttest.RunLazy(t, "tcp", world) }

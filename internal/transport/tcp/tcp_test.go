package tcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/auth"
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
		return eps[0][1], eps[1][0], func() { ts[1].Close() }
	}
}

func TestConformance(t *testing.T) {
	t.Run("Park", func(t *testing.T) { transporttest.Run(t, pair(nil)) })
	t.Run("Spin", func(t *testing.T) { transporttest.Run(t, pair(spinAlways)) })
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

// TestAllToAll connects 7 ranks, one of which (rank 4) is not in the job,
// and sends a frame on every pair in both directions.
func TestAllToAll(t *testing.T) {
	const n, absent = 7, 4
	ts := listenWorld(t, n, nil)
	ts[absent].Close()
	ts[absent] = nil
	hs := make([]transport.Handler, n)
	recs := make([]*recorder, n)
	for i := range hs {
		recs[i] = newRecorder()
		hs[i] = recs[i]
	}
	eps := connectWorld(t, ts, hs)
	for i := range n {
		if i == absent {
			continue
		}
		for j, e := range eps[i] {
			if (e != nil) != (j != i && j != absent) {
				t.Fatalf("rank %d: endpoint for rank %d is %v", i, j, e)
			}
			if e != nil {
				if err := e.Send(wire.Header{Kind: wire.KindEager, Tag: int32(i)}, []byte(fmt.Sprintf("%d->%d", i, j))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for i := range n {
		if i == absent {
			continue
		}
		recs[i].waitFrames(t, n-2)
		recs[i].mu.Lock()
		got := strings.Join(recs[i].frames, " ")
		recs[i].mu.Unlock()
		for j := range n {
			if j != i && j != absent && !strings.Contains(got, fmt.Sprintf("%d:%d:%d->%d", j, j, j, i)) {
				t.Errorf("rank %d did not get rank %d's frame: %s", i, j, got)
			}
		}
	}
	// Everybody closes everything at once: no PeerLost anywhere.
	var wg sync.WaitGroup
	for i := range n {
		for _, e := range eps[i] {
			if e != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					e.Close()
				}()
			}
		}
	}
	waitFor(t, goDone(wg.Wait), "all Closes")
	for i, r := range recs {
		if errs := r.lostErrs(); len(errs) > 0 {
			t.Errorf("rank %d saw PeerLost: %v", i, errs)
		}
	}
}

// TestStrangers: connections that fail the handshake (junk, a wrong secret,
// a stall, a rank that is not expected) are dropped and logged, and the
// real peer still connects.
func TestStrangers(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	t0, err := Listen(Config{Secret: testSecret, Self: 0, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer t0.Close()
	t1, err := Listen(Config{Secret: testSecret, Self: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer t1.Close()

	dial := func() net.Conn {
		c, err := net.Dial("tcp", t0.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Each stranger reads until rank 0 hangs up on it.
	var hungUp []<-chan struct{}
	drain := func(c net.Conn) {
		hungUp = append(hungUp, goDone(func() {
			var b [256]byte
			for {
				if _, err := c.Read(b[:]); err != nil {
					return
				}
			}
		}))
	}
	junk := dial()
	junk.Write(bytes.Repeat([]byte("GET / HTTP/1.0\r\n"), 10))
	drain(junk)
	wrong := dial()
	wrongDone := goDone(func() { auth.Dial(wrong, []byte("another job"), "tcp", 1, 0) })
	staller := dial()
	drain(staller)
	impostor := dial() // knows the secret, claims a rank that is not expected
	impostorDone := goDone(func() { auth.Dial(impostor, testSecret, "tcp", 5, 0) })
	strangers := []net.Conn{junk, wrong, staller, impostor}

	eps := connectWorld(t, []*Transport{t0, t1}, []transport.Handler{newRecorder(), newRecorder()})
	waitFor(t, wrongDone, "the wrong-secret stranger")
	waitFor(t, impostorDone, "the impostor")
	drain(wrong)
	drain(impostor)
	for i, c := range hungUp {
		waitFor(t, c, fmt.Sprintf("rank 0 to hang up on stranger %d", i))
	}
	out := logs.String()
	for _, c := range strangers {
		if !strings.Contains(out, c.LocalAddr().String()) {
			t.Errorf("no log entry for stranger %s; log:\n%s", c.LocalAddr(), out)
		}
	}
	if strings.Count(out, "level=WARN") < len(strangers) {
		t.Errorf("want %d warnings; log:\n%s", len(strangers), out)
	}
	t.Logf("log:\n%s", out)
	if err := eps[1][0].Send(wire.Header{Kind: wire.KindEager}, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	for _, e := range []transport.Endpoint{eps[0][1], eps[1][0]} {
		waitFor(t, goDone(func() { e.Close() }), "Close")
	}
}

// TestConnectMissingRank: a rank that never comes makes Connect fail with
// an error naming it, on the accepting and on the dialing side, and the
// listener is closed afterwards.
func TestConnectMissingRank(t *testing.T) {
	ts := listenWorld(t, 3, nil)
	addrs := addrsOf(ts)
	ts[2].Close() // rank 2 never connects; its port is closed
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = ts[i].Connect(ctx, addrs, newRecorder())
		}()
	}
	waitFor(t, goDone(wg.Wait), "Connect to give up")
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "ranks [2]") || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("rank %d: Connect = %v, want an error naming rank 2 and wrapping the deadline", i, err)
		}
		t.Logf("rank %d: %v", i, err)
		if c, err := net.Dial("tcp", ts[i].Addr()); err == nil {
			c.Close()
			t.Errorf("rank %d: listener still open after a failed Connect", i)
		}
	}

	// The dialing side: rank 1's only peer, rank 0, is not listening.
	t1 := listenWorld(t, 2, nil)[1]
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := t1.Connect(ctx, []string{addrs[2], t1.Addr()}, newRecorder())
	if err == nil || !strings.Contains(err.Error(), "ranks [0]") || !strings.Contains(err.Error(), addrs[2]) {
		t.Errorf("Connect to a dead rank 0 = %v, want an error naming rank 0 and its address", err)
	}
	t.Logf("dial side: %v", err)
}

// TestCloseDuringConnect: Close makes a waiting Connect return.
func TestCloseDuringConnect(t *testing.T) {
	ts := listenWorld(t, 2, nil)
	var err error
	connected := goDone(func() { _, err = ts[0].Connect(context.Background(), addrsOf(ts), newRecorder()) })
	ts[0].Close()
	waitFor(t, connected, "Connect to return after Close")
	if !errors.Is(err, ErrTransportClosed) {
		t.Errorf("Connect = %v, want ErrTransportClosed", err)
	}
	if _, err := ts[0].Connect(context.Background(), addrsOf(ts), newRecorder()); err == nil {
		t.Error("Connect after Close succeeded")
	}
}

func TestListenErrors(t *testing.T) {
	if _, err := Listen(Config{Self: 0}); err == nil {
		t.Error("Listen without a secret succeeded")
	}
	_, err := Listen(Config{Secret: testSecret, Listen: "256.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "256.0.0.1:0") {
		t.Errorf("Listen on a bad address = %v, want an error naming it", err)
	}
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

func (f handlerFunc) HandleFrame(from int, h wire.Header, b transport.Body) error { return f(from, h, b) }
func (f handlerFunc) PeerLost(int, error)                                      {}

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
	}
}

// rawPeer plays rank 1 by hand against a real rank 0: it passes the
// handshake, then writes whatever the test wants.
func rawPeer(t *testing.T, h transport.Handler) (ep transport.Endpoint, conn net.Conn) {
	t.Helper()
	t0 := listenWorld(t, 1, nil)[0]
	var eps []transport.Endpoint
	var err error
	connected := goDone(func() {
		eps, err = t0.Connect(context.Background(), []string{t0.Addr(), "rank 1"}, h)
	})
	conn, derr := net.Dial("tcp", t0.Addr())
	if derr != nil {
		t.Fatal(derr)
	}
	t.Cleanup(func() { conn.Close() })
	if derr := auth.Dial(conn, testSecret, "tcp", 1, 0); derr != nil {
		t.Fatal(derr)
	}
	waitFor(t, connected, "Connect")
	if err != nil {
		t.Fatal(err)
	}
	return eps[1], conn
}

func frame(h wire.Header, payload string) []byte {
	h.Len = uint32(len(payload))
	b := make([]byte, wire.HeaderSize, wire.HeaderSize+len(payload))
	h.Encode(b)
	return append(b, payload...)
}

// TestProtocolViolations: what a peer writes decides between an orderly
// end and PeerLost; a bad header breaks the connection with an error
// wrapping wire.ErrHeader.
func TestProtocolViolations(t *testing.T) {
	eager := frame(wire.Header{Kind: wire.KindEager, Tag: 1}, "hello")
	bye := frame(wire.Header{Kind: wire.KindBye}, "")
	badVersion := append([]byte(nil), eager...)
	badVersion[0] = 9
	for _, tc := range []struct {
		name   string
		stream []byte
		want   error // nil: orderly, no PeerLost
	}{
		{"bye then EOF", concat(eager, bye), nil},
		{"EOF without bye", eager, transport.ErrPeerLost},
		{"EOF mid-header", concat(eager, bye[:20]), transport.ErrPeerLost},
		{"EOF mid-payload", eager[:wire.HeaderSize+2], transport.ErrPeerLost},
		{"bad header", concat(eager, badVersion), wire.ErrHeader},
		{"bye with payload", frame(wire.Header{Kind: wire.KindBye}, "x"), transport.ErrPeerLost},
		{"frame after bye", concat(bye, eager), transport.ErrPeerLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			ep, conn := rawPeer(t, rec)
			conn.Write(tc.stream)
			conn.(*net.TCPConn).CloseWrite()
			if tc.want == nil {
				// Rank 0 answers the goodbye with its own, then EOF.
				got, err := readAll(conn)
				if err != nil || !bytes.Equal(got, bye) {
					t.Errorf("after our goodbye rank 0 sent %x, %v; want its goodbye", got, err)
				}
				waitFor(t, goDone(func() { ep.Close() }), "Close")
				if errs := rec.lostErrs(); len(errs) > 0 {
					t.Errorf("PeerLost after an orderly goodbye: %v", errs)
				}
				return
			}
			waitFor(t, rec.lostc, "PeerLost")
			errs := rec.lostErrs()
			if len(errs) != 1 || !errors.Is(errs[0], tc.want) || !errors.Is(errs[0], transport.ErrPeerLost) {
				t.Errorf("PeerLost %v, want one error wrapping %v and transport.ErrPeerLost", errs, tc.want)
			}
			if !strings.Contains(errs[0].Error(), "rank 0 <- rank 1") {
				t.Errorf("PeerLost error %q does not name the ranks", errs[0])
			}
			if err := ep.Send(wire.Header{Kind: wire.KindEager}, nil); !errors.Is(err, transport.ErrPeerLost) {
				t.Errorf("Send after PeerLost = %v", err)
			}
			waitFor(t, goDone(func() { ep.Close() }), "Close")
		})
	}
}

func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func readAll(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(testTimeout))
	var out []byte
	b := make([]byte, 4096)
	for {
		n, err := c.Read(b)
		out = append(out, b[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
	}
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

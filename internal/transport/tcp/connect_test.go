package tcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/auth"
	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

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

	eps := connectWorld(t, []*Transport{t0, t1}, []transport.Handler{newRecorder(), newRecorder()})
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
	stallerDone := goDone(func() {
		var b [256]byte
		for {
			if _, err := staller.Read(b[:]); err != nil {
				return
			}
		}
	})
	impostor := dial() // knows the secret, claims a rank that is not expected
	impostorDone := goDone(func() { auth.Dial(impostor, testSecret, "tcp", 5, 0) })
	strangers := []net.Conn{junk, wrong, impostor}

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
	// The staller holds its handshake until the deadline, or until Close.
	t0.Close()
	waitFor(t, stallerDone, "rank 0 to hang up on the staller")
}

// TestSendToMissingRank: a Send to a rank that is gone fails, naming it
// and its address, rather than waiting; the rest of the world works.
func TestSendToMissingRank(t *testing.T) {
	ts := listenWorld(t, 3, nil)
	addrs := addrsOf(ts)
	ts[2].Close() // rank 2 is gone; its port refuses
	recs := []*recorder{newRecorder(), newRecorder()}
	eps := make([][]transport.Endpoint, 2)
	for i := range 2 {
		var err error
		if eps[i], err = ts[i].Connect(context.Background(), addrs, recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	waitFor(t, goDone(func() { err = eps[0][2].Send(wire.Header{Kind: wire.KindEager}, []byte("x")) }), "Send to a gone rank")
	if err == nil || !strings.Contains(err.Error(), "rank 0 -> rank 2") || !strings.Contains(err.Error(), addrs[2]) ||
		!errors.Is(err, transport.ErrPeerLost) {
		t.Errorf("Send to a gone rank = %v, want an error naming rank 2 and its address, wrapping ErrPeerLost", err)
	}
	t.Logf("Send: %v", err)
	if err := eps[1][0].Send(wire.Header{Kind: wire.KindEager}, []byte("y")); err != nil {
		t.Fatal(err)
	}
	recs[0].waitFrames(t, 1)
	for _, e := range []transport.Endpoint{eps[0][1], eps[1][0]} {
		waitFor(t, goDone(func() { e.Close() }), "Close")
	}
}

// TestCloseDuringConnect: Close ends a dial in flight (to a peer that
// stalls the handshake): the waiting Send fails with ErrTransportClosed,
// and Connect after Close fails.
func TestCloseDuringConnect(t *testing.T) {
	ts := listenWorld(t, 1, nil)
	staller, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer staller.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := staller.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	eps, err := ts[0].Connect(context.Background(), []string{ts[0].Addr(), staller.Addr().String()}, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	sent := goDone(func() { serr = eps[1].Send(wire.Header{Kind: wire.KindEager}, nil) })
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(testTimeout):
		t.Fatal("rank 0 did not dial")
	}
	waitFor(t, goDone(func() { ts[0].Close() }), "Close")
	waitFor(t, sent, "Send to return after Close")
	if !errors.Is(serr, ErrTransportClosed) || !errors.Is(serr, transport.ErrClosed) {
		t.Errorf("Send = %v, want ErrTransportClosed", serr)
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

// TestInstallRefusedHangsUp: a connection that install does not publish (the
// pair has one already) is hung up and its descriptor closed, although its
// endpoint had already taken the socket out of conn (sock.go).
func TestInstallRefusedHangsUp(t *testing.T) {
	tr, err := Listen(Config{Secret: testSecret, Self: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	before := len(openFDs(t))
	c := &connector{t: tr, h: newRecorder()}
	if err := c.install(1, nc.(*net.TCPConn), func(transport.Live) bool { return false }); err == nil {
		t.Fatal("install of a connection it did not publish succeeded")
	}
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := peer.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the peer read %d bytes, %v: want EOF, the connection hung up", n, err)
	}
	// The socket's descriptor is gone; the transport's epoll (waker) is
	// new.
	if after := len(openFDs(t)); after > before {
		t.Fatalf("%d descriptors open after the refused install, %d before (the waker's epoll is one): the socket leaked", after, before)
	}
}

package tcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

package shmring

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/auth"
	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// TestNoRaceStress runs 4 processes all-to-all, each sending count frames
// of random sizes to each other, with sequence numbers and checksums
// checked by the receivers.
func TestNoRaceStress(t *testing.T) {
	const n = 4
	count := 250000 // 4*3*count frames in all: 3 million through the default ring
	if testing.Short() {
		count = 10000
	}
	for _, ring := range []int{DefaultRingSize, 4096} {
		t.Run("ring"+strconv.Itoa(ring), func(t *testing.T) {
			c := count
			if ring == 4096 {
				c /= 20
			}
			job := newJobID()
			cmds := make([]*errWait, n)
			start := time.Now()
			for r := range n {
				cmd := helperCmd(t, "stress", job, r, "SHMRING_N="+strconv.Itoa(n),
					"SHMRING_COUNT="+strconv.Itoa(c), "SHMRING_RING="+strconv.Itoa(ring))
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				cmds[r] = wait(cmd.Wait)
				t.Cleanup(func() { cmd.Process.Kill(); <-cmds[r].done })
			}
			for r, w := range cmds {
				select {
				case <-w.done:
					if w.err != nil {
						t.Errorf("rank %d: %v", r, w.err)
					}
				case <-time.After(120 * time.Second):
					t.Fatalf("rank %d did not finish", r)
				}
			}
			t.Logf("%d frames in %v", n*(n-1)*c, time.Since(start))
		})
	}
}

type errWait struct {
	done chan struct{}
	err  error
}

func wait(f func() error) *errWait {
	w := &errWait{done: make(chan struct{})}
	go func() { w.err = f(); close(w.done) }()
	return w
}

// TestKilledPeerLost: a peer killed with SIGKILL while this rank waits to
// receive is reported lost within a second.
func TestKilledPeerLost(t *testing.T) {
	lost := make(chan error, 1)
	got := make(chan struct{}, 1)
	h := &funcHandler{
		frame: func(int, wire.Header, transport.Body) error {
			select {
			case got <- struct{}{}:
			default:
			}
			return nil
		},
		lost: func(from int, err error) { lost <- err },
	}
	_, e, cmd := startVictim(t, false, h)
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no frame from the victim")
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	select {
	case err := <-lost:
		if !errors.Is(err, transport.ErrPeerLost) {
			t.Errorf("PeerLost(%v), want an error wrapping ErrPeerLost", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("PeerLost after %v, want under a second", d)
		}
		t.Logf("PeerLost after %v: %v", time.Since(start), err)
	case <-time.After(5 * time.Second):
		t.Fatal("no PeerLost 5 s after SIGKILL")
	}
	if err := e.Send(wire.Header{Kind: wire.KindEager}, []byte("x")); !errors.Is(err, transport.ErrPeerLost) {
		t.Errorf("Send to killed peer = %v, want ErrPeerLost", err)
	}
	e.Close()
}

// TestKilledReceiverUnblocksSend: a Send blocked on a full ring returns an
// error when the receiver is killed.
func TestKilledReceiverUnblocksSend(t *testing.T) {
	h := &funcHandler{frame: func(int, wire.Header, transport.Body) error { return nil }}
	_, e, cmd := startVictim(t, true, h)
	errc := make(chan error, 1)
	go func() {
		errc <- e.Send(wire.Header{Kind: wire.KindEager}, []byte("first")) // blocks the victim's handler
		p := make([]byte, 8<<20)                                           // much more than the ring
		errc <- e.Send(wire.Header{Kind: wire.KindEager}, p)
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		t.Fatalf("Send of 8 MiB to a blocked receiver returned %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	select {
	case err := <-errc:
		if !errors.Is(err, transport.ErrPeerLost) {
			t.Errorf("blocked Send = %v, want an error wrapping ErrPeerLost", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("blocked Send returned after %v, want under a second", d)
		}
		t.Logf("blocked Send returned after %v: %v", time.Since(start), err)
	case <-time.After(5 * time.Second):
		t.Fatal("blocked Send still blocked 5 s after SIGKILL")
	}
	e.Close()
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for a logger.
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

// TestStranger: a connection with the wrong secret after Connect is
// dropped and logged, and the real peer still sets up its channel.
func TestStranger(t *testing.T) {
	job := newJobID()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	t0, err := Listen(Config{JobID: job, Secret: testSecret, Self: 0, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer t0.Close()
	t1, err := Listen(Config{JobID: job, Secret: testSecret, Self: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer t1.Close()
	addrs := []string{t0.Addr(), t1.Addr()}
	got := make(chan struct{}, 2)
	h := &funcHandler{frame: func(int, wire.Header, transport.Body) error { got <- struct{}{}; return nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eps0, err := t0.Connect(ctx, addrs, h)
	if err != nil {
		t.Fatal(err)
	}
	eps1, err := t1.Connect(ctx, addrs, h)
	if err != nil {
		t.Fatal(err)
	}
	// The stranger dials after Connect and claims rank 1.
	conn, err := net.Dial("unix", t0.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := auth.Dial(conn, []byte("wrong secret, wrong secret!!"), "shm", 1, 0); err == nil {
		t.Error("the stranger passed the handshake")
	}
	if err := eps1[0].Send(wire.Header{Kind: wire.KindEager}, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := eps0[1].Send(wire.Header{Kind: wire.KindEager}, []byte("ho")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("frames did not arrive")
		}
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "dropped") && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if !strings.Contains(logs.String(), "dropped") {
		t.Errorf("stranger not logged; log: %q", logs.String())
	}
	t.Logf("log: %s", logs.String())
	closeBoth(eps0[1], eps1[0])
}

func closeBoth(a, b transport.Endpoint) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.Close() }()
	go func() { defer wg.Done(); b.Close() }()
	wg.Wait()
}

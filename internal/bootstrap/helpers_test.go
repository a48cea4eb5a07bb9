package bootstrap

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// wait is the generous deadline for everything in these tests: hitting it
// means a hang, never slowness.
const wait = 20 * time.Second

// job is a coordinator plus the environment of each of its ranks.
type job struct {
	t      *testing.T
	coord  *Coordinator
	secret []byte
	size   int
	log    *lockedBuffer
}

func newJob(t *testing.T, size int) *job {
	t.Helper()
	checkGoroutines(t)
	secret := make([]byte, 32)
	rand.Read(secret)
	log := &lockedBuffer{}
	c, err := NewCoordinator(CoordConfig{
		Size:   size,
		Secret: secret,
		Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &job{t: t, coord: c, secret: secret, size: size, log: log}
}

func (j *job) env(rank int) *Env {
	return &Env{
		JobID: "test", Rank: rank, Size: j.size, LocalRank: rank, LocalSize: j.size,
		Node: "n", Coord: j.coord.Addr(), Secret: j.secret,
	}
}

func (j *job) dial(rank int) *Client {
	j.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := Dial(ctx, j.env(rank))
	if err != nil {
		j.t.Fatalf("Dial rank %d: %v", rank, err)
	}
	j.t.Cleanup(func() { c.Close() })
	return c
}

// hookContributions makes the coordinator report each recorded
// contribution, so a test can act while ranks are inside Exchange.
func (j *job) hookContributions() <-chan int {
	ch := make(chan int, 64)
	j.coord.mu.Lock()
	j.coord.onContribute = func(rank int, _ uint64) { ch <- rank }
	j.coord.mu.Unlock()
	return ch
}

// nextEvent returns the next coordinator event, failing the test after the
// deadline.
func (j *job) nextEvent() Event {
	j.t.Helper()
	select {
	case ev, ok := <-j.coord.Events():
		if !ok {
			j.t.Fatal("Events closed while waiting for an event")
		}
		return ev
	case <-time.After(wait):
		j.t.Fatal("no coordinator event within the deadline")
	}
	panic("unreachable")
}

// noEvent fails if an event is already queued.
func (j *job) noEvent() {
	j.t.Helper()
	select {
	case ev := <-j.coord.Events():
		j.t.Fatalf("unexpected event %v", ev)
	default:
	}
}

// async runs f in a goroutine and returns a channel with its result.
func async[T any](f func() T) <-chan T {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	return ch
}

func await[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("%s did not finish within %v", what, wait)
	}
	panic("unreachable")
}

type exchangeResult struct {
	parts [][]byte
	err   error
}

func exchangeAsync(c *Client, data []byte) <-chan exchangeResult {
	return async(func() exchangeResult {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		p, err := c.Exchange(ctx, data)
		return exchangeResult{p, err}
	})
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// checkGoroutines fails the test if goroutines of this package's coordinator
// or client outlive it. Goroutines end asynchronously after Close returns in
// tests that close connections behind the client's back, so it polls.
func checkGoroutines(t *testing.T) {
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			leaked := leakedGoroutines()
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/bootstrap.(*Coordinator)") || strings.Contains(g, "internal/bootstrap.(*Client)") ||
			strings.Contains(g, "internal/bootstrap.(*Gatherer)") {
			leaked = append(leaked, g)
		}
	}
	return leaked
}

// rawConn opens a TCP connection to the coordinator that is closed when the
// test ends.
func (j *job) rawConn() net.Conn {
	j.t.Helper()
	conn, err := net.Dial("tcp", j.coord.Addr())
	if err != nil {
		j.t.Fatal(err)
	}
	j.t.Cleanup(func() { conn.Close() })
	return conn
}

func data(rank, round int) []byte {
	return fmt.Appendf(nil, "rank %d round %d %s", rank, round, strings.Repeat("x", rank*round*100))
}

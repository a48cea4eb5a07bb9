package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeConn struct{ rank int }

// newTestMesh returns a Mesh for rank self that "dials" lower ranks with
// dial and accepts nothing the test does not send itself.
func newTestMesh(t *testing.T, self int, addrs []string, dial func(p int) (*fakeConn, error)) (*Mesh[*fakeConn], *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var closed atomic.Int32
	m := &Mesh[*fakeConn]{
		Name: "fake", What: "link", Self: self, Addrs: addrs,
		Log:              slog.New(slog.DiscardHandler),
		Listener:         ln,
		HandshakeTimeout: time.Second,
		BackoffMin:       time.Millisecond,
		BackoffMax:       4 * time.Millisecond,
		DialOnce:         dial,
		Close:            func(*fakeConn) { closed.Add(1) },
		Closed:           func() bool { return false },
		ErrClosed:        errors.New("fake: transport closed"),
	}
	m.Accepted = func(conn net.Conn) {
		defer conn.Close()
		var b [1]byte
		if _, err := conn.Read(b[:]); err != nil {
			return
		}
		if m.Claim(int64(b[0])) {
			m.Deliver(int(b[0]), &fakeConn{int(b[0])})
		}
	}
	return m, &closed
}

func TestMeshConnects(t *testing.T) {
	addrs := []string{"a", "b", "", "d"}
	m, _ := newTestMesh(t, 1, addrs, func(p int) (*fakeConn, error) { return &fakeConn{p}, nil })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		for _, r := range []byte{3, 3, 2} { // duplicate and unwanted ranks are refused
			conn, err := net.Dial("tcp", m.Listener.Addr().String())
			if err != nil {
				return
			}
			conn.Write([]byte{r})
			defer conn.Close()
		}
	}()
	conns, err := m.Run(ctx, cancel)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		want := i == 0 || i == 3
		if (c != nil) != want || (c != nil && c.rank != i) {
			t.Errorf("conns[%d] = %v", i, c)
		}
	}
}

func TestMeshMissing(t *testing.T) {
	addrs := []string{"a", "b", "c", "d"}
	var dials atomic.Int32
	m, closed := newTestMesh(t, 2, addrs, func(p int) (*fakeConn, error) {
		if p == 1 {
			dials.Add(1)
			return nil, fmt.Errorf("refused")
		}
		return &fakeConn{p}, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := m.Run(ctx, cancel)
	if err == nil {
		t.Fatal("Run succeeded")
	}
	want := "fake: rank 2: connect: no link to ranks [1 3]: context deadline exceeded (rank 1 at b: refused; rank 3 at d: did not dial in)"
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error does not wrap the cause: %v", err)
	}
	if closed.Load() != 1 {
		t.Errorf("closed %d connections, want 1 (rank 0's)", closed.Load())
	}
	if dials.Load() < 2 {
		t.Errorf("dialed rank 1 %d times, want retries", dials.Load())
	}
	if !strings.Contains(err.Error(), "rank 1 at b") {
		t.Errorf("error does not name rank 1's address: %v", err)
	}
}

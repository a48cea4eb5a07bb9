package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gorun-hpc/gorun/internal/auth"
)

// Mesh is the transport-independent part of a stream transport's Connect:
// rank Self dials every wanted peer with a lower rank (retrying with
// backoff until ctx ends) and accepts from every wanted peer with a higher
// rank, and Run collects one established connection of type C per wanted
// peer. A peer is wanted when its address is not "" and it is not Self.
//
// The transport supplies the parts that differ: DialOnce dials and
// authenticates one lower rank; Accepted runs the handshake on one
// accepted connection, takes the rank the peer claims with Claim, and
// hands the result to Deliver. Mesh runs Accepted and DialOnce on its own
// goroutines and waits for them before Run returns.
type Mesh[C comparable] struct {
	Name  string   // transport name, prefixing errors and warnings: "tcp"
	What  string   // what a missing peer has no of, for Run's error: "connection"
	Self  int      // this rank
	Addrs []string // peer addresses indexed by rank; "" for no peer
	Log   *slog.Logger

	Listener         net.Listener // accepted from; Run closes it before returning
	HandshakeTimeout time.Duration
	BackoffMin       time.Duration // first wait between dials of one peer
	BackoffMax       time.Duration // the wait doubles up to this

	// Accepted runs the handshake on conn, in its own goroutine.
	Accepted func(conn net.Conn)
	// DialOnce dials lower rank p once and runs the handshake.
	DialOnce func(p int) (C, error)
	// Close releases an established connection that is not used.
	Close func(C)
	// Closed reports whether the transport was closed; then Run's error
	// wraps ErrClosed rather than ctx's cause.
	Closed    func() bool
	ErrClosed error

	ctx     context.Context // ends when Run stops waiting
	results chan meshResult[C]
	wg      sync.WaitGroup

	mu      sync.Mutex
	want    []bool  // immutable after start
	claimed []bool  // an accepted connection for this rank was taken
	lastErr []error // the last dial failure per rank, for the error message
}

type meshResult[C any] struct {
	rank int
	conn C
}

// Run connects to every wanted peer and returns the connections indexed by
// rank (the zero C where there is no peer). It closes the listener before
// returning, whatever the outcome. If ctx ends first, Run calls cancel,
// waits for its goroutines, closes every connection it got and returns an
// error that names the missing ranks and the last error seen for each.
func (m *Mesh[C]) Run(ctx context.Context, cancel context.CancelFunc) ([]C, error) {
	n := len(m.Addrs)
	m.ctx = ctx
	m.results = make(chan meshResult[C])
	m.want = make([]bool, n)
	m.claimed = make([]bool, n)
	m.lastErr = make([]error, n)
	expected, accepting := 0, false
	for i, a := range m.Addrs {
		if a != "" && i != m.Self {
			m.want[i] = true
			expected++
			accepting = accepting || i > m.Self
		}
	}
	if accepting {
		m.wg.Add(1)
		go m.acceptLoop()
	}
	for i := 0; i < m.Self; i++ {
		if m.want[i] {
			m.wg.Add(1)
			go m.dial(i)
		}
	}

	conns := make([]C, n)
	have := make([]bool, n)
	got := 0
collect:
	for got < expected {
		select {
		case r := <-m.results:
			conns[r.rank] = r.conn
			have[r.rank] = true
			got++
		case <-ctx.Done():
			break collect
		}
	}
	cause := context.Cause(ctx)
	cancel()
	m.Listener.Close() // no listener stays open needlessly, whatever the outcome
	m.wg.Wait()
	if got < expected {
		m.CloseAll(conns)
		return nil, m.missing(have, cause)
	}
	return conns, nil
}

// CloseAll closes every connection in conns that is not the zero C.
func (m *Mesh[C]) CloseAll(conns []C) {
	var zero C
	for _, c := range conns {
		if c != zero {
			m.Close(c)
		}
	}
}

// Context returns the context Run was called with: it ends when Run stops
// waiting.
func (m *Mesh[C]) Context() context.Context { return m.ctx }

// Claim reports whether an accepted peer may be rank p: a wanted higher
// rank with no accepted connection yet. If so, p is taken until Unclaim.
func (m *Mesh[C]) Claim(p int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	ok := p > int64(m.Self) && p < int64(len(m.Addrs)) && m.want[p] && !m.claimed[p]
	if ok {
		m.claimed[p] = true
	}
	return ok
}

// Unclaim undoes Claim(p), for a handshake that failed after it.
func (m *Mesh[C]) Unclaim(p int64) {
	m.mu.Lock()
	m.claimed[p] = false
	m.mu.Unlock()
}

// HandshakeDeadline is the earlier of the handshake timeout and ctx's end.
func (m *Mesh[C]) HandshakeDeadline() time.Time {
	d := time.Now().Add(m.HandshakeTimeout)
	if cd, ok := m.ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	return d
}

// Deliver hands the established connection of rank to Run, or closes it
// if Run has stopped waiting.
func (m *Mesh[C]) Deliver(rank int, conn C) {
	select {
	case m.results <- meshResult[C]{rank, conn}:
	case <-m.ctx.Done():
		m.Close(conn)
	}
}

// missing builds Run's error for the wanted ranks with no connection.
func (m *Mesh[C]) missing(have []bool, cause error) error {
	if cause == nil {
		cause = context.Canceled
	}
	if m.Closed() {
		cause = m.ErrClosed
	}
	var ranks []int
	var why []string
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, w := range m.want {
		if !w || have[i] {
			continue
		}
		ranks = append(ranks, i)
		switch {
		case m.lastErr[i] != nil:
			why = append(why, fmt.Sprintf("rank %d at %s: %v", i, m.Addrs[i], m.lastErr[i]))
		case i > m.Self:
			why = append(why, fmt.Sprintf("rank %d at %s: did not dial in", i, m.Addrs[i]))
		default:
			why = append(why, fmt.Sprintf("rank %d at %s: not reached", i, m.Addrs[i]))
		}
	}
	return fmt.Errorf("%s: rank %d: connect: no %s to ranks %v: %w (%s)",
		m.Name, m.Self, m.What, ranks, cause, strings.Join(why, "; "))
}

func (m *Mesh[C]) acceptLoop() {
	defer m.wg.Done()
	for {
		conn, err := m.Listener.Accept()
		if err != nil {
			if m.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry.
			m.Log.Warn(m.Name+": accept failed", "rank", m.Self, "err", err)
			if !m.sleep(10 * time.Millisecond) {
				return
			}
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.Accepted(conn)
		}()
	}
}

// dial connects to the lower rank p, retrying until ctx ends.
func (m *Mesh[C]) dial(p int) {
	defer m.wg.Done()
	backoff := m.BackoffMin
	for {
		conn, err := m.DialOnce(p)
		if err == nil {
			m.Deliver(p, conn)
			return
		}
		m.mu.Lock()
		m.lastErr[p] = err
		m.mu.Unlock()
		if m.ctx.Err() != nil {
			return
		}
		if errors.Is(err, auth.ErrDenied) {
			m.Log.Warn(m.Name+": handshake with peer failed; retrying", "rank", m.Self, "peer", p, "err", err)
		}
		if !m.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, m.BackoffMax)
	}
}

// sleep waits for d and reports true, or false if ctx ends first.
func (m *Mesh[C]) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	select {
	case <-timer.C:
		return true
	case <-m.ctx.Done():
		timer.Stop()
		return false
	}
}

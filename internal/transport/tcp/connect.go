package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gorun-hpc/gorun/internal/auth"
	"github.com/gorun-hpc/gorun/internal/transport"
)

// handshakeTimeout bounds one handshake, so a stranger that connects and
// stalls holds nothing but its own goroutine for a while. Connect also cuts
// every unfinished handshake off when it returns.
const handshakeTimeout = 10 * time.Second

const (
	dialBackoffMin = 2 * time.Millisecond
	dialBackoffMax = 500 * time.Millisecond
)

// ErrTransportClosed is wrapped by the error of a Connect that ran into
// Close.
var ErrTransportClosed = errors.New("tcp: transport closed")

// Connect establishes exactly one connection to each peer i with
// addrs[i] != "" and i != Self: it dials every such lower rank (retrying
// with backoff until ctx ends, since the peer may not be listening yet) and
// accepts every such higher rank. Each connection is authenticated with the
// job secret; an accepted connection that fails the handshake, or claims a
// rank that is not expected or already connected, is logged and dropped,
// and accepting goes on. Handshakes run concurrently with deadlines, so a
// stalling stranger cannot hold Connect up.
//
// When every expected peer is connected, Connect closes the listener,
// starts one receive goroutine per connection, which calls h as described
// in package transport, and returns the endpoints indexed by rank (nil
// where there is no connection). h is called concurrently for different
// peers and in order for each; see Config.Spin for how the receive
// goroutines wait. If ctx ends first, or Close is called,
// it closes everything it opened (the listener too) and returns an error
// that names the missing ranks and the last error seen for each.
//
// Connect may be called once per Transport.
func (t *Transport) Connect(ctx context.Context, addrs []string, h transport.Handler) ([]transport.Endpoint, error) {
	self := t.cfg.Self
	if h == nil {
		return nil, fmt.Errorf("tcp: rank %d: connect: nil handler", self)
	}
	if self >= len(addrs) {
		return nil, fmt.Errorf("tcp: rank %d: connect: rank outside a world of %d", self, len(addrs))
	}
	t.mu.Lock()
	switch {
	case t.closed:
		t.mu.Unlock()
		return nil, fmt.Errorf("tcp: rank %d: connect: %w", self, ErrTransportClosed)
	case t.connected:
		t.mu.Unlock()
		return nil, fmt.Errorf("tcp: rank %d: connect: called twice", self)
	}
	t.connected = true
	ctx, cancel := context.WithCancel(ctx)
	t.cancel = cancel
	t.wg.Add(1)
	t.mu.Unlock()
	defer t.wg.Done()
	defer cancel()

	c := &connector{
		t: t, ctx: ctx, self: self, addrs: addrs,
		want:    make([]bool, len(addrs)),
		claimed: make([]bool, len(addrs)),
		lastErr: make([]error, len(addrs)),
		results: make(chan peerConn),
	}
	expected, accepting := 0, false
	for i, a := range addrs {
		if a != "" && i != self {
			c.want[i] = true
			expected++
			accepting = accepting || i > self
		}
	}
	if accepting {
		c.wg.Add(1)
		go c.acceptLoop()
	}
	for i := 0; i < self; i++ {
		if c.want[i] {
			c.wg.Add(1)
			go c.dial(i)
		}
	}

	conns := make([]*net.TCPConn, len(addrs))
	n := 0
collect:
	for n < expected {
		select {
		case pc := <-c.results:
			conns[pc.rank] = pc.conn
			n++
		case <-ctx.Done():
			break collect
		}
	}
	cause := context.Cause(ctx)
	cancel()
	t.ln.Close() // no port stays open needlessly, whatever the outcome
	c.wg.Wait()
	if n < expected {
		closeAll(conns)
		return nil, c.missing(conns, cause)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		closeAll(conns)
		return nil, fmt.Errorf("tcp: rank %d: connect: %w", self, ErrTransportClosed)
	}
	eps := make([]transport.Endpoint, len(addrs))
	var started []*endpoint
	for i, conn := range conns {
		if conn == nil {
			continue
		}
		e, err := newEndpoint(t, i, conn, h)
		if err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("tcp: rank %d -> rank %d: connect: %w", self, i, err)
		}
		started = append(started, e)
		eps[i] = e
	}
	for _, e := range started {
		t.eps = append(t.eps, e)
		t.wg.Add(1)
		go e.receive()
	}
	return eps, nil
}

func closeAll(conns []*net.TCPConn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

type peerConn struct {
	rank int
	conn *net.TCPConn
}

// connector is the state of one Connect call.
type connector struct {
	t       *Transport
	ctx     context.Context // ends when Connect stops waiting
	self    int
	addrs   []string
	results chan peerConn // authenticated connections, one per expected rank
	wg      sync.WaitGroup

	mu      sync.Mutex
	want    []bool  // immutable after start
	claimed []bool  // an accepted connection for this rank was taken
	lastErr []error // the last dial failure per rank, for the error message
}

// missing builds Connect's error for the ranks with no connection.
func (c *connector) missing(conns []*net.TCPConn, cause error) error {
	if cause == nil {
		cause = context.Canceled
	}
	c.t.mu.Lock()
	if c.t.closed {
		cause = ErrTransportClosed
	}
	c.t.mu.Unlock()
	var ranks []int
	var why []string
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, w := range c.want {
		if !w || conns[i] != nil {
			continue
		}
		ranks = append(ranks, i)
		switch {
		case c.lastErr[i] != nil:
			why = append(why, fmt.Sprintf("rank %d at %s: %v", i, c.addrs[i], c.lastErr[i]))
		case i > c.self:
			why = append(why, fmt.Sprintf("rank %d at %s: did not dial in", i, c.addrs[i]))
		default:
			why = append(why, fmt.Sprintf("rank %d at %s: not reached", i, c.addrs[i]))
		}
	}
	return fmt.Errorf("tcp: rank %d: connect: no connection to ranks %v: %w (%s)",
		c.self, ranks, cause, strings.Join(why, "; "))
}

// handshakeDeadline is the earlier of the handshake timeout and ctx's end.
func (c *connector) handshakeDeadline() time.Time {
	d := time.Now().Add(handshakeTimeout)
	if cd, ok := c.ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	return d
}

// deliver hands an authenticated connection to Connect, or closes it if
// Connect has stopped waiting.
func (c *connector) deliver(rank int, conn *net.TCPConn) {
	select {
	case c.results <- peerConn{rank, conn}:
	case <-c.ctx.Done():
		conn.Close()
	}
}

func (c *connector) acceptLoop() {
	defer c.wg.Done()
	for {
		conn, err := c.t.ln.AcceptTCP()
		if err != nil {
			if c.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry.
			c.t.log.Warn("tcp: accept failed", "rank", c.self, "err", err)
			timer := time.NewTimer(10 * time.Millisecond)
			select {
			case <-timer.C:
			case <-c.ctx.Done():
				timer.Stop()
				return
			}
			continue
		}
		c.wg.Add(1)
		go c.accepted(conn)
	}
}

// accepted runs the handshake on one accepted connection.
func (c *connector) accepted(conn *net.TCPConn) {
	defer c.wg.Done()
	remote := conn.RemoteAddr().String()
	conn.SetDeadline(c.handshakeDeadline())
	stop := context.AfterFunc(c.ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	peer, err := auth.Accept(conn, c.t.cfg.Secret, "tcp", uint32(c.self))
	if !stop() {
		if err == nil {
			err = c.ctx.Err()
		}
		err = fmt.Errorf("connect ended during the handshake: %w", err)
	}
	if err != nil {
		conn.Close()
		c.t.log.Warn("tcp: dropped a connection that failed the handshake",
			"rank", c.self, "remote", remote, "err", err)
		return
	}
	p := int64(peer)
	c.mu.Lock()
	ok := p > int64(c.self) && p < int64(len(c.addrs)) && c.want[p] && !c.claimed[p]
	if ok {
		c.claimed[p] = true
	}
	c.mu.Unlock()
	if !ok {
		conn.Close()
		c.t.log.Warn("tcp: dropped a connection from an unexpected or already connected rank",
			"rank", c.self, "claimed", p, "remote", remote)
		return
	}
	conn.SetDeadline(time.Time{})
	c.deliver(int(p), conn)
}

// dial connects to the lower rank p, retrying until ctx ends.
func (c *connector) dial(p int) {
	defer c.wg.Done()
	backoff := dialBackoffMin
	for {
		conn, err := c.dialOnce(p)
		if err == nil {
			c.deliver(p, conn)
			return
		}
		c.mu.Lock()
		c.lastErr[p] = err
		c.mu.Unlock()
		if c.ctx.Err() != nil {
			return
		}
		if errors.Is(err, auth.ErrDenied) {
			c.t.log.Warn("tcp: handshake with peer failed; retrying", "rank", c.self, "peer", p, "err", err)
		}
		timer := time.NewTimer(backoff)
		select {
		case <-timer.C:
		case <-c.ctx.Done():
			timer.Stop()
			return
		}
		backoff = min(2*backoff, dialBackoffMax)
	}
}

func (c *connector) dialOnce(p int) (*net.TCPConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(c.ctx, "tcp", c.addrs[p])
	if err != nil {
		return nil, err
	}
	conn := nc.(*net.TCPConn)
	conn.SetDeadline(c.handshakeDeadline())
	stop := context.AfterFunc(c.ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	err = auth.Dial(conn, c.t.cfg.Secret, "tcp", uint32(c.self), uint32(p))
	if !stop() && err == nil {
		err = c.ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

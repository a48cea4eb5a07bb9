package shmring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gorun-hpc/gorun/internal/auth"
	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/shm"
)

// handshakeTimeout bounds one handshake (auth and segment exchange).
const handshakeTimeout = 10 * time.Second

const (
	dialBackoffMin = 2 * time.Millisecond
	dialBackoffMax = 200 * time.Millisecond
)

var aLongTimeAgo = time.Unix(1, 0)

// channel is one established pair: the liveness socket and both rings.
type channel struct {
	rank int
	conn *net.UnixConn
	in   *ring // we consume; our segment
	out  *ring // we produce; the peer's segment
}

func (c *channel) close() {
	c.conn.Close()
	c.in.close()
	c.out.close()
}

// Connect sets up one channel with every peer i where addrs[i] != "" and
// i != Self: it dials every such lower rank (retrying with backoff until ctx
// ends) and accepts every such higher rank. Each socket runs the auth
// handshake with purpose "shm" and must come from a process of our own uid
// (SO_PEERCRED); then each side creates its inbound ring segment (memfd)
// and passes the descriptor to the other. An accepted connection that fails
// any of this is logged and dropped, and accepting goes on.
//
// When every expected peer is connected, Connect closes the listener,
// starts the receive goroutines (one per peer, plus one per peer that
// watches the socket) and returns the endpoints indexed by rank (nil
// elsewhere). h is called concurrently for different peers and in order
// for each. If ctx ends first, or Close is called, Connect releases
// everything it opened and returns an error naming the missing ranks.
//
// Connect may be called once per Transport.
func (t *Transport) Connect(ctx context.Context, addrs []string, h transport.Handler) ([]transport.Endpoint, error) {
	self := t.cfg.Self
	if h == nil {
		return nil, fmt.Errorf("shmring: rank %d: connect: nil handler", self)
	}
	if self >= len(addrs) {
		return nil, fmt.Errorf("shmring: rank %d: connect: rank outside a world of %d", self, len(addrs))
	}
	t.mu.Lock()
	switch {
	case t.closed:
		t.mu.Unlock()
		return nil, fmt.Errorf("shmring: rank %d: connect: %w", self, ErrTransportClosed)
	case t.connected:
		t.mu.Unlock()
		return nil, fmt.Errorf("shmring: rank %d: connect: called twice", self)
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
		results: make(chan *channel),
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

	chans := make([]*channel, len(addrs))
	n := 0
collect:
	for n < expected {
		select {
		case ch := <-c.results:
			chans[ch.rank] = ch
			n++
		case <-ctx.Done():
			break collect
		}
	}
	cause := context.Cause(ctx)
	cancel()
	t.ln.Close()
	c.wg.Wait()
	if n < expected {
		closeAll(chans)
		return nil, c.missing(chans, cause)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		closeAll(chans)
		return nil, fmt.Errorf("shmring: rank %d: connect: %w", self, ErrTransportClosed)
	}
	eps := make([]transport.Endpoint, len(addrs))
	for i, ch := range chans {
		if ch == nil {
			continue
		}
		e := newEndpoint(t, ch, h)
		eps[i] = e
		t.eps = append(t.eps, e)
		t.wg.Add(2)
		go e.watch()
		go e.receive()
	}
	return eps, nil
}

func closeAll(chans []*channel) {
	for _, c := range chans {
		if c != nil {
			c.close()
		}
	}
}

type connector struct {
	t       *Transport
	ctx     context.Context
	self    int
	addrs   []string
	results chan *channel
	wg      sync.WaitGroup

	mu      sync.Mutex
	want    []bool
	claimed []bool
	lastErr []error
}

func (c *connector) missing(chans []*channel, cause error) error {
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
		if !w || chans[i] != nil {
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
	return fmt.Errorf("shmring: rank %d: connect: no channel to ranks %v: %w (%s)",
		c.self, ranks, cause, strings.Join(why, "; "))
}

func (c *connector) handshakeDeadline() time.Time {
	d := time.Now().Add(handshakeTimeout)
	if cd, ok := c.ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	return d
}

func (c *connector) deliver(ch *channel) {
	select {
	case c.results <- ch:
	case <-c.ctx.Done():
		ch.close()
	}
}

func (c *connector) acceptLoop() {
	defer c.wg.Done()
	for {
		conn, err := c.t.ln.AcceptUnix()
		if err != nil {
			if c.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			c.t.log.Warn("shmring: accept failed", "rank", c.self, "err", err)
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

// guard sets conn's handshake deadline and aborts it when ctx ends; the
// returned function undoes both and reports whether ctx ended first.
func (c *connector) guard(conn *net.UnixConn) func() bool {
	conn.SetDeadline(c.handshakeDeadline())
	stop := context.AfterFunc(c.ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	return func() bool {
		ok := stop()
		conn.SetDeadline(time.Time{})
		return ok
	}
}

func (c *connector) accepted(conn *net.UnixConn) {
	defer c.wg.Done()
	unguard := c.guard(conn)
	ch, err := c.acceptHandshake(conn)
	if !unguard() && err == nil {
		ch.close()
		ch, err = nil, fmt.Errorf("connect ended during the handshake: %w", c.ctx.Err())
	}
	if err != nil {
		conn.Close()
		c.t.log.Warn("shmring: dropped a connection", "rank", c.self, "err", err)
		return
	}
	c.deliver(ch)
}

func (c *connector) acceptHandshake(conn *net.UnixConn) (*channel, error) {
	if err := checkPeerUID(conn); err != nil {
		return nil, err
	}
	peer, err := auth.Accept(conn, c.t.cfg.Secret, "shm", uint32(c.self))
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	p := int64(peer)
	c.mu.Lock()
	ok := p > int64(c.self) && p < int64(len(c.addrs)) && c.want[p] && !c.claimed[p]
	if ok {
		c.claimed[p] = true
	}
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("unexpected or already connected rank %d", p)
	}
	ch, err := c.t.exchange(conn, int(p))
	if err != nil {
		c.mu.Lock()
		c.claimed[p] = false
		c.mu.Unlock()
		return nil, fmt.Errorf("rank %d: %w", p, err)
	}
	return ch, nil
}

func (c *connector) dial(p int) {
	defer c.wg.Done()
	backoff := dialBackoffMin
	for {
		ch, err := c.dialOnce(p)
		if err == nil {
			c.deliver(ch)
			return
		}
		c.mu.Lock()
		c.lastErr[p] = err
		c.mu.Unlock()
		if c.ctx.Err() != nil {
			return
		}
		if errors.Is(err, auth.ErrDenied) {
			c.t.log.Warn("shmring: handshake with peer failed; retrying", "rank", c.self, "peer", p, "err", err)
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

func (c *connector) dialOnce(p int) (*channel, error) {
	var d net.Dialer
	nc, err := d.DialContext(c.ctx, "unix", c.addrs[p])
	if err != nil {
		return nil, err
	}
	conn := nc.(*net.UnixConn)
	unguard := c.guard(conn)
	ch, err := c.dialHandshake(conn, p)
	if !unguard() && err == nil {
		ch.close()
		ch, err = nil, c.ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return ch, nil
}

func (c *connector) dialHandshake(conn *net.UnixConn, p int) (*channel, error) {
	if err := checkPeerUID(conn); err != nil {
		return nil, err
	}
	if err := auth.Dial(conn, c.t.cfg.Secret, "shm", uint32(c.self), uint32(p)); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return c.t.exchange(conn, p)
}

// exchange creates our inbound ring for peer, sends its descriptor and
// size, receives the peer's inbound ring (our outbound) and maps it. Both
// sides send first: the message fits the socket buffer, so neither blocks.
func (t *Transport) exchange(conn *net.UnixConn, peer int) (*channel, error) {
	size := t.cfg.RingSize
	seg, err := shm.Create(int64(dataOff+size), shm.Options{})
	if err != nil {
		return nil, fmt.Errorf("creating ring segment: %w", err)
	}
	in, err := newRing(seg, size)
	if err != nil {
		seg.Close()
		return nil, err
	}
	var meta [8]byte
	binary.LittleEndian.PutUint64(meta[:], uint64(size))
	err = shm.SendFD(conn, seg.FD(), meta[:])
	seg.CloseFD() // the peer holds its own descriptor now (or never will)
	if err != nil {
		in.close()
		return nil, fmt.Errorf("sending ring descriptor: %w", err)
	}
	fd, _, err := shm.RecvFD(conn, meta[:])
	if err != nil {
		in.close()
		return nil, fmt.Errorf("receiving ring descriptor: %w", err)
	}
	psize := binary.LittleEndian.Uint64(meta[:])
	if psize > 1<<30 || !validRingSize(int(psize)) {
		unix.Close(fd)
		in.close()
		return nil, fmt.Errorf("peer's ring size %d is invalid", psize)
	}
	pseg, err := shm.FromFD(fd, int64(dataOff+psize))
	if err != nil { // FromFD closed fd
		in.close()
		return nil, fmt.Errorf("mapping peer's ring: %w", err)
	}
	pseg.CloseFD()
	out, err := newRing(pseg, int(psize))
	if err != nil {
		pseg.Close()
		in.close()
		return nil, err
	}
	return &channel{rank: peer, conn: conn, in: in, out: out}, nil
}

// checkPeerUID refuses a socket whose other end runs under another uid.
func checkPeerUID(conn *net.UnixConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("peer pid %d runs as uid %d, not ours (%d)", cred.Pid, cred.Uid, os.Getuid())
	}
	return nil
}

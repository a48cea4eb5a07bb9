package shmring

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
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

// Connect returns at once with an endpoint for each peer i with
// addrs[i] != "" and i != Self (nil elsewhere), and no channel yet: the
// channel to a peer is set up the first time either side sends to the
// other (transport.Lazy): the first Send or TrySend dials it (retrying with
// backoff), concurrent Sends wait for it and then go out in order, and a
// channel the peer dials in is taken as the pair's one channel. When both
// dial at once, the lower rank's connection wins (docs/shmring.md). A peer
// that cannot be reached within Config.ConnectTimeout fails the Sends
// waiting for it with an error naming it and the last dial error.
//
// Each socket runs the auth handshake with purpose "shm" and must come
// from a process of our own uid (SO_PEERCRED); then each side creates its
// inbound ring segment (memfd) and passes the descriptor to the other. An
// accepted connection that fails any of this is logged and dropped, and
// accepting goes on until Close.
//
// Each channel gets a receive goroutine and one that watches its socket;
// h is called concurrently for different peers and in order for each. ctx
// is not kept.
//
// Connect may be called once per Transport.
func (t *Transport) Connect(ctx context.Context, addrs []string, h transport.Handler) ([]transport.Endpoint, error) {
	self := t.cfg.Self
	_, cancel, err := t.life.Begin(ctx, "shmring", self, addrs, h, ErrTransportClosed)
	if err != nil {
		return nil, err
	}
	defer t.life.WG.Done()
	defer cancel()

	c := &connector{t: t, h: h}
	c.l = &transport.Lazy[*channel]{
		Name: "shmring", Self: self, Addrs: addrs, Log: t.log,
		Listener:         t.ln,
		HandshakeTimeout: handshakeTimeout,
		BackoffMin:       dialBackoffMin,
		BackoffMax:       dialBackoffMax,
		ConnectTimeout:   t.cfg.ConnectTimeout,
		Accepted:         c.accepted,
		DialOnce:         c.dialOnce,
		Install:          c.install,
		ErrClosed:        ErrTransportClosed,
		ErrPeerClosed:    ErrPeerClosed,
	}
	if !t.setLazy(c.l) {
		return nil, fmt.Errorf("shmring: rank %d: connect: %w", self, ErrTransportClosed)
	}
	return c.l.Start(), nil
}

// connector is the shmring part of Connect's transport.Lazy.
type connector struct {
	t *Transport
	h transport.Handler
	l *transport.Lazy[*channel]
}

// install starts the endpoint of an established channel and adds it to
// the endpoints callers poll.
func (c *connector) install(p int, ch *channel, publish func(transport.Live) bool) error {
	t := c.t
	closed, err := t.life.Adopt(func() ([]*endpoint, error) {
		e := newEndpoint(t, ch, c.h)
		if !publish(e) {
			return nil, fmt.Errorf("rank %d has a channel already", p)
		}
		// Copy on write: Poll reads the slice without a lock.
		old := t.polled()
		eps := make([]*endpoint, len(old), len(old)+1)
		copy(eps, old)
		eps = append(eps, e)
		t.pollEps.Store(&eps)
		t.life.WG.Add(2)
		go e.watch()
		go e.receive()
		return []*endpoint{e}, nil
	})
	if closed {
		err = ErrTransportClosed
	}
	if err != nil {
		ch.close()
	}
	return err
}

// guard sets conn's handshake deadline and aborts it when ctx ends; the
// returned function stops the latter and reports whether ctx ended first.
func (c *connector) guard(ctx context.Context, conn *net.UnixConn) func() bool {
	conn.SetDeadline(c.l.HandshakeDeadline())
	return context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
}

func (c *connector) accepted(nc net.Conn) {
	conn := nc.(*net.UnixConn)
	stop := c.guard(c.l.Context(), conn)
	peer, taken, err := c.acceptHandshake(conn)
	if !stop() && err == nil {
		err = fmt.Errorf("connect ended during the handshake: %w", ErrTransportClosed)
	}
	var ch *channel
	if err == nil && taken {
		// Committed: from here only the handshake deadline ends it.
		ch, err = c.t.exchange(conn, int(peer))
		if err != nil {
			err = fmt.Errorf("rank %d: %w", peer, err)
		}
	}
	if taken {
		if err != nil && ch != nil {
			ch.close()
			ch = nil
		}
		if ch != nil {
			conn.SetDeadline(time.Time{})
		}
		c.l.Accept(int(peer), ch, err)
	}
	if err != nil || !taken {
		if err != nil { // logged before the hang-up, as in tcp
			c.t.log.Warn("shmring: dropped a connection", "rank", c.l.Self, "err", err)
		}
		conn.Close()
	}
}

func (c *connector) acceptHandshake(conn *net.UnixConn) (int64, bool, error) {
	if err := checkPeerUID(conn); err != nil {
		return 0, false, err
	}
	peer, err := auth.Accept(conn, c.t.cfg.Secret, "shm", uint32(c.l.Self))
	if err != nil {
		return 0, false, fmt.Errorf("handshake: %w", err)
	}
	p := int64(peer)
	taken, err := c.l.Decide(conn, p)
	return p, taken, err
}

func (c *connector) dialOnce(ctx context.Context, p int) (*channel, error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	nc, err := d.DialContext(dctx, "unix", c.l.Addrs[p])
	cancel()
	if err != nil {
		return nil, err
	}
	conn := nc.(*net.UnixConn)
	stop := c.guard(ctx, conn)
	err = c.dialHandshake(conn, p)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	var ch *channel
	if err == nil {
		// Committed: from here only the handshake deadline ends it.
		if err = transport.Commit(conn); err == nil {
			ch, err = c.t.exchange(conn, p)
		}
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return ch, nil
}

func (c *connector) dialHandshake(conn *net.UnixConn, p int) error {
	if err := checkPeerUID(conn); err != nil {
		return err
	}
	if err := auth.Dial(conn, c.t.cfg.Secret, "shm", uint32(c.l.Self), uint32(p)); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	return transport.DialAnswer(conn, ErrPeerClosed)
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

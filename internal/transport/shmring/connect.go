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
	ctx, cancel, err := t.life.Begin(ctx, "shmring", self, addrs, h, ErrTransportClosed)
	if err != nil {
		return nil, err
	}
	defer t.life.WG.Done()
	defer cancel()

	c := &connector{t: t}
	c.m = &transport.Mesh[*channel]{
		Name: "shmring", What: "channel", Self: self, Addrs: addrs, Log: t.log,
		Listener:         t.ln,
		HandshakeTimeout: handshakeTimeout,
		BackoffMin:       dialBackoffMin,
		BackoffMax:       dialBackoffMax,
		Accepted:         c.accepted,
		DialOnce:         c.dialOnce,
		Close:            (*channel).close,
		Closed:           t.life.Closed,
		ErrClosed:        ErrTransportClosed,
	}
	chans, err := c.m.Run(ctx, cancel)
	if err != nil {
		return nil, err
	}

	eps := make([]transport.Endpoint, len(addrs))
	closed, _ := t.life.Adopt(func() ([]*endpoint, error) {
		var started []*endpoint
		for i, ch := range chans {
			if ch == nil {
				continue
			}
			e := newEndpoint(t, ch, h)
			eps[i] = e
			started = append(started, e)
			t.life.WG.Add(2)
			go e.watch()
			go e.receive()
		}
		t.pollEps.Store(&started)
		return started, nil
	})
	if closed {
		c.m.CloseAll(chans)
		return nil, fmt.Errorf("shmring: rank %d: connect: %w", self, ErrTransportClosed)
	}
	return eps, nil
}

// connector is the shmring part of one Connect call.
type connector struct {
	t *Transport
	m *transport.Mesh[*channel]
}

// guard sets conn's handshake deadline and aborts it when ctx ends; the
// returned function undoes both and reports whether ctx ended first.
func (c *connector) guard(conn *net.UnixConn) func() bool {
	conn.SetDeadline(c.m.HandshakeDeadline())
	stop := context.AfterFunc(c.m.Context(), func() { conn.SetDeadline(aLongTimeAgo) })
	return func() bool {
		ok := stop()
		conn.SetDeadline(time.Time{})
		return ok
	}
}

func (c *connector) accepted(nc net.Conn) {
	conn := nc.(*net.UnixConn)
	unguard := c.guard(conn)
	ch, err := c.acceptHandshake(conn)
	if !unguard() && err == nil {
		ch.close()
		ch, err = nil, fmt.Errorf("connect ended during the handshake: %w", c.m.Context().Err())
	}
	if err != nil {
		conn.Close()
		c.t.log.Warn("shmring: dropped a connection", "rank", c.m.Self, "err", err)
		return
	}
	c.m.Deliver(ch.rank, ch)
}

func (c *connector) acceptHandshake(conn *net.UnixConn) (*channel, error) {
	if err := checkPeerUID(conn); err != nil {
		return nil, err
	}
	peer, err := auth.Accept(conn, c.t.cfg.Secret, "shm", uint32(c.m.Self))
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	p := int64(peer)
	if !c.m.Claim(p) {
		return nil, fmt.Errorf("unexpected or already connected rank %d", p)
	}
	ch, err := c.t.exchange(conn, int(p))
	if err != nil {
		c.m.Unclaim(p)
		return nil, fmt.Errorf("rank %d: %w", p, err)
	}
	return ch, nil
}

func (c *connector) dialOnce(p int) (*channel, error) {
	var d net.Dialer
	nc, err := d.DialContext(c.m.Context(), "unix", c.m.Addrs[p])
	if err != nil {
		return nil, err
	}
	conn := nc.(*net.UnixConn)
	unguard := c.guard(conn)
	ch, err := c.dialHandshake(conn, p)
	if !unguard() && err == nil {
		ch.close()
		ch, err = nil, c.m.Context().Err()
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
	if err := auth.Dial(conn, c.t.cfg.Secret, "shm", uint32(c.m.Self), uint32(p)); err != nil {
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

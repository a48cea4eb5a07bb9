package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gorun-hpc/gorun/internal/auth"
	"github.com/gorun-hpc/gorun/internal/transport"
)

// handshakeTimeout bounds one handshake, so a stranger that connects and
// stalls holds nothing but its own goroutine for a while.
const handshakeTimeout = 10 * time.Second

const (
	dialBackoffMin = 2 * time.Millisecond
	dialBackoffMax = 500 * time.Millisecond
)

// ErrTransportClosed is wrapped by the errors of a Connect, and of Sends
// waiting for a connection, that ran into Close.
var ErrTransportClosed = errors.New("tcp: transport closed")

// Connect returns at once with an endpoint for each peer i with
// addrs[i] != "" and i != Self (nil elsewhere), and no connection yet: the
// connection to a peer is made the first time either side sends to the
// other (transport.Lazy): the first Send or TrySend dials it (retrying with
// backoff), concurrent Sends wait for it and then go out in order, and a
// connection the peer dials in is taken as the pair's one connection. When
// both dial at once, the lower rank's connection wins (docs/wire.md). A
// peer that cannot be reached within Config.ConnectTimeout fails the Sends
// waiting for it with an error naming it and the last dial error.
//
// The listener stays open until Close. Every accepted connection is
// authenticated with the job secret; one that fails the handshake, or
// claims a rank that is not expected or already connected, is logged and
// dropped, and accepting goes on. Handshakes run concurrently with
// deadlines, so a stalling stranger holds nothing up.
//
// Each connection gets one receive goroutine, which calls h as described
// in package transport: concurrently for different peers and in order for
// each; see Config.Spin for how it waits. ctx is not kept.
//
// Connect may be called once per Transport.
func (t *Transport) Connect(ctx context.Context, addrs []string, h transport.Handler) ([]transport.Endpoint, error) {
	self := t.cfg.Self
	_, cancel, err := t.life.Begin(ctx, "tcp", self, addrs, h, ErrTransportClosed)
	if err != nil {
		return nil, err
	}
	defer t.life.WG.Done()
	defer cancel()

	c := &connector{t: t, h: h}
	c.l = &transport.Lazy[*net.TCPConn]{
		Name: "tcp", Self: self, Addrs: addrs, Log: t.log,
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
		return nil, fmt.Errorf("tcp: rank %d: connect: %w", self, ErrTransportClosed)
	}
	return c.l.Start(), nil
}

// connector is the tcp part of Connect's transport.Lazy.
type connector struct {
	t *Transport
	h transport.Handler
	l *transport.Lazy[*net.TCPConn]
}

// install starts the endpoint of an established connection to peer p.
func (c *connector) install(p int, conn *net.TCPConn, publish func(transport.Live) bool) error {
	t := c.t
	closed, err := t.life.Adopt(func() ([]*endpoint, error) {
		e, err := newEndpoint(t, p, conn, c.h)
		if err != nil {
			return nil, err
		}
		if !publish(e) {
			e.s.Close() // conn's descriptor lives on in e.s, not in conn
			return nil, fmt.Errorf("rank %d has a connection already", p)
		}
		t.addPolled(e)
		t.life.WG.Add(1)
		go e.receive()
		return []*endpoint{e}, nil
	})
	if closed {
		err = ErrTransportClosed
	}
	if err != nil {
		conn.Close()
	}
	return err
}

// guard sets conn's handshake deadline and cuts the handshake off when ctx
// ends; the returned function stops that and reports whether ctx ended
// first.
func (c *connector) guard(ctx context.Context, conn *net.TCPConn) func() bool {
	conn.SetDeadline(c.l.HandshakeDeadline())
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	return stop
}

// accepted runs the handshake on one accepted connection.
func (c *connector) accepted(nc net.Conn) {
	conn := nc.(*net.TCPConn)
	remote := conn.RemoteAddr().String()
	stop := c.guard(c.l.Context(), conn)
	peer, err := auth.Accept(conn, c.t.cfg.Secret, "tcp", uint32(c.l.Self))
	taken := false
	if err == nil {
		taken, err = c.l.Decide(conn, int64(peer))
	}
	if !stop() && err == nil {
		err = fmt.Errorf("connect ended during the handshake: %w", ErrTransportClosed)
	}
	if err != nil || !taken {
		if taken {
			c.l.Accept(int(peer), nil, err)
		}
		// Log before hanging up, so whoever sees the hang-up finds the entry.
		if err != nil {
			c.t.log.Warn("tcp: dropped a connection that failed the handshake",
				"rank", c.l.Self, "remote", remote, "err", err)
		}
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	c.l.Accept(int(peer), conn, nil)
}

func (c *connector) dialOnce(ctx context.Context, p int) (*net.TCPConn, error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	nc, err := d.DialContext(dctx, "tcp", c.l.Addrs[p])
	cancel()
	if err != nil {
		return nil, err
	}
	conn := nc.(*net.TCPConn)
	stop := c.guard(ctx, conn)
	err = auth.Dial(conn, c.t.cfg.Secret, "tcp", uint32(c.l.Self), uint32(p))
	if err == nil {
		err = transport.DialAnswer(conn, ErrPeerClosed)
	}
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err == nil {
		// Committed: from here only the handshake deadline ends it.
		err = transport.Commit(conn)
	}
	if err != nil {
		conn.Close()
		if errors.Is(err, transport.ErrRefused) {
			return nil, err
		}
		return nil, fmt.Errorf("handshake: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

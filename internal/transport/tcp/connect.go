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
	ctx, cancel, err := t.life.Begin(ctx, "tcp", self, addrs, h, ErrTransportClosed)
	if err != nil {
		return nil, err
	}
	defer t.life.WG.Done()
	defer cancel()

	c := &connector{t: t}
	c.m = &transport.Mesh[*net.TCPConn]{
		Name: "tcp", What: "connection", Self: self, Addrs: addrs, Log: t.log,
		Listener:         t.ln,
		HandshakeTimeout: handshakeTimeout,
		BackoffMin:       dialBackoffMin,
		BackoffMax:       dialBackoffMax,
		Accepted:         c.accepted,
		DialOnce:         c.dialOnce,
		Close:            func(conn *net.TCPConn) { conn.Close() },
		Closed:           t.life.Closed,
		ErrClosed:        ErrTransportClosed,
	}
	conns, err := c.m.Run(ctx, cancel)
	if err != nil {
		return nil, err
	}

	eps := make([]transport.Endpoint, len(addrs))
	closed, err := t.life.Adopt(func() ([]*endpoint, error) {
		var started []*endpoint
		for i, conn := range conns {
			if conn == nil {
				continue
			}
			e, err := newEndpoint(t, i, conn, h)
			if err != nil {
				return nil, fmt.Errorf("tcp: rank %d -> rank %d: connect: %w", self, i, err)
			}
			started = append(started, e)
			eps[i] = e
		}
		for _, e := range started {
			t.life.WG.Add(1)
			go e.receive()
		}
		return started, nil
	})
	if closed {
		err = fmt.Errorf("tcp: rank %d: connect: %w", self, ErrTransportClosed)
	}
	if err != nil {
		c.m.CloseAll(conns)
		return nil, err
	}
	return eps, nil
}

// connector is the tcp part of one Connect call.
type connector struct {
	t *Transport
	m *transport.Mesh[*net.TCPConn]
}

// accepted runs the handshake on one accepted connection.
func (c *connector) accepted(nc net.Conn) {
	conn := nc.(*net.TCPConn)
	ctx := c.m.Context()
	remote := conn.RemoteAddr().String()
	conn.SetDeadline(c.m.HandshakeDeadline())
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	peer, err := auth.Accept(conn, c.t.cfg.Secret, "tcp", uint32(c.m.Self))
	if !stop() {
		if err == nil {
			err = ctx.Err()
		}
		err = fmt.Errorf("connect ended during the handshake: %w", err)
	}
	if err != nil {
		conn.Close()
		c.t.log.Warn("tcp: dropped a connection that failed the handshake",
			"rank", c.m.Self, "remote", remote, "err", err)
		return
	}
	p := int64(peer)
	if !c.m.Claim(p) {
		conn.Close()
		c.t.log.Warn("tcp: dropped a connection from an unexpected or already connected rank",
			"rank", c.m.Self, "claimed", p, "remote", remote)
		return
	}
	conn.SetDeadline(time.Time{})
	c.m.Deliver(int(p), conn)
}

func (c *connector) dialOnce(p int) (*net.TCPConn, error) {
	var d net.Dialer
	ctx := c.m.Context()
	nc, err := d.DialContext(ctx, "tcp", c.m.Addrs[p])
	if err != nil {
		return nil, err
	}
	conn := nc.(*net.TCPConn)
	conn.SetDeadline(c.m.HandshakeDeadline())
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	err = auth.Dial(conn, c.t.cfg.Secret, "tcp", uint32(c.m.Self), uint32(p))
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

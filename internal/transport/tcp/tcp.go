// Package tcp is the TCP transport: one authenticated TCP connection per
// pair of ranks, carrying wire frames with our own framing (no multiplexer),
// and one receive goroutine per connection. The Transport is a
// transport.Poller: a caller that waits reads the sockets itself (poll.go)
// while the receive goroutines stand aside; when nobody polls, a receive
// goroutine can spin on its socket instead of parking while the runtime is
// waiting for a message (Config.Spin). The sockets are kept out of Go's
// netpoller, whose waiting thread every arriving segment would wake
// (sock.go).
//
// The frame format, the handshake, the connection and goodbye rules and the
// receive path are described in docs/wire.md.
package tcp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
)

// Config configures a Transport.
type Config struct {
	// Secret is the job secret both ends of every connection prove they
	// hold (see package auth). Required.
	Secret []byte

	// Self is this process's rank in the world.
	Self int

	// Listen is the address to listen on; "" means "127.0.0.1:0". Use a
	// specific interface address for multi-host jobs: Addr reports the
	// listener's address as is, and an unspecified host (0.0.0.0) is not
	// something another host can dial.
	Listen string

	// Spin, if non-nil, is called by the receive goroutines when their
	// socket has no data. While it returns true the goroutine keeps
	// polling the socket with non-blocking reads, yielding its P between
	// polls, for up to 50 µs per wait, instead of parking in the
	// waker (sock.go); then it parks anyway. It is called often and from every
	// receive goroutine at once, so it must be cheap and safe for
	// concurrent use (an atomic load). Spinning pays only while cores are
	// free; see docs/wire.md.
	Spin func() bool

	// Logger receives warnings about connections that were dropped (a
	// stranger that failed the handshake, a duplicate rank). nil discards.
	Logger *slog.Logger

	// ConnectTimeout bounds how long a peer may stay unreachable before
	// the Sends waiting for its connection fail; zero means
	// transport.DefaultConnectTimeout (30 s). A peer whose port refuses
	// the connection several times in a row counts as gone at once.
	ConnectTimeout time.Duration
}

// Transport is one rank's TCP transport: a listener, then (after Connect)
// one connection per peer it talks to, made on first use. Its methods are safe for concurrent use.
type Transport struct {
	cfg  Config
	log  *slog.Logger
	ln   *net.TCPListener
	addr string

	life transport.Life[*endpoint] // Connect, receive goroutines, Close

	// Caller polling (poll.go).
	wk       waker                       // wakes receive goroutines waiting for data (sock.go)
	polls    transport.PollGate          // callers polling
	pollEps  atomic.Pointer[[]*endpoint] // copy on write, under mu
	pollNext atomic.Uint32               // where the next Poll of many connections starts

	mu   sync.Mutex
	lazy *transport.Lazy[*net.TCPConn] // set by Connect
	shut bool                          // Close ran
}

// setLazy records Connect's Lazy for Close, unless Close ran.
func (t *Transport) setLazy(l *transport.Lazy[*net.TCPConn]) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.shut {
		return false
	}
	t.lazy = l
	return true
}

// Listen opens the transport's listener. Peers can dial Addr from now on;
// their connections wait in the listen backlog until Connect, and are
// accepted from then until Close.
func Listen(cfg Config) (*Transport, error) {
	if len(cfg.Secret) == 0 {
		return nil, fmt.Errorf("tcp: rank %d: listen: empty job secret", cfg.Self)
	}
	if cfg.Self < 0 {
		return nil, fmt.Errorf("tcp: listen: negative rank %d", cfg.Self)
	}
	addr := cfg.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: rank %d: listen on %s: %w", cfg.Self, addr, err)
	}
	t := &Transport{cfg: cfg, log: cfg.Logger, ln: l.(*net.TCPListener), addr: l.Addr().String()}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	return t, nil
}

// Addr returns the "ip:port" that peers should dial. It stays valid (as a
// string) after the listener is closed.
func (t *Transport) Addr() string { return t.addr }

// Close closes the listener and every connection abruptly, without a
// goodbye, so peers report this rank lost; it is how a dying or aborting
// rank lets go. It ends the dials in flight, and Sends waiting for a
// connection fail. Endpoints stay valid objects: their Sends fail with an
// error wrapping transport.ErrClosed and their Close returns at once.
// Close waits for every goroutine the transport started, so it must not be
// called from a Handler callback; it is safe to call more than once.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.shut = true
	l := t.lazy
	t.mu.Unlock()
	if l != nil {
		l.Stop()
	}
	_, err := t.life.Shutdown(t.ln, (*endpoint).kill)
	t.wk.stop()
	return err
}

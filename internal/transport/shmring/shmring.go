// Package shmring is the shared-memory transport for ranks on one node: for
// every ordered pair of ranks a single-producer single-consumer byte ring in
// a memfd segment owned by the receiver, carrying the same frames as the
// TCP transport (a wire.Header and its payload), plus one Unix socket per
// pair that authenticates the peers, passes the segment descriptors and
// then stays open as the liveness channel: EOF without a goodbye in the
// ring means the peer died.
//
// Layout, publication protocol, sleep/wake protocol and measurements are in
// docs/shmring.md.
package shmring

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
)

// DefaultRingSize is the data size of each inbound ring when
// Config.RingSize is zero.
const DefaultRingSize = 256 << 10

// Config configures a Transport.
type Config struct {
	// JobID tags the abstract Unix socket name ("@gorun-<job>-shm-<rank>").
	JobID string

	// Secret is the job secret both ends of every socket prove they hold
	// (see package auth, purpose "shm"). Required.
	Secret []byte

	// Self is this process's rank in the world.
	Self int

	// RingSize is the data size in bytes of each inbound ring (one per
	// sending peer): a power of two, at least 4096. Zero means
	// DefaultRingSize. Frames of any size up to wire.MaxPayload pass
	// through a ring of any size: they are written in pieces as the
	// receiver frees space.
	RingSize int

	// Spin, if non-nil, is called while a reader waits for the rest of a
	// frame it started or a Send finds the ring full. While it returns true
	// the goroutine polls, yielding its P between polls, for up to 50 µs
	// per wait, before sleeping on the futex. It must be cheap and safe for
	// concurrent use. Receive goroutines waiting for a new frame never spin:
	// waiting callers poll for themselves (Transport implements
	// transport.Poller).
	Spin func() bool

	// Logger receives warnings about dropped connections. nil discards.
	Logger *slog.Logger

	// ConnectTimeout bounds how long a peer may stay unreachable before
	// the Sends waiting for its channel fail; zero means
	// transport.DefaultConnectTimeout (30 s). A peer whose socket refuses
	// the connection several times in a row counts as gone at once.
	ConnectTimeout time.Duration
}

// ErrTransportClosed is wrapped by the error of a Connect that ran into
// Close.
var ErrTransportClosed = errors.New("shmring: transport closed")

// ErrPeerClosed is returned (wrapped) by Send after the peer said goodbye.
var ErrPeerClosed = errors.New("shmring: peer closed the connection")

// Transport is one rank's shared-memory transport. Its methods are safe for
// concurrent use.
type Transport struct {
	cfg  Config
	log  *slog.Logger
	ln   *net.UnixListener
	addr string

	life transport.Life[*endpoint] // Connect, receive goroutines, Close

	// Caller polling (poll.go).
	polls   transport.PollGate          // callers polling
	pollEps atomic.Pointer[[]*endpoint] // replaced (copy on write) as channels are made

	mu   sync.Mutex
	lazy *transport.Lazy[*channel] // set by Connect
	shut bool                      // Close ran
}

// setLazy records Connect's Lazy for Close, unless Close ran.
func (t *Transport) setLazy(l *transport.Lazy[*channel]) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.shut {
		return false
	}
	t.lazy = l
	return true
}

var _ transport.Poller = (*Transport)(nil)

// Listen opens this rank's abstract-namespace Unix listener (no file on
// disk). Peers can dial Addr from now on; their connections wait in the
// backlog until Connect, and are accepted from then until Close. The ring
// segments are created when a channel is set up, on first use.
func Listen(cfg Config) (*Transport, error) {
	if len(cfg.Secret) == 0 {
		return nil, fmt.Errorf("shmring: rank %d: listen: empty job secret", cfg.Self)
	}
	if cfg.Self < 0 {
		return nil, fmt.Errorf("shmring: listen: negative rank %d", cfg.Self)
	}
	if cfg.RingSize == 0 {
		cfg.RingSize = DefaultRingSize
	}
	if !validRingSize(cfg.RingSize) {
		return nil, fmt.Errorf("shmring: rank %d: listen: ring size %d is not a power of two in [4 KiB, 1 GiB]", cfg.Self, cfg.RingSize)
	}
	name := fmt.Sprintf("@gorun-%s-shm-%d", cfg.JobID, cfg.Self)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("shmring: rank %d: listen on %s: %w", cfg.Self, name, err)
	}
	t := &Transport{cfg: cfg, log: cfg.Logger, ln: ln, addr: name}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	return t, nil
}

// Addr returns the abstract socket name peers pass to Connect.
func (t *Transport) Addr() string { return t.addr }

// Close closes the listener and every channel abruptly, without a goodbye,
// so peers report this rank lost. It ends the dials in flight, and Sends
// waiting for a channel fail. Endpoints stay valid objects: their Sends
// fail with an error wrapping transport.ErrClosed and their Close returns
// at once. Close waits for every goroutine the transport started and
// unmaps every segment, so it must not be called from a Handler callback;
// it is safe to call more than once.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.shut = true
	l := t.lazy
	t.mu.Unlock()
	if l != nil {
		l.Stop()
	}
	eps, err := t.life.Shutdown(t.ln, (*endpoint).kill)
	for _, e := range eps {
		e.release()
	}
	return err
}

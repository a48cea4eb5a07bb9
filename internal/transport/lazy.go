package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorun-hpc/gorun/internal/wire"
)

// Connections on first use.
//
// Lazy is the transport-independent part of a stream transport's Connect:
// it hands out an endpoint for every wanted peer at once (a Peer), and the
// channel to a peer is set up the first time either side sends to the
// other. The listener stays open until the transport closes, so a peer can
// dial in at any time.
//
// One channel per pair, whoever starts it. When both ranks of a pair dial
// at once, the connection dialed by the lower rank wins: after the auth
// handshake the acceptor answers with one byte (docs/wire.md),
//
//	'y' take it        the dialer commits with 'k'; from then on neither side
//	                   abandons it, and both install the channel
//	'r' refused        the acceptor is the lower rank and is dialing the
//	                   dialer itself (or has); the dialer waits for that
//	                   connection to come in, retrying the dial with
//	                   backoff meanwhile in case it never does
//	'c' closed         the acceptor closed its endpoint to the dialer
//	'n' not wanted     the dialer is not a peer, or already connected
//
// The lower rank decides: it answers 'r' to a higher rank while its own
// dial to it is in flight, and never dials while it has taken a connection
// from it, so at most one connection per pair is ever taken.

// The acceptor's answers and the dialer's commit (docs/wire.md).
const (
	AnswerTake    byte = 'y'
	AnswerRefuse  byte = 'r'
	AnswerClosed  byte = 'c'
	AnswerUnknown byte = 'n'
	AnswerCommit  byte = 'k'
)

// ErrRefused is wrapped by a dial error when the peer refused the
// connection because it is connecting to this rank itself (the tie-break).
var ErrRefused = errors.New("peer refused: it connects to us itself")

// errNotWanted is a dial error: the peer does not take a connection from
// this rank (not its peer, or connected already).
var errNotWanted = errors.New("peer refused: not wanted or already connected")

// A Live endpoint is the established channel behind a Peer.
type Live interface {
	Endpoint
	TrySender
}

// An Opener is an endpoint whose channel may not exist yet.
type Opener interface {
	// Opened reports whether the channel exists or is being set up, so a
	// caller that would send a frame only as a courtesy (a closing notice)
	// can skip peers it never talked to.
	Opened() bool
	// Open sets the channel up now if it does not exist, as the first Send
	// would, and waits for it; it returns the error that Send would.
	Open() error
}

// Defaults for Lazy's time bounds.
const (
	DefaultConnectTimeout = 30 * time.Second
	// A peer that refuses dials at the socket (ECONNREFUSED) refusedMax
	// times in a row over at least refusedFor counts as gone: its listener
	// was open before its address was published, so a refusal means it
	// closed.
	refusedMax = 5
	refusedFor = time.Second
)

// Lazy sets up the channels of one transport on first use; see above. Fill
// in the exported fields, then call Start. Its methods are safe for
// concurrent use.
type Lazy[C any] struct {
	Name  string   // transport name, prefixing errors and warnings: "tcp"
	Self  int      // this rank
	Addrs []string // peer addresses indexed by rank; "" for no peer
	Log   *slog.Logger

	Listener         net.Listener // accepted from until Stop, which closes it
	HandshakeTimeout time.Duration
	BackoffMin       time.Duration // first wait between dials of one peer
	BackoffMax       time.Duration // the wait doubles up to this
	// ConnectTimeout bounds how long a peer may stay unreachable before
	// the Sends waiting for it fail; zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration

	// Accepted runs the handshake on conn, in its own goroutine: auth,
	// then Decide, then whatever the transport exchanges, then Accept.
	Accepted func(conn net.Conn)
	// DialOnce dials peer p once and runs the handshake: auth, then
	// DialAnswer (ctx may abort everything up to here), then Commit and
	// whatever the transport exchanges (bounded by the handshake deadline
	// only: a committed connection is never abandoned).
	DialOnce func(ctx context.Context, p int) (C, error)
	// Install makes the endpoint of an established connection to p, calls
	// publish with it before it starts the endpoint's goroutines, and
	// starts them. It closes c and returns an error if it cannot (the
	// transport closed). publish reports false if p has a channel already;
	// Install then closes c too.
	Install func(p int, c C, publish func(Live) bool) error
	// ErrClosed is wrapped by errors due to the transport's Close;
	// ErrPeerClosed by a dial the peer answered 'c'.
	ErrClosed     error
	ErrPeerClosed error

	ctx    context.Context // ends at Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	cond    sync.Cond // on mu: a peer's state changed
	stopped bool
	peers   []*Peer[C] // nil where not wanted; immutable after Start
}

// A Peer is the endpoint to one peer: Send and TrySend go to the channel
// once it exists, and start it when it does not.
type Peer[C any] struct {
	l    *Lazy[C]
	rank int
	live atomic.Pointer[liveBox]
	wake chan struct{} // wakes the dial loop's backoff: the state changed

	// guarded by l.mu
	dialing   bool // a dial loop runs
	accepting bool // an accepted connection was taken and is being set up
	closed    bool // Close was called
	cancel    context.CancelFunc
	err       error  // why the last attempt failed
	gen       uint64 // failed attempts so far
}

type liveBox struct{ e Live }

var (
	_ Endpoint  = (*Peer[int])(nil)
	_ TrySender = (*Peer[int])(nil)
	_ Opener    = (*Peer[int])(nil)
)

// Start starts accepting and returns the endpoints indexed by rank (nil
// where there is no peer). Nothing is dialed until a Peer sends.
func (l *Lazy[C]) Start() []Endpoint {
	if l.ConnectTimeout <= 0 {
		l.ConnectTimeout = DefaultConnectTimeout
	}
	if l.Log == nil {
		l.Log = slog.New(slog.DiscardHandler)
	}
	l.cond.L = &l.mu
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.peers = make([]*Peer[C], len(l.Addrs))
	eps := make([]Endpoint, len(l.Addrs))
	for i, a := range l.Addrs {
		if a != "" && i != l.Self {
			l.peers[i] = &Peer[C]{l: l, rank: i, wake: make(chan struct{}, 1)}
			eps[i] = l.peers[i]
		}
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return eps
}

// Stop stops accepting, ends every dial in flight, fails the Sends waiting
// for a channel with an error wrapping ErrClosed, and waits for every
// goroutine Lazy started. Channels already installed are the transport's to
// close. Calling it again only waits.
func (l *Lazy[C]) Stop() {
	l.mu.Lock()
	l.stopped = true
	l.cancel()
	l.cond.Broadcast()
	l.mu.Unlock()
	l.Listener.Close()
	l.wg.Wait()
}

// Context ends at Stop.
func (l *Lazy[C]) Context() context.Context { return l.ctx }

// HandshakeDeadline is when a handshake started now must be over.
func (l *Lazy[C]) HandshakeDeadline() time.Time { return time.Now().Add(l.HandshakeTimeout) }

// Decide is the acceptor's side of the tie-break, on conn after auth
// proved the dialer is rank r: it answers (see the package comment) and,
// for a connection it takes, reads the dialer's commit. It reports whether
// the connection is taken; then the caller finishes its handshake and must
// call Accept, whatever the outcome.
func (l *Lazy[C]) Decide(conn io.ReadWriter, r int64) (bool, error) {
	a := l.offer(r)
	if _, err := conn.Write([]byte{a}); err != nil {
		if a == AnswerTake {
			l.unaccept(int(r))
		}
		return false, fmt.Errorf("sending answer: %w", err)
	}
	switch a {
	case AnswerTake:
	case AnswerUnknown:
		return false, fmt.Errorf("rank %d: %w", r, errNotWanted)
	default:
		return false, nil // a tie-break or a closed endpoint: nothing to log
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil || b[0] != AnswerCommit {
		l.unaccept(int(r))
		if err == nil {
			err = fmt.Errorf("got %q", b[0])
		}
		return false, fmt.Errorf("rank %d did not commit: %w", r, err)
	}
	return true, nil
}

// offer decides what to answer rank r, and marks a taken connection.
func (l *Lazy[C]) offer(r int64) byte {
	if r < 0 || r >= int64(len(l.peers)) || l.peers[r] == nil {
		return AnswerUnknown
	}
	p := l.peers[r]
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.stopped || p.closed:
		return AnswerClosed
	case p.live.Load() != nil || p.accepting:
		return AnswerUnknown
	case p.dialing && p.rank > l.Self:
		return AnswerRefuse // our dial, the lower rank's, wins
	}
	p.accepting = true
	p.poke()
	return AnswerTake
}

// unaccept undoes a taken connection whose handshake failed.
func (l *Lazy[C]) unaccept(r int) {
	p := l.peers[r]
	l.mu.Lock()
	p.accepting = false
	l.cond.Broadcast() // Sends waiting start a dial of their own
	l.mu.Unlock()
}

// Accept ends the handshake of a connection Decide took: it installs c
// (err == nil), or gives the pair back to the dial path (the transport
// closed what it opened).
func (l *Lazy[C]) Accept(r int, c C, err error) {
	if err != nil {
		l.unaccept(r)
		return
	}
	l.install(l.peers[r], c, false)
}

// DialAnswer is the dialer's side of the tie-break, after auth: it reads the
// acceptor's answer and returns nil if the connection is taken (the caller
// then commits with Commit), or why not.
func DialAnswer(conn io.Reader, errPeerClosed error) error {
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return fmt.Errorf("reading answer: %w", err)
	}
	switch b[0] {
	case AnswerTake:
		return nil
	case AnswerRefuse:
		return ErrRefused
	case AnswerClosed:
		return errPeerClosed
	case AnswerUnknown:
		return errNotWanted
	}
	return fmt.Errorf("unknown answer %q", b[0])
}

// Commit is the dialer's commit to a connection the acceptor took.
func Commit(conn io.Writer) error {
	if _, err := conn.Write([]byte{AnswerCommit}); err != nil {
		return fmt.Errorf("sending commit: %w", err)
	}
	return nil
}

// Send implements Endpoint: on the channel if it exists; otherwise it
// starts setting it up (or joins the set-up under way), waits for it and
// sends. It fails if the peer cannot be reached within the connect timeout
// (an error naming the peer, its address and the last dial error), or if
// the endpoint or the transport closes first.
func (p *Peer[C]) Send(h wire.Header, payload []byte) error {
	if b := p.live.Load(); b != nil {
		return b.e.Send(h, payload)
	}
	e, err := p.await()
	if err != nil {
		return err
	}
	return e.Send(h, payload)
}

// TrySend implements TrySender: on the channel if it exists; otherwise it
// starts setting it up in the background and returns false, nil.
func (p *Peer[C]) TrySend(h wire.Header, payload []byte) (bool, error) {
	if b := p.live.Load(); b != nil {
		return b.e.TrySend(h, payload)
	}
	l := p.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := p.stateErrLocked(); err != nil {
		return false, err
	}
	l.startLocked(p)
	return false, nil
}

// Live returns the channel, or nil if it does not exist yet.
func (p *Peer[C]) Live() Live {
	if b := p.live.Load(); b != nil {
		return b.e
	}
	return nil
}

// Opened implements Opener.
func (p *Peer[C]) Opened() bool {
	if p.live.Load() != nil {
		return true
	}
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	return p.live.Load() != nil || p.dialing || p.accepting
}

// Open implements Opener.
func (p *Peer[C]) Open() error {
	if p.live.Load() != nil {
		return nil
	}
	_, err := p.await()
	return err
}

// Close implements Endpoint. With a channel it is the channel's Close (a
// goodbye). Without one it ends a dial not yet answered, waits for a
// set-up past that point and closes what it made; later Sends fail with an
// error wrapping ErrClosed, and a later dial from the peer is answered 'c'.
func (p *Peer[C]) Close() error {
	l := p.l
	l.mu.Lock()
	p.closed = true
	if p.cancel != nil {
		p.cancel()
	}
	l.cond.Broadcast()
	for p.dialing || p.accepting {
		l.cond.Wait()
	}
	b := p.live.Load()
	l.mu.Unlock()
	if b != nil {
		return b.e.Close()
	}
	return nil
}

// stateErrLocked says why no channel can be set up for p, or nil.
func (p *Peer[C]) stateErrLocked() error {
	l := p.l
	switch {
	case p.closed:
		return fmt.Errorf("%s: rank %d -> rank %d: send: %w", l.Name, l.Self, p.rank, ErrClosed)
	case l.stopped:
		return fmt.Errorf("%s: rank %d -> rank %d: send: %w: %w", l.Name, l.Self, p.rank, ErrClosed, l.ErrClosed)
	}
	return nil
}

// await waits until p has a channel, starting a dial if no set-up is under
// way, and returns it, or the error of the attempt it waited for.
func (p *Peer[C]) await() (Live, error) {
	l := p.l
	l.mu.Lock()
	defer l.mu.Unlock()
	gen := p.gen
	for {
		if b := p.live.Load(); b != nil {
			return b.e, nil
		}
		if err := p.stateErrLocked(); err != nil {
			return nil, err
		}
		if p.gen != gen {
			return nil, p.err
		}
		l.startLocked(p)
		l.cond.Wait()
	}
}

// poke wakes p's dial loop from its backoff.
func (p *Peer[C]) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// startLocked starts a dial loop for p unless a set-up is under way or
// cannot be.
func (l *Lazy[C]) startLocked(p *Peer[C]) {
	if p.dialing || p.accepting || p.live.Load() != nil || p.closed || l.stopped {
		return
	}
	p.dialing = true
	ctx, cancel := context.WithCancel(l.ctx)
	p.cancel = cancel
	l.wg.Add(1) // under mu with stopped false: before Stop's Wait
	go l.dial(p, ctx)
}

// dial is a dial loop: it dials p until a channel exists (its own, or one p
// dialed in), p refuses it for good, or the connect timeout passes.
func (l *Lazy[C]) dial(p *Peer[C], ctx context.Context) {
	defer l.wg.Done()
	start := time.Now()
	backoff := l.BackoffMin
	attempts, refused := 0, 0
	var last error
	var refusedSince time.Time
	for {
		l.mu.Lock()
		done := p.accepting || p.live.Load() != nil || ctx.Err() != nil
		if done {
			p.dialing = false
			p.cancel()
			l.cond.Broadcast()
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		c, err := l.DialOnce(ctx, p.rank)
		attempts++
		if err == nil {
			l.install(p, c, true)
			return
		}
		last = err
		if isConnRefused(err) {
			if refused == 0 {
				refusedSince = time.Now()
			}
			refused++
		} else {
			refused = 0
		}
		var final error
		switch {
		case ctx.Err() != nil:
			continue // the loop's check ends it
		case errors.Is(err, l.ErrPeerClosed):
			final = err
		case refused >= refusedMax && time.Since(refusedSince) >= refusedFor,
			time.Since(start) >= l.ConnectTimeout:
			final = fmt.Errorf("%w: %w", ErrPeerLost, last)
		case errors.Is(err, errNotWanted):
			// A connection from p came in meanwhile, or p does not
			// know us: the loop's check tells which, soon.
		default:
			if !errors.Is(err, ErrRefused) {
				l.Log.Debug(l.Name+": dial failed; retrying", "rank", l.Self, "peer", p.rank, "err", err)
			}
		}
		if final != nil {
			l.mu.Lock()
			p.dialing = false
			p.cancel()
			if !p.accepting && p.live.Load() == nil {
				p.err = fmt.Errorf("%s: rank %d -> rank %d: connect to %s: no channel after %d attempts in %v: %w",
					l.Name, l.Self, p.rank, l.Addrs[p.rank], attempts, time.Since(start).Round(time.Millisecond), final)
				p.gen++
			}
			l.cond.Broadcast()
			l.mu.Unlock()
			return
		}
		timer := time.NewTimer(backoff)
		select {
		case <-timer.C:
		case <-p.wake:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
		}
		backoff = min(2*backoff, l.BackoffMax)
	}
}

// install makes c p's channel; dialed says which set-up made it.
func (l *Lazy[C]) install(p *Peer[C], c C, dialed bool) {
	err := l.Install(p.rank, c, func(e Live) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		if p.live.Load() != nil {
			return false
		}
		p.live.Store(&liveBox{e})
		return true
	})
	l.mu.Lock()
	if dialed {
		p.dialing = false
		p.cancel()
	} else {
		p.accepting = false
	}
	if err != nil && p.live.Load() == nil && !p.dialing && !p.accepting {
		p.err = fmt.Errorf("%s: rank %d -> rank %d: connect: %w", l.Name, l.Self, p.rank, err)
		p.gen++
	}
	l.cond.Broadcast()
	l.mu.Unlock()
}

// isConnRefused reports whether err is the peer's socket refusing the
// connection: nobody listens there any more.
func isConnRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

func (l *Lazy[C]) acceptLoop() {
	defer l.wg.Done()
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry.
			l.Log.Warn(l.Name+": accept failed", "rank", l.Self, "err", err)
			timer := time.NewTimer(10 * time.Millisecond)
			select {
			case <-timer.C:
			case <-l.ctx.Done():
				timer.Stop()
				return
			}
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.Accepted(conn)
		}()
	}
}

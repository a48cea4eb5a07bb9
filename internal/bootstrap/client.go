package bootstrap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gorun-hpc/gorun/internal/auth"
)

// closeTimeout bounds how long Close waits for the coordinator to
// acknowledge the goodbye by closing its side.
const closeTimeout = 5 * time.Second

// A Client is a rank's connection to the coordinator.
//
// Exchange calls are serialized (it is a collective); Abort, Lost and Close
// may be called from any goroutine at any time.
type Client struct {
	conn net.Conn
	br   *bufio.Reader
	rank int
	size int

	wmu  sync.Mutex // serializes frame writes
	exMu sync.Mutex // one Exchange at a time
	seq  uint64     // of the last Exchange started; guarded by exMu
	bad  error      // set when an Exchange was abandoned; guarded by exMu

	results chan result   // the reader's hand-off of msgResult; capacity 1
	failed  chan struct{} // closed on the first msgFail
	lost    chan struct{} // closed when the connection drops without Close
	closed  chan struct{} // closed when Close starts
	done    chan struct{} // closed when the reader goroutine ends

	mu      sync.Mutex
	failErr *RankError // first msgFail; guarded by mu
	closing bool       // Close was called; guarded by mu

	closeOnce sync.Once
	closeErr  error
}

type result struct {
	seq   uint64
	parts [][]byte
}

// Dial connects to the coordinator at env.Coord, proves membership in the
// job with env.Secret and registers env.Rank. ctx bounds connection setup
// only (as with net.Dialer.DialContext); the handshake is also bounded by
// HandshakeTimeout. It fails if the coordinator refuses the rank, for
// example because the rank already registered.
func Dial(ctx context.Context, env *Env) (*Client, error) {
	if env == nil {
		return nil, errors.New("bootstrap: Dial with a nil Env")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", env.Coord)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: rank %d dialing coordinator %s: %w", env.Rank, env.Coord, err)
	}
	deadline := time.Now().Add(HandshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	// Closing the connection is how a cancelled ctx interrupts the
	// handshake's blocking reads.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, err := handshake(conn, env)
	if !stop() {
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("bootstrap: rank %d registering with coordinator %s: %w", env.Rank, env.Coord, err)
	}
	conn.SetDeadline(time.Time{})
	go c.readLoop()
	return c, nil
}

func handshake(conn net.Conn, env *Env) (*Client, error) {
	if err := auth.Dial(conn, env.Secret, authPurpose, uint32(env.Rank), CoordID); err != nil {
		return nil, err
	}
	if err := writeFrame(conn, msgHello, encodeHello(env.Size)); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	typ, body, err := readFrame(br, maxText+1)
	if err != nil {
		return nil, err
	}
	switch typ {
	case msgWelcome:
	case msgReject:
		return nil, fmt.Errorf("refused: %s", body)
	default:
		return nil, fmt.Errorf("%w: type %d instead of welcome", errFrame, typ)
	}
	return &Client{
		conn:    conn,
		br:      br,
		rank:    env.Rank,
		size:    env.Size,
		results: make(chan result, 1),
		failed:  make(chan struct{}),
		lost:    make(chan struct{}),
		closed:  make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

func (c *Client) readLoop() {
	defer close(c.done)
	for {
		typ, body, err := readFrame(c.br, maxFrame)
		if err == nil {
			err = c.handle(typ, body)
		}
		if err != nil {
			c.mu.Lock()
			closing := c.closing
			c.mu.Unlock()
			if !closing {
				close(c.lost)
			}
			return
		}
	}
}

func (c *Client) handle(typ byte, body []byte) error {
	switch typ {
	case msgResult:
		seq, parts, err := decodeResult(body, c.size)
		if err != nil {
			return err
		}
		select {
		case c.results <- result{seq, parts}:
		default:
			// Only a result for an abandoned Exchange can find the
			// slot full; the next Exchange discards stale results.
		}
	case msgFail:
		re, err := decodeFail(body)
		if err != nil {
			return err
		}
		c.mu.Lock()
		if c.failErr == nil {
			c.failErr = re
			close(c.failed)
		}
		c.mu.Unlock()
	default:
		return fmt.Errorf("%w: unexpected message type %d from coordinator", errFrame, typ)
	}
	return nil
}

// Exchange is an allgather through the coordinator, and a fence: it sends
// data and returns every rank's data indexed by rank, once all ranks have
// called it. Every rank must call Exchange the same number of times; calls
// are numbered, and concurrent calls on one Client are serialized.
//
// The returned slices are the caller's. data may be reused once Exchange
// returns.
//
// Instead of hanging, Exchange fails with a *RankError naming the rank when
// a rank aborts, is lost, or closed its client without joining; with
// ErrCoordLost when gorun is gone; and with ctx's error when ctx ends first.
// After a ctx failure the Client can no longer Exchange (its contribution is
// already on its way), so the caller should Abort.
func (c *Client) Exchange(ctx context.Context, data []byte) ([][]byte, error) {
	c.exMu.Lock()
	defer c.exMu.Unlock()
	if c.bad != nil {
		return nil, c.bad
	}
	c.seq++
	seq := c.seq
	wrap := func(err error) error {
		return fmt.Errorf("bootstrap: rank %d exchange %d: %w", c.rank, seq, err)
	}
	if err := c.stickyErr(); err != nil {
		return nil, wrap(err)
	}
	// A result still in the slot belongs to an abandoned call.
	select {
	case <-c.results:
	default:
	}
	if err := c.write(msgExchange, encodeSeq(seq), data); err != nil {
		return nil, wrap(err)
	}
	for {
		select {
		case r := <-c.results:
			if r.seq == seq {
				return r.parts, nil
			}
			continue
		case <-c.failed:
		case <-c.lost:
		case <-c.closed:
		case <-ctx.Done():
			c.bad = fmt.Errorf("bootstrap: rank %d: exchange %d was abandoned (%v); no further exchange is possible", c.rank, seq, ctx.Err())
			return nil, wrap(ctx.Err())
		}
		// The result may have raced with a failure notice; a completed
		// round wins.
		select {
		case r := <-c.results:
			if r.seq == seq {
				return r.parts, nil
			}
		default:
		}
		return nil, wrap(c.stickyErr())
	}
}

// stickyErr returns the reason no exchange can succeed any more, or nil.
func (c *Client) stickyErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return ErrClosed
	}
	if c.failErr != nil {
		return c.failErr
	}
	select {
	case <-c.lost:
		return ErrCoordLost
	default:
	}
	return nil
}

func (c *Client) write(typ byte, body ...[]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// A write after the coordinator's FIN can still succeed; do not report
	// a message as sent to a coordinator known to be gone.
	select {
	case <-c.lost:
		return ErrCoordLost
	default:
	}
	c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := writeFrame(c.conn, typ, body...); err != nil {
		select {
		case <-c.lost:
			return ErrCoordLost
		default:
		}
		return err
	}
	return nil
}

// Abort tells the coordinator, and through it gorun, that this job must die
// because of msg. gorun then stops every rank and reports msg as the cause;
// the caller should exit non-zero right after. Abort returns an error when
// the message could not be sent.
func (c *Client) Abort(msg string) error {
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return ErrClosed
	}
	if err := c.write(msgAbort, []byte(truncate(msg))); err != nil {
		return fmt.Errorf("bootstrap: rank %d abort: %w", c.rank, err)
	}
	return nil
}

// Failing tells the coordinator that this rank is failing because of
// another rank (msg says which and how), so that gorun reports the rank
// that failed first. It does not end the job by itself.
func (c *Client) Failing(msg string) error {
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return ErrClosed
	}
	if err := c.write(msgFailing, []byte(truncate(msg))); err != nil {
		return fmt.Errorf("bootstrap: rank %d failing: %w", c.rank, err)
	}
	return nil
}

// Lost returns a channel that is closed when the connection to the
// coordinator drops without Close. That means gorun died or was killed: the
// rank should abort its communicators and exit, since nobody is left to
// collect its output or exit status.
func (c *Client) Lost() <-chan struct{} { return c.lost }

// Close reports this rank as finalized and closes the connection. It waits
// (at most a few seconds) for the coordinator to acknowledge, so the
// goodbye is not lost in a connection reset. It is idempotent; pending and
// later Exchange calls fail with ErrClosed.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		close(c.closed)
		select {
		case <-c.lost:
			// Nobody to say goodbye to.
		default:
			c.closeErr = c.write(msgBye)
			if c.closeErr == nil {
				if tc, ok := c.conn.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				// The coordinator closes its side after the goodbye; the
				// reader then sees EOF. The deadline covers a wedged one.
				c.conn.SetReadDeadline(time.Now().Add(closeTimeout))
				<-c.done
			}
		}
		if err := c.conn.Close(); c.closeErr == nil && err != nil && !errors.Is(err, net.ErrClosed) {
			c.closeErr = err
		}
		<-c.done
		if c.closeErr != nil {
			c.closeErr = fmt.Errorf("bootstrap: rank %d close: %w", c.rank, c.closeErr)
		}
	})
	return c.closeErr
}

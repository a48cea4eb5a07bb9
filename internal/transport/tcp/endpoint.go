package tcp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
	"golang.org/x/sys/unix"
)

// ErrPeerClosed is returned (wrapped) by Send after the peer said goodbye:
// it has closed its endpoint and will read nothing more.
var ErrPeerClosed = errors.New("tcp: peer closed the connection")

// lingerTimeout bounds how long Close waits for the peer to answer the
// goodbye (or to drain a full socket so the goodbye can be written). A live
// peer answers at once from its receive goroutine; only a hung peer or a
// handler stuck on the other side makes Close wait this long.
const lingerTimeout = 10 * time.Second

// aLongTimeAgo is a deadline in the past: setting it aborts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// endpoint is the transport.Endpoint of one connection to one peer, and the
// owner of that connection's receive goroutine.
type endpoint struct {
	t          *Transport
	self, peer int
	s          *sock // the connection, outside the netpoller (sock.go)
	h          transport.Handler

	// wmu serializes writes so frames never interleave; the fields below it
	// are guarded by it.
	wmu     sync.Mutex
	hdr     [wire.HeaderSize]byte
	vec     [2][]byte
	byeSent bool // our goodbye is out; nothing more may be written
	wbroken bool // a Send was cut off mid-frame: the stream cannot be continued

	closing atomic.Bool             // local Close or Transport.Close began: no PeerLost, Send fails
	killed  atomic.Bool             // the connection was cut: a caller stops waiting mid-frame
	peerBye atomic.Bool             // the peer's goodbye arrived
	lost    atomic.Pointer[lostErr] // the connection broke; Send returns this

	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed when the receive goroutine has ended

	rd   reader
	body transport.StreamBody

	// Caller polling (poll.go). tok is 1 while a goroutine reads the
	// stream: it carries rd, body and pollErr from holder to holder.
	tok     atomic.Int32
	pollErr error       // a caller's read failed; the receive goroutine reports it
	failed  atomic.Bool // pollErr is set
	holding bool        // receive goroutine only: it holds tok
	aside   bool        // receive goroutine only: waitFn gave way to callers
	werr    error       // receive goroutine only: waitFn's read error
	waitFn  func(uintptr) bool
	nap     transport.Nap // the receive goroutine's naps while callers poll
}

type lostErr struct{ err error }

func newEndpoint(t *Transport, peer int, conn *net.TCPConn, h transport.Handler) (*endpoint, error) {
	s, err := newSock(conn, &t.wk)
	if err != nil {
		return nil, err
	}
	e := &endpoint{t: t, self: t.cfg.Self, peer: peer, s: s, h: h, done: make(chan struct{})}
	e.rd.init(s, t.cfg.Spin, &e.closing, &e.killed)
	e.waitFn = e.wait
	e.nap.Init()
	e.body = transport.StreamBody{Stream: &e.rd, Wrap: e.payloadErr}
	return e, nil
}

// Send implements transport.Endpoint. It writes the header and the payload
// with one writev under the connection's write lock, so it is safe for
// concurrent use and returns once the kernel has the bytes. It blocks while
// the peer's socket buffer is full. After Close it fails with an error
// wrapping transport.ErrClosed; after the connection broke, with one
// wrapping transport.ErrPeerLost; after the peer's goodbye, with one
// wrapping ErrPeerClosed.
func (e *endpoint) Send(h wire.Header, payload []byte) error {
	if len(payload) > wire.MaxPayload {
		return fmt.Errorf("tcp: rank %d -> rank %d: send: payload of %d bytes exceeds %d",
			e.self, e.peer, len(payload), wire.MaxPayload)
	}
	h.Len = uint32(len(payload))
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if err := e.sendStateLocked(); err != nil {
		return err
	}
	h.Encode(e.hdr[:])
	e.vec[0], e.vec[1] = e.hdr[:], payload
	n, err := e.s.writev(e.vec[:])
	e.vec[0], e.vec[1] = nil, nil // do not keep the caller's payload alive
	if err != nil {
		if n > 0 {
			e.wbroken = true
		}
		if serr := e.sendStateLocked(); serr != nil {
			return serr
		}
		return fmt.Errorf("tcp: rank %d -> rank %d: send: %w: %w", e.self, e.peer, transport.ErrPeerLost, err)
	}
	return nil
}

// TrySend implements transport.TrySender: Send if the write lock is free
// and the socket takes the start of the frame at once; a frame the kernel
// takes only in part is finished with a blocking write (that needs little
// room: the socket just took bytes).
func (e *endpoint) TrySend(h wire.Header, payload []byte) (bool, error) {
	if len(payload) > wire.MaxPayload {
		return false, fmt.Errorf("tcp: rank %d -> rank %d: send: payload of %d bytes exceeds %d",
			e.self, e.peer, len(payload), wire.MaxPayload)
	}
	h.Len = uint32(len(payload))
	if !e.wmu.TryLock() {
		return false, nil
	}
	defer e.wmu.Unlock()
	if err := e.sendStateLocked(); err != nil {
		return false, err
	}
	h.Encode(e.hdr[:])
	e.vec[0], e.vec[1] = e.hdr[:], payload
	defer func() { e.vec[0], e.vec[1] = nil, nil }()
	iov := e.vec[:]
	var n int
	var werr error
	if err := e.s.Control(func(fd uintptr) {
		n, werr = unix.Writev(int(fd), iov) // one attempt: never wait here
	}); err != nil {
		werr = err
	}
	switch {
	case werr == unix.EAGAIN && n <= 0:
		return false, nil
	case werr != nil && n <= 0:
		if serr := e.sendStateLocked(); serr != nil {
			return false, serr
		}
		return false, fmt.Errorf("tcp: rank %d -> rank %d: send: %w: %w", e.self, e.peer, transport.ErrPeerLost, werr)
	}
	// The kernel took n bytes; write the rest, blocking if need be.
	if rest := consume(iov, n); len(rest) > 0 {
		if _, err := e.s.writev(rest); err != nil {
			e.wbroken = true
			return true, fmt.Errorf("tcp: rank %d -> rank %d: send: %w: %w", e.self, e.peer, transport.ErrPeerLost, err)
		}
	}
	return true, nil
}

// sendStateLocked says why nothing may be sent, or nil.
func (e *endpoint) sendStateLocked() error {
	switch {
	case e.closing.Load():
		return fmt.Errorf("tcp: rank %d -> rank %d: send: %w", e.self, e.peer, transport.ErrClosed)
	case e.lost.Load() != nil:
		return e.lost.Load().err
	case e.peerBye.Load() || e.byeSent:
		return fmt.Errorf("tcp: rank %d -> rank %d: send: %w", e.self, e.peer, ErrPeerClosed)
	case e.wbroken:
		return fmt.Errorf("tcp: rank %d -> rank %d: send: stream broken by an aborted send: %w", e.self, e.peer, transport.ErrPeerLost)
	}
	return nil
}

// sendByeLocked writes our goodbye and shuts our write side, so the peer
// reads the goodbye and then EOF. It is a no-op if that was done already or
// if the stream cannot carry a frame any more.
func (e *endpoint) sendByeLocked() error {
	if e.byeSent || e.wbroken || e.lost.Load() != nil {
		return nil
	}
	e.byeSent = true
	var b [wire.HeaderSize]byte
	h := wire.Header{Kind: wire.KindBye}
	h.Encode(b[:])
	e.s.SetWriteDeadline(time.Now().Add(lingerTimeout))
	n, err := e.s.writev([][]byte{b[:]})
	if err != nil {
		if n > 0 {
			e.wbroken = true
		}
		return fmt.Errorf("tcp: rank %d -> rank %d: close: sending goodbye: %w", e.self, e.peer, err)
	}
	return e.s.CloseWrite()
}

// Close implements transport.Endpoint: it sends a goodbye after the frames
// of the Sends that have returned, then waits (at most lingerTimeout) for
// the peer to answer with its own goodbye or to close, meanwhile still
// handing arriving frames to the handler, and releases the connection.
// When it returns, HandleFrame is not called again for this peer (a
// PeerLost call already under way may still be running). A Send
// blocked at that moment is aborted and returns an error wrapping
// transport.ErrClosed; if it had written part of its frame, no goodbye can
// follow it and the peer, unless it is closing too, reports this side lost.
// Close returns an error only if the goodbye could not be sent. It is safe
// to call more than once, concurrently with Send, and from PeerLost; it
// must not be called from HandleFrame for the same peer, since it waits
// for the goroutine that runs it.
func (e *endpoint) Close() error {
	e.closeOnce.Do(func() { e.closeErr = e.close() })
	return e.closeErr
}

func (e *endpoint) close() error {
	e.closing.Store(true)
	if !e.wmu.TryLock() {
		// A Send holds the lock, perhaps blocked on a peer that does not
		// read. Waiting for it could take forever, so cut it off.
		e.s.SetWriteDeadline(aLongTimeAgo)
		e.wmu.Lock()
	}
	var err error
	switch {
	case e.wbroken:
		err = fmt.Errorf("tcp: rank %d -> rank %d: close: goodbye not sent: a send was aborted mid-frame", e.self, e.peer)
	case e.t.life.Killed.Load():
	default:
		err = e.sendByeLocked()
	}
	e.wmu.Unlock()
	if err != nil {
		// Without our goodbye the peer will not close in answer; do not
		// linger for it.
		e.s.Close()
	}
	if e.lost.Load() != nil {
		// The receive goroutine is done with the connection and reports
		// or has reported the loss; perhaps this Close is called from
		// that PeerLost call, so do not wait for it.
		e.s.Close()
		return err
	}
	timer := time.NewTimer(lingerTimeout)
	select {
	case <-e.done:
	case <-timer.C:
		e.kill()
		<-e.done
	}
	timer.Stop()
	e.s.Close()
	return err
}

// kill closes the connection without a goodbye (Transport.Close).
func (e *endpoint) kill() {
	e.closing.Store(true)
	e.killed.Store(true)
	e.s.Close()
	e.kick()
}

// payloadErr is the error Body methods return when the stream fails under
// them; the same error then ends the receive loop.
func (e *endpoint) payloadErr(err error) error {
	return fmt.Errorf("tcp: rank %d <- rank %d: reading payload: %w: %w", e.self, e.peer, transport.ErrPeerLost, streamErr(err))
}

// receive is the connection's receive goroutine.
func (e *endpoint) receive() {
	defer e.t.life.WG.Done()
	defer close(e.done)
	err := e.receiveLoop()
	// Keep the token for good: no caller reads this stream any more, so
	// once done is closed no HandleFrame runs for this peer.
	e.grab()
	e.t.unpoll(e)
	if err == nil {
		// Orderly end: the peer said goodbye and closed its side. Answer
		// with ours (unless our Close already did) so its Close returns
		// without waiting for our runtime to close this endpoint.
		// Under the write lock, so a concurrent Close does not write its
		// goodbye into the connection closed here: byeSent tells it there
		// is nothing left to send.
		e.wmu.Lock()
		if !e.closing.Load() {
			e.sendByeLocked()
		}
		e.byeSent = true
		e.s.Close()
		e.wmu.Unlock()
		return
	}
	if e.closing.Load() {
		// Our own Close or kill ended the stream; the peer is not lost.
		e.s.Close()
		return
	}
	lost := err
	if !errors.Is(err, transport.ErrPeerLost) {
		lost = fmt.Errorf("tcp: rank %d <- rank %d: receive: %w: %w", e.self, e.peer, transport.ErrPeerLost, err)
	}
	e.lost.Store(&lostErr{lost})
	e.s.Close()
	e.h.PeerLost(e.peer, lost)
}

// streamErr names an end of stream inside a frame for what it is.
func streamErr(err error) error {
	if err == io.EOF {
		return errTruncated
	}
	return err
}

var (
	errNoBye       = errors.New("connection closed without goodbye")
	errTruncated   = errors.New("connection closed mid-frame")
	errHandlerFail = errors.New("handler failed")
)

// receiveLoop reads and dispatches frames until the stream ends. It returns
// nil for an orderly end (goodbye, then EOF) and otherwise why it ended.
func (e *endpoint) receiveLoop() error {
	rd := &e.rd
	for {
		if err := e.turn(); err != nil {
			if err == io.EOF {
				switch {
				case rd.buffered() > 0:
					return errTruncated
				case e.peerBye.Load():
					return nil
				}
				return errNoBye
			}
			return streamErr(err)
		}
		if err := e.frame(); err != nil {
			return err
		}
	}
}

// frame decodes the header buffered in rd and dispatches its frame; the
// caller holds the token.
func (e *endpoint) frame() error {
	rd, b := &e.rd, &e.body
	h, err := wire.Decode(rd.buf[rd.r:rd.w])
	if err != nil {
		return err
	}
	rd.r += wire.HeaderSize
	if bye, err := transport.Goodbye(h, &e.peerBye); err != nil || bye {
		return err
	}
	b.Start(int(h.Len))
	if herr := e.h.HandleFrame(e.peer, h, b); herr != nil {
		if err := b.Err(); err != nil {
			// The handler failed because the payload could not be
			// read: the stream is the cause, not the handler.
			return err
		}
		return fmt.Errorf("%w: %w", errHandlerFail, herr)
	}
	if err := b.Finish(); err != nil {
		return streamErr(err)
	}
	return nil
}

package transport

import (
	"errors"
	"sync/atomic"

	"github.com/gorun-hpc/gorun/internal/wire"
)

// A Stream is the receive side of a byte-stream transport (a socket, a
// ring) as StreamBody reads a payload from it.
type Stream interface {
	// ReadFull fills dst from the stream, waiting as needed.
	ReadFull(dst []byte) error
	// Discard drops the next n bytes of the stream.
	Discard(n int) error
}

// A Lender is a Stream that can lend the next n bytes in place (consuming
// them), valid until the next read, so Bytes costs no copy. ok is false
// when it cannot (n larger than its buffer).
type Lender interface {
	Lend(n int) (p []byte, ok bool, err error)
}

var (
	errBodySize     = errors.New("destination size differs from payload")
	errBodyConsumed = errors.New("payload already read")
	errBodyExpired  = errors.New("body used after HandleFrame returned")
)

// scratchKeep is the largest Bytes scratch buffer kept between frames;
// larger payloads get a buffer of their own that is dropped afterwards, so
// one huge frame does not pin memory forever.
const scratchKeep = 1 << 20

// StreamBody is the Body of the frame being handled on a byte-stream
// transport: one per connection, reused for every frame, so handing it to
// the Handler costs no allocation. Only the connection's receive goroutine
// uses it.
type StreamBody struct {
	// Stream is where payloads are read from.
	Stream Stream
	// Wrap turns a read error into the one handlers see (it should wrap
	// ErrPeerLost and name the peer).
	Wrap func(error) error

	n       int    // payload size
	left    int    // payload bytes still in the stream
	got     []byte // the payload, once Bytes returned it
	live    bool   // inside HandleFrame
	err     error  // a read failed: the connection is broken
	scratch []byte // Bytes buffer for payloads the stream cannot lend
}

// Start makes b the body of a frame with an n-byte payload.
func (b *StreamBody) Start(n int) {
	b.n, b.left, b.got, b.live, b.err = n, n, nil, true, nil
}

// Finish skips what the handler did not read and invalidates the body. It
// returns the read error that broke the stream, if any.
func (b *StreamBody) Finish() error {
	b.live = false
	b.got = nil
	if b.err != nil {
		return b.err
	}
	if b.left > 0 {
		if err := b.Stream.Discard(b.left); err != nil {
			return err
		}
		b.left = 0
	}
	if cap(b.scratch) > scratchKeep {
		b.scratch = nil
	}
	return nil
}

// Err is the read error that broke the stream while the handler read the
// payload, or nil.
func (b *StreamBody) Err() error { return b.err }

func (b *StreamBody) fail(err error) error {
	b.err = b.Wrap(err)
	return b.err
}

// Len implements Body.
func (b *StreamBody) Len() int { return b.n }

// ReadInto implements Body: it reads straight from the stream into dst.
func (b *StreamBody) ReadInto(dst []byte) error {
	switch {
	case !b.live:
		return errBodyExpired
	case len(dst) != b.n:
		return errBodySize
	case b.got != nil:
		copy(dst, b.got)
		return nil
	case b.left != b.n:
		return errBodyConsumed
	case b.err != nil:
		return b.err
	}
	b.left = 0
	if err := b.Stream.ReadFull(dst); err != nil {
		return b.fail(err)
	}
	return nil
}

// Bytes implements Body: the payload lent in place by the stream when it
// can, or copied into a buffer of the connection's.
func (b *StreamBody) Bytes() ([]byte, error) {
	switch {
	case !b.live:
		return nil, errBodyExpired
	case b.got != nil:
		return b.got, nil
	case b.left != b.n:
		return nil, errBodyConsumed
	case b.err != nil:
		return nil, b.err
	}
	if l, ok := b.Stream.(Lender); ok {
		p, ok, err := l.Lend(b.n)
		if err != nil {
			b.left = 0
			return nil, b.fail(err)
		}
		if ok {
			b.left = 0
			b.got = p
			return p, nil
		}
	}
	if cap(b.scratch) < b.n {
		b.scratch = make([]byte, b.n)
	}
	p := b.scratch[:b.n:b.n]
	b.left = 0
	if err := b.Stream.ReadFull(p); err != nil {
		return nil, b.fail(err)
	}
	b.got = p
	return p, nil
}

// Goodbye applies the goodbye rules of a byte-stream transport to h, the
// header of an arriving frame: nothing may follow the peer's goodbye, and a
// goodbye carries no payload. It reports whether h is the goodbye, which it
// records in seen.
func Goodbye(h wire.Header, seen *atomic.Bool) (bool, error) {
	if seen.Load() {
		return false, errAfterBye
	}
	if h.Kind != wire.KindBye {
		return false, nil
	}
	if h.Len != 0 {
		return false, errByePayload
	}
	seen.Store(true)
	return true, nil
}

var (
	errAfterBye   = errors.New("frame after goodbye")
	errByePayload = errors.New("goodbye with a payload")
)

package runtime

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors. Every error the package returns from a communication call
// is an *OpError wrapping one of these (or a transport or OS error), so
// errors.Is(err, ErrAborted) works whatever the call.
var (
	// ErrAborted means the world is unusable: a peer died or lost its
	// connection, a rank called Abort, or the watchdog fired. Every
	// pending and later call on every communicator of the world returns
	// it, wrapped with the first cause.
	ErrAborted = errors.New("runtime: aborted")
	// ErrClosed means the communicator (or its world) was closed.
	ErrClosed = errors.New("runtime: communicator closed")
	// ErrInvalid means a bad argument: a rank, tag, root, op, count or
	// buffer that the call cannot accept, or point-to-point on the nil
	// (serial) communicator.
	ErrInvalid = errors.New("runtime: invalid argument")
	// ErrTruncated means a message was larger than the receive buffer
	// (MPI_ERR_TRUNCATE). The receive buffer holds nothing useful; the
	// Status says how large the message was.
	ErrTruncated = errors.New("runtime: message truncated")
)

// NoPeer is the Peer of an OpError for a call that has no single peer.
const NoPeer = -1

// OpError is the error type of the package, in the manner of net.OpError: it
// names the call, the communicator, the calling rank and the peer.
type OpError struct {
	Op   string // the call: "Send", "Recv", "Allreduce", ...
	Comm string // the communicator's name: "world", "world.dup", ...
	Rank int    // the calling rank in Comm
	Peer int    // the peer or root in Comm, or NoPeer
	Err  error  // the cause; wraps one of the sentinels where one applies
}

func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("runtime: ")
	b.WriteString(e.Op)
	b.WriteString(" on ")
	b.WriteString(e.Comm)
	b.WriteString(" rank ")
	b.WriteString(strconv.Itoa(e.Rank))
	if e.Peer != NoPeer {
		b.WriteString(" peer ")
		b.WriteString(strconv.Itoa(e.Peer))
	}
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "runtime: "))
	return b.String()
}

func (e *OpError) Unwrap() error { return e.Err }

// invalidError is an argument error: it wraps ErrInvalid and says which
// argument and why.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return "invalid argument: " + e.msg }
func (e *invalidError) Is(t error) bool {
	return t == ErrInvalid
}

func errInvalid(msg string) error { return &invalidError{msg} }

// truncError reports a message that did not fit.
type truncError struct{ got, room int }

func (e *truncError) Error() string {
	return "message truncated: " + strconv.Itoa(e.got) + " bytes arrived for a buffer of " + strconv.Itoa(e.room)
}
func (e *truncError) Is(t error) bool { return t == ErrTruncated }

// opErr wraps err for the public boundary, once.
func (c *Comm) opErr(op string, peer int, err error) error {
	if err == nil {
		return nil
	}
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	name, rank := "serial", 0
	if c != nil {
		name, rank = c.name, c.rank
	}
	return &OpError{Op: op, Comm: name, Rank: rank, Peer: peer, Err: err}
}

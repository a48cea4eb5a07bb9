// Package transport defines the line between message semantics and bytes.
//
// A transport moves ordered, reliable, framed messages (a wire.Header plus a
// payload) between two ranks. It knows nothing of communicators, tags,
// matching, collectives or windows: all of that lives in the runtime package
// above it, the way Open MPI's PML sits on its BTLs and MPICH's CH4 core sits
// on its netmods. Implementations live in subpackages (inproc, tcp, and later
// shm) and all pass the conformance suite in transporttest.
package transport

import (
	"errors"

	"github.com/gorun-hpc/gorun/internal/wire"
)

// ErrClosed is returned by Send on an endpoint that was closed locally.
var ErrClosed = errors.New("transport: endpoint closed")

// ErrPeerLost is the error a transport reports (wrapped, through
// Handler.PeerLost and Send) when the connection to a peer broke without an
// orderly goodbye: the peer died, or the network failed.
var ErrPeerLost = errors.New("transport: peer lost")

// An Endpoint is an ordered, reliable channel to one peer.
//
// Multiple goroutines may call Send simultaneously; the frames of concurrent
// Sends never interleave, and the frames sent by one goroutine arrive in the
// order it sent them. Close makes blocked and later Sends return an error.
type Endpoint interface {
	// Send transmits one frame: h with h.Len set to len(payload) by Send
	// itself. It returns once payload may be reused by the caller. It
	// blocks while the transport applies back-pressure.
	Send(h wire.Header, payload []byte) error

	// Close says goodbye to the peer (a KindBye frame, so the peer does not
	// report it lost) and releases the endpoint. Frames already passed to
	// Send are delivered first.
	Close() error
}

// A TrySender is an Endpoint that can send a frame only if that does not
// block: from a receive goroutine (a handler's reply) a blocking send could
// wait for a peer that waits for this goroutine.
type TrySender interface {
	// TrySend sends h and payload as Send does if it can without waiting
	// (for the write lock, or for room in the channel), and reports
	// whether it did. false with a nil error means nothing was sent.
	TrySend(h wire.Header, payload []byte) (bool, error)
}

// Body is the payload of one received frame. It is valid only during the
// Handler.HandleFrame call it is passed to; whatever the handler does not
// read is discarded by the transport after the call returns.
type Body interface {
	// Len is the payload size in bytes.
	Len() int
	// ReadInto copies the whole payload into dst, which must be exactly
	// Len() bytes. Transports that read from a stream read straight into
	// dst, so a matched receive costs no intermediate copy.
	ReadInto(dst []byte) error
	// Bytes returns the payload in transport-owned memory that is valid
	// until HandleFrame returns.
	Bytes() ([]byte, error)
}

// A Handler receives the frames of one or more endpoints.
//
// HandleFrame is called from the transport's receive goroutine (or, for a
// Poller, from a caller inside Poll), one frame at a time and in order for
// each peer. It must not block on anything that can
// wait for a frame from the same peer (for example, a Send that waits for
// the peer to read); sends that may block belong on another goroutine. An
// error returned by HandleFrame breaks the connection and is reported
// through PeerLost.
//
// PeerLost is called at most once per peer, when its connection ends
// without a goodbye; err wraps ErrPeerLost or the decode error that broke
// it. It is not called after a local Close.
type Handler interface {
	HandleFrame(from int, h wire.Header, body Body) error
	PeerLost(from int, err error)
}

// BytesBody is a Body over a byte slice, for transports whose payload is
// already in memory.
type BytesBody []byte

// Len implements Body.
func (b BytesBody) Len() int { return len(b) }

// ReadInto implements Body.
func (b BytesBody) ReadInto(dst []byte) error {
	if len(dst) != len(b) {
		return errors.New("transport: ReadInto: destination size differs from payload")
	}
	copy(dst, b)
	return nil
}

// Bytes implements Body.
func (b BytesBody) Bytes() ([]byte, error) { return b, nil }

// A Poller is a transport whose waiting callers may receive for themselves.
// A caller blocked on a result (the runtime's Request.Wait) would otherwise
// park until a receive goroutine hands it the frame that completes it; a
// hand-off between goroutines costs more than a whole message on shared
// memory. Instead the caller brackets its wait with BeginPoll and EndPoll and
// calls Poll in between, which runs HandleFrame on the caller's goroutine for
// the frames that have arrived. The transport's receive goroutines stand
// aside while callers poll, and take over again when EndPoll says the caller
// is going to sleep.
//
// All three methods are safe for concurrent use by any number of callers.
// A caller that polls must not hold a lock that HandleFrame takes.
type Poller interface {
	// BeginPoll announces a caller that will call Poll until EndPoll.
	BeginPoll()
	// Poll hands every frame that has arrived, on every channel no other
	// goroutine is reading, to the Handler on the calling goroutine, and
	// reports whether it handled any. It does not wait for frames to
	// arrive; it may wait for the rest of a frame whose start it read.
	Poll() bool
	// EndPoll ends what BeginPoll began. sleeping says the caller is going
	// to park rather than returning with its result, so the receive
	// goroutines must take over at once rather than after a short linger.
	EndPoll(sleeping bool)
}

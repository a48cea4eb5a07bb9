// Package am is the seam between package runtime and the layers above it
// that need active messages, such as package rma: a service opened on a
// communicator has the frames addressed to it (wire.KindAM, Context = the
// communicator's context) handed to it by the runtime's receive path, on
// the transport's receive goroutine, so it is served while the application
// computes and never calls the library (strong progress). It sends its own
// frames to the communicator's ranks over the same ordered channels as
// everything else.
//
// The package holds only the contract. Package runtime implements it and
// sets Open when it is initialised; users of the module never see it.
package am

import (
	"errors"

	"github.com/gorun-hpc/gorun/internal/shmsync"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// Body is the payload of one received frame (the transports' Body, seen
// from above the runtime): valid only during the Handler call.
type Body interface {
	// Len is the payload size in bytes.
	Len() int
	// ReadInto copies the whole payload into dst, which must be exactly
	// Len() bytes, straight from the transport where it can.
	ReadInto(dst []byte) error
	// Bytes returns the payload in memory valid until the Handler returns.
	Bytes() ([]byte, error)
}

// Handler handles one active message from rank from of the port's
// communicator. It runs on a transport receive goroutine, or on a caller
// that polls: it must read what it needs of body before it returns, must
// not block on anything that waits for a frame (send replies with
// Port.SendAsync), and breaks the connection to from if it returns an
// error. Messages from one rank reach it in the order they were sent.
type Handler func(from int, h wire.Header, body Body) error

// A Port is a service's door on one communicator.
//
// Its methods may be called from any goroutine. Send and SendAsync fail
// once the world has failed or the port is closed.
type Port interface {
	// Rank and Size are the communicator's.
	Rank() int
	Size() int

	// Send sends h and payload to rank to as an active message of this
	// service (Send sets Kind, Context and Src), after every frame this
	// goroutine sent to that rank before. It returns when payload may be
	// reused, and may block while the transport applies back-pressure, so a
	// Handler uses SendAsync.
	Send(to int, h wire.Header, payload []byte) error

	// SendAsync is Send from a goroutine of its own, for handlers; the
	// port owns payload from now on. Frames sent with SendAsync may
	// overtake each other.
	SendAsync(to int, h wire.Header, payload []byte)

	// Await blocks until done reports true, which a handler makes happen
	// and then signals by closing (or sending on) wake. It polls first,
	// as the runtime's own waits do, so a reply on shared memory needs no
	// goroutine hand-off. It returns the world's failure if the world fails
	// first.
	Await(done func() bool, wake <-chan struct{}) error

	// WaitPolicy is how a wait on node-shared memory should poll before
	// it sleeps (shmsync.Bell.Await): the world's, which yields the CPU
	// between polls when the node has more ranks than CPUs.
	WaitPolicy() shmsync.Policy

	// Err is the world's failure, nil while it is healthy. Failed is
	// closed when it fails.
	Err() error
	Failed() <-chan struct{}

	// Abort fails the whole job with cause, as runtime's Comm.Abort does.
	Abort(cause error)

	// Close stops the delivery of the service's frames: later ones are
	// dropped (a service closes after the messages it waits for, so what
	// comes later is what nobody waits for). It returns when no handler
	// call is in flight, so the service may free what its handler touches.
	// It must not be called from the handler. It is idempotent.
	Close() error
}

// ErrNotRuntime is returned by Open for a communicator it does not know.
var ErrNotRuntime = errors.New("am: not a communicator of package runtime")

// Open opens the service of communicator comm (a *runtime.Comm, which the
// service must have to itself, such as a Dup) with handler h. Package
// runtime sets it. It is not collective; every rank opens its own port
// before any rank sends to it (a collective call on comm in between
// ensures that), and frames for a port not open yet are an error.
var Open func(comm any, h Handler) (Port, error)

package bootstrap

import (
	"errors"
	"fmt"
)

// EventKind says what happened to a rank, as seen by the coordinator.
type EventKind int

// Event kinds.
const (
	// EventAbort: the rank called Client.Abort; Event.Msg is its cause.
	EventAbort EventKind = iota + 1
	// EventFinalized: the rank called Client.Close.
	EventFinalized
	// EventLost: the rank's connection dropped without Close (the process
	// died, or closed the socket behind the client's back), or the rank
	// broke the protocol. Event.Msg says which.
	EventLost
	// EventFailing: the rank's runtime failed because of another rank (a
	// lost peer, a peer's abort) and said so before it ends; Event.Msg is
	// the cause it saw. The launcher uses it to blame the rank that failed
	// first rather than the ranks that failed because of it.
	EventFailing
)

func (k EventKind) String() string {
	switch k {
	case EventAbort:
		return "abort"
	case EventFinalized:
		return "finalized"
	case EventLost:
		return "lost"
	case EventFailing:
		return "failing"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one rank's change of state, delivered by Coordinator.Events.
type Event struct {
	Rank int
	Kind EventKind
	Msg  string // abort cause, or why the connection counts as lost
}

func (e Event) String() string {
	if e.Msg == "" {
		return fmt.Sprintf("rank %d %s", e.Rank, e.Kind)
	}
	return fmt.Sprintf("rank %d %s: %s", e.Rank, e.Kind, e.Msg)
}

// RankError is the cause of a failed Exchange when another rank made the
// exchange impossible: it aborted, was lost, or closed its client before
// joining. Use errors.As to get it from Exchange's error.
type RankError struct {
	Rank int       // the rank at fault
	Kind EventKind // what it did
	Msg  string    // its abort cause, or how it was lost
}

func (e *RankError) Error() string {
	switch e.Kind {
	case EventAbort:
		return fmt.Sprintf("rank %d aborted the job: %s", e.Rank, e.Msg)
	case EventFinalized:
		return fmt.Sprintf("rank %d closed its coordinator connection before joining", e.Rank)
	case EventLost:
		return fmt.Sprintf("rank %d was lost: %s", e.Rank, e.Msg)
	}
	return fmt.Sprintf("rank %d: %s: %s", e.Rank, e.Kind, e.Msg)
}

// ErrCoordLost is returned (wrapped) by Exchange and Abort once the
// connection to the coordinator dropped without Close: gorun is gone, and
// the rank should exit (see Client.Lost).
var ErrCoordLost = errors.New("bootstrap: lost the connection to the coordinator (did gorun exit?)")

// ErrClosed is returned by Client methods called after Close.
var ErrClosed = errors.New("bootstrap: client closed")

package patterns

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gorun-hpc/gorun/runtime"
)

// OpError is the error type of the package, in the manner of net.OpError
// and runtime.OpError: it names the call, the communicator and the calling
// rank, and wraps the cause, which matches one of the runtime's sentinels
// where one applies: runtime.ErrInvalid for a bad argument (on any rank of
// a collective call: every rank returns it, with the same cause),
// runtime.ErrClosed after Close, runtime.ErrAborted when the job failed.
type OpError struct {
	Op   string // "NewShared", "Set", "Lock", "Write", ...
	Comm string // the object's communicator
	Rank int    // the calling rank
	Err  error
}

func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("patterns: ")
	b.WriteString(e.Op)
	b.WriteString(" on ")
	b.WriteString(e.Comm)
	b.WriteString(" rank ")
	b.WriteString(strconv.Itoa(e.Rank))
	b.WriteString(": ")
	msg := e.Err.Error()
	for _, p := range []string{"patterns: ", "runtime: ", "rma: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	b.WriteString(msg)
	return b.String()
}

func (e *OpError) Unwrap() error { return e.Err }

// opErr wraps err for the public boundary, once.
func opErr(op string, c *runtime.Comm, err error) error {
	if err == nil {
		return nil
	}
	var oe *OpError
	if errors.As(err, &oe) && oe.Op == op {
		return err
	}
	return &OpError{Op: op, Comm: c.Name(), Rank: c.Rank(), Err: err}
}

// invalid is an argument error: it matches runtime.ErrInvalid.
type invalid struct{ msg string }

func (e *invalid) Error() string        { return "invalid argument: " + e.msg }
func (e *invalid) Is(target error) bool { return target == runtime.ErrInvalid }

func errInvalid(format string, args ...any) error { return &invalid{fmt.Sprintf(format, args...)} }

// errClosed is a call on a closed object.
func errClosed(what string) error { return fmt.Errorf("%s is closed: %w", what, runtime.ErrClosed) }

// remote is an error found on another rank of a collective call, carried
// here as its text (so every rank returns the same words) and its kind.
type remote struct {
	msg  string
	kind int64
}

// Kinds of a remote error: which sentinel it matches.
const (
	kindOther int64 = iota
	kindInvalid
	kindClosed
	kindAborted
)

func kindOf(err error) int64 {
	switch {
	case errors.Is(err, runtime.ErrInvalid):
		return kindInvalid
	case errors.Is(err, runtime.ErrClosed):
		return kindClosed
	case errors.Is(err, runtime.ErrAborted):
		return kindAborted
	}
	return kindOther
}

func (e *remote) Error() string { return e.msg }
func (e *remote) Is(target error) bool {
	switch e.kind {
	case kindInvalid:
		return target == runtime.ErrInvalid
	case kindClosed:
		return target == runtime.ErrClosed
	case kindAborted:
		return target == runtime.ErrAborted
	}
	return false
}

package rma

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gorun-hpc/gorun/runtime"
)

// OpError is the error type of the package, in the manner of net.OpError
// and runtime.OpError: it names the call, the window's communicator, the
// calling rank and the target. It wraps the cause, which matches one of
// the runtime's sentinels where one applies: runtime.ErrInvalid for a bad
// argument or a call outside an epoch, runtime.ErrClosed after Close,
// runtime.ErrAborted when the job failed.
type OpError struct {
	Op     string // "Put", "Lock", "Fence", ...
	Comm   string // the window's communicator
	Rank   int    // the calling rank
	Target int    // the target rank, or NoTarget
	Err    error
}

// NoTarget is the Target of an OpError for a call without one target.
const NoTarget = -1

func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("rma: ")
	b.WriteString(e.Op)
	b.WriteString(" on ")
	b.WriteString(e.Comm)
	b.WriteString(" rank ")
	b.WriteString(strconv.Itoa(e.Rank))
	if e.Target != NoTarget {
		b.WriteString(" target ")
		b.WriteString(strconv.Itoa(e.Target))
	}
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(strings.TrimPrefix(e.Err.Error(), "rma: "), "runtime: "))
	return b.String()
}

func (e *OpError) Unwrap() error { return e.Err }

// invalid is an argument error: it matches runtime.ErrInvalid.
type invalid struct{ msg string }

func (e *invalid) Error() string        { return "invalid argument: " + e.msg }
func (e *invalid) Is(target error) bool { return target == runtime.ErrInvalid }

func errInvalid(format string, args ...any) error { return &invalid{fmt.Sprintf(format, args...)} }

// opErr wraps err for the public boundary, once.
func (w *winBase) opErr(op string, target int, err error) error {
	if err == nil {
		return nil
	}
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	return &OpError{Op: op, Comm: w.name, Rank: w.rank, Target: target, Err: err}
}

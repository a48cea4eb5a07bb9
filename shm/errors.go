package shm

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Sentinel errors. Errors returned by this package wrap one of these, a
// [syscall.Errno], or both, so callers branch with [errors.Is].
var (
	// ErrNotSupported means the system lacks what a segment needs: no
	// memfd_create and no O_TMPFILE, no /dev/shm (or Options.Dir), no
	// fallocate, no MFD_HUGETLB, or not Linux. Transport selection reacts to
	// it by falling back to sockets.
	ErrNotSupported = errors.New("shm: not supported")

	// ErrInvalid means a bad argument: a size of 0 or less, a name with a
	// slash, a view out of bounds or misaligned, a futex word not 4-byte
	// aligned.
	ErrInvalid = errors.New("shm: invalid argument")

	// ErrTimeout is returned by [Wait] when the timeout expires. It also
	// matches [os.ErrDeadlineExceeded] and has a Timeout method returning
	// true, as net.Error timeouts do.
	ErrTimeout error = timeoutError{}
)

type timeoutError struct{}

func (timeoutError) Error() string        { return "shm: wait timed out" }
func (timeoutError) Timeout() bool        { return true }
func (timeoutError) Is(target error) bool { return target == os.ErrDeadlineExceeded }

// wrapError carries a complete message and the errors it wraps, so that a
// message reads "shm: size must be positive, got 0" rather than repeating
// the sentinel's text after a colon.
type wrapError struct {
	msg  string
	errs []error
}

func (e *wrapError) Error() string   { return e.msg }
func (e *wrapError) Unwrap() []error { return e.errs }

// errorf formats a message prefixed with "shm: " that wraps errs.
func errorf(errs []error, format string, args ...any) error {
	return &wrapError{msg: "shm: " + fmt.Sprintf(format, args...), errs: errs}
}

func invalidf(format string, args ...any) error {
	return errorf([]error{ErrInvalid}, format, args...)
}

// formatBytes renders n in binary units, as "8 GiB", "64 MiB", "1.5 KiB" or
// "512 B": whole numbers print without a fraction, others with one digit.
func formatBytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 && n > -1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n)/1024, 0
	for (v >= 1024 || v <= -1024) && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		s = s[:len(s)-2]
	}
	return s + " " + units[i:i+1] + "iB"
}

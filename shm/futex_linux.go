package shm

import (
	"math"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futex operations from linux/futex.h; x/sys has only the syscall number.
// FUTEX_PRIVATE_FLAG (128) is deliberately absent: private futexes are keyed
// by this process's address space, so a waiter in another process that maps
// the same page would never be woken.
const (
	futexWait = 0
	futexWake = 1
)

// futex is the raw call. Syscall6, unlike RawSyscall6, tells the scheduler
// the thread may block, so a waiting goroutine costs an OS thread but not a P.
func futex(addr *uint32, op int, val uint32, ts *unix.Timespec) (int, unix.Errno) {
	r, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), uintptr(op), uintptr(val),
		uintptr(unsafe.Pointer(ts)), 0, 0)
	return int(r), e
}

// Wait blocks while *addr == val, until a [Wake] on the same word from any
// process mapping it, or until timeout. A timeout of 0 or less means no
// limit; callers that compute a remaining time must treat expiry themselves.
//
// Wait returns nil when woken and when *addr != val on entry (the kernel
// compares atomically with going to sleep, so a Wake between the caller's
// check and the sleep is never lost). It may also return nil spuriously:
// callers loop, re-reading the word with [sync/atomic]. It returns
// [ErrTimeout] on timeout, and retries when a signal interrupts it. addr must
// be 4-byte aligned; it may point into a segment or into ordinary memory.
func Wait(addr *uint32, val uint32, timeout time.Duration) error {
	if err := checkWord(addr); err != nil {
		return err
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		var ts *unix.Timespec
		if timeout > 0 {
			left := time.Until(deadline)
			if left <= 0 {
				return ErrTimeout
			}
			t := unix.NsecToTimespec(int64(left))
			ts = &t
		}
		switch _, e := futex(addr, futexWait, val, ts); e {
		case 0, unix.EAGAIN: // woken, or *addr != val
			return nil
		case unix.EINTR:
		case unix.ETIMEDOUT:
			return ErrTimeout
		default:
			return os.NewSyscallError("futex_wait", e)
		}
	}
}

// Wake wakes up to n processes or threads blocked in [Wait] on addr and
// returns how many it woke. n above math.MaxInt32 means all. Store the new
// value with [sync/atomic] before calling Wake.
func Wake(addr *uint32, n int) (int, error) {
	if err := checkWord(addr); err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, invalidf("Wake of %d waiters", n)
	}
	n = min(n, math.MaxInt32)
	woken, e := futex(addr, futexWake, uint32(n), nil)
	if e != 0 {
		return 0, os.NewSyscallError("futex_wake", e)
	}
	return woken, nil
}

func checkWord(addr *uint32) error {
	if addr == nil || uintptr(unsafe.Pointer(addr))%4 != 0 {
		return invalidf("futex word %p is not a 4-byte aligned address", addr)
	}
	return nil
}

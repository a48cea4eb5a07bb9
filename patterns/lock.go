package patterns

import (
	"sync"

	"github.com/gorun-hpc/gorun/runtime"
)

// Lock is a mutex across the ranks of a communicator, granted in the order
// requested (pshmem's MPILock). It is held by a rank, not a goroutine:
// goroutines of one rank that share a Lock must serialize their use of it
// themselves.
//
// Lock and Unlock are not collective; Lock blocks until the lock is this
// rank's. The root of the lock keeps the queue's tail in a window that the
// other ranks reach by one-sided operations, which need nothing of the
// root: it may compute without calling the library while others lock and
// unlock. Each Lock has its own message space. Errors: ErrInvalid for
// Lock while holding it or Unlock while not; ErrClosed after Close;
// ErrAborted when the job fails, for instance when the rank this one waits
// behind dies.
type Lock struct {
	comm *runtime.Comm
	mu   sync.Mutex // guards the fields below; Lock holds it while it waits
	q    *queue     // nil with a serial communicator
	held bool
	done bool
}

// NewLock makes a lock on comm whose queue lives on rank root. It is
// collective over comm and blocking. comm may be nil (or of one rank): the
// lock is then this rank's alone. Errors, the same on every rank:
// ErrInvalid for a root out of range or different between ranks;
// ErrAborted.
func NewLock(comm *runtime.Comm, root int) (*Lock, error) {
	l := &Lock{comm: comm}
	q, err := newQueue(comm, root, 0)
	if err != nil {
		return nil, opErr("NewLock", comm, err)
	}
	l.q = q
	return l, nil
}

// Lock waits until this rank holds the lock. It is not collective and
// blocks while other ranks hold or wait for the lock (they get it first).
// Errors: ErrInvalid if this rank holds it already; ErrClosed; ErrAborted
// when the job fails, for instance when the rank ahead in the queue dies.
func (l *Lock) Lock() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.done:
		return opErr("Lock", l.comm, errClosed("the lock"))
	case l.held:
		return opErr("Lock", l.comm, errInvalid("rank %d already holds the lock", l.comm.Rank()))
	}
	if l.q != nil {
		if err := l.q.acquire(); err != nil {
			return opErr("Lock", l.comm, err)
		}
	}
	l.held = true
	return nil
}

// Unlock releases the lock to the rank that asked for it next, if any. It
// is not collective; it may wait briefly for a rank that is joining the
// queue at that moment. Errors: ErrInvalid if this rank does not hold the
// lock; ErrClosed; ErrAborted.
func (l *Lock) Unlock() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.done:
		return opErr("Unlock", l.comm, errClosed("the lock"))
	case !l.held:
		return opErr("Unlock", l.comm, errInvalid("rank %d does not hold the lock", l.comm.Rank()))
	}
	l.held = false
	if l.q != nil {
		return opErr("Unlock", l.comm, l.q.release())
	}
	return nil
}

// Close frees the lock; a rank that holds it releases it first. Close is
// collective over the communicator (it frees a window) and idempotent.
func (l *Lock) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return nil
	}
	l.done = true
	var err error
	if l.held && l.q != nil {
		err = l.q.release()
	}
	l.held = false
	if e := l.q.close(); err == nil {
		err = e
	}
	return opErr("Close", l.comm, err)
}

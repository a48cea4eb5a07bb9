package rma

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/runtime"
)

// Synchronization: the epochs in which operations may be issued, and the
// calls that complete them.

// LockType is the kind of lock of a passive-target epoch.
type LockType uint8

const (
	// Exclusive locks out every other origin's epoch on the target.
	Exclusive LockType = iota + 1
	// Shared admits other shared epochs at once.
	Shared
)

func (l LockType) mode() lockMode {
	if l == Exclusive {
		return lockModeExcl
	}
	return lockModeShared
}

// Assert is a set of assertions a Fence's caller makes about its epochs
// (MPI_MODE_*). They let Fence skip work where they allow it; a false
// assertion makes the results undefined, as in MPI.
type Assert uint8

const (
	NoStore   Assert = 1 << iota // the local window was not stored to since the last Fence
	NoPut                        // the local window will not be the target of Put or Accumulate until the next Fence
	NoPrecede                    // the Fence closes no epoch: no operation was issued since the last one
	NoSucceed                    // the Fence opens no epoch: no operation follows until the next one
)

// Lock opens a passive-target epoch on rank target: an exclusive or shared
// lock of its window memory (MPI_Win_lock). It is not collective. On the
// direct path Lock takes the lock at once, waiting for it; on the message
// path the request rides on the epoch's first operation and Lock returns
// at once, so that lock, operation and unlock cost one round trip. Locks
// order epochs; they are not a mutex for the application's own loads and
// stores (use Exclusive plus Put/Get, or atomics). An origin that waits for
// a lock held by a rank that dies gets ErrAborted with the cause.
// Errors: ErrInvalid for a bad target or lock type, or an epoch already
// open on target; ErrClosed; ErrAborted.
func (w *Win[T]) Lock(target int, lt LockType) error {
	if lt != Exclusive && lt != Shared {
		return w.opErr("Lock", target, errInvalid("lock type %d is neither Exclusive nor Shared", lt))
	}
	return w.opErr("Lock", target, w.lock(target, lt.mode(), false))
}

func (w *winBase) lock(target int, mode lockMode, all bool) error {
	if w.closed.Load() {
		return runtime.ErrClosed
	}
	if uint(target) >= uint(w.size) {
		return errInvalid("target rank %d out of range [0,%d)", target, w.size)
	}
	e := w.epochs[target].Load()
	switch {
	case e&epochLock != 0:
		return errInvalid("rank %d already has a lock epoch on rank %d", w.rank, target)
	case w.fenced.Load() || e&epochStarted != 0:
		return errInvalid("rank %d is in an active-target epoch (Fence or Start) on rank %d", w.rank, target)
	}
	state := uint32(mode)
	if all {
		state |= epochAll
	}
	if !w.directOK[target] {
		w.mu.Lock()
		w.tgt[target] = originTarget{mode: mode}
		w.mu.Unlock()
		w.epochs[target].Store(state)
		return nil
	}
	c := w.ctls[target]
	got := false // ready must stay true once it was (shmsync.Bell)
	ready := func() bool {
		if !got {
			got = tryLock(c.lock, mode)
		}
		return got
	}
	if err := c.bell.Await(ready, w.port.WaitPolicy(), 100*time.Millisecond, func(time.Duration) error { return w.port.Err() }); err != nil {
		return err
	}
	w.epochs[target].Store(state)
	return nil
}

// Unlock closes the passive-target epoch on target (MPI_Win_unlock): every
// operation of the epoch is complete, at the origin and at the target,
// when it returns, and the lock is released. It is not collective.
// Errors: ErrInvalid outside a Lock epoch on target; ErrClosed; ErrAborted.
func (w *Win[T]) Unlock(target int) error {
	return w.opErr("Unlock", target, w.unlock(target, false))
}

func (w *winBase) unlock(target int, all bool) error {
	if uint(target) >= uint(w.size) {
		return errInvalid("target rank %d out of range [0,%d)", target, w.size)
	}
	e := w.epochs[target].Load()
	mode := lockMode(e & epochLock)
	if mode == lockNone || (e&epochAll != 0) != all {
		if all {
			return errInvalid("rank %d has no LockAll epoch on rank %d", w.rank, target)
		}
		return errInvalid("rank %d has no Lock epoch on rank %d", w.rank, target)
	}
	var err error
	if w.directOK[target] {
		c := w.ctls[target]
		queued := unlockWord(c.lock, mode)
		c.bell.Ring()
		if queued {
			w.nudge(target)
		}
	} else {
		var waits []*pend
		if waits, err = w.confirm(target, true); err == nil {
			err = w.waitAll(waits)
		}
		w.mu.Lock()
		w.tgt[target] = originTarget{}
		w.mu.Unlock()
	}
	w.epochs[target].Store(e &^ (epochLock | epochAll))
	return err
}

// nudge tells target that its lock word was released directly while
// remote requests wait (lockQueued).
func (w *winBase) nudge(target int) {
	if target == w.rank {
		w.mgr.retry()
		return
	}
	_ = w.port.Send(target, header(msgRetry, 0, 0, 0, 0), nil)
}

// LockAll opens a shared passive-target epoch on every rank
// (MPI_Win_lock_all), in the manner of Lock. Errors as Lock.
func (w *Win[T]) LockAll() error {
	for t := range w.size {
		if err := w.lock(t, lockModeShared, true); err != nil {
			for u := range t {
				w.unlock(u, true)
			}
			return w.opErr("LockAll", t, err)
		}
	}
	return nil
}

// UnlockAll closes the LockAll epoch (MPI_Win_unlock_all), in the manner
// of Unlock. Errors as Unlock.
func (w *Win[T]) UnlockAll() error {
	var first error
	for t := range w.size {
		if err := w.unlock(t, true); err != nil && first == nil {
			first = w.opErr("UnlockAll", t, err)
		}
	}
	return first
}

// Flush completes every operation this rank issued to target, at the
// origin and at the target, without ending the epoch (MPI_Win_flush): one
// round trip if anything is unconfirmed, nothing otherwise. It is not
// collective. Errors: ErrClosed; ErrAborted.
func (w *Win[T]) Flush(target int) error {
	if target < 0 || target >= w.size {
		return w.opErr("Flush", target, errInvalid("target rank %d out of range [0,%d)", target, w.size))
	}
	if w.directOK[target] {
		if w.closed.Load() {
			return w.opErr("Flush", target, runtime.ErrClosed)
		}
		return w.opErr("Flush", target, w.port.Err()) // complete already
	}
	waits, err := w.confirm(target, false)
	if err == nil {
		err = w.waitAll(waits)
	}
	return w.opErr("Flush", target, err)
}

// FlushAll is Flush on every target (MPI_Win_flush_all).
func (w *Win[T]) FlushAll() error {
	return w.opErr("FlushAll", NoTarget, w.flushAll())
}

// FlushLocal completes this rank's operations to target at the origin
// (MPI_Win_flush_local): the data of its Gets is here, and (as always with
// Go's copying sends) its Puts' buffers may be reused. Errors as Flush.
func (w *Win[T]) FlushLocal(target int) error {
	if target < 0 || target >= w.size {
		return w.opErr("FlushLocal", target, errInvalid("target rank %d out of range [0,%d)", target, w.size))
	}
	w.mu.Lock()
	waits := slices.Clone(w.tgt[target].pending)
	w.mu.Unlock()
	return w.opErr("FlushLocal", target, w.waitAll(waits))
}

// FlushLocalAll is FlushLocal on every target (MPI_Win_flush_local_all).
func (w *Win[T]) FlushLocalAll() error {
	for t := range w.size {
		if err := w.FlushLocal(t); err != nil {
			return err
		}
	}
	return nil
}

// Sync makes this rank's loads and stores of window memory and the
// window's operations visible to each other (MPI_Win_sync): a full memory
// barrier. In the unified model of this package every path writes the one
// copy of the memory, so it is all Sync has to do.
func (w *Win[T]) Sync() error {
	syncWord.Add(1) // seq-cst read-modify-write: a full barrier
	return nil
}

// syncWord is what Sync's barrier writes.
var syncWord atomic.Uint64

// Fence closes the current active-target epoch and opens the next, on every
// rank of the window (MPI_Win_fence): every operation issued before it, by
// any rank, is complete at its target when Fence returns, and loads and
// stores before it happen before those after it on every rank. With
// NoSucceed it opens no epoch.
//
// Fence is collective over the window's communicator and blocking.
// Errors: ErrInvalid if a lock epoch is open; ErrClosed; ErrAborted.
func (w *Win[T]) Fence(a Assert) error {
	if w.closed.Load() {
		return w.opErr("Fence", NoTarget, runtime.ErrClosed)
	}
	for t := range w.size {
		if w.epochs[t].Load()&epochLock != 0 {
			return w.opErr("Fence", t, errInvalid("rank %d has a lock epoch open on rank %d", w.rank, t))
		}
	}
	err := w.flushAll()
	if berr := w.comm.Barrier(); err == nil {
		err = berr
	}
	w.fenced.Store(a&NoSucceed == 0)
	return w.opErr("Fence", NoTarget, err)
}

// pscwState counts the signals of generalized active-target epochs.
type pscwState struct {
	mu        sync.Mutex
	posts     []int // per target: Post notices received, not yet taken by Start
	completes int   // Complete notices received for the current exposure
	expect    int   // origins of the current exposure epoch, -1 outside one
	wake      chan struct{}
}

// signal changes the state with f and wakes the waiters (handler side).
func (s *pscwState) signal(f func(*pscwState)) {
	s.mu.Lock()
	f(s)
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

// await waits until cond holds (under s.mu) and then runs take.
func (w *winBase) pscwAwait(cond func(*pscwState) bool, take func(*pscwState)) error {
	s := &w.pscw
	for {
		s.mu.Lock()
		if cond(s) {
			take(s)
			s.mu.Unlock()
			return nil
		}
		wake := s.wake
		s.mu.Unlock()
		fired := func() bool {
			select {
			case <-wake:
				return true
			default:
				return false
			}
		}
		if err := w.port.Await(fired, wake); err != nil {
			return err
		}
	}
}

// Post opens an exposure epoch of this rank's window to the ranks of
// group (MPI_Win_post): each of them may Start an access epoch on this
// rank. It is not collective and does not block. Errors: ErrInvalid for a
// rank out of range or an exposure epoch already open; ErrClosed;
// ErrAborted.
func (w *Win[T]) Post(group []int) error {
	if err := w.checkGroup(group); err != nil {
		return w.opErr("Post", NoTarget, err)
	}
	s := &w.pscw
	s.mu.Lock()
	if s.expect >= 0 {
		s.mu.Unlock()
		return w.opErr("Post", NoTarget, errInvalid("rank %d already has an exposure epoch open", w.rank))
	}
	s.expect = len(group)
	s.mu.Unlock()
	for _, o := range group {
		if err := w.port.Send(o, header(msgPost, 0, 0, 0, 0), nil); err != nil {
			return w.opErr("Post", o, err)
		}
	}
	return nil
}

// Start opens an access epoch on the ranks of group (MPI_Win_start),
// waiting until each of them has posted an exposure epoch for this rank.
// It is not collective. Errors: ErrInvalid for a rank out of range or an
// access epoch already open; ErrClosed; ErrAborted.
func (w *Win[T]) Start(group []int) error {
	if err := w.checkGroup(group); err != nil {
		return w.opErr("Start", NoTarget, err)
	}
	w.mu.Lock()
	busy := w.start != nil
	w.mu.Unlock()
	if busy {
		return w.opErr("Start", NoTarget, errInvalid("rank %d already has an access epoch open (Start without Complete)", w.rank))
	}
	for _, t := range group {
		if err := w.pscwAwait(func(s *pscwState) bool { return s.posts[t] > 0 }, func(s *pscwState) { s.posts[t]-- }); err != nil {
			return w.opErr("Start", t, err)
		}
	}
	w.mu.Lock()
	w.start = slices.Clone(group)
	if w.start == nil {
		w.start = []int{}
	}
	w.mu.Unlock()
	for _, t := range group {
		w.epochs[t].Or(epochStarted)
	}
	return nil
}

// Complete closes the access epoch of Start (MPI_Win_complete): every
// operation of it is complete at the origin, and each target learns that
// this rank is done, after all of them. It is not collective. Errors:
// ErrInvalid outside a Start epoch; ErrClosed; ErrAborted.
func (w *Win[T]) Complete() error {
	w.mu.Lock()
	group := w.start
	w.start = nil
	w.mu.Unlock()
	if group == nil {
		return w.opErr("Complete", NoTarget, errInvalid("rank %d has no access epoch from Start", w.rank))
	}
	for _, t := range group {
		w.epochs[t].And(^uint32(epochStarted))
	}
	var waits []*pend
	for _, t := range group {
		w.mu.Lock()
		err := w.sendHeld(t, &w.tgt[t], 0, nil)
		waits = append(waits, w.tgt[t].pending...)
		w.tgt[t].pending = nil
		w.tgt[t].unacked = 0 // msgComplete follows them on the same channel
		if err == nil {
			err = w.port.Send(t, header(msgComplete, 0, 0, 0, 0), nil)
		}
		w.mu.Unlock()
		if err != nil {
			return w.opErr("Complete", t, err)
		}
	}
	return w.opErr("Complete", NoTarget, w.waitAll(waits))
}

// Wait closes the exposure epoch of Post (MPI_Win_wait): it waits until
// every rank of the Post's group has called Complete, after which all
// their operations on this rank's window are applied. It is not
// collective. Errors: ErrInvalid outside a Post epoch; ErrClosed;
// ErrAborted.
func (w *Win[T]) Wait() error {
	s := &w.pscw
	s.mu.Lock()
	n := s.expect
	s.mu.Unlock()
	if n < 0 {
		return w.opErr("Wait", NoTarget, errInvalid("rank %d has no exposure epoch from Post", w.rank))
	}
	return w.opErr("Wait", NoTarget, w.pscwAwait(func(s *pscwState) bool { return s.completes >= n },
		func(s *pscwState) { s.completes -= n; s.expect = -1 }))
}

// Test is Wait without blocking (MPI_Win_test): it reports whether the
// exposure epoch is over, and closes it if so.
func (w *Win[T]) Test() (bool, error) {
	s := &w.pscw
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expect < 0 {
		return false, w.opErr("Test", NoTarget, errInvalid("rank %d has no exposure epoch from Post", w.rank))
	}
	if s.completes < s.expect {
		return false, nil
	}
	s.completes -= s.expect
	s.expect = -1
	return true, nil
}

func (w *winBase) checkGroup(group []int) error {
	if w.closed.Load() {
		return runtime.ErrClosed
	}
	for _, r := range group {
		if r < 0 || r >= w.size {
			return errInvalid("rank %d in the group is out of range [0,%d)", r, w.size)
		}
	}
	return nil
}

package patterns

import (
	goruntime "runtime"
	"time"

	"github.com/gorun-hpc/gorun/rma"
	"github.com/gorun-hpc/gorun/runtime"
)

// queue is a FIFO mutex across the ranks of a communicator: an MCS queue
// lock over a window of int64 words. A rank enqueues with one atomic swap
// on the tail, on the root; if there was a predecessor it writes its rank
// into the predecessor's link and waits for the predecessor's token, a
// message on the queue's own communicator. Releasing, a rank with a
// successor sends it the token; without one it swaps the tail back to
// empty with a compare-and-swap (or, if a successor is just enqueuing,
// waits for its link). So the lock is granted in the order of the swaps,
// and an acquisition costs a constant number of one-sided operations
// whatever the number of waiters. Nothing needs the root to take part: its
// words are reached by the direct path on its node and by its receive
// path elsewhere. A waiter parks in Recv, which spins briefly and then
// sleeps on the transport (a waiter polling its own word with back-off,
// measured, handed over 400 times slower: its sleeps, not the hand-over,
// set the pace).
//
// Every rank's window starts with the queue's words (qTail is used on the
// root only); whoever makes the queue may add words after them. The
// window is in a LockAll epoch for the queue's lifetime. A queue is used
// by one goroutine of its rank at a time (its owner serializes).
type queue struct {
	win  *rma.Win[int64]
	msgs *runtime.Comm // the tokens' communicator, the queue's own
	root int
	rank int
}

// tagToken is the tag of the token on the queue's own communicator.
const tagToken = 1

// The queue's words in every rank's window: ranks are stored plus one, so
// that 0 is nobody.
const (
	qTail  = iota // the last rank enqueued (on the root)
	qLink         // the rank enqueued behind this one
	qWords        // the first word free for the queue's owner
)

// newQueue makes a queue on comm with its tail on root, and extra words
// after the queue's in every rank's window, or nothing on a serial
// communicator. It is collective; a bad root is the same error on every
// rank.
func newQueue(comm *runtime.Comm, root, extra int) (*queue, error) {
	var bad error
	if root < 0 || root >= comm.Size() {
		bad = errInvalid("root %d is out of range [0,%d)", root, comm.Size())
	}
	if err := check(comm, bad, intField("root", root)); err != nil {
		return nil, err
	}
	if comm.Size() == 1 {
		return nil, nil
	}
	msgs, err := comm.Dup()
	if err != nil {
		return nil, err
	}
	win, err := rma.Allocate[int64](msgs, qWords+extra)
	if err == nil {
		if err = win.LockAll(); err != nil {
			win.Close()
		}
	}
	if err != nil {
		msgs.Close()
		return nil, err
	}
	return &queue{win: win, msgs: msgs, root: root, rank: comm.Rank()}, nil
}

// close ends the queue's epoch and frees its window and communicator.
// Collective.
func (q *queue) close() error {
	if q == nil {
		return nil
	}
	err := q.win.UnlockAll()
	if e := q.win.Close(); err == nil {
		err = e
	}
	q.msgs.Close()
	return err
}

// acquire enqueues this rank and returns when it holds the lock.
func (q *queue) acquire() error {
	me := int64(q.rank + 1)
	prev, err := q.win.FetchAndOp(me, q.root, qTail, runtime.Replace)
	if err != nil || prev == 0 {
		return err
	}
	// Link behind the predecessor, then wait for its token.
	if _, err := q.win.FetchAndOp(me, int(prev-1), qLink, runtime.Replace); err != nil {
		return err
	}
	var tok [1]int32
	_, err = runtime.Recv(q.msgs, tok[:], int(prev-1), tagToken)
	return err
}

// release hands the lock to the successor, or leaves it free.
func (q *queue) release() error {
	me := int64(q.rank + 1)
	next, err := q.win.FetchAndOp(0, q.rank, qLink, runtime.NoOp)
	if err != nil {
		return err
	}
	if next == 0 {
		old, err := q.win.CompareAndSwap(0, me, q.root, qTail)
		if err != nil || old == me {
			return err // no successor: the lock is free
		}
		// A successor has swapped the tail but not linked yet.
		for wait := time.Duration(0); next == 0; wait = backoff(wait) {
			if next, err = q.win.FetchAndOp(0, q.rank, qLink, runtime.NoOp); err != nil {
				return err
			}
		}
	}
	if _, err := q.win.FetchAndOp(0, q.rank, qLink, runtime.Replace); err != nil {
		return err
	}
	return runtime.Send(q.msgs, []int32{int32(q.rank)}, int(next-1), tagToken)
}

// backoff waits a little and returns how long to wait the next time: a
// yield for the first few microseconds, then sleeps doubling up to one
// of 320 µs.
func backoff(wait time.Duration) time.Duration {
	switch {
	case wait < 5*time.Microsecond:
		goruntime.Gosched()
		return wait + 250*time.Nanosecond
	case wait < 200*time.Microsecond:
		time.Sleep(wait)
		return wait * 2
	}
	time.Sleep(wait)
	return wait
}

// Package shmsync is how ranks wait for each other on memory they share:
// poll a condition briefly, then sleep on a futex word that whoever changes
// the condition rings, without a system call for the ringer while nobody
// sleeps. The runtime's collectives, and one-sided windows' locks, wait
// this way.
package shmsync

import (
	goruntime "runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gorun-hpc/gorun/shm"
)

// A Bell is a futex word in shared memory and a count of the processes
// that may be asleep on it. Both words must stay mapped while the Bell is
// used; its methods may be called from any goroutine of any process that
// maps them.
//
// The protocol is Dekker's, on sequentially consistent atomics: a ringer
// stores its change to the condition and then loads sleepers; a sleeper
// adds itself to sleepers and then looks at the condition again. So either
// the ringer sees the sleeper and bumps the word (a sleeper whose futex
// value then differs does not sleep, or is woken), or the sleeper sees the
// change and does not sleep. See docs/shmring.md.
type Bell struct {
	sleepers *uint64
	word     *uint32
}

// NewBell returns the bell made of the two words.
func NewBell(sleepers *uint64, word *uint32) Bell { return Bell{sleepers, word} }

// Ring wakes every process asleep on b. Call it after the (atomic) store
// that may make a sleeper's condition true.
func (b Bell) Ring() {
	// seq-cst load: ordered after the caller's store (see Bell).
	if atomic.LoadUint64(b.sleepers) != 0 {
		atomic.AddUint32(b.word, 1)
		shm.Wake(b.word, 1<<30)
	}
}

// Sleep sleeps until b rings or timeout passes, unless ready already
// reports true once this process counts as a sleeper. It may return early
// for no reason; callers loop, calling ready again.
func (b Bell) Sleep(ready func() bool, timeout time.Duration) {
	atomic.AddUint64(b.sleepers, 1) // seq-cst: before the loads in ready
	v := atomic.LoadUint32(b.word)
	if !ready() {
		shm.Wait(b.word, v, timeout)
	}
	atomic.AddUint64(b.sleepers, ^uint64(0))
}

// A Policy is how a waiter spends the time before it sleeps.
type Policy struct {
	// Poll is how long a wait polls without progress before it sleeps.
	Poll time.Duration

	// Yield, if non-nil, is called between polls, every poll after the
	// first few, to give the CPU to whoever the waiter waits for: set when
	// the node has more ranks than CPUs (Yield for processes,
	// runtime.Gosched for goroutine ranks). When nil the waiter polls
	// flat out, letting other goroutines run every 512 polls.
	Yield func()
}

// Pause is the idle step of a polling loop after its i-th fruitless poll
// (i counts from 1).
func (p Policy) Pause(i int) {
	switch {
	case p.Yield != nil:
		if i > 16 {
			p.Yield()
		}
	case i%512 == 0:
		goruntime.Gosched()
	}
}

// Yield gives the calling thread's CPU to another runnable thread, of this
// process or another (sched_yield(2), which cannot fail on Linux), and
// returns when the scheduler runs it again: at once if nothing else waits
// for this CPU.
func Yield() {
	unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
}

// Await waits until ready reports true: it polls for pol.Poll (pausing
// as pol says between polls), then sleeps on b in slices of at most slice.
// ready may be called again after it first reports true, so it must keep
// reporting true (a ready that takes something, like a lock, remembers
// that it did).
// Every 64 polls, and after every slice, it calls every with the time
// waited so far; an error from every ends the wait with that error (a
// failed job, a watchdog).
func (b Bell) Await(ready func() bool, pol Policy, slice time.Duration, every func(waited time.Duration) error) error {
	var start time.Time
	for i := 1; ; i++ {
		if ready() {
			return nil
		}
		if i%64 != 0 {
			pol.Pause(i)
			continue
		}
		if start.IsZero() {
			start = time.Now()
		}
		waited := time.Since(start)
		if err := every(waited); err != nil {
			return err
		}
		if waited < pol.Poll {
			pol.Pause(i)
			continue
		}
		b.Sleep(ready, slice)
	}
}

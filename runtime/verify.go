package runtime

import (
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/internal/wire"
)

// Stalled collectives ask their peers which call they made.
//
// Ranks that disagree on a collective call usually find out at once: a
// frame of one call reaches a receive of the other (match.go), or the ranks
// compare their calls in shared memory (nodecoll.go). But two ranks that
// disagree can also just wait for each other without a frame ever crossing
// (Reduce with root 0 on one rank and root 1 on the other: both wait to
// receive). So a collective request that has waited stallAfter sends its
// peer a check frame with the call's sequence number and word: a watcher
// goroutine per world (started by the first collective message) looks at
// the pending collective requests every stallAfter/2, and a request it
// finds pending three times in a row has waited at least stallAfter. Every rank
// logs the words of its recent calls on each communicator (callLog); the
// peer's receive goroutine compares, and on a difference aborts the world
// with a cause naming both calls. A check for a call the peer has not made
// yet waits in the log until it makes it; one for a communicator the peer
// has closed is an error too. Nothing of this runs while calls complete.

// stallAfter is how long a collective request waits before it checks with
// its peer. Long enough that a busy but correct job sends few checks,
// short enough that a mistake surfaces before anyone reaches for a
// debugger.
const stallAfter = 250 * time.Millisecond

// logSize is how many recent calls a callLog keeps, per communicator.
const logSize = 256

// callLog is the record of one communicator's recent collective calls on
// this rank, read by receive goroutines to answer checks.
type callLog struct {
	comm string
	rank int
	// slots[s%logSize] holds s<<32 | word for the last call with sequence
	// number s (31 bits, as in a frame's tag) that maps there; 0 if none.
	slots [logSize]atomic.Uint64
	// checks are peers' checks of calls this rank has not made yet;
	// nChecks counts them for the caller's cheap test in enter.
	mu      sync.Mutex
	checks  []check
	nChecks atomic.Int32
	closed  atomic.Bool // the communicator was closed on this rank
}

type check struct {
	seq, word uint32
	from      int // comm rank
}

// newComm makes this rank's communicator of size ranks on context pair
// ctx, where it is rank, and registers its call log. The caller fills in
// the group.
func (w *world) newComm(name string, ctx uint32, rank, size int) *Comm {
	c := &Comm{w: w, name: name, ctx: ctx, rank: rank, size: size, group: make([]int, size)}
	c.log = &callLog{comm: name, rank: rank}
	w.mu.Lock()
	w.logs[ctx+1] = c.log
	w.mu.Unlock()
	goruntime.AddCleanup(c, func(l *callLog) {
		w.mu.Lock()
		if w.logs[ctx+1] == l {
			delete(w.logs, ctx+1)
		}
		w.mu.Unlock()
	}, c.log)
	return c
}

// enter logs that this rank makes call word with sequence number seq.
func (l *callLog) enter(w *world, seq, word uint32) {
	seq &= 0x7fffffff
	// seq-cst store, then the load of nChecks: Dekker with check, which
	// adds to nChecks and then loads the slot, so one of the two sees the
	// other.
	l.slots[seq%logSize].Store(uint64(seq)<<32 | uint64(word))
	if l.nChecks.Load() != 0 {
		l.settle(w, seq, word)
	}
}

// settle compares the waiting checks of call seq, which this rank just
// made as word, and drops them and any older ones.
func (l *callLog) settle(w *world, seq, word uint32) {
	l.mu.Lock()
	keep := l.checks[:0]
	var bad *check
	for _, ch := range l.checks {
		switch {
		case ch.seq == seq && ch.word != word && bad == nil:
			bad = &check{seq: ch.seq, word: ch.word, from: ch.from}
		case ch.seq > seq:
			keep = append(keep, ch)
		}
	}
	l.checks = keep
	l.nChecks.Store(int32(len(keep)))
	l.mu.Unlock()
	if bad != nil {
		l.mismatch(w, bad.seq, word, bad.from, bad.word)
	}
}

func (l *callLog) mismatch(w *world, seq, mine uint32, from int, theirs uint32) {
	err := wordMismatch(l.comm, l.rank, seq, mine, from, theirs)
	go w.abort(fmt.Errorf("rank %d waited in a collective for rank %d: %w", from, l.rank, err))
}

// check answers rank from of the communicator, which waits in call seq
// (word) for this rank.
func (l *callLog) check(w *world, from int, seq, word uint32) {
	seq &= 0x7fffffff
	if v := l.slots[seq%logSize].Load(); v != 0 {
		switch s := uint32(v >> 32); {
		case s == seq:
			if mine := uint32(v); mine != word {
				l.mismatch(w, seq, mine, from, word)
			}
			return
		case s > seq:
			return // long past: the log no longer knows
		}
	}
	if l.closed.Load() {
		go w.abort(fmt.Errorf("rank %d of %s waits in collective call %d (%s), but rank %d has closed the communicator",
			from, l.comm, seq, wordString(word), l.rank))
		return
	}
	l.mu.Lock()
	l.checks = append(l.checks, check{seq: seq, word: word, from: from})
	l.nChecks.Store(int32(len(l.checks)))
	l.mu.Unlock()
	// The call may have been made meanwhile (see enter).
	if v := l.slots[seq%logSize].Load(); v != 0 && uint32(v>>32) == seq {
		l.settle(w, seq, uint32(v))
	}
}

// closeLogs marks every communicator of this rank closed for checks: the
// rank entered Close of its world and makes no call but its barrier.
func (w *world) closeLogs() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.logs {
		l.closed.Store(true)
	}
}

// onCheck handles a check frame: a peer's collective on context h.Context
// stalled waiting for this rank.
func (w *world) onCheck(h wire.Header) error {
	w.mu.Lock()
	l := w.logs[h.Context]
	if w.failure != nil || w.closed {
		l = nil // the job knows what went wrong already
	}
	w.mu.Unlock()
	if l != nil {
		l.check(w, int(h.Src), uint32(h.Tag), h.Call)
	}
	return nil
}

// stallScan is the interval of the stall watcher.
const stallScan = stallAfter / 2

// watchStalls starts the stall watcher of w, once.
func (w *world) watchStalls() {
	if w.watching.Swap(true) {
		return
	}
	go func() {
		t := time.NewTicker(stallScan)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				w.scanStalls()
			case <-w.stopped:
				return
			}
		}
	}()
}

// stall is what the watcher needs of a stalled request, copied under w.mu
// (the request may complete and be reused as soon as the lock is gone).
type stall struct {
	c         *Comm
	ctx, call uint32
	tag       int32
	peer      int
}

// scanStalls counts one more scan for every pending collective request
// and checks with the peers of those pending for three scans.
func (w *world) scanStalls() {
	var due []stall
	note := func(r *Request) {
		if r.call == 0 || r.scans >= 3 {
			return
		}
		if r.scans++; r.scans == 3 {
			due = append(due, stall{c: r.c, ctx: r.ctx, call: r.call, tag: int32(r.tag), peer: r.peer})
		}
	}
	w.mu.Lock()
	if w.failure != nil {
		w.mu.Unlock()
		return
	}
	for _, q := range w.queues {
		for _, r := range q.posted {
			note(r)
		}
	}
	for _, r := range w.sends {
		note(r)
	}
	w.mu.Unlock()
	for _, st := range due {
		w.stalled(st)
	}
}

// stalled handles a collective request that has waited stallAfter. A
// message already here with its sequence number but another call's word
// settles it at once; otherwise its peer gets a check frame.
func (w *world) stalled(st stall) {
	var seen *inMsg
	w.mu.Lock()
	if q := w.queues[st.ctx]; q != nil {
		for _, m := range q.unexp {
			if m.tag == int(st.tag) && m.call != st.call {
				seen = m
				break
			}
		}
	}
	w.mu.Unlock()
	if seen != nil {
		go w.abort(wordMismatch(st.c.name, st.c.rank, uint32(st.tag), st.call, seen.src, seen.call))
		return
	}
	w.sendCheck(st.c, st.peer, st.tag, st.call)
}

// sendCheck asks rank peer of c which call it made as call tag (a
// sequence number) of c, which this rank made as word.
func (w *world) sendCheck(c *Comm, peer int, tag int32, word uint32) {
	h := wire.Header{Kind: wire.KindCheck, Context: c.ctx + 1, Src: int32(c.rank), Tag: tag, Call: word}
	w.sendAsync(c.group[peer], h, nil)
}

package runtime

import (
	"fmt"
	goruntime "runtime"
	"slices"
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
// receive). So a collective that has waited stallAfter sends the peer it
// waits for a check frame with the call's sequence number and word, and
// again every stallAfter or so while it waits: a watcher goroutine per
// world (started by the world's first collective call) looks at the pending
// collective requests every stallAfter/2 under the world's lock, and a
// shared-memory arrival checks from its own waiting loop.
//
// Every rank logs the words of its recent calls on each communicator
// (callLog, one atomic store per call); the peer's receive goroutine
// compares, and on a difference aborts the world with a cause naming both
// calls. A check for a call the peer has not made yet waits in the log
// until it makes it (and one for a communicator it has not made yet, until
// it does); one for a communicator the peer has closed, or left with Close
// of its world, is an error too. A check from a shared-memory arrival asks
// only about closing: the arrival compares the calls itself, and returns
// a difference as ErrInvalid on every rank rather than as an abort — unless
// the peer made that call nonblocking, which never arrives.

// stallAfter is how long a collective waits before it checks with its
// peer. Long enough that a busy but correct job sends few checks, short
// enough that a mistake surfaces before anyone reaches for a debugger.
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
	seq, word  uint32
	from       int  // comm rank
	closedOnly bool // from a shared-memory arrival: report only closing
}

// newComm makes this rank's communicator of size ranks on context pair
// ctx, where it is rank, and registers its call log (taking over the checks
// that came for it before it existed). The caller fills in the group.
func (w *world) newComm(name string, ctx uint32, rank, size int) *Comm {
	c := &Comm{w: w, name: name, ctx: ctx, rank: rank, size: size, group: make([]int, size)}
	l := &callLog{comm: name, rank: rank}
	c.log = l
	w.mu.Lock()
	w.logs[ctx+1] = l
	early := w.orphans[ctx+1]
	delete(w.orphans, ctx+1)
	w.mu.Unlock()
	for _, ch := range early {
		l.check(w, ch)
	}
	goruntime.AddCleanup(c, func(l *callLog) {
		w.mu.Lock()
		if w.logs[ctx+1] == l {
			delete(w.logs, ctx+1)
		}
		w.mu.Unlock()
	}, l)
	return c
}

// enter logs that this rank makes call word with sequence number seq. If a
// peer that waits for this call made another one, it aborts the world and
// returns the failure.
func (l *callLog) enter(w *world, seq, word uint32) error {
	seq &= 0x7fffffff
	// seq-cst store, then the load of nChecks: Dekker with check, which
	// adds to nChecks and then loads the slot, so one of the two sees the
	// other.
	l.slots[seq%logSize].Store(uint64(seq)<<32 | uint64(word))
	if l.nChecks.Load() != 0 {
		if bad := l.settle(seq, word); bad != nil {
			w.abort(l.mismatch(seq, word, bad))
			return w.err()
		}
	}
	return nil
}

// settle compares the waiting checks of call seq, which this rank just
// made as word, drops them and any older ones, and returns one that
// disagrees.
func (l *callLog) settle(seq, word uint32) *check {
	l.mu.Lock()
	defer l.mu.Unlock()
	keep := l.checks[:0]
	var bad *check
	for _, ch := range l.checks {
		switch {
		case ch.seq == seq && (!ch.closedOnly || decodeWord(word).nb) && !wordsAgree(word, ch.word) && bad == nil:
			bad = &check{seq: ch.seq, word: ch.word, from: ch.from}
		case ch.seq > seq:
			keep = append(keep, ch)
		}
	}
	l.checks = keep
	l.nChecks.Store(int32(len(keep)))
	return bad
}

// mismatch is the cause of an abort for a peer's check ch of call seq,
// which this rank made as mine.
func (l *callLog) mismatch(seq, mine uint32, ch *check) error {
	err := wordMismatch(l.comm, l.rank, seq, mine, ch.from, ch.word)
	return fmt.Errorf("rank %d waited in a collective for rank %d: %w", ch.from, l.rank, err)
}

// check answers a peer of the communicator that waits for this rank in a
// collective.
func (l *callLog) check(w *world, ch check) {
	ch.seq &= 0x7fffffff
	if v := l.slots[ch.seq%logSize].Load(); v != 0 {
		switch s := uint32(v >> 32); {
		case s == ch.seq:
			// An arrival asks only about closing, unless this rank made
			// the call nonblocking: then it never arrives (nbc.go).
			if mine := uint32(v); (!ch.closedOnly || decodeWord(mine).nb) && !wordsAgree(mine, ch.word) {
				go w.abort(l.mismatch(ch.seq, mine, &ch))
			}
			return
		case s > ch.seq:
			return // long past: the log no longer knows
		}
	}
	if l.closed.Load() {
		go w.abort(fmt.Errorf("rank %d of %s waits in collective call %d (%s), but rank %d has closed the communicator",
			ch.from, l.comm, ch.seq, wordString(ch.word), l.rank))
		return
	}
	l.mu.Lock()
	if !slices.Contains(l.checks, ch) {
		l.checks = append(l.checks, ch)
	}
	l.nChecks.Store(int32(len(l.checks)))
	l.mu.Unlock()
	// The call may have been made meanwhile (see enter).
	if v := l.slots[ch.seq%logSize].Load(); v != 0 && uint32(v>>32) == ch.seq {
		if bad := l.settle(ch.seq, uint32(v)); bad != nil {
			go w.abort(l.mismatch(ch.seq, uint32(v), bad))
		}
	}
}

// closeLogs marks the logs of this rank's communicators, all but the
// world's, closed for checks: the rank entered Close of its world and makes
// no further call on them. The world's own log closes after its Close
// barrier (and any set-up that barrier needs).
func (w *world) closeLogs() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ctx, l := range w.logs {
		if ctx != worldCollCtx {
			l.closed.Store(true)
		}
	}
}

// maxOrphans bounds the checks kept for communicators not made yet.
const maxOrphans = 1024

// onCheck handles a check frame: a peer's collective on context h.Context
// stalled waiting for this rank.
func (w *world) onCheck(h wire.Header) error {
	ch := check{seq: uint32(h.Tag), word: h.Call, from: int(h.Src), closedOnly: h.Flags&wire.FlagArrival != 0}
	w.mu.Lock()
	if w.failure != nil || w.closed {
		w.mu.Unlock()
		return nil // the job knows what went wrong already
	}
	l := w.logs[h.Context]
	if l == nil {
		// The peer made a communicator this rank has not made yet: keep
		// the check for it (newComm).
		if o := w.orphans[h.Context]; len(o) < maxOrphans && !slices.Contains(o, ch) {
			w.orphans[h.Context] = append(o, ch)
		}
	}
	w.mu.Unlock()
	if l != nil {
		l.check(w, ch)
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

// scanStalls counts one more scan for every pending collective request,
// and checks with the peer of each one pending for three scans in a row
// (at least stallAfter), then starts counting again.
func (w *world) scanStalls() {
	var due []stall
	note := func(r *Request) {
		if r.call == 0 || r.ctx != r.c.ctx+1 {
			return // point-to-point (its word is an element type code)
		}
		if r.scans++; r.scans >= 3 {
			r.scans = 0
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
// message already here with its sequence number but the word of another
// call settles it at once; otherwise its peer gets a check frame.
func (w *world) stalled(st stall) {
	var seen *inMsg
	w.mu.Lock()
	if q := w.queues[st.ctx]; q != nil {
		for _, m := range q.unexp {
			if m.tag == int(st.tag) && !(m.poison && sameKind(m.call, st.call)) && !wordsAgree(st.call, m.call) {
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
	w.sendCheck(st.c, st.peer, st.tag, st.call, false)
}

// sendCheck asks rank peer of c which call it made as call tag (a
// sequence number) of c, which this rank made as word; closedOnly asks only
// whether it closed c (FlagArrival).
func (w *world) sendCheck(c *Comm, peer int, tag int32, word uint32, closedOnly bool) {
	h := wire.Header{Kind: wire.KindCheck, Context: c.ctx + 1, Src: int32(c.rank), Tag: tag, Call: word}
	if closedOnly {
		h.Flags = wire.FlagArrival
	}
	// A check is advisory: the peer it goes to may have finished the call,
	// closed its world and said goodbye meanwhile (a slow rank's Close
	// barrier stalls while faster ones are gone). A failed check fails
	// nothing; a peer that is really lost is reported by its transport.
	w.sendAsyncBy(c.group[peer], h, nil, func(to int, h wire.Header, _ []byte) error {
		if err := w.eps[to].Send(h, nil); err != nil {
			w.log.Debug("runtime: a check frame was not sent", "rank", w.rank, "to", to, "err", err)
		}
		return nil
	})
}

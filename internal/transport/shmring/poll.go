package shmring

import (
	"runtime"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
)

// Caller polling (transport.Poller).
//
// Each inbound ring has one reader at a time: whoever holds the endpoint's
// token (endpoint.tok), the receive goroutine or a caller inside Poll. The
// token carries the reader state (endpoint.rd) from one holder to the next.
//
// While any caller polls, and until a whole nap passed without one, the
// receive goroutines stand aside: they nap in the Go scheduler with rxSleep
// clear, so producers never pay a wake-up, and a message costs the
// receiving side one load of the tail plus the copy. A caller that gives up
// polling to park says so (EndPoll(true)), which kicks every receive
// goroutine so it takes over at once. When nobody polls, frames are still
// handled within two naps by the receive goroutine, so a rank that computes
// keeps making progress.

// pollNap is one nap of a receive goroutine that stands aside. A rank
// that alternates Send and Recv polls again within microseconds, so the
// hand-back never happens in a ping-pong.
const pollNap = time.Millisecond

// BeginPoll implements transport.Poller.
func (t *Transport) BeginPoll() { t.polls.Begin() }

// EndPoll implements transport.Poller.
func (t *Transport) EndPoll(sleeping bool) {
	if t.polls.End(sleeping) {
		for _, e := range t.polled() {
			e.kick(true, false)
		}
	}
}

// Poll implements transport.Poller.
func (t *Transport) Poll() bool {
	handled := false
	for _, e := range t.polled() {
		if e.poll() {
			handled = true
		}
	}
	return handled
}

func (t *Transport) polled() []*endpoint {
	if p := t.pollEps.Load(); p != nil {
		return *p
	}
	return nil
}

// poll handles the frames readable on e now, on the calling goroutine,
// unless another goroutine reads e's ring.
func (e *endpoint) poll() bool {
	// acquire (seq-cst CAS): the reader state and the ring mapping are
	// ours until the Store below. The receive goroutine ends holding the
	// token and the rings are unmapped only after it ended, so a
	// successful CAS also means the mapping is live.
	if !e.tok.CompareAndSwap(0, 1) {
		return false
	}
	handled := false
	for e.pollErr == nil && !e.t.life.Killed.Load() && e.rd.ready() {
		if err := e.frame(); err != nil {
			// The receive goroutine reports it (PeerLost) when it
			// next takes the token.
			e.pollErr = err
			break
		}
		handled = true
	}
	failed := e.pollErr != nil
	if failed {
		e.failed.Store(true) // the receive goroutine stops standing aside
	}
	e.tok.Store(0) // release: hands rd and pollErr to the next holder
	if failed {
		e.kick(true, false)
	}
	return handled
}

// turn waits until e's ring has bytes to read and no caller polls, and takes
// the token. It returns holding the token, also with an error; io.EOF means
// the peer is gone and the ring drained.
func (e *endpoint) turn() error {
	rd := &e.rd
	defer e.nap.Stop()
	var aside transport.Aside
	for {
		if aside.Should(&e.t.polls) && !e.t.life.Killed.Load() && !e.gone.Load() && !e.closing.Load() && !e.failed.Load() {
			// Stand aside, parked in the Go scheduler rather than in a
			// futex, which would keep this goroutine's P (and with
			// GOMAXPROCS=1 the polling caller) off the CPU until sysmon
			// takes it back. rxSleep is clear, so producers do not ring;
			// EndPoll(true), kill, Close and the liveness goroutine do.
			aside.Nap(&e.nap, pollNap)
			continue
		}
		if !e.tok.CompareAndSwap(0, 1) { // acquire, see poll
			runtime.Gosched() // a caller is finishing a frame
			continue
		}
		if e.t.life.Killed.Load() {
			return errKilled // Transport.Close: deliver nothing more
		}
		if e.pollErr != nil {
			return e.pollErr
		}
		if rd.ready() {
			return nil
		}
		if e.gone.Load() {
			return rd.lastLook(rd.ready)
		}
		// No spinning here: a caller that waits polls for itself
		// (transport.Poller), and one that parked gave up on speed.
		if rd.doze(rd.ready, e.giveBack) {
			return nil
		}
	}
}

// giveBack returns the token before the receive goroutine sleeps, so a
// caller may read meanwhile.
func (e *endpoint) giveBack() {
	e.rd.publishHead()
	e.tok.Store(0) // release: hands rd to the next holder
}

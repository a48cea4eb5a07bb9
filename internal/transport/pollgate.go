package transport

import (
	"sync/atomic"
	"time"
)

// PollGate is the bookkeeping a Poller's receive goroutines use to stand
// aside while callers poll (see Poller): a count of the callers between
// BeginPoll and EndPoll, and a generation that every EndPoll(false)
// advances, so a receive goroutine that napped can tell whether anyone
// polled meanwhile. One atomic add per BeginPoll or EndPoll. The zero value
// is ready to use.
type PollGate struct {
	// Low 32 bits: callers polling now. High 32 bits: the generation.
	w atomic.Uint64
}

const pollGen = 1 << 32

// Begin counts a caller that polls (Poller.BeginPoll).
func (g *PollGate) Begin() {
	// seq-cst: a receive goroutine that loads the word after this sees
	// the caller and stands aside; one that loaded it before holds its
	// channel at most until it has no frame to read.
	g.w.Add(1)
}

// End uncounts a caller (Poller.EndPoll). It reports whether the receive
// goroutines must take over at once: the caller is going to sleep and it
// was the last one polling.
func (g *PollGate) End(sleeping bool) bool {
	if !sleeping {
		g.w.Add(pollGen - 1) // seq-cst: one caller less, one generation more
		return false
	}
	return uint32(g.w.Add(^uint64(0))) == 0 // seq-cst: one caller less
}

// Polling reports whether any caller polls now.
func (g *PollGate) Polling() bool { return uint32(g.w.Load()) > 0 }

// Aside is a receive goroutine's view of a PollGate across the naps of
// one wait: the gate's word it saw last, and how its last nap ended.
type Aside struct {
	seen           uint64
	napped, kicked bool
}

// Should reports whether the goroutine should stand aside: a caller polls
// now, or one polled during the nap it just took and nobody kicked it awake
// to take over.
func (a *Aside) Should(g *PollGate) bool {
	w := g.w.Load() // seq-cst, see Begin
	recent := uint32(w) > 0 || (a.napped && !a.kicked && w>>32 != a.seen>>32)
	a.seen, a.napped, a.kicked = w, false, false
	return recent
}

// Nap stands aside once: n.Sleep(d), remembered for the next Should.
func (a *Aside) Nap(n *Nap, d time.Duration) {
	a.napped, a.kicked = true, n.Sleep(d)
}

// Nap is the nap of a receive goroutine that stands aside while callers
// poll: parked in the Go scheduler (not in a futex or the netpoller, where
// every arriving frame would wake it) until a kick or the nap's end. One
// timer serves every nap, made on the first: a fresh one per nap would
// allocate whenever callers poll. Init must be called before use; Kick is
// safe from any goroutine, Sleep and Stop only from the receive goroutine.
type Nap struct {
	kick  chan struct{}
	timer *time.Timer
}

// Init prepares n.
func (n *Nap) Init() { n.kick = make(chan struct{}, 1) }

// Kick ends the current nap, or the next one at once if none is under way.
func (n *Nap) Kick() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Sleep naps for at most d and reports whether a kick ended it.
func (n *Nap) Sleep(d time.Duration) (kicked bool) {
	if n.timer == nil {
		n.timer = time.NewTimer(d)
	} else {
		n.timer.Reset(d)
	}
	select {
	case <-n.kick:
		return true
	case <-n.timer.C:
		return false
	}
}

// Stop releases the timer of a nap cut short.
func (n *Nap) Stop() {
	if n.timer != nil {
		n.timer.Stop()
	}
}

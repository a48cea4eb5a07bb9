package runtime

import (
	"fmt"

	"github.com/gorun-hpc/gorun/internal/wire"
)

// Flow control of eager messages.
//
// An eager message is sent before its receive exists, so a receiver that is
// slow to receive holds whatever its peers send. To bound that, a sender
// keeps, per peer, a credit: the budget (Config.EagerBudget) less the cost
// of the eager messages it sent there that the receiver has not yet taken
// out of its matching engine. A message that does not fit in the credit goes
// by rendezvous instead, however small: only its request to send waits at
// the receiver, and the sender waits for the matching receive. The receiver
// counts what its application received (or what a collective discarded) from
// each peer and sends the amount back in a credit frame whenever it reaches a
// quarter of the budget. Messages that find their receive posted are
// credited too, so a sender that keeps its receiver busy never runs dry; and
// rendezvous never needs credit, so running dry slows a sender down without
// ever deadlocking it.

// eagerCost is what an eager message of n bytes counts against its sender's
// credit: its bytes and the bookkeeping of an unexpected message.
func eagerCost(n int) int64 { return int64(n) + 64 }

// takeCredit reserves the cost of an eager message of n bytes to world rank
// to, or reports false (reserving nothing) when the credit is spent.
func (w *world) takeCredit(to, n int) bool {
	c := eagerCost(n)
	// No ordering needed beyond the atomicity of the counter.
	if w.credit[to].Add(-c) >= 0 {
		return true
	}
	w.credit[to].Add(c)
	return false
}

// consumed records that an eager message of n bytes from world rank from
// left the matching engine, and pays the sender back in batches of a
// quarter of the budget.
func (w *world) consumed(from, n int) {
	if w.owed[from].Add(eagerCost(n)) < w.budget/4 {
		return
	}
	amount := w.owed[from].Swap(0)
	if amount <= 0 {
		return
	}
	if from == w.rank {
		w.credit[from].Add(amount)
		return
	}
	w.sendAsync(from, wire.Header{Kind: wire.KindCredit, Arg0: uint64(amount)}, nil)
}

// onCredit handles a credit frame: the peer consumed h.Arg0 more bytes of
// this rank's eager messages.
func (w *world) onCredit(from int, h wire.Header) error {
	if h.Arg0 > uint64(2*w.budget+eagerCost(w.eager)) {
		return fmt.Errorf("credit of %d bytes from world rank %d exceeds the budget of %d", h.Arg0, from, w.budget)
	}
	w.credit[from].Add(int64(h.Arg0))
	return nil
}

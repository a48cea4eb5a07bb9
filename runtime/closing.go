package runtime

import (
	"fmt"

	"github.com/gorun-hpc/gorun/internal/wire"
)

// Peers that close.
//
// A rank that calls Close on its world first tells every peer so with a
// closing frame, sent after everything it sent before, and then waits in
// the Close barrier. From then on it starts no message but the frames of
// that barrier (on the world's collective context). So when the frame
// arrives, a receive or probe that can only be satisfied by that rank, on
// any other context, can never complete: it fails with an error naming the
// rank, and so do later ones, and sends to it. What the rank sent before
// closing is matched as usual, since the frame travels after it.

// worldCollCtx is the collective context of the world communicator, on
// which a closing rank's Close barrier still runs.
const worldCollCtx = 1

// peerClosedError is a point-to-point call that only a rank that has
// entered Close could have completed. It wraps ErrClosed.
type peerClosedError struct {
	rank int // in the communicator
	comm string
}

func (e *peerClosedError) Error() string {
	return fmt.Sprintf("communicator closed: rank %d of %s has called Close and sends or receives nothing more", e.rank, e.comm)
}
func (e *peerClosedError) Is(t error) bool { return t == ErrClosed }

// announceClose tells every peer that this rank entered Close.
func (w *world) announceClose() {
	for i, ep := range w.eps {
		if i != w.rank && ep != nil {
			_ = ep.Send(wire.Header{Kind: wire.KindClosing}, nil)
		}
	}
}

// onClosing handles world rank from's closing frame.
func (w *world) onClosing(from int) error {
	if w.gone[from].Swap(true) {
		return nil
	}
	w.goneN.Add(1)
	var dead []*Request
	w.mu.Lock()
	for ctx, q := range w.queues {
		if ctx == worldCollCtx {
			continue
		}
		q.posted, dead = w.dropDead(q.posted, dead)
		q.probes, dead = w.dropDead(q.probes, dead)
	}
	w.mu.Unlock()
	for _, r := range dead {
		r.complete(w.closedPeerErr(r))
	}
	return nil
}

// dropDead moves the requests of rs that can no longer complete to dead.
// Callers hold w.mu.
func (w *world) dropDead(rs, dead []*Request) (keep, _ []*Request) {
	keep = rs[:0]
	for _, r := range rs {
		if w.unreachable(r) {
			dead = append(dead, r)
		} else {
			keep = append(keep, r)
		}
	}
	return keep, dead
}

// unreachable reports whether receive or probe r waits only for ranks that
// entered Close.
func (w *world) unreachable(r *Request) bool {
	if w.goneN.Load() == 0 || r.ctx == worldCollCtx {
		return false
	}
	if r.src != AnySource {
		return w.gone[r.c.group[r.src]].Load()
	}
	for q, wr := range r.c.group {
		if q != r.c.rank && !w.gone[wr].Load() {
			return false
		}
	}
	return r.c.size > 1
}

// closedPeerErr is the error of request r, which waited for a closed rank.
func (w *world) closedPeerErr(r *Request) error {
	rank := r.src
	if rank == AnySource {
		rank = (r.c.rank + 1) % r.c.size
	}
	return &peerClosedError{rank: rank, comm: r.c.name}
}

// sendable reports an error if comm rank dest of c entered Close and ctx
// is not the world's collective context.
func (c *Comm) sendable(ctx uint32, dest int) error {
	if c.w.goneN.Load() != 0 && ctx != worldCollCtx && c.w.gone[c.group[dest]].Load() {
		return &peerClosedError{rank: dest, comm: c.name}
	}
	return nil
}

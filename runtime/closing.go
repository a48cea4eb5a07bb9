package runtime

import (
	"fmt"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// Peers that close.
//
// A rank that calls Close on its world first refuses the rendezvous
// messages that wait for it unmatched (a CTS with FlagGone: their senders
// fail with an error naming it), and any that come later; then it tells
// every peer with a closing frame, sent after every message it sent before,
// and waits in the Close barrier. From then on it starts no message but
// the frames of that barrier (on the world's collective context). So when
// the frame arrives, a receive or probe that can only be satisfied by that
// rank, on any other context, can never complete: it fails with an error
// naming the rank, and so do later ones, and sends to it. What the rank sent
// before closing is matched as usual, since the frame travels after it.
// (Eager messages that reach a closing rank unreceived are lost, as in MPI
// a program that finalizes with messages pending is erroneous.)

// worldCollCtx is the collective context of the world communicator, on
// which a closing rank's Close barrier still runs.
const worldCollCtx = 1

// peerClosedError is a call that only ranks that have entered Close of
// their world could have completed. It wraps ErrClosed.
type peerClosedError struct {
	rank int // in the communicator
	comm string
	all  bool // every other rank of comm has (AnySource)
}

func (e *peerClosedError) Error() string {
	if e.all {
		return fmt.Sprintf("communicator closed: every other rank of %s has called Close on its world and sends nothing more", e.comm)
	}
	return fmt.Sprintf("communicator closed: rank %d of %s has called Close on its world and sends or receives nothing more", e.rank, e.comm)
}
func (e *peerClosedError) Is(t error) bool { return t == ErrClosed }

// announceClose tells every peer this rank talked to that it entered Close.
// A peer with no channel yet (transport.Opener) is skipped: setting one up
// only to say goodbye would make Close connect every pair of the job.
func (w *world) announceClose() {
	for i, ep := range w.eps {
		if i != w.rank && ep != nil && hasChannel(ep) {
			_ = ep.Send(wire.Header{Kind: wire.KindClosing}, nil)
		}
	}
}

// hasChannel reports whether ep has a channel or is setting one up; endpoints
// that always have one report true.
func hasChannel(ep transport.Endpoint) bool {
	o, ok := ep.(transport.Opener)
	return !ok || o.Opened()
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

// closedPeerErr is the error of request r, which waited for closed ranks.
func (w *world) closedPeerErr(r *Request) error {
	return &peerClosedError{rank: r.src, comm: r.c.name, all: r.src == AnySource}
}

// refuseUnmatched declines the rendezvous messages waiting unmatched for
// this rank, which entered Close, and makes onRTS decline later ones:
// their senders fail with an error naming this rank instead of waiting
// forever. The world's Close barrier (context 1) is spared.
func (w *world) refuseUnmatched() {
	var refused []*inMsg
	w.mu.Lock()
	w.leaving = true
	for ctx, q := range w.queues {
		if ctx == worldCollCtx {
			continue
		}
		keep := q.unexp[:0]
		for _, m := range q.unexp {
			if m.rts {
				refused = append(refused, m)
			} else {
				keep = append(keep, m)
			}
		}
		q.unexp = keep
	}
	w.mu.Unlock()
	for _, m := range refused {
		_ = w.send(m.from, goneCTS(m.sreq), nil)
	}
}

// goneCTS is the answer of a closing rank to the RTS of send request sreq.
func goneCTS(sreq uint64) wire.Header {
	return wire.Header{Kind: wire.KindCTS, Flags: wire.FlagDecline | wire.FlagGone, Arg0: sreq}
}

// sendable reports an error if comm rank dest of c entered Close and ctx
// is not the world's collective context.
func (c *Comm) sendable(ctx uint32, dest int) error {
	if c.w.goneN.Load() != 0 && ctx != worldCollCtx && c.w.gone[c.group[dest]].Load() {
		return &peerClosedError{rank: dest, comm: c.name}
	}
	return nil
}

package runtime

import (
	"errors"
	"fmt"
	"slices"
)

// Collectives are built on the point-to-point engine, on the communicator's
// second context (ctx+1) so they never match user messages. Each call takes
// the next sequence number of the communicator as its tag, and every frame
// it sends carries its call word (call.go): a receive accepts only a frame
// of the same call, so data of one call can never land in another.
//
// What happens to an argument error or a disagreement between ranks:
//
//   - On a communicator whose ranks share a node, every collective starts by
//     comparing every rank's call identity and argument error in the shared
//     segment (nodecoll.go). Any difference, or any rank's argument error, is
//     returned by every rank as the same ErrInvalid before data moves, and
//     the communicator stays usable.
//   - On the message path, a rank whose own arguments are wrong still takes
//     part. In the calls whose messages carry every rank's contribution to
//     every rank (Allreduce, Allgather, Alltoall, Split, Dup, Create), it
//     sends its error in place of its data (a poison frame), every rank
//     passes on what it learns, and all ranks return the same ErrInvalid,
//     the one of the lowest erring rank; the communicator stays usable. In
//     the other calls (rooted ones, Scan) the others cannot all learn it
//     within the call, so the rank aborts the world with its error as the
//     cause.
//   - A frame of another call, a message of another length than expected,
//     or (verify.go) a peer that made a different call, aborts the world
//     with a cause naming both ranks and what differed.

// coll is one collective call in progress.
type coll struct {
	c    *Comm
	name string // the public call, for errors
	id   callID
	word uint32 // id.word()
	seq  uint32
	tag  int32
	// err is the argument error of the call known to this rank so far
	// (its own or a peer's, from a poison frame): once set, the rank sends
	// it in place of data and discards what it receives (message path).
	err *argError
	// strict: the algorithm cannot pass an argument error on to every
	// rank, so one aborts the world (enterStrict).
	strict bool
	// nb is set when the call is a nonblocking collective running in a
	// goroutine of its own (nbc.go): its waits end when c is closed, and
	// it keeps its requests so that Close can settle them.
	nb *nbOp
}

// begin starts collective call id on c: it checks the communicator, takes
// the call's sequence number and logs the call for stalled peers
// (verify.go).
func (c *Comm) begin(k *coll, name string, id callID) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := c.usable(); err != nil {
		return err
	}
	*k = coll{c: c, name: name, id: id, word: id.word(), seq: c.seq, tag: int32(c.seq & 0x7fffffff)}
	c.seq++
	if !c.w.watching.Load() && c.w.size > 1 {
		c.w.watchStalls()
	}
	return c.log.enter(c.w, k.seq, k.word)
}

// enter begins call id on c with this rank's argument error local (nil if
// its arguments are fine). On a one-node communicator it compares the call
// with every rank's in the shared segment and returns the common outcome;
// elsewhere it records local as the call's error (k.err) for the algorithm
// to pass on or abort with (see the top of this file).
func (c *Comm) enter(k *coll, name string, id callID, local error) error {
	if err := c.begin(k, name, id); err != nil {
		return err
	}
	if nc := c.nodeColl(); nc != nil {
		_, err := nc.arrive(k, nil, local)
		return err
	}
	if local != nil {
		k.err = newArgError(c.rank, local)
	}
	return nil
}

// enterStrict is enter for a call that cannot pass an argument error on
// within the call (a rooted call, Scan): on the message path such an error
// aborts the world at once.
func (c *Comm) enterStrict(k *coll, name string, id callID, local error) error {
	if err := c.enter(k, name, id, local); err != nil {
		return err
	}
	k.strict = true
	if k.err != nil {
		return k.abort(k.err)
	}
	return nil
}

// checkRoot validates a root argument.
func (c *Comm) checkRoot(root int) error {
	if root < 0 || root >= c.Size() {
		return errInvalid(fmt.Sprintf("root %d out of range [0,%d)", root, c.Size()))
	}
	return nil
}

// abort ends the call and the world because of err, which the other ranks
// could not learn within the call: they return ErrAborted with err as the
// cause, and so does this rank (its error also matches err's sentinel).
func (k *coll) abort(err error) error {
	k.c.w.abort(fmt.Errorf("%s on %s: %w", k.name, k.c.name, err))
	return k.c.w.err()
}

// end returns the outcome of the call: err from the algorithm, else the
// argument error that all ranks agree on, if the algorithm passes every
// rank's error on to every rank (see the top of this file); in a strict
// call, where it does not, such an error aborts the world.
func (k *coll) end(err error) error {
	switch {
	case err != nil:
		return err
	case k.err == nil:
		return nil
	case k.strict:
		return k.abort(k.err)
	}
	return k.err
}

// isend sends b to dest as part of the call, or the call's argument error in
// its place once there is one.
func (k *coll) isend(dest int, b []byte) (*Request, error) {
	if k.err != nil {
		if err := k.c.sendable(k.c.ctx+1, dest); err != nil {
			return nil, k.closedPeer(err)
		}
		return sent, k.c.sendPoison(k.c.ctx+1, dest, k.tag, k.word, k.err)
	}
	r, err := k.c.isend(k.c.ctx+1, b, dest, k.tag, k.word, 0, k.name)
	if err == nil && k.nb != nil && r != sent {
		k.nb.keep(r)
	}
	return r, k.closedPeer(err)
}

// closedPeer turns err, if it says that a peer has left with Close, into
// an abort of the world: the call can never complete on any rank.
func (k *coll) closedPeer(err error) error {
	if err == nil {
		return nil
	}
	var pc *peerClosedError
	if errors.As(err, &pc) {
		return k.abort(err)
	}
	return err
}

// irecv posts the receive of b from src; once the call has an argument
// error it discards whatever comes (but still learns of poison).
func (k *coll) irecv(src int, b []byte) (*Request, error) {
	r, err := k.c.irecv(k.c.ctx+1, b, src, int(k.tag), k.word, k.err != nil, nil, k.name, true)
	if err == nil && k.nb != nil {
		k.nb.keep(r)
	}
	return r, k.closedPeer(err)
}

// waitReq is r.Wait for a request of the call; in a nonblocking call it
// ends early with errStopped when the communicator is closed (nbc.go).
func (k *coll) waitReq(r *Request) (Status, error) {
	if k.nb != nil {
		if err := k.nb.await(r); err != nil {
			return Status{}, err
		}
	}
	return r.Wait()
}

// waitAll waits for every request of reqs (sends of the call) and returns
// the first error.
func (k *coll) waitAll(reqs []*Request) error {
	var first error
	for _, r := range reqs {
		if _, err := k.waitReq(r); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (k *coll) send(dest int, b []byte) error {
	r, err := k.isend(dest, b)
	if err != nil {
		return err
	}
	_, err = k.waitReq(r)
	return err
}

// wait completes a receive of the call from src, which should bring want
// bytes. A poison frame merges its error into k.err and is not an error of
// wait; a message of another length or another call aborts the world.
func (k *coll) wait(r *Request, src int, want int) error {
	st, err := k.waitReq(r)
	discard := r.discard
	recycle(r)
	if err == nil {
		if discard || st.Bytes == want {
			return nil
		}
		return k.mismatch(src, st.Bytes, want)
	}
	// A world that failed may carry an argument error as its cause (the
	// same error object, between goroutine ranks): that is the abort, not
	// a poisoned frame of this call.
	var ae *argError
	if !errors.Is(err, ErrAborted) && errors.As(err, &ae) {
		k.err = k.err.first(ae)
		return nil
	}
	var me *mismatchError
	if errors.As(err, &me) {
		return k.abort(me)
	}
	if errors.Is(err, ErrTruncated) {
		return k.mismatch(src, st.Bytes, want)
	}
	return k.closedPeer(err)
}

// mismatch aborts the world because src sent a message of got bytes where
// this rank expected want: the ranks passed different counts.
func (k *coll) mismatch(src, got, want int) error {
	return k.abort(&mismatchError{comm: k.c.name, seq: k.seq, msg: fmt.Sprintf(
		"the ranks passed different counts: rank %d sent %d bytes where rank %d expected %d in %v", src, got, k.c.rank, want, k.id)})
}

func (k *coll) recv(src int, b []byte) error {
	r, err := k.irecv(src, b)
	if err != nil {
		return err
	}
	return k.wait(r, src, len(b))
}

// sendrecv sends sb to dest and receives rb from src at the same time, so
// that two ranks exchanging large messages do not wait for each other.
func (k *coll) sendrecv(dest int, sb []byte, src int, rb []byte) error {
	rr, err := k.irecv(src, rb)
	if err != nil {
		return err
	}
	sr, err := k.isend(dest, sb)
	if err != nil {
		return err
	}
	if err := k.wait(rr, src, len(rb)); err != nil {
		return err
	}
	_, err = k.waitReq(sr)
	return err
}

// Barrier blocks until every rank of c has called it (MPI_Barrier).
//
// Barrier is collective over c. It uses the dissemination algorithm:
// ceil(log2 n) rounds of empty messages; on a communicator that spans
// several nodes with several ranks on some node, it goes node-aware: a
// barrier inside each node, one among the node leaders, and a release
// (hier.go); on a one-node communicator, one cache line per rank in a
// shared segment.
//
// Memory: everything a rank wrote before it called Barrier, including to
// shared memory, happens before everything any rank does after its Barrier
// returns (every path publishes with a release and waits with an acquire).
//
// Errors: ErrInvalid if another rank made a different collective call at
// this point (on every rank, or as the cause of ErrAborted); ErrAborted,
// ErrClosed.
func (c *Comm) Barrier() error {
	if c == nil {
		return nil
	}
	if c.closed.Load() {
		return c.opErr("Barrier", NoPeer, ErrClosed)
	}
	if c.hierarchical() {
		return c.opErr("Barrier", NoPeer, hierBarrier(c))
	}
	return c.opErr("Barrier", NoPeer, barrier(c, "Barrier", callBarrier))
}

// barrier is the flat Barrier; Close uses it as kind callClose.
func barrier(c *Comm, name string, kind collKind) error {
	var k coll
	if err := c.enter(&k, name, plainCall(kind), nil); err != nil {
		return err
	}
	if c.ncState == ncReady {
		return nil // the arrival in enter was the barrier
	}
	if kind == callClose && c.hierarchical() {
		return k.end(nodeAwareBarrier(&k))
	}
	return k.end(dissemination(&k))
}

// nodeAwareBarrier is a barrier over c's own collective context that sends
// between nodes only among the nodes' leaders (the lowest rank of c on each
// node): a binomial fan-in to the leader inside each node, a dissemination
// among the leaders, a binomial fan-out. Close uses it: a closing rank
// sends nothing on other contexts (closing.go), so it cannot use the
// sub-communicators of hier.go, and a dissemination over every rank would
// open a channel to log2(n) ranks on other nodes per rank (channels are
// made on first use), which at hundreds of ranks per node on few cores
// takes longer than a connect may.
func nodeAwareBarrier(k *coll) error {
	c := k.c
	var local, leaders []int // ranks of c on this node, and each node's lowest
	seen := map[int]bool{}
	me := c.Node(c.rank)
	for q := range c.size {
		nd := c.Node(q)
		if nd == me {
			local = append(local, q)
		}
		if !seen[nd] {
			seen[nd] = true
			leaders = append(leaders, q)
		}
	}
	i := slices.Index(local, c.rank) // local[0] is this node's leader
	n := len(local)
	for mask := 1; mask < n; mask <<= 1 { // fan-in
		if i&mask != 0 {
			if err := k.send(local[i-mask], nil); err != nil {
				return err
			}
			break
		}
		if i|mask < n {
			if err := k.recv(local[i|mask], nil); err != nil {
				return err
			}
		}
	}
	if i == 0 {
		l, m := slices.Index(leaders, c.rank), len(leaders)
		for d := 1; d < m; d <<= 1 {
			if err := k.sendrecv(leaders[(l+d)%m], nil, leaders[(l-d+m)%m], nil); err != nil {
				return err
			}
		}
	}
	top := 1 // fan-out, the fan-in reversed
	for top < n {
		top <<= 1
	}
	for mask := top >> 1; mask > 0; mask >>= 1 {
		switch {
		case i&(2*mask-1) == mask:
			if err := k.recv(local[i-mask], nil); err != nil {
				return err
			}
		case i&(2*mask-1) == 0 && i|mask < n:
			if err := k.send(local[i|mask], nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func dissemination(k *coll) error {
	n, r := k.c.size, k.c.rank
	for d := 1; d < n; d <<= 1 {
		if err := k.sendrecv((r+d)%n, nil, (r-d+n)%n, nil); err != nil {
			return err
		}
	}
	return nil
}

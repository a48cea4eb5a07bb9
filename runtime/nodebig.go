package runtime

import (
	goruntime "runtime"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/internal/shmsync"
	"github.com/gorun-hpc/gorun/shm"
)

// Large Bcast, Allreduce, Allgather and Alltoall through a second shared
// segment, on a communicator whose ranks all run on one node.
//
// Past the slot size of nodecoll.go, these calls used to go on with
// messages: rings between pairs of ranks, a tree, a ring or pairwise
// exchange of steps, each step a trip through a ring (with a background
// goroutine copying) and, on an oversubscribed node, a wake-up.
// Instead, the ranks share one more segment, set up (collectively, over
// messages) by the first large call on the communicator: an area of
// nbChunk bytes per rank, a result area of nbChunk bytes, and a progress
// line per rank. The data moves in chunks of at most nbChunk bytes:
//
//   - Allreduce: rank r owns a share of each chunk (an nth of its
//     elements). Every rank copies its chunk, but for its own share, into
//     its area and says so; then rank r folds its share over all areas in
//     rank order, taking its own contribution from its send buffer, straight
//     into its recv, copies the folded share into the result area, and says
//     so; then every rank copies the other shares out of the result area.
//     Two waits per chunk, no matter how many ranks. A rank goes over 3-1/n
//     chunks' worth of data (copy-in and copy-out of the others' shares,
//     the fold of n contributions to its own, its publication) where
//     copying send to recv, the whole chunk in and the whole result out
//     went over 4 (1 MiB at np 2: about a third faster, docs/performance.md;
//     a pipeline of smaller pieces was slower). Every element
//     is combined once, in rank order, so every rank gets the same bits
//     (also for a user op that does not commute). In place (send is recv,
//     whose share the fold overwrites) a rank copies its whole chunk in
//     and folds from the areas alone.
//   - Bcast: the root copies a chunk into the result area and says so;
//     every other rank copies it out and says so; the root waits for
//     every rank before it writes the next chunk.
//   - Allgather: every rank copies a chunk of its block into its area and
//     says so, waits for every rank, copies every rank's area out into its
//     recv and says so. Alltoall is the same with n pieces per area: rank
//     r's area holds a chunk of each of its n blocks, at nbChunk/n bytes
//     apart, and rank j copies out piece j of every area. Both are copies
//     of bytes, so a chunk may end inside an element.
//
// "Says so" is a store (release) of the rank's progress counter, which
// every rank advances through the same sequence (the ranks agreed on the
// call at the arrival), so each knows the value it waits for: prog, the
// counter's value when the call began.
//
// Reuse: a rank writes its area only after every rank has passed the last
// read of it: in Allreduce the fold, which every rank has passed once this
// rank saw every counter at p+2; in Allgather and Alltoall the copy-out,
// which each rank follows with a store of p+2, so these two wait for every
// counter to reach the current value before they write their area (at a
// call's first chunk that holds already: every rank has entered the call,
// so left the previous one). The result area is written only after every
// rank has reached the current counter value, which it stores only after
// it copied the previous result out.
//
//	offset              size        what
//	64·r                8           rank r's progress counter
//	64·n                8           sleepers for the bell
//	64·n + 64           4           bell
//	64·n + 128          nbChunk     result area
//	64·n + 128 + (r+1)·nbChunk  nbChunk  rank r's area
type nodeBig struct {
	seg  *shm.Segment
	ctl  []uint64
	bell shmsync.Bell
	n    int
	prog uint64 // this rank's counter, as it last stored it
}

// nbChunk is the chunk size: a 1 MiB call is one chunk. Measured at np 2
// and 4 (docs/performance.md), 1 MiB chunks beat 256 KiB and 64 KiB ones,
// most for Bcast, whose root waits for every rank between chunks. The
// segment is (n+1) MiB of address space; its pages are allocated as calls
// touch them.
const nbChunk = 1 << 20

func nbAreasOff(n int) int { return 64*n + 128 }

func nbSize(n int) int64 { return int64(nbAreasOff(n) + (n+1)*nbChunk) }

// big returns c's large-call segment, setting it up on the first call
// (collective, over messages; every rank of c gets the same outcome), or
// nil when setting it up failed (then large calls use messages).
func (nc *nodeColl) big(c *Comm) *nodeBig {
	switch nc.bigState {
	case ncReady:
		return nc.nb
	case ncNone:
		return nil
	}
	nc.bigState = ncNone
	seg, err := c.shareSegment(nbSize(c.size), false)
	if err != nil {
		c.w.log.Debug("runtime: large shared-memory collectives unavailable; using messages", "comm", c.name, "err", err)
		return nil
	}
	ctl, err := shm.View[uint64](seg, 0, 8*c.size+9)
	if err == nil {
		var bells []uint32
		bells, err = shm.View[uint32](seg, int64(64*c.size+64), 1)
		if err == nil {
			nb := &nodeBig{seg: seg, ctl: ctl, n: c.size}
			nb.bell = shmsync.NewBell(&ctl[8*c.size], &bells[0])
			goruntime.AddCleanup(c, func(s *shm.Segment) { s.Close() }, seg)
			nc.nb, nc.bigState = nb, ncReady
			return nb
		}
	}
	seg.Close()
	c.w.log.Debug("runtime: large shared-memory collectives unavailable; using messages", "comm", c.name, "err", err)
	return nil
}

func (nb *nodeBig) counter(r int) *uint64 { return &nb.ctl[8*r] }

func (nb *nodeBig) result() []byte {
	off := nbAreasOff(nb.n)
	return nb.seg.Bytes()[off : off+nbChunk : off+nbChunk]
}

func (nb *nodeBig) area(r int) []byte {
	off := nbAreasOff(nb.n) + (r+1)*nbChunk
	return nb.seg.Bytes()[off : off+nbChunk : off+nbChunk]
}

// say stores this rank's counter as v and wakes the ranks that sleep on it.
func (nb *nodeBig) say(me int, v uint64) {
	nb.prog = v
	// release (seq-cst): this rank's copies and folds before it
	// happen-before the loads of whoever sees v.
	atomic.StoreUint64(nb.counter(me), v)
	nb.bell.Ring() // after the store (shmsync.Bell)
}

// reached reports whether rank r's counter is at least v.
func (nb *nodeBig) reached(r int, v uint64) bool {
	// acquire: pairs with r's release store in say.
	return atomic.LoadUint64(nb.counter(r)) >= v
}

// await waits until every rank's counter (or, with one >= 0, that rank's)
// is at least v, as nodeColl.await waits: polling as w.wait says, then
// sleeping; a failed world or the watchdog ends the wait.
func (nb *nodeBig) await(k *coll, one int, v uint64) error {
	w := k.c.w
	ready := func() bool {
		if one >= 0 {
			return nb.reached(one, v)
		}
		for r := range nb.n {
			if !nb.reached(r, v) {
				return false
			}
		}
		return true
	}
	return nb.bell.Await(ready, w.wait, 100*time.Millisecond, func(waited time.Duration) error {
		if err := w.err(); err != nil {
			return err
		}
		return k.watchdog(waited)
	})
}

// allreduceBig is the Allreduce of send into recv through nb (see above);
// f folds its second argument into its first.
func allreduceBig[T Elem](k *coll, nb *nodeBig, send, recv []T, f func(dst, src []T)) error {
	me, n := k.c.rank, nb.n
	// own: this rank folds its share from send itself, which the fold into
	// recv would overwrite if they shared memory. An overlap that is not
	// in place (send is recv) would let a chunk's result overwrite a later
	// chunk's input: reduce a copy in place instead.
	own := !overlaps(asBytes(send), asBytes(recv))
	if !own && &send[0] != &recv[0] {
		copy(recv, send)
		send = recv
	}
	per := nbChunk / sizeOf[T]()
	for lo := 0; lo < len(send); lo += per {
		hi := min(lo+per, len(send))
		in, out, m := send[lo:hi], recv[lo:hi], hi-lo
		a, b := me*m/n, (me+1)*m/n
		p := nb.prog
		mine := fromBytes[T](nb.area(me))
		if own {
			// The others read every share of this rank's area but its own.
			copy(mine[:a], in[:a])
			copy(mine[b:m], in[b:])
		} else {
			copy(mine[:m], in)
		}
		nb.say(me, p+1)
		if err := nb.await(k, -1, p+1); err != nil {
			return err
		}
		if a < b {
			dst := out[a:b]
			for r := range n {
				src := fromBytes[T](nb.area(r))[a:b]
				if r == me && own {
					src = in[a:b]
				}
				if r == 0 {
					copy(dst, src)
				} else {
					f(dst, src)
				}
			}
			copy(fromBytes[T](nb.result())[a:b], dst)
		}
		nb.say(me, p+2)
		if err := nb.await(k, -1, p+2); err != nil {
			return err
		}
		res := fromBytes[T](nb.result())
		copy(out[:a], res[:a])
		copy(out[b:m], res[b:m])
	}
	return nil
}

// bcastBig is the Bcast of b from root through nb (see above).
func bcastBig(k *coll, nb *nodeBig, b []byte, root int) error {
	me := k.c.rank
	for lo := 0; lo < len(b); lo += nbChunk {
		chunk := b[lo:min(lo+nbChunk, len(b))]
		p := nb.prog
		if me == root {
			// Every rank has copied out whatever the result area held.
			if err := nb.await(k, -1, p); err != nil {
				return err
			}
			copy(nb.result(), chunk)
			nb.say(me, p+1)
			continue
		}
		if err := nb.await(k, root, p+1); err != nil {
			return err
		}
		copy(chunk, nb.result())
		nb.say(me, p+1)
	}
	return nil
}

// allgatherBig is the Allgather of send into recv through nb (see above).
func allgatherBig(k *coll, nb *nodeBig, send, recv []byte) error {
	m := len(send)
	return allgathervBig(k, nb, send, func(int) int { return m }, func(r int) []byte { return recv[r*m : (r+1)*m] })
}

// allgathervBig is the Allgatherv through nb (see above): block r, of
// size(r) bytes, lands in dst(r) (which has that length) on every rank;
// this rank's is send. Every rank agrees on the sizes (the arrival
// compared them), so all take the same chunks, as many as the largest
// block needs.
func allgathervBig(k *coll, nb *nodeBig, send []byte, size func(r int) int, dst func(r int) []byte) error {
	me, n := k.c.rank, nb.n
	top := 0
	for r := range n {
		top = max(top, size(r))
	}
	part := func(b []byte, lo int) []byte { return b[min(lo, len(b)):min(lo+nbChunk, len(b))] }
	for lo := 0; lo < top; lo += nbChunk {
		p := nb.prog
		// Every rank has copied out what this rank's area held.
		if err := nb.await(k, -1, p); err != nil {
			return err
		}
		copy(nb.area(me), part(send, lo))
		nb.say(me, p+1)
		copy(part(dst(me), lo), part(send, lo))
		if err := nb.await(k, -1, p+1); err != nil {
			return err
		}
		// Starting at the next rank spreads the readers over the areas.
		for i := 1; i < n; i++ {
			r := (me + i) % n
			copy(part(dst(r), lo), nb.area(r))
		}
		nb.say(me, p+2)
	}
	return nil
}

// alltoallBig is the Alltoall of send into recv through nb (see above):
// both hold n blocks of len(send)/n bytes.
func alltoallBig(k *coll, nb *nodeBig, send, recv []byte) error {
	me, n := k.c.rank, nb.n
	b := len(send) / n
	q := nbChunk / n &^ 63 // bytes of each block per chunk, whole cache lines
	for lo := 0; lo < b; lo += q {
		hi := min(lo+q, b)
		p := nb.prog
		if err := nb.await(k, -1, p); err != nil {
			return err
		}
		area := nb.area(me)
		for j := range n {
			if j != me {
				copy(area[j*q:], send[j*b+lo:j*b+hi])
			}
		}
		nb.say(me, p+1)
		copy(recv[me*b+lo:me*b+hi], send[me*b+lo:me*b+hi])
		if err := nb.await(k, -1, p+1); err != nil {
			return err
		}
		for i := 1; i < n; i++ {
			r := (me + i) % n
			copy(recv[r*b+lo:r*b+hi], nb.area(r)[me*q:])
		}
		nb.say(me, p+2)
	}
	return nil
}

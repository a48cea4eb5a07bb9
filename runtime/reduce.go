package runtime

import (
	"fmt"
	"math/bits"
)

// ringThreshold is the message size from which Allreduce switches from
// recursive doubling (log2 n steps, each moving the whole vector) to the
// ring (2(n-1) steps, each moving 1/n of it).
const ringThreshold = 64 << 10

// Bcast sends buf from rank root to every other rank of c, where it
// overwrites buf (MPI_Bcast).
//
// Bcast is collective over c and blocking; every rank passes the same root
// and a buf of the same length. It uses a binomial tree; on a communicator
// that spans several nodes with several ranks on some node, binomial trees
// inside the root's node, among the node leaders, and inside the other
// nodes (hier.go); on a one-node communicator, up to 256 bytes go through
// the shared segment. Errors: ErrInvalid for a root out of range or
// arguments that differ between ranks — on a one-node communicator returned
// by every rank, otherwise the cause of ErrAborted on every rank (see
// Errors in the package doc); ErrAborted, ErrClosed.
func Bcast[T Elem](c *Comm, buf []T, root int) error {
	if c == nil {
		return (*Comm)(nil).opErr("Bcast", root, elemFirst[T](checkSerialRoot(root)))
	}
	local := elemFirst[T](c.checkRoot(root))
	var k coll
	if err := c.begin(&k, "Bcast", rootedCall(callBcast, root, len(buf), sizeOf[T]())); err != nil {
		return c.opErr("Bcast", root, err)
	}
	k.strict = true
	b := asBytes(buf)
	if nc := c.nodeColl(); nc != nil {
		if done, err := bcastNode(&k, nc, b, root, local); done || err != nil {
			return c.opErr("Bcast", root, err)
		}
		return c.opErr("Bcast", root, k.end(k.bcast(b, root)))
	}
	if local != nil {
		return c.opErr("Bcast", root, k.abort(newArgError(c.rank, local)))
	}
	if c.hierarchical() {
		return c.opErr("Bcast", root, k.end(hierBcast(&k, b, root)))
	}
	return c.opErr("Bcast", root, k.end(k.bcast(b, root)))
}

func checkSerialRoot(root int) error {
	if root != 0 {
		return errInvalid(fmt.Sprintf("root %d out of range [0,1)", root))
	}
	return nil
}

// bcast is the binomial tree: in round i, every rank that has the data
// sends it to the rank 2^i above it (relative to root).
func (k *coll) bcast(b []byte, root int) error {
	n, vr := k.c.size, (k.c.rank-root+k.c.size)%k.c.size
	mask := 1
	for ; mask < n; mask <<= 1 {
		if vr&mask != 0 {
			if err := k.recv((vr-mask+root)%n, b); err != nil {
				return err
			}
			break
		}
	}
	var reqs []*Request
	for mask >>= 1; mask > 0; mask >>= 1 {
		if vr+mask < n {
			r, err := k.isend((vr+mask+root)%n, b)
			if err != nil {
				return err
			}
			reqs = append(reqs, r)
		}
	}
	return k.waitAll(reqs)
}

// Reduce combines send of every rank element-wise with op into recv at
// rank root (MPI_Reduce). recv is only used at root, where it must have
// len(send) elements; elsewhere it may be nil.
//
// Reduce is collective over c and blocking; every rank passes the same op,
// root and len(send). It uses a binomial tree; for an op that does not
// commute (NewOp), a tree towards rank 0, which combines in rank order, and
// then a message to root. Errors: ErrInvalid for an op not defined for T, a
// root out of range, a recv of the wrong length at root, or arguments that
// differ between ranks — on a one-node communicator returned by every
// rank, otherwise the cause of ErrAborted on every rank; ErrAborted (also
// when a user op's function panics, see NewOp), ErrClosed.
func Reduce[T Elem](c *Comm, send, recv []T, op Op, root int) (err error) {
	f, local := commKernel[T](c, op)
	if c == nil {
		if local == nil {
			local = checkSerialRoot(root)
		}
		if local == nil {
			local = serialCopy(send, recv)
		}
		return (*Comm)(nil).opErr("Reduce", root, local)
	}
	defer c.catchOp("Reduce", &err)
	if local == nil {
		local = c.checkRoot(root)
	}
	if local == nil && c.rank == root && len(recv) != len(send) {
		local = errInvalid(fmt.Sprintf("recv has %d elements, want len(send) = %d", len(recv), len(send)))
	}
	var k coll
	id := callID{kind: callReduce, op: op, root: root, count: len(send), esize: sizeOf[T]()}
	if err := c.enterStrict(&k, "Reduce", id, local); err != nil {
		return c.opErr("Reduce", root, err)
	}
	return c.opErr("Reduce", root, k.end(reduce(&k, send, recv, f, root, op.ordered())))
}

func serialCopy[T Elem](send, recv []T) error {
	if len(recv) != len(send) {
		return errInvalid(fmt.Sprintf("recv has %d elements, want len(send) = %d", len(recv), len(send)))
	}
	copy(recv, send)
	return nil
}

// reduce is the binomial tree towards root. A rank that knows of an
// argument error (k.err, in hierAllreduce) passes it up in place of data.
//
// Every rank's accumulator holds the contributions of consecutive virtual
// ranks (rank - root mod n), its own first, and folds in those of higher
// ones after it: in rank order when the tree's root is rank 0. So for an
// ordered op the tree goes to rank 0, which sends the result to root.
func reduce[T Elem](k *coll, send, recv []T, f func(dst, src []T), root int, ordered bool) error {
	top := root
	if ordered {
		top = 0
	}
	n, vr := k.c.size, (k.c.rank-top+k.c.size)%k.c.size
	acc := append([]T(nil), send...)
	var tmp []T
	for mask := 1; mask < n; mask <<= 1 {
		if vr&mask != 0 {
			if err := k.send((vr-mask+top)%n, asBytes(acc)); err != nil {
				return err
			}
			break
		}
		if vr|mask < n {
			if tmp == nil {
				tmp = make([]T, len(send))
			}
			if err := k.recv((vr|mask+top)%n, asBytes(tmp)); err != nil {
				return err
			}
			if k.err == nil {
				f(acc, tmp)
			}
		}
	}
	switch r := k.c.rank; {
	case r == top && r == root:
		copy(recv, acc)
	case r == top:
		return k.send(root, asBytes(acc))
	case r == root:
		return k.recv(top, asBytes(recv))
	}
	return nil
}

// Allreduce combines send of every rank element-wise with op and leaves the
// result in recv on every rank (MPI_Allreduce). recv must have len(send)
// elements; it may be send itself (in place). Every rank gets bit-identical
// results, floating point included.
//
// Allreduce is collective over c and blocking; every rank passes the same
// op and len(send). It uses recursive doubling for short vectors and a ring
// (reduce-scatter, then allgather) from 64 KiB. On a communicator that
// spans several nodes with several ranks on some node, it reduces inside
// each node to its leader, allreduces among the leaders as above, and
// broadcasts inside each node (hier.go); on a one-node communicator, up to
// 256 bytes go through the shared segment. For an op that does not commute
// (NewOp) it combines in rank order: recursive doubling at every size, and
// the node-aware steps only where each node's ranks are consecutive in c.
// Errors: ErrInvalid, returned by every rank, for an op not defined for T
// or a recv of the wrong length on any rank; arguments that differ between
// ranks are ErrInvalid on every rank of a one-node communicator, otherwise
// the cause of ErrAborted on every rank; ErrAborted (also when a user op's
// function panics, see NewOp), ErrClosed.
func Allreduce[T Elem](c *Comm, send, recv []T, op Op) (err error) {
	f, local := elementwise(c, send, recv, op)
	if c == nil {
		return (*Comm)(nil).opErr("Allreduce", NoPeer, local)
	}
	defer c.catchOp("Allreduce", &err)
	var k coll
	if err := c.begin(&k, "Allreduce", countedCall(callAllreduce, op, len(send), sizeOf[T]())); err != nil {
		return c.opErr("Allreduce", NoPeer, err)
	}
	acc := recv
	if local != nil {
		acc = make([]T, len(send)) // recv may not fit; nothing of acc is used
	}
	if nc := c.nodeColl(); nc != nil {
		// It copies send into acc where the messages go on.
		if done, err := allreduceNode(&k, nc, send, acc, f, local); done || err != nil {
			return c.opErr("Allreduce", NoPeer, err)
		}
	} else {
		copy(acc, send)
		if local != nil {
			k.err = newArgError(c.rank, local)
		}
	}
	ordered := op.ordered()
	switch {
	case c.hierarchical() && (!ordered || c.nodesConsecutive()):
		err = hierAllreduce(&k, acc, f, ordered)
	case !ordered && len(acc)*sizeOf[T]() >= ringThreshold && len(acc) >= c.size:
		err = ringAllreduce(&k, acc, f)
	default:
		err = rdAllreduce(&k, acc, f, ordered)
	}
	return c.opErr("Allreduce", NoPeer, k.end(err))
}

// elementwise checks the arguments of Allreduce and Scan and returns op's
// kernel and this rank's argument error; on the serial communicator it
// also does the whole call, copying send to recv.
func elementwise[T Elem](c *Comm, send, recv []T, op Op) (func(dst, src []T), error) {
	f, local := commKernel[T](c, op)
	if local == nil && len(recv) != len(send) {
		local = errInvalid(fmt.Sprintf("recv has %d elements, want len(send) = %d", len(recv), len(send)))
	}
	if c == nil && local == nil {
		copy(recv, send)
	}
	return f, local
}

// rdAllreduce is recursive doubling on acc in place. With n not a power of
// two, the first 2·rem ranks pair up: the even one hands its vector to the
// odd one and sits out, then gets the result back at the end.
//
// A rank's vector always holds the contributions of consecutive ranks, and
// its partner's lie all below or all above them, so an ordered op combines
// in rank order: lower ∘ higher, computed the same way by both partners.
func rdAllreduce[T Elem](k *coll, acc []T, f func(dst, src []T), ordered bool) error {
	n, r := k.c.size, k.c.rank
	if n == 1 {
		return nil
	}
	p2 := 1 << (bits.Len(uint(n)) - 1)
	rem := n - p2
	tmp := collScratch[T](k, len(acc))
	vr := r - rem
	if r < 2*rem {
		if r%2 == 0 {
			if err := k.send(r+1, asBytes(acc)); err != nil {
				return err
			}
			return k.recv(r+1, asBytes(acc))
		}
		if err := k.recv(r-1, asBytes(tmp)); err != nil {
			return err
		}
		if k.err == nil {
			foldLower(f, ordered, acc, tmp)
		}
		vr = r / 2
	}
	real := func(v int) int {
		if v < rem {
			return 2*v + 1
		}
		return v + rem
	}
	for mask := 1; mask < p2; mask <<= 1 {
		peer := real(vr ^ mask)
		if err := k.sendrecv(peer, asBytes(acc), peer, asBytes(tmp)); err != nil {
			return err
		}
		// x+y and y+x are the same IEEE value, so both partners hold
		// bit-identical sums after every round.
		switch {
		case k.err != nil:
		case peer < r:
			foldLower(f, ordered, acc, tmp)
		default:
			f(acc, tmp)
		}
	}
	if r < 2*rem {
		return k.send(r-1, asBytes(acc))
	}
	return nil
}

// ringAllreduce is the bandwidth-optimal ring: n-1 steps of reduce-scatter
// leave rank r with the full result of block (r+1) mod n, then n-1 steps of
// allgather pass the finished blocks around.
func ringAllreduce[T Elem](k *coll, acc []T, f func(dst, src []T)) error {
	n, r := k.c.size, k.c.rank
	block := func(i int) []T {
		i = ((i % n) + n) % n
		lo, hi := i*len(acc)/n, (i+1)*len(acc)/n
		return acc[lo:hi]
	}
	next, prev := (r+1)%n, (r-1+n)%n
	tmp := collScratch[T](k, len(acc)/n+1)
	for s := 0; s < n-1; s++ {
		out, in := block(r-s), block(r-s-1)
		t := tmp[:len(in)]
		if err := k.sendrecv(next, asBytes(out), prev, asBytes(t)); err != nil {
			return err
		}
		if k.err == nil {
			f(in, t)
		}
	}
	for s := 0; s < n-1; s++ {
		out, in := block(r+1-s), block(r-s)
		if err := k.sendrecv(next, asBytes(out), prev, asBytes(in)); err != nil {
			return err
		}
	}
	return nil
}

// Scan leaves in recv of rank r the combination with op of send of ranks
// 0..r (an inclusive prefix reduction, MPI_Scan). recv must have len(send)
// elements and may be send itself.
//
// Scan is collective over c and blocking; every rank passes the same op and
// len(send). It uses recursive doubling, which combines in rank order for an
// op that does not commute (NewOp). Errors: ErrInvalid for an op not
// defined for T, a recv of the wrong length, or arguments that differ
// between ranks — on a one-node communicator returned by every rank,
// otherwise the cause of ErrAborted on every rank; ErrAborted (also when a
// user op's function panics, see NewOp), ErrClosed.
func Scan[T Elem](c *Comm, send, recv []T, op Op) (err error) {
	f, local := elementwise(c, send, recv, op)
	if c == nil {
		return (*Comm)(nil).opErr("Scan", NoPeer, local)
	}
	defer c.catchOp("Scan", &err)
	var k coll
	if err := c.enterStrict(&k, "Scan", countedCall(callScan, op, len(send), sizeOf[T]()), local); err != nil {
		return c.opErr("Scan", NoPeer, err)
	}
	return c.opErr("Scan", NoPeer, k.end(scan(&k, send, recv, f, false, op.ordered())))
}

// Exscan leaves in recv of rank r the combination with op of send of ranks
// 0..r-1 (an exclusive prefix reduction, MPI_Exscan); rank 0's recv is left
// as it was. recv must have len(send) elements and may be send itself.
//
// Exscan is collective over c and blocking; every rank passes the same op
// and len(send). It uses recursive doubling, as Scan. Errors as Scan.
func Exscan[T Elem](c *Comm, send, recv []T, op Op) (err error) {
	f, local := elementwise(c, send, recv, op)
	if c == nil {
		return (*Comm)(nil).opErr("Exscan", NoPeer, local)
	}
	defer c.catchOp("Exscan", &err)
	var k coll
	if err := c.enterStrict(&k, "Exscan", countedCall(callExscan, op, len(send), sizeOf[T]()), local); err != nil {
		return c.opErr("Exscan", NoPeer, err)
	}
	return c.opErr("Exscan", NoPeer, k.end(scan(&k, send, recv, f, true, op.ordered())))
}

// scan is the recursive doubling of Scan, or of Exscan (exclusive), which
// leaves rank 0's recv as it was. An ordered op is applied in rank order.
func scan[T Elem](k *coll, send, recv []T, f func(dst, src []T), exclusive, ordered bool) error {
	n, r := k.c.size, k.c.rank
	if !exclusive {
		copy(recv, send)
	}
	partial := append([]T(nil), send...)
	tmp := make([]T, len(send))
	have := !exclusive // recv holds a contribution
	var lower []T      // a copy of tmp for an ordered op's recv
	for mask := 1; mask < n; mask <<= 1 {
		peer := r ^ mask
		if peer >= n {
			continue
		}
		if err := k.sendrecv(peer, asBytes(partial), peer, asBytes(tmp)); err != nil {
			return err
		}
		if peer > r {
			f(partial, tmp)
			continue
		}
		if have {
			foldScan(f, ordered, recv, tmp, &lower)
		} else {
			copy(recv, tmp)
			have = true
		}
		foldLower(f, ordered, partial, tmp)
	}
	return nil
}

// foldScan sets recv = tmp op recv, where tmp holds lower ranks'
// contributions, leaving tmp as it was (for an ordered op through a copy
// in *lower).
func foldScan[T Elem](f func(dst, src []T), ordered bool, recv, tmp []T, lower *[]T) {
	if !ordered {
		f(recv, tmp)
		return
	}
	*lower = append((*lower)[:0], tmp...)
	foldLower(f, true, recv, *lower)
}

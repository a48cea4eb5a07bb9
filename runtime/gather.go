package runtime

import (
	"fmt"
)

// Gather collects send of every rank, in rank order, into recv at rank
// root (MPI_Gather): block i of recv, of len(send) elements, comes from rank
// i. recv is only used at root, where it must have Size()·len(send)
// elements; elsewhere it may be nil. Every rank passes the same root and
// len(send).
//
// Gather is collective over c and blocking. Errors: ErrInvalid for a root
// out of range, a recv of the wrong size at root, or arguments that differ
// between ranks — on a one-node communicator returned by every rank,
// otherwise the cause of ErrAborted on every rank; ErrAborted, ErrClosed.
func Gather[T Elem](c *Comm, send, recv []T, root int) error {
	if c == nil {
		err := elemFirst[T](checkSerialRoot(root))
		if err == nil {
			err = serialCopy(send, recv)
		}
		return (*Comm)(nil).opErr("Gather", root, err)
	}
	m := len(send)
	local := elemFirst[T](c.checkRoot(root))
	if local == nil && c.rank == root && len(recv) != c.size*m {
		local = errInvalid(fmt.Sprintf("recv has %d elements, want Size()·len(send) = %d", len(recv), c.size*m))
	}
	var k coll
	if err := c.enterStrict(&k, "Gather", rootedCall(callGather, root, m, sizeOf[T]()), local); err != nil {
		return c.opErr("Gather", root, err)
	}
	if c.rank != root {
		return c.opErr("Gather", root, k.end(k.send(root, asBytes(send))))
	}
	counts, displs := make([]int, c.size), make([]int, c.size)
	for i := range counts {
		counts[i], displs[i] = m, i*m
	}
	return c.opErr("Gather", root, k.end(gatherv(&k, send, recv, counts, displs)))
}

// Gatherv is Gather with a count per rank: at root, counts[i] elements
// from rank i land at recv[displs[i]:], and rank i passes a send of exactly
// counts[i] elements (MPI_Gatherv). counts, displs and recv are only used at
// root.
//
// Gatherv is collective over c and blocking. Errors: ErrInvalid for a root
// out of range or bad counts or displacements at root — on a one-node
// communicator returned by every rank, otherwise the cause of ErrAborted on
// every rank; a rank whose send length differs from its count aborts the
// world with a cause naming it; ErrAborted, ErrClosed.
func Gatherv[T Elem](c *Comm, send, recv []T, counts, displs []int, root int) error {
	if c == nil {
		err := elemFirst[T](checkSerialRoot(root))
		if err == nil {
			err = checkCounts(1, len(send), recv, counts, displs)
		}
		if err == nil {
			copy(recv[displs[0]:], send)
		}
		return (*Comm)(nil).opErr("Gatherv", root, err)
	}
	local := elemFirst[T](c.checkRoot(root))
	if local == nil && c.rank == root {
		local = checkCounts(c.size, len(send), recv, counts, displs)
	}
	var k coll
	if err := c.enterStrict(&k, "Gatherv", rootedCall(callGatherv, root, -1, sizeOf[T]()), local); err != nil {
		return c.opErr("Gatherv", root, err)
	}
	if c.rank != root {
		return c.opErr("Gatherv", root, k.end(k.send(root, asBytes(send))))
	}
	return c.opErr("Gatherv", root, k.end(gatherv(&k, send, recv, counts, displs)))
}

// checkCounts checks the counts and displacements of Gatherv at its root,
// which sends own elements itself.
func checkCounts[T Elem](n, own int, recv []T, counts, displs []int) error {
	if len(counts) != n || len(displs) != n {
		return errInvalid(fmt.Sprintf("counts has %d entries and displs %d, want Size() = %d", len(counts), len(displs), n))
	}
	for i := range n {
		if counts[i] < 0 || displs[i] < 0 || displs[i]+counts[i] > len(recv) {
			return errInvalid(fmt.Sprintf("block %d (displs %d, counts %d) does not fit recv of %d elements", i, displs[i], counts[i], len(recv)))
		}
	}
	return nil
}

// gatherv is the root's side: post every receive, then copy its own block.
func gatherv[T Elem](k *coll, send, recv []T, counts, displs []int) error {
	c := k.c
	if own := counts[c.rank]; own != len(send) {
		return k.abort(&argError{rank: c.rank, msg: fmt.Sprintf("root sends %d elements but counts[%d] = %d", len(send), c.rank, own)})
	}
	reqs := make([]*Request, c.size)
	for i := range c.size {
		if i == c.rank {
			continue
		}
		r, err := k.irecv(i, asBytes(recv[displs[i]:displs[i]+counts[i]]))
		if err != nil {
			return err
		}
		reqs[i] = r
	}
	copy(recv[displs[c.rank]:], send)
	var first error
	for i, r := range reqs {
		if r == nil {
			continue
		}
		if err := k.wait(r, i, counts[i]*sizeOf[T]()); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Allgather collects send of every rank, in rank order, into recv on every
// rank (MPI_Allgather). recv must have Size()·len(send) elements.
//
// Allgather is collective over c and blocking; every rank passes the same
// len(send). It uses a ring: n-1 steps, each passing one block to the next
// rank; on a one-node communicator, shared memory: blocks of up to 256
// bytes travel in the collective segment, larger ones through a second
// segment in chunks of 1 MiB (every rank copies its block in, then every
// block out). Across nodes whose ranks are consecutive in c, with some
// node holding more than one, it is node-aware: each node gathers its
// blocks as above, the nodes' leaders pass the nodes' pieces round a ring,
// and each leader broadcasts the result in its node. Errors: ErrInvalid, returned by every rank, for a recv of the wrong
// size on any rank; arguments that differ between ranks are ErrInvalid on
// every rank of a one-node communicator, otherwise the cause of ErrAborted
// on every rank; ErrAborted, ErrClosed.
func Allgather[T Elem](c *Comm, send, recv []T) error {
	var local error
	if len(recv) != c.Size()*len(send) {
		local = errInvalid(fmt.Sprintf("recv has %d elements, want Size()·len(send) = %d", len(recv), c.Size()*len(send)))
	}
	local = elemFirst[T](local)
	if c == nil {
		if local == nil {
			copy(recv, send)
		}
		return (*Comm)(nil).opErr("Allgather", NoPeer, local)
	}
	var k coll
	if err := c.begin(&k, "Allgather", countedCall(callAllgather, 0, len(send), sizeOf[T]())); err != nil {
		return c.opErr("Allgather", NoPeer, err)
	}
	if nc := c.nodeColl(); nc != nil {
		if done, err := allgatherNode(&k, nc, asBytes(send), asBytes(recv), local); done || err != nil {
			return c.opErr("Allgather", NoPeer, err)
		}
	} else if local != nil {
		k.err = newArgError(c.rank, local)
	}
	if k.err != nil {
		recv = make([]T, c.size*len(send)) // recv does not fit; nothing of it is used
	}
	if c.hierarchical() && c.nodesConsecutive() {
		return c.opErr("Allgather", NoPeer, k.end(hierAllgather(&k, asBytes(send), asBytes(recv))))
	}
	return c.opErr("Allgather", NoPeer, k.end(allgather(&k, send, recv)))
}

func allgather[T Elem](k *coll, send, recv []T) error {
	r, m := k.c.rank, len(send)
	copy(recv[r*m:], send)
	return ringBlocks(k, func(i int) []byte { return asBytes(recv[i*m : (i+1)*m]) })
}

// ringBlocks completes an allgather in which rank i holds block(i) and
// every rank gets every block: n-1 steps round a ring, each passing on the
// block received in the step before. Blocks may differ in size.
func ringBlocks(k *coll, block func(i int) []byte) error {
	n, r := k.c.size, k.c.rank
	at := func(i int) []byte { return block(((i % n) + n) % n) }
	next, prev := (r+1)%n, (r-1+n)%n
	for s := 0; s < n-1; s++ {
		if err := k.sendrecv(next, at(r-s), prev, at(r-s-1)); err != nil {
			return err
		}
	}
	return nil
}

// Scatter sends block i of send, of len(recv) elements, from rank root to
// rank i (MPI_Scatter). send is only used at root, where it must have
// Size()·len(recv) elements; elsewhere it may be nil. Every rank passes the
// same root and len(recv).
//
// Scatter is collective over c and blocking. Errors: ErrInvalid for a root
// out of range, a send of the wrong size at root, or arguments that differ
// between ranks — on a one-node communicator returned by every rank,
// otherwise the cause of ErrAborted on every rank; ErrAborted, ErrClosed.
func Scatter[T Elem](c *Comm, send, recv []T, root int) error {
	if c == nil {
		err := elemFirst[T](checkSerialRoot(root))
		if err == nil {
			err = serialCopy(send, recv)
		}
		return (*Comm)(nil).opErr("Scatter", root, err)
	}
	m := len(recv)
	local := elemFirst[T](c.checkRoot(root))
	if local == nil && c.rank == root && len(send) != c.size*m {
		local = errInvalid(fmt.Sprintf("send has %d elements, want Size()·len(recv) = %d", len(send), c.size*m))
	}
	var k coll
	if err := c.enterStrict(&k, "Scatter", rootedCall(callScatter, root, m, sizeOf[T]()), local); err != nil {
		return c.opErr("Scatter", root, err)
	}
	if c.rank != root {
		return c.opErr("Scatter", root, k.end(k.recv(root, asBytes(recv))))
	}
	reqs := make([]*Request, 0, c.size-1)
	for i := range c.size {
		if i == root {
			continue
		}
		r, err := k.isend(i, asBytes(send[i*m:(i+1)*m]))
		if err != nil {
			return c.opErr("Scatter", root, err)
		}
		reqs = append(reqs, r)
	}
	copy(recv, send[root*m:(root+1)*m])
	return c.opErr("Scatter", root, k.end(Waitall(reqs...)))
}

// Alltoall sends block j of send to rank j and receives block i of recv
// from rank i (MPI_Alltoall). send and recv have the same length, a
// multiple of Size(), the same on every rank.
//
// Alltoall is collective over c and blocking. It uses pairwise exchange:
// in step s, rank r sends to r+s and receives from r-s; on a one-node
// communicator, shared memory: a send of up to 256 bytes travels in the
// collective segment, a larger one through a second segment in chunks
// of 1 MiB (every rank copies its n blocks in, then its n blocks out).
// Errors: ErrInvalid,
// returned by every rank, for lengths that differ or do not divide by
// Size() on any rank; lengths that differ between ranks are ErrInvalid on
// every rank of a one-node communicator, otherwise the cause of ErrAborted
// on every rank; ErrAborted, ErrClosed.
func Alltoall[T Elem](c *Comm, send, recv []T) error {
	n := c.Size()
	var local error
	if len(send) != len(recv) || len(send)%n != 0 {
		local = errInvalid(fmt.Sprintf("send has %d elements and recv %d; want equal lengths divisible by Size() = %d", len(send), len(recv), n))
	}
	local = elemFirst[T](local)
	if c == nil {
		if local == nil {
			copy(recv, send)
		}
		return (*Comm)(nil).opErr("Alltoall", NoPeer, local)
	}
	var k coll
	if err := c.begin(&k, "Alltoall", countedCall(callAlltoall, 0, len(send), sizeOf[T]())); err != nil {
		return c.opErr("Alltoall", NoPeer, err)
	}
	if nc := c.nodeColl(); nc != nil {
		if done, err := alltoallNode(&k, nc, asBytes(send), asBytes(recv), local); done || err != nil {
			return c.opErr("Alltoall", NoPeer, err)
		}
	} else if local != nil {
		k.err = newArgError(c.rank, local)
	}
	r, m := c.rank, len(send)/n
	if k.err != nil {
		// The blocks do not fit; poison goes out and what comes in is
		// discarded, so no buffer is touched.
		send, recv, m = nil, nil, 0
	}
	copy(recv[r*m:(r+1)*m], send[r*m:(r+1)*m])
	for s := 1; s < n; s++ {
		dst, src := (r+s)%n, (r-s+n)%n
		if err := k.sendrecv(dst, asBytes(send[dst*m:(dst+1)*m]), src, asBytes(recv[src*m:(src+1)*m])); err != nil {
			return c.opErr("Alltoall", NoPeer, err)
		}
	}
	return c.opErr("Alltoall", NoPeer, k.end(nil))
}

package runtime

import "fmt"

// The v-collectives: a count (and displacement) per rank.

// checkBlocks checks that n blocks of counts at displs fit buf (of size
// elements); what names the buffer in the error.
func checkBlocks(what string, n, size int, counts, displs []int) error {
	if len(counts) != n || len(displs) != n {
		return errInvalid(fmt.Sprintf("%s: counts has %d entries and displs %d, want Size() = %d", what, len(counts), len(displs), n))
	}
	for i := range n {
		if counts[i] < 0 || displs[i] < 0 || displs[i]+counts[i] > size {
			return errInvalid(fmt.Sprintf("%s: block %d (displs %d, counts %d) does not fit its %d elements", what, i, displs[i], counts[i], size))
		}
	}
	return nil
}

// Allgatherv is Allgather with a count per rank (MPI_Allgatherv): rank i
// sends counts[i] elements, which land at recv[displs[i]:] on every rank.
// Every rank passes the same counts and displs.
//
// Allgatherv is collective over c and blocking. It uses a ring; on a
// one-node communicator, shared memory, as Allgather does (blocks that all
// fit 256 bytes in the collective segment, larger ones through the
// large-call segment). Errors: ErrInvalid for counts or displacements that
// do not fit recv, or a send whose length is not counts[Rank()] — on a
// one-node communicator returned by every rank, otherwise the cause of
// ErrAborted on every rank; counts that differ between ranks are
// ErrInvalid on every rank of a one-node communicator (their digests
// differ), otherwise they abort the world with a cause naming the sizes;
// ErrAborted, ErrClosed.
func Allgatherv[T Elem](c *Comm, send, recv []T, counts, displs []int) error {
	local := checkBlocks("recv", c.Size(), len(recv), counts, displs)
	if local == nil && len(send) != counts[c.Rank()] {
		local = errInvalid(fmt.Sprintf("send has %d elements but counts[%d] = %d", len(send), c.Rank(), counts[c.Rank()]))
	}
	local = elemFirst[T](local)
	if c == nil {
		if local == nil {
			copy(recv[displs[0]:], send)
		}
		return (*Comm)(nil).opErr("Allgatherv", NoPeer, local)
	}
	var k coll
	if nc := c.nodeColl(); nc != nil {
		es := sizeOf[T]()
		if err := c.begin(&k, "Allgatherv", countedCall(callAllgatherv, 0, countsDigest(counts), es)); err != nil {
			return c.opErr("Allgatherv", NoPeer, err)
		}
		size := func(r int) int { return counts[r] * es }
		dst := func(r int) []byte { return asBytes(recv[displs[r] : displs[r]+counts[r]]) }
		if done, err := allgathervNode(&k, nc, asBytes(send), size, dst, local); done || err != nil {
			return c.opErr("Allgatherv", NoPeer, err)
		}
		k.strict = true // the arrival found every rank's arguments fine
	} else if err := c.enterStrict(&k, "Allgatherv", countedCall(callAllgatherv, 0, -1, sizeOf[T]()), local); err != nil {
		return c.opErr("Allgatherv", NoPeer, err)
	}
	copy(recv[displs[c.rank]:], send)
	err := ringBlocks(&k, func(i int) []byte { return asBytes(recv[displs[i] : displs[i]+counts[i]]) })
	return c.opErr("Allgatherv", NoPeer, k.end(err))
}

// scattervArgs checks the arguments of Scatterv and Iscatterv and returns
// this rank's argument error; on the serial communicator (c nil) it also
// does the copy.
func scattervArgs[T Elem](c *Comm, send []T, counts, displs []int, recv []T, root int) error {
	if c == nil {
		err := elemFirst[T](checkSerialRoot(root))
		if err == nil {
			err = checkBlocks("send", 1, len(send), counts, displs)
		}
		if err == nil && counts[0] != len(recv) {
			err = errInvalid(fmt.Sprintf("recv has %d elements but counts[0] = %d", len(recv), counts[0]))
		}
		if err == nil {
			copy(recv, send[displs[0]:displs[0]+counts[0]])
		}
		return err
	}
	local := elemFirst[T](c.checkRoot(root))
	if local == nil && c.rank == root {
		local = checkBlocks("send", c.size, len(send), counts, displs)
		if local == nil && counts[root] != len(recv) {
			local = errInvalid(fmt.Sprintf("recv has %d elements but counts[%d] = %d", len(recv), root, counts[root]))
		}
	}
	return local
}

// Scatterv is Scatter with a count per rank (MPI_Scatterv): rank i receives
// counts[i] elements from send[displs[i]:] of rank root, into recv, which
// must have exactly counts[i] elements. send, counts and displs are only
// used at root.
//
// Scatterv is collective over c and blocking. Errors: ErrInvalid for a root
// out of range or counts and displacements that do not fit send at root — on
// a one-node communicator returned by every rank, otherwise the cause of
// ErrAborted on every rank; a recv whose length is not its count aborts the
// world with a cause naming the sizes; ErrAborted, ErrClosed.
func Scatterv[T Elem](c *Comm, send []T, counts, displs []int, recv []T, root int) error {
	local := scattervArgs(c, send, counts, displs, recv, root)
	if c == nil {
		return (*Comm)(nil).opErr("Scatterv", root, local)
	}
	var k coll
	if err := c.enterStrict(&k, "Scatterv", rootedCall(callScatterv, root, -1, sizeOf[T]()), local); err != nil {
		return c.opErr("Scatterv", root, err)
	}
	if c.rank != root {
		return c.opErr("Scatterv", root, k.end(k.recv(root, asBytes(recv))))
	}
	reqs := make([]*Request, 0, c.size)
	var err error
	for i := range c.size {
		if i == root {
			continue
		}
		var r *Request
		if r, err = k.isend(i, asBytes(send[displs[i]:displs[i]+counts[i]])); err != nil {
			break
		}
		reqs = append(reqs, r)
	}
	copy(recv, send[displs[root]:displs[root]+counts[root]])
	if werr := Waitall(reqs...); err == nil {
		err = werr
	}
	return c.opErr("Scatterv", root, k.end(err))
}

// alltoallvArgs checks the arguments of Alltoallv and Ialltoallv and
// returns this rank's argument error; on the serial communicator (c nil)
// it also does the copy.
func alltoallvArgs[T Elem](c *Comm, send []T, sendcounts, sdispls []int, recv []T, recvcounts, rdispls []int) error {
	local := checkBlocks("send", c.Size(), len(send), sendcounts, sdispls)
	if local == nil {
		local = checkBlocks("recv", c.Size(), len(recv), recvcounts, rdispls)
	}
	me := c.Rank()
	if local == nil && sendcounts[me] != recvcounts[me] {
		local = errInvalid(fmt.Sprintf("sendcounts[%d] = %d but recvcounts[%d] = %d", me, sendcounts[me], me, recvcounts[me]))
	}
	local = elemFirst[T](local)
	if c == nil && local == nil {
		copy(recv[rdispls[0]:rdispls[0]+recvcounts[0]], send[sdispls[0]:sdispls[0]+sendcounts[0]])
	}
	return local
}

// Alltoallv is Alltoall with a count per pair (MPI_Alltoallv): rank r sends
// sendcounts[i] elements from send[sdispls[i]:] to rank i, and receives
// recvcounts[i] elements from rank i into recv[rdispls[i]:]. What rank r
// sends to rank i must be what rank i expects from r.
//
// Alltoallv is collective over c and blocking. It exchanges with one peer
// per step (pairwise). Errors: ErrInvalid for counts or displacements that
// do not fit send or recv — on a one-node communicator returned by every
// rank, otherwise the cause of ErrAborted on every rank; a pair whose counts
// disagree aborts the world with a cause naming the sizes; ErrAborted,
// ErrClosed.
func Alltoallv[T Elem](c *Comm, send []T, sendcounts, sdispls []int, recv []T, recvcounts, rdispls []int) error {
	local := alltoallvArgs(c, send, sendcounts, sdispls, recv, recvcounts, rdispls)
	if c == nil {
		return (*Comm)(nil).opErr("Alltoallv", NoPeer, local)
	}
	me := c.rank
	var k coll
	if err := c.enterStrict(&k, "Alltoallv", countedCall(callAlltoallv, 0, -1, sizeOf[T]()), local); err != nil {
		return c.opErr("Alltoallv", NoPeer, err)
	}
	n := c.size
	copy(recv[rdispls[me]:rdispls[me]+recvcounts[me]], send[sdispls[me]:sdispls[me]+sendcounts[me]])
	var err error
	for s := 1; s < n && err == nil; s++ {
		to, from := (me+s)%n, (me-s+n)%n
		err = k.sendrecv(to, asBytes(send[sdispls[to]:sdispls[to]+sendcounts[to]]),
			from, asBytes(recv[rdispls[from]:rdispls[from]+recvcounts[from]]))
	}
	return c.opErr("Alltoallv", NoPeer, k.end(err))
}

// ReduceScatter combines send of every rank element-wise with op and
// leaves block i of the result, counts[i] elements, in recv of rank i
// (MPI_Reduce_scatter): send has sum(counts) elements, the blocks in rank
// order, and recv exactly counts[Rank()]. Every rank passes the same op and
// counts.
//
// ReduceScatter is collective over c and blocking. Each rank sends block j
// to rank j and combines the blocks it receives (pairwise, in rank order,
// so every rank's result is combined in the same order, and an op that
// does not commute, see NewOp, is applied in rank order). Errors:
// ErrInvalid for an op not defined for T, or a send or recv whose length
// the counts do not give — on a one-node communicator returned by every
// rank, otherwise the cause of ErrAborted on every rank; counts that differ
// between ranks abort the world with a cause naming the sizes; ErrAborted
// (also when a user op's function panics), ErrClosed.
func ReduceScatter[T Elem](c *Comm, send, recv []T, counts []int, op Op) (err error) {
	f, displs, local := reduceScatterArgs(c, send, recv, counts, op)
	if c == nil {
		if local == nil {
			copy(recv, send)
		}
		return (*Comm)(nil).opErr("ReduceScatter", NoPeer, local)
	}
	defer c.catchOp("ReduceScatter", &err)
	var k coll
	if err := c.enterStrict(&k, "ReduceScatter", countedCall(callReduceScatter, op, -1, sizeOf[T]()), local); err != nil {
		return c.opErr("ReduceScatter", NoPeer, err)
	}
	return c.opErr("ReduceScatter", NoPeer, k.end(reduceScatter(&k, send, recv, counts, displs, f)))
}

// reduceScatterArgs checks the arguments of ReduceScatter: it returns op's
// kernel, the blocks' displacements in send and this rank's argument error.
func reduceScatterArgs[T Elem](c *Comm, send, recv []T, counts []int, op Op) (func(dst, src []T), []int, error) {
	f, local := commKernel[T](c, op)
	n, me := c.Size(), c.Rank()
	displs := make([]int, len(counts))
	total := 0
	for i, k := range counts {
		displs[i] = total
		total += max(k, 0)
	}
	if local == nil {
		local = checkBlocks("send", n, len(send), counts, displs)
	}
	if local == nil && (len(send) != total || len(recv) != counts[me]) {
		local = errInvalid(fmt.Sprintf("send has %d elements and recv %d; counts give %d and counts[%d] = %d", len(send), len(recv), total, me, counts[me]))
	}
	return f, displs, local
}

// reduceScatter is the pairwise exchange of ReduceScatter: each rank
// sends block j to rank j and folds the blocks it gets in rank order.
func reduceScatter[T Elem](k *coll, send, recv []T, counts, displs []int, f func(dst, src []T)) error {
	n, me := k.c.size, k.c.rank
	m := counts[me]
	got := make([]T, n*m) // the block of every rank, in rank order
	copy(got[me*m:], send[displs[me]:displs[me]+m])
	var err error
	for s := 1; s < n && err == nil; s++ {
		to, from := (me+s)%n, (me-s+n)%n
		err = k.sendrecv(to, asBytes(send[displs[to]:displs[to]+counts[to]]), from, asBytes(got[from*m:(from+1)*m]))
	}
	if err == nil {
		copy(recv, got[:m])
		for i := 1; i < n; i++ {
			f(recv, got[i*m:(i+1)*m])
		}
	}
	return err
}

// ReduceScatterBlock is ReduceScatter with every block of len(recv)
// elements (MPI_Reduce_scatter_block): send has Size()·len(recv).
func ReduceScatterBlock[T Elem](c *Comm, send, recv []T, op Op) error {
	counts := make([]int, c.Size())
	for i := range counts {
		counts[i] = len(recv)
	}
	return ReduceScatter(c, send, recv, counts, op)
}

// allgathervNode is Allgatherv through c's segment: block r, of size(r)
// bytes, lands in dst(r) on every rank; this rank's is send. The arrival
// compares the call's count, a digest of the counts (countsDigest), so
// ranks that passed different counts all return the same ErrInvalid
// before any block moves. Blocks that all fit a slot travel in the
// arrival, larger ones through the large-call segment (allgathervBig), or,
// where that could not be set up, on with messages (done == false).
// Allgather is the case of equal blocks.
func allgathervNode(k *coll, nc *nodeColl, send []byte, size func(r int) int, dst func(r int) []byte, local error) (done bool, err error) {
	top := len(send) // what a rank with bad arguments says; it moves nothing
	if local == nil {
		for r := range nc.n {
			top = max(top, size(r))
		}
	}
	g, small, nb, err := nc.arriveMoving(k, send, top, local)
	switch {
	case err != nil:
		return true, err
	case nb != nil:
		return true, allgathervBig(k, nb, send, size, dst)
	case !small:
		return false, nil
	}
	for r := range nc.n {
		copy(dst(r), nc.data(r, g, size(r)))
	}
	return true, nil
}

// countsDigest is a digest of counts that ranks compare in place of a
// count (FNV-1a over the values, 62 bits: a call's count is not negative).
func countsDigest(counts []int) int {
	h := uint64(14695981039346656037)
	for _, v := range counts {
		for i := 0; i < 64; i += 8 {
			h ^= uint64(v) >> i & 0xff
			h *= 1099511628211
		}
	}
	return int(h >> 2)
}

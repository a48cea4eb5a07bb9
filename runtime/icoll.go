package runtime

import "fmt"

// The nonblocking collectives (nbc.go has how they run). Each is the
// nonblocking form of the call it names and moves data as its message path
// does. What they share:
//
//   - Collective: every rank of c makes the call, and the collectives of c,
//     blocking and nonblocking, must be called in the same order by every
//     rank (not concurrently); calls are matched in that order, and a
//     nonblocking call matches only the same nonblocking call.
//   - Nonblocking: the call returns at once with a Request, which completes
//     when this rank's part is done (Wait, Test, Done, Waitall, Waitany...).
//     It progresses in the background: nobody needs to wait for it or test
//     it, so a rank may block in another call (a Recv, a blocking
//     collective made later) while it runs. Several may be in progress on
//     one communicator, and complete in any order.
//   - Buffers belong to the request until it completes, on every rank,
//     including the buffers a rank does not use (recv at a non-root).
//   - Errors: the call itself fails only when it cannot begin (ErrClosed,
//     ErrAborted), with a nil Request. Everything else comes from the
//     request: for Iallreduce, Iallgather and Ialltoall an argument error on
//     any rank is the same ErrInvalid on every rank, and c stays usable;
//     for the other calls an argument error aborts the world with a cause
//     naming the rank, so every rank's request reports ErrAborted with it;
//     arguments that differ between ranks abort the world. Close of c
//     completes its requests in progress with ErrClosed, and an abort with
//     ErrAborted.

// Ibarrier starts a barrier (MPI_Ibarrier): the request completes once
// every rank of c has called Ibarrier. See the top of this file for what
// every nonblocking collective shares. It uses the dissemination algorithm.
// Memory: what a rank wrote before Ibarrier happens before what any rank
// does after its request completes. Errors: ErrAborted, ErrClosed.
func (c *Comm) Ibarrier() (*Request, error) {
	if c == nil {
		return doneRequest(nil, "Ibarrier", NoPeer, nil), nil
	}
	var k coll
	if r, err := c.beginNB(&k, "Ibarrier", plainCall(callBarrier), NoPeer, nil, false); r != nil || err != nil {
		return r, err
	}
	return c.startNB(&k, NoPeer, dissemination), nil
}

// Ibcast starts a Bcast of buf from rank root (MPI_Ibcast); every rank
// passes the same root and a buf of the same length, which belongs to the
// request until it completes. It uses a binomial tree. Errors (from the
// request): a root out of range aborts the world (ErrAborted, naming it);
// ErrAborted, ErrClosed.
func Ibcast[T Elem](c *Comm, buf []T, root int) (*Request, error) {
	if c == nil {
		return doneRequest(nil, "Ibcast", root, checkSerialRoot(root)), nil
	}
	var k coll
	id := rootedCall(callBcast, root, len(buf), sizeOf[T]())
	if r, err := c.beginNB(&k, "Ibcast", id, root, elemFirst[T](c.checkRoot(root)), true); r != nil || err != nil {
		return r, err
	}
	b := asBytes(buf)
	return c.startNB(&k, root, func(k *coll) error { return k.bcast(b, root) }), nil
}

// Iallreduce starts an Allreduce (MPI_Iallreduce): recv of every rank gets
// send of every rank combined element-wise with op, bit-identical on every
// rank. recv has len(send) elements and may be send itself; both belong to
// the request until it completes. It uses recursive doubling, and a ring
// from 64 KiB. Errors (from the request): ErrInvalid, the same on every
// rank, for an op not defined for T or a recv of the wrong length on any
// rank (c stays usable); arguments that differ between ranks abort the
// world; ErrAborted, ErrClosed.
func Iallreduce[T Elem](c *Comm, send, recv []T, op Op) (*Request, error) {
	f, local := elementwise(c, send, recv, op)
	if c == nil {
		return doneRequest(nil, "Iallreduce", NoPeer, local), nil
	}
	local = elemFirst[T](local)
	var k coll
	id := countedCall(callAllreduce, op, len(send), sizeOf[T]())
	if r, err := c.beginNB(&k, "Iallreduce", id, NoPeer, local, false); r != nil || err != nil {
		return r, err
	}
	acc := recv
	if local != nil {
		acc = make([]T, len(send)) // recv may not fit; nothing of acc is used
	}
	return c.startNB(&k, NoPeer, func(k *coll) error {
		copy(acc, send)
		ordered := op.ordered() // a ring does not keep rank order
		if !ordered && len(acc)*sizeOf[T]() >= ringThreshold && len(acc) >= c.size {
			return ringAllreduce(k, acc, f)
		}
		return rdAllreduce(k, acc, f, ordered)
	}), nil
}

// Ireduce starts a Reduce to rank root (MPI_Ireduce): recv of root gets
// send of every rank combined element-wise with op. recv is only used at
// root, where it has len(send) elements; send and recv belong to the
// request until it completes. It uses a binomial tree. Errors (from the
// request): an op not defined for T, a root out of range or a recv of the
// wrong length at root abort the world (ErrAborted, naming the rank and
// the argument); ErrAborted, ErrClosed.
func Ireduce[T Elem](c *Comm, send, recv []T, op Op, root int) (*Request, error) {
	f, local := commKernel[T](c, op)
	if c == nil {
		if local == nil {
			local = checkSerialRoot(root)
		}
		if local == nil {
			local = serialCopy(send, recv)
		}
		return doneRequest(nil, "Ireduce", root, local), nil
	}
	if local == nil {
		local = c.checkRoot(root)
	}
	if local == nil && c.rank == root && len(recv) != len(send) {
		local = errInvalid(fmt.Sprintf("recv has %d elements, want len(send) = %d", len(recv), len(send)))
	}
	local = elemFirst[T](local)
	var k coll
	id := callID{kind: callReduce, op: op, root: root, count: len(send), esize: sizeOf[T]()}
	if r, err := c.beginNB(&k, "Ireduce", id, root, local, true); r != nil || err != nil {
		return r, err
	}
	return c.startNB(&k, root, func(k *coll) error { return reduce(k, send, recv, f, root, op.ordered()) }), nil
}

// Iallgather starts an Allgather (MPI_Iallgather): recv of every rank gets
// send of every rank in rank order. recv has Size()·len(send) elements;
// both belong to the request until it completes. It uses a ring. Errors
// (from the request): ErrInvalid, the same on every rank, for a recv of
// the wrong size on any rank (c stays usable); lengths that differ between
// ranks abort the world; ErrAborted, ErrClosed.
func Iallgather[T Elem](c *Comm, send, recv []T) (*Request, error) {
	var local error
	if len(recv) != c.Size()*len(send) {
		local = errInvalid(fmt.Sprintf("recv has %d elements, want Size()·len(send) = %d", len(recv), c.Size()*len(send)))
	}
	if c == nil {
		if local == nil {
			copy(recv, send)
		}
		return doneRequest(nil, "Iallgather", NoPeer, local), nil
	}
	local = elemFirst[T](local)
	var k coll
	id := countedCall(callAllgather, 0, len(send), sizeOf[T]())
	if r, err := c.beginNB(&k, "Iallgather", id, NoPeer, local, false); r != nil || err != nil {
		return r, err
	}
	if local != nil {
		recv = make([]T, c.size*len(send)) // recv does not fit; nothing of it is used
	}
	return c.startNB(&k, NoPeer, func(k *coll) error { return allgather(k, send, recv) }), nil
}

// Ialltoall starts an Alltoall (MPI_Ialltoall): block j of send goes to
// rank j, block i of recv comes from rank i. send and recv have the same
// length, a multiple of Size(), the same on every rank; both belong to the
// request until it completes. Every exchange starts at once. Errors (from
// the request): ErrInvalid, the same on every rank, for lengths that differ
// or do not divide by Size() on any rank (c stays usable); lengths that
// differ between ranks abort the world; ErrAborted, ErrClosed.
func Ialltoall[T Elem](c *Comm, send, recv []T) (*Request, error) {
	n := c.Size()
	var local error
	if len(send) != len(recv) || len(send)%n != 0 {
		local = errInvalid(fmt.Sprintf("send has %d elements and recv %d; want equal lengths divisible by Size() = %d", len(send), len(recv), n))
	}
	if c == nil {
		if local == nil {
			copy(recv, send)
		}
		return doneRequest(nil, "Ialltoall", NoPeer, local), nil
	}
	local = elemFirst[T](local)
	var k coll
	id := countedCall(callAlltoall, 0, len(send), sizeOf[T]())
	if r, err := c.beginNB(&k, "Ialltoall", id, NoPeer, local, false); r != nil || err != nil {
		return r, err
	}
	m := len(send) / n
	if local != nil {
		// The blocks do not fit; poison goes out and what comes in is
		// discarded, so no buffer is touched.
		send, recv, m = nil, nil, 0
	}
	counts, displs := make([]int, n), make([]int, n)
	for i := range n {
		counts[i], displs[i] = m, i*m
	}
	return c.startNB(&k, NoPeer, func(k *coll) error {
		return alltoallv(k, send, counts, displs, recv, counts, displs)
	}), nil
}

// alltoallv starts every exchange of an Alltoall(v) at once, then waits for
// them: the receives first, each checked for its size, then the sends.
func alltoallv[T Elem](k *coll, send []T, sc, sd []int, recv []T, rc, rd []int) error {
	n, me := k.c.size, k.c.rank
	copy(recv[rd[me]:rd[me]+rc[me]], send[sd[me]:sd[me]+sc[me]])
	rreqs := make([]*Request, n)
	for s := 1; s < n; s++ {
		from := (me - s + n) % n
		r, err := k.irecv(from, asBytes(recv[rd[from]:rd[from]+rc[from]]))
		if err != nil {
			return err
		}
		rreqs[from] = r
	}
	sreqs := make([]*Request, 0, n-1)
	for s := 1; s < n; s++ {
		to := (me + s) % n
		r, err := k.isend(to, asBytes(send[sd[to]:sd[to]+sc[to]]))
		if err != nil {
			return err
		}
		sreqs = append(sreqs, r)
	}
	var first error
	for from, r := range rreqs {
		if r == nil {
			continue
		}
		if err := k.wait(r, from, rc[from]*sizeOf[T]()); err != nil && first == nil {
			first = err
		}
	}
	if err := k.waitAll(sreqs); first == nil {
		first = err
	}
	return first
}

// Igather starts a Gather to rank root (MPI_Igather): block i of recv at
// root, of len(send) elements, comes from rank i. recv is only used at
// root, where it has Size()·len(send) elements; send and recv belong to
// the request until it completes. Root posts every receive at once.
// Errors (from the request): a root out of range or a recv of the wrong
// size at root abort the world (ErrAborted, naming the rank and the
// argument); ErrAborted, ErrClosed.
func Igather[T Elem](c *Comm, send, recv []T, root int) (*Request, error) {
	if c == nil {
		err := checkSerialRoot(root)
		if err == nil {
			err = serialCopy(send, recv)
		}
		return doneRequest(nil, "Igather", root, err), nil
	}
	m := len(send)
	local := c.checkRoot(root)
	if local == nil && c.rank == root && len(recv) != c.size*m {
		local = errInvalid(fmt.Sprintf("recv has %d elements, want Size()·len(send) = %d", len(recv), c.size*m))
	}
	local = elemFirst[T](local)
	var k coll
	if r, err := c.beginNB(&k, "Igather", rootedCall(callGather, root, m, sizeOf[T]()), root, local, true); r != nil || err != nil {
		return r, err
	}
	if c.rank != root {
		return c.startNB(&k, root, func(k *coll) error { return k.send(root, asBytes(send)) }), nil
	}
	counts, displs := make([]int, c.size), make([]int, c.size)
	for i := range counts {
		counts[i], displs[i] = m, i*m
	}
	return c.startNB(&k, root, func(k *coll) error { return gatherv(k, send, recv, counts, displs) }), nil
}

// Iscatter starts a Scatter from rank root (MPI_Iscatter): rank i gets
// block i of root's send, of len(recv) elements. send is only used at root,
// where it has Size()·len(recv) elements; send and recv belong to the
// request until it completes. Root starts every send at once. Errors (from
// the request): a root out of range or a send of the wrong size at root
// abort the world (ErrAborted, naming the rank and the argument);
// ErrAborted, ErrClosed.
func Iscatter[T Elem](c *Comm, send, recv []T, root int) (*Request, error) {
	if c == nil {
		err := checkSerialRoot(root)
		if err == nil {
			err = serialCopy(send, recv)
		}
		return doneRequest(nil, "Iscatter", root, err), nil
	}
	m := len(recv)
	local := c.checkRoot(root)
	if local == nil && c.rank == root && len(send) != c.size*m {
		local = errInvalid(fmt.Sprintf("send has %d elements, want Size()·len(recv) = %d", len(send), c.size*m))
	}
	local = elemFirst[T](local)
	var k coll
	if r, err := c.beginNB(&k, "Iscatter", rootedCall(callScatter, root, m, sizeOf[T]()), root, local, true); r != nil || err != nil {
		return r, err
	}
	if c.rank != root {
		return c.startNB(&k, root, func(k *coll) error { return k.recv(root, asBytes(recv)) }), nil
	}
	counts, displs := make([]int, c.size), make([]int, c.size)
	for i := range counts {
		counts[i], displs[i] = m, i*m
	}
	return c.startNB(&k, root, func(k *coll) error { return scatterv(k, send, counts, displs, recv) }), nil
}

// scatterv is the root's side of Scatter(v): every send at once, then its
// own block.
func scatterv[T Elem](k *coll, send []T, counts, displs []int, recv []T) error {
	c := k.c
	reqs := make([]*Request, 0, c.size-1)
	var err error
	for i := range c.size {
		if i == c.rank {
			continue
		}
		var r *Request
		if r, err = k.isend(i, asBytes(send[displs[i]:displs[i]+counts[i]])); err != nil {
			break
		}
		reqs = append(reqs, r)
	}
	copy(recv, send[displs[c.rank]:displs[c.rank]+counts[c.rank]])
	if werr := k.waitAll(reqs); err == nil {
		err = werr
	}
	return err
}

// Igatherv starts a Gatherv to rank root (MPI_Igatherv): at root,
// counts[i] elements from rank i land at recv[displs[i]:], and rank i
// passes a send of exactly counts[i] elements. counts, displs and recv are
// only used at root; the buffers belong to the request until it
// completes. Errors (from the request): a root out of range or counts and
// displacements that do not fit recv at root abort the world (ErrAborted,
// naming the rank and the argument), as does a send whose length is not
// its count; ErrAborted, ErrClosed.
func Igatherv[T Elem](c *Comm, send, recv []T, counts, displs []int, root int) (*Request, error) {
	if c == nil {
		err := checkSerialRoot(root)
		if err == nil {
			err = checkCounts(1, len(send), recv, counts, displs)
		}
		if err == nil {
			copy(recv[displs[0]:], send)
		}
		return doneRequest(nil, "Igatherv", root, err), nil
	}
	local := c.checkRoot(root)
	if local == nil && c.rank == root {
		local = checkCounts(c.size, len(send), recv, counts, displs)
	}
	local = elemFirst[T](local)
	var k coll
	if r, err := c.beginNB(&k, "Igatherv", rootedCall(callGatherv, root, -1, sizeOf[T]()), root, local, true); r != nil || err != nil {
		return r, err
	}
	if c.rank != root {
		return c.startNB(&k, root, func(k *coll) error { return k.send(root, asBytes(send)) }), nil
	}
	return c.startNB(&k, root, func(k *coll) error { return gatherv(k, send, recv, counts, displs) }), nil
}

// Iallgatherv starts an Allgatherv (MPI_Iallgatherv): rank i sends
// counts[i] elements, which land at recv[displs[i]:] on every rank. Every
// rank passes the same counts and displs; the buffers belong to the request
// until it completes. It uses a ring. Errors (from the request): counts or
// displacements that do not fit recv, or a send whose length is not
// counts[Rank()], abort the world (ErrAborted, naming the rank and the
// argument), as do counts that differ between ranks; ErrAborted, ErrClosed.
func Iallgatherv[T Elem](c *Comm, send, recv []T, counts, displs []int) (*Request, error) {
	local := checkBlocks("recv", c.Size(), len(recv), counts, displs)
	if local == nil && len(send) != counts[c.Rank()] {
		local = errInvalid(fmt.Sprintf("send has %d elements but counts[%d] = %d", len(send), c.Rank(), counts[c.Rank()]))
	}
	if c == nil {
		if local == nil {
			copy(recv[displs[0]:], send)
		}
		return doneRequest(nil, "Iallgatherv", NoPeer, local), nil
	}
	local = elemFirst[T](local)
	var k coll
	if r, err := c.beginNB(&k, "Iallgatherv", countedCall(callAllgatherv, 0, -1, sizeOf[T]()), NoPeer, local, true); r != nil || err != nil {
		return r, err
	}
	return c.startNB(&k, NoPeer, func(k *coll) error {
		n, r := c.size, c.rank
		copy(recv[displs[r]:], send)
		block := func(i int) []byte {
			i = ((i % n) + n) % n
			return asBytes(recv[displs[i] : displs[i]+counts[i]])
		}
		next, prev := (r+1)%n, (r-1+n)%n
		for s := 0; s < n-1; s++ {
			if err := k.sendrecv(next, block(r-s), prev, block(r-s-1)); err != nil {
				return err
			}
		}
		return nil
	}), nil
}

// Iscatterv starts a Scatterv from rank root (MPI_Iscatterv): rank i
// receives counts[i] elements from send[displs[i]:] of root into recv,
// which has exactly counts[i] elements. send, counts and displs are only
// used at root; the buffers belong to the request until it completes.
// Root starts every send at once. Errors (from the request): a root out of
// range or counts and displacements that do not fit send at root abort the
// world (ErrAborted, naming the rank and the argument), as does a recv
// whose length is not its count; ErrAborted, ErrClosed.
func Iscatterv[T Elem](c *Comm, send []T, counts, displs []int, recv []T, root int) (*Request, error) {
	local := scattervArgs(c, send, counts, displs, recv, root)
	if c == nil {
		return doneRequest(nil, "Iscatterv", root, local), nil
	}
	var k coll
	if r, err := c.beginNB(&k, "Iscatterv", rootedCall(callScatterv, root, -1, sizeOf[T]()), root, local, true); r != nil || err != nil {
		return r, err
	}
	if c.rank != root {
		return c.startNB(&k, root, func(k *coll) error { return k.recv(root, asBytes(recv)) }), nil
	}
	return c.startNB(&k, root, func(k *coll) error { return scatterv(k, send, counts, displs, recv) }), nil
}

// Ialltoallv starts an Alltoallv (MPI_Ialltoallv): rank r sends
// sendcounts[i] elements from send[sdispls[i]:] to rank i, and receives
// recvcounts[i] elements from rank i into recv[rdispls[i]:]. What rank r
// sends to rank i must be what rank i expects from r; the buffers belong to
// the request until it completes. Every exchange starts at once. Errors
// (from the request): counts or displacements that do not fit send or recv
// abort the world (ErrAborted, naming the rank and the argument), as does a
// pair whose counts disagree; ErrAborted, ErrClosed.
func Ialltoallv[T Elem](c *Comm, send []T, sendcounts, sdispls []int, recv []T, recvcounts, rdispls []int) (*Request, error) {
	local := alltoallvArgs(c, send, sendcounts, sdispls, recv, recvcounts, rdispls)
	if c == nil {
		return doneRequest(nil, "Ialltoallv", NoPeer, local), nil
	}
	var k coll
	if r, err := c.beginNB(&k, "Ialltoallv", countedCall(callAlltoallv, 0, -1, sizeOf[T]()), NoPeer, local, true); r != nil || err != nil {
		return r, err
	}
	return c.startNB(&k, NoPeer, func(k *coll) error {
		return alltoallv(k, send, sendcounts, sdispls, recv, recvcounts, rdispls)
	}), nil
}

// Iscan starts a Scan (MPI_Iscan): recv of rank r gets send of ranks 0..r
// combined element-wise with op. recv has len(send) elements and may be
// send itself; both belong to the request until it completes. It uses
// recursive doubling. Errors (from the request): an op not defined for T
// or a recv of the wrong length abort the world (ErrAborted, naming the
// rank and the argument), as do arguments that differ between ranks;
// ErrAborted, ErrClosed.
func Iscan[T Elem](c *Comm, send, recv []T, op Op) (*Request, error) {
	return iscan(c, "Iscan", callScan, send, recv, op)
}

// Iexscan starts an Exscan (MPI_Iexscan): recv of rank r gets send of ranks
// 0..r-1 combined element-wise with op; rank 0's recv is left as it was.
// Otherwise as Iscan.
func Iexscan[T Elem](c *Comm, send, recv []T, op Op) (*Request, error) {
	return iscan(c, "Iexscan", callExscan, send, recv, op)
}

func iscan[T Elem](c *Comm, name string, kind collKind, send, recv []T, op Op) (*Request, error) {
	f, local := elementwise(c, send, recv, op)
	if c == nil {
		return doneRequest(nil, name, NoPeer, local), nil
	}
	var k coll
	if r, err := c.beginNB(&k, name, countedCall(kind, op, len(send), sizeOf[T]()), NoPeer, local, true); r != nil || err != nil {
		return r, err
	}
	return c.startNB(&k, NoPeer, func(k *coll) error { return scan(k, send, recv, f, kind == callExscan, op.ordered()) }), nil
}

// IreduceScatter starts a ReduceScatter (MPI_Ireduce_scatter): send of
// every rank, sum(counts) elements in blocks in rank order, is combined
// element-wise with op, and rank i's recv, of exactly counts[i] elements,
// gets block i of the result. Every rank passes the same op and counts; the
// buffers belong to the request until it completes. It exchanges blocks
// pairwise. Errors (from the request): an op not defined for T, or a send
// or recv whose length the counts do not give, abort the world
// (ErrAborted, naming the rank and the argument), as do counts that differ
// between ranks; ErrAborted, ErrClosed.
func IreduceScatter[T Elem](c *Comm, send, recv []T, counts []int, op Op) (*Request, error) {
	f, displs, local := reduceScatterArgs(c, send, recv, counts, op)
	if c == nil {
		if local == nil {
			copy(recv, send)
		}
		return doneRequest(nil, "IreduceScatter", NoPeer, local), nil
	}
	local = elemFirst[T](local)
	var k coll
	if r, err := c.beginNB(&k, "IreduceScatter", countedCall(callReduceScatter, op, -1, sizeOf[T]()), NoPeer, local, true); r != nil || err != nil {
		return r, err
	}
	return c.startNB(&k, NoPeer, func(k *coll) error { return reduceScatter(k, send, recv, counts, displs, f) }), nil
}

// IreduceScatterBlock is IreduceScatter with every block of len(recv)
// elements (MPI_Ireduce_scatter_block): send has Size()·len(recv).
func IreduceScatterBlock[T Elem](c *Comm, send, recv []T, op Op) (*Request, error) {
	counts := make([]int, c.Size())
	for i := range counts {
		counts[i] = len(recv)
	}
	return IreduceScatter(c, send, recv, counts, op)
}

package runtime

import "fmt"

// Neighbour collectives on a Cartesian grid (MPI_Neighbor_allgather and
// kin): every rank exchanges blocks with its 2·len(Dims()) neighbours only.
//
// The neighbours of a rank, and the blocks of send and recv, come in MPI's
// order (Neighbors): for each dimension, the rank one step down (the src
// of Shift(d, 1)) and then the rank one step up (its dest). A neighbour
// past an open edge is ProcNull: nothing goes to it and its recv block is
// left as it was. On a periodic dimension of size 2 both neighbours are
// the same rank, and of size 1 both are the rank itself; as in MPI, the
// block from the neighbour down is what that rank sent up, and the block
// from the neighbour up is what it sent down. The two messages from one
// rank go in that order and are matched in order (messages of one sender
// and one call never overtake each other), and a rank's blocks for itself
// are copied.
//
// Every rank of the grid calls them, as collectives; send and recv must
// not overlap.

// Neighbors returns this rank's neighbours in the grid, in the order of
// the blocks of the neighbour collectives: for each dimension d, the rank
// at -1 and then the rank at +1 along d (Shift(d, 1)), ProcNull past an
// open edge. A rank may appear twice, itself included, on a periodic
// dimension of size 2 or 1.
func (g *Cart) Neighbors() []int {
	out := make([]int, 0, 2*len(g.dims))
	for d := range g.dims {
		src, dest, _ := g.Shift(d, 1)
		out = append(out, src, dest)
	}
	return out
}

// neighbors returns the neighbours of g for call op, or an error for a
// rank outside the grid (a nil *Cart).
func (g *Cart) neighbors(op string) ([]int, error) {
	if g == nil {
		return nil, &OpError{Op: op, Comm: "-", Peer: NoPeer, Err: errInvalid("the grid is nil (a rank outside the grid)")}
	}
	return g.Neighbors(), nil
}

// NeighborAllgather sends send to every neighbour and receives block i of
// recv, of len(send) elements, from neighbour i (MPI_Neighbor_allgather):
// recv has 2·len(Dims())·len(send) elements, and a block from ProcNull is
// left as it was. Every rank passes the same len(send).
//
// NeighborAllgather is collective over the grid and blocking. Errors:
// ErrInvalid for a recv of the wrong size, or lengths that differ between
// ranks — on a one-node grid returned by every rank, otherwise the cause of
// ErrAborted on every rank; ErrInvalid on the calling rank for a nil grid;
// ErrAborted, ErrClosed.
func NeighborAllgather[T Elem](g *Cart, send, recv []T) error {
	const op = "NeighborAllgather"
	nb, err := g.neighbors(op)
	if err != nil {
		return err
	}
	m := len(send)
	var local error
	if len(recv) != len(nb)*m {
		local = errInvalid(fmt.Sprintf("recv has %d elements, want 2·len(Dims())·len(send) = %d", len(recv), len(nb)*m))
	}
	return neighborCall(g, op, countedCall(callNeighborAllgather, 0, m, sizeOf[T]()), local, nb,
		func(int) []T { return send },
		func(i int) []T { return recv[i*m : (i+1)*m] })
}

// NeighborAllgatherv is NeighborAllgather with a count per neighbour
// (MPI_Neighbor_allgatherv): counts[i] elements from neighbour i land at
// recv[displs[i]:]; counts[i] must be the length of that neighbour's send.
//
// NeighborAllgatherv is collective over the grid and blocking. Errors:
// ErrInvalid for counts or displacements that do not fit recv or are not
// one per neighbour, or a count for this rank itself (a periodic dimension
// of size 1) other than len(send) — on a one-node grid returned by every
// rank, otherwise the cause of ErrAborted on every rank; a count that
// differs from what the neighbour sends aborts the world with a cause
// naming the sizes; ErrAborted, ErrClosed.
func NeighborAllgatherv[T Elem](g *Cart, send, recv []T, counts, displs []int) error {
	const op = "NeighborAllgatherv"
	nb, err := g.neighbors(op)
	if err != nil {
		return err
	}
	local := checkNeighborBlocks("recv", len(nb), len(recv), counts, displs)
	for i, p := range nb {
		if local == nil && p == g.Rank() && counts[i] != len(send) {
			local = errInvalid(fmt.Sprintf("neighbour %d is this rank, which sends %d elements, but counts[%d] = %d", i, len(send), i, counts[i]))
		}
	}
	return neighborCall(g, op, countedCall(callNeighborAllgatherv, 0, -1, sizeOf[T]()), local, nb,
		func(int) []T { return send },
		func(i int) []T { return recv[displs[i] : displs[i]+counts[i]] })
}

// NeighborAlltoall sends block i of send to neighbour i and receives
// block i of recv from neighbour i (MPI_Neighbor_alltoall): send and recv
// have the same length, 2·len(Dims()) blocks, the same on every rank. A
// block for ProcNull is not sent, and one from ProcNull is left as it was.
//
// NeighborAlltoall is collective over the grid and blocking. Errors:
// ErrInvalid for lengths that differ or do not divide into the blocks, or
// that differ between ranks — on a one-node grid returned by every rank,
// otherwise the cause of ErrAborted on every rank; ErrInvalid on the
// calling rank for a nil grid; ErrAborted, ErrClosed.
func NeighborAlltoall[T Elem](g *Cart, send, recv []T) error {
	const op = "NeighborAlltoall"
	nb, err := g.neighbors(op)
	if err != nil {
		return err
	}
	var local error
	m := 0
	switch {
	case len(send) != len(recv) || len(nb) == 0 && len(send) != 0 || len(nb) > 0 && len(send)%len(nb) != 0:
		local = errInvalid(fmt.Sprintf("send has %d elements and recv %d; want equal lengths divisible by 2·len(Dims()) = %d", len(send), len(recv), len(nb)))
	case len(nb) > 0:
		m = len(send) / len(nb)
	}
	return neighborCall(g, op, countedCall(callNeighborAlltoall, 0, len(send), sizeOf[T]()), local, nb,
		func(i int) []T { return send[i*m : (i+1)*m] },
		func(i int) []T { return recv[i*m : (i+1)*m] })
}

// NeighborAlltoallv is NeighborAlltoall with a count per block
// (MPI_Neighbor_alltoallv): sendcounts[i] elements from send[sdispls[i]:]
// go to neighbour i, and recvcounts[i] elements from neighbour i land at
// recv[rdispls[i]:]. What a rank sends to a neighbour must be what that
// neighbour expects from it.
//
// NeighborAlltoallv is collective over the grid and blocking. Errors:
// ErrInvalid for counts or displacements that do not fit send or recv or
// are not one per neighbour, or blocks of this rank for itself (a periodic
// dimension of size 1) of different counts — on a one-node grid returned
// by every rank, otherwise the cause of ErrAborted on every rank; a pair
// whose counts disagree aborts the world with a cause naming the sizes;
// ErrAborted, ErrClosed.
func NeighborAlltoallv[T Elem](g *Cart, send []T, sendcounts, sdispls []int, recv []T, recvcounts, rdispls []int) error {
	const op = "NeighborAlltoallv"
	nb, err := g.neighbors(op)
	if err != nil {
		return err
	}
	local := checkNeighborBlocks("send", len(nb), len(send), sendcounts, sdispls)
	if local == nil {
		local = checkNeighborBlocks("recv", len(nb), len(recv), recvcounts, rdispls)
	}
	for i, p := range nb {
		// From itself down, a rank gets what it sent up, and the reverse.
		if local == nil && p == g.Rank() && recvcounts[i] != sendcounts[i^1] {
			local = errInvalid(fmt.Sprintf("neighbour %d is this rank, but recvcounts[%d] = %d and sendcounts[%d] = %d", i, i, recvcounts[i], i^1, sendcounts[i^1]))
		}
	}
	return neighborCall(g, op, countedCall(callNeighborAlltoallv, 0, -1, sizeOf[T]()), local, nb,
		func(i int) []T { return send[sdispls[i] : sdispls[i]+sendcounts[i]] },
		func(i int) []T { return recv[rdispls[i] : rdispls[i]+recvcounts[i]] })
}

// checkNeighborBlocks checks one count and displacement per neighbour (n
// of them) that fit a buffer of size elements.
func checkNeighborBlocks(what string, n, size int, counts, displs []int) error {
	if len(counts) != n || len(displs) != n {
		return errInvalid(fmt.Sprintf("%s: counts has %d entries and displs %d, want one per neighbour, 2·len(Dims()) = %d", what, len(counts), len(displs), n))
	}
	return checkBlocks(what, n, size, counts, displs)
}

// neighborCall makes neighbour collective op, of identity id, on g, whose
// neighbours are nb: block i of the send side, send(i), goes to neighbour
// i, and block i of the receive side, recv(i), comes from it. local is
// this rank's argument error.
func neighborCall[T Elem](g *Cart, op string, id callID, local error, nb []int, send, recv func(i int) []T) error {
	local = elemFirst[T](local)
	c := g.Comm
	if c == nil {
		// The serial grid: every neighbour is this rank or ProcNull.
		if local == nil {
			copySelf(nb, 0, send, recv)
		}
		return c.opErr(op, NoPeer, local)
	}
	var k coll
	if err := c.enterStrict(&k, op, id, local); err != nil {
		return c.opErr(op, NoPeer, err)
	}
	me := c.rank
	reqs := make([]*Request, len(nb))
	var first error
	for i, p := range nb {
		if p == ProcNull || p == me {
			continue
		}
		if reqs[i], first = k.irecv(p, asBytes(recv(i))); first != nil {
			break
		}
	}
	// Up before down along each dimension: a neighbour that is both (a
	// periodic dimension of size 2) posted its receive from below first.
	var sends []*Request
	for d := 0; d < len(nb) && first == nil; d += 2 {
		for _, i := range [2]int{d + 1, d} {
			if p := nb[i]; p != ProcNull && p != me && first == nil {
				var r *Request
				if r, first = k.isend(p, asBytes(send(i))); first == nil {
					sends = append(sends, r)
				}
			}
		}
	}
	copySelf(nb, me, send, recv)
	for i, r := range reqs {
		if r != nil {
			if err := k.wait(r, nb[i], len(recv(i))*sizeOf[T]()); err != nil && first == nil {
				first = err
			}
		}
	}
	if err := Waitall(sends...); first == nil {
		first = err
	}
	return c.opErr(op, NoPeer, k.end(first))
}

// copySelf fills the blocks that rank me, its own neighbour along a
// periodic dimension of size 1, receives from itself: from below what it
// sends up, from above what it sends down.
func copySelf[T Elem](nb []int, me int, send, recv func(i int) []T) {
	for d := 0; d < len(nb); d += 2 {
		if nb[d] == me {
			copy(recv(d), send(d+1))
			copy(recv(d+1), send(d))
		}
	}
}

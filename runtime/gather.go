package runtime

import (
	"fmt"
)

// Gather collects send of every rank, in rank order, into recv at rank
// root (MPI_Gather): block i of recv, of len(send) elements, comes from rank
// i. recv is only used at root, where it must have Size()·len(send)
// elements; elsewhere it may be nil. Every rank passes the same len(send).
//
// Gather is collective over c and blocking. Errors: ErrInvalid for a bad
// root (on every rank); a recv of the wrong size at root, or counts that
// differ between ranks, abort the world; ErrAborted, ErrClosed.
func Gather[T Elem](c *Comm, send, recv []T, root int) error {
	if c == nil {
		err := checkSerialRoot(root)
		if err == nil {
			err = serialCopy(send, recv)
		}
		return (*Comm)(nil).opErr("Gather", root, err)
	}
	k, err := c.startRooted("Gather", root)
	if err != nil {
		return c.opErr("Gather", root, err)
	}
	if c.rank != root {
		return c.opErr("Gather", root, k.send(root, asBytes(send)))
	}
	m := len(send)
	if len(recv) != c.size*m {
		return c.opErr("Gather", root, k.abortArg(errInvalid(fmt.Sprintf("recv has %d elements, want Size()·len(send) = %d", len(recv), c.size*m))))
	}
	counts, displs := make([]int, c.size), make([]int, c.size)
	for i := range counts {
		counts[i], displs[i] = m, i*m
	}
	return c.opErr("Gather", root, gatherv(k, send, recv, counts, displs))
}

// Gatherv is Gather with a count per rank: at root, counts[i] elements
// from rank i land at recv[displs[i]:], and rank i passes a send of exactly
// counts[i] elements (MPI_Gatherv). counts, displs and recv are only used at
// root.
//
// Gatherv is collective over c and blocking. Errors: ErrInvalid for a bad
// root (on every rank); bad counts or displacements at root, or a rank whose
// send length differs from its count, abort the world; ErrAborted, ErrClosed.
func Gatherv[T Elem](c *Comm, send, recv []T, counts, displs []int, root int) error {
	if c == nil {
		err := checkSerialRoot(root)
		if err == nil {
			err = checkCounts(1, len(send), recv, counts, displs)
		}
		if err == nil {
			copy(recv[displs[0]:], send)
		}
		return (*Comm)(nil).opErr("Gatherv", root, err)
	}
	k, err := c.startRooted("Gatherv", root)
	if err != nil {
		return c.opErr("Gatherv", root, err)
	}
	if c.rank != root {
		return c.opErr("Gatherv", root, k.send(root, asBytes(send)))
	}
	if err := checkCounts(c.size, len(send), recv, counts, displs); err != nil {
		return c.opErr("Gatherv", root, k.abortArg(err))
	}
	return c.opErr("Gatherv", root, gatherv(k, send, recv, counts, displs))
}

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
func gatherv[T Elem](k coll, send, recv []T, counts, displs []int) error {
	c := k.c
	if own := counts[c.rank]; own != len(send) {
		return k.abortArg(errInvalid(fmt.Sprintf("root sends %d elements but counts[%d] = %d", len(send), c.rank, own)))
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
// Allgather is collective over c and blocking. It uses a ring: n-1 steps,
// each passing one block to the next rank. Errors: ErrInvalid for a recv of
// the wrong size (on every rank that passes one); counts that differ between
// ranks abort the world; ErrAborted, ErrClosed.
func Allgather[T Elem](c *Comm, send, recv []T) error {
	if len(recv) != c.Size()*len(send) {
		return c.opErr("Allgather", NoPeer, errInvalid(fmt.Sprintf("recv has %d elements, want Size()·len(send) = %d", len(recv), c.Size()*len(send))))
	}
	if c == nil {
		copy(recv, send)
		return nil
	}
	k, err := c.start("Allgather")
	if err != nil {
		return c.opErr("Allgather", NoPeer, err)
	}
	return c.opErr("Allgather", NoPeer, allgather(k, send, recv))
}

func allgather[T Elem](k coll, send, recv []T) error {
	n, r, m := k.c.size, k.c.rank, len(send)
	copy(recv[r*m:], send)
	block := func(i int) []byte {
		i = ((i % n) + n) % n
		return asBytes(recv[i*m : (i+1)*m])
	}
	next, prev := (r+1)%n, (r-1+n)%n
	for s := 0; s < n-1; s++ {
		if err := k.sendrecv(next, block(r-s), prev, block(r-s-1)); err != nil {
			return err
		}
	}
	return nil
}

// allgatherBytes is Allgather for the runtime's own bookkeeping (Split).
func allgatherBytes(c *Comm, send, recv []byte) error {
	k, err := c.begin("Allgather")
	if err != nil {
		return err
	}
	return allgather(k, send, recv)
}

// Scatter sends block i of send, of len(recv) elements, from rank root to
// rank i (MPI_Scatter). send is only used at root, where it must have
// Size()·len(recv) elements; elsewhere it may be nil. Every rank passes the
// same len(recv).
//
// Scatter is collective over c and blocking. Errors: ErrInvalid for a bad
// root (on every rank); a send of the wrong size at root, or counts that
// differ between ranks, abort the world; ErrAborted, ErrClosed.
func Scatter[T Elem](c *Comm, send, recv []T, root int) error {
	if c == nil {
		err := checkSerialRoot(root)
		if err == nil {
			err = serialCopy(send, recv)
		}
		return (*Comm)(nil).opErr("Scatter", root, err)
	}
	k, err := c.startRooted("Scatter", root)
	if err != nil {
		return c.opErr("Scatter", root, err)
	}
	if c.rank != root {
		return c.opErr("Scatter", root, k.recv(root, asBytes(recv)))
	}
	m := len(recv)
	if len(send) != c.size*m {
		return c.opErr("Scatter", root, k.abortArg(errInvalid(fmt.Sprintf("send has %d elements, want Size()·len(recv) = %d", len(send), c.size*m))))
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
	return c.opErr("Scatter", root, Waitall(reqs...))
}

// Alltoall sends block j of send to rank j and receives block i of recv
// from rank i (MPI_Alltoall). send and recv have the same length, a
// multiple of Size().
//
// Alltoall is collective over c and blocking. It uses pairwise exchange:
// in step s, rank r sends to r+s and receives from r-s. Errors: ErrInvalid
// for lengths that differ or do not divide by Size() (on every rank that
// passes them); counts that differ between ranks abort the world;
// ErrAborted, ErrClosed.
func Alltoall[T Elem](c *Comm, send, recv []T) error {
	n := c.Size()
	if len(send) != len(recv) || len(send)%n != 0 {
		return c.opErr("Alltoall", NoPeer, errInvalid(fmt.Sprintf("send has %d elements and recv %d; want equal lengths divisible by Size() = %d", len(send), len(recv), n)))
	}
	if c == nil {
		copy(recv, send)
		return nil
	}
	k, err := c.start("Alltoall")
	if err != nil {
		return c.opErr("Alltoall", NoPeer, err)
	}
	r, m := c.rank, len(send)/n
	copy(recv[r*m:(r+1)*m], send[r*m:(r+1)*m])
	for s := 1; s < n; s++ {
		dst, src := (r+s)%n, (r-s+n)%n
		if err := k.sendrecv(dst, asBytes(send[dst*m:(dst+1)*m]), src, asBytes(recv[src*m:(src+1)*m])); err != nil {
			return c.opErr("Alltoall", NoPeer, err)
		}
	}
	return nil
}

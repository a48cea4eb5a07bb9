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
// Bcast is collective over c and blocking; every rank passes a buf of the
// same length. It uses a binomial tree; on a communicator that spans
// several nodes with several ranks on some node, binomial trees inside the
// root's node, among the node leaders, and inside the other nodes
// (hier.go). Errors: ErrInvalid for a bad root
// (on every rank); a length that differs between ranks aborts the world;
// ErrAborted, ErrClosed.
func Bcast[T Elem](c *Comm, buf []T, root int) error {
	if c == nil {
		return (*Comm)(nil).opErr("Bcast", root, checkSerialRoot(root))
	}
	k, err := c.startRooted("Bcast", root)
	if err != nil {
		return c.opErr("Bcast", root, err)
	}
	if c.hierarchical() {
		return c.opErr("Bcast", root, hierBcast(c, asBytes(buf), root))
	}
	if nc := c.nodeColl(); nc != nil {
		if done, err := bcastNode(c, nc, asBytes(buf), len(buf), root); done || err != nil {
			return c.opErr("Bcast", root, err)
		}
	}
	return c.opErr("Bcast", root, k.bcast(asBytes(buf), root))
}

// start checks the communicator and begins a collective.
func (c *Comm) start(op string) (coll, error) {
	if c.closed.Load() {
		return coll{}, ErrClosed
	}
	return c.begin(op)
}

// startRooted is start for a collective with a root, which it checks first.
func (c *Comm) startRooted(op string, root int) (coll, error) {
	if err := c.checkRoot(root); err != nil {
		return coll{}, err
	}
	return c.start(op)
}

func checkSerialRoot(root int) error {
	if root != 0 {
		return errInvalid(fmt.Sprintf("root %d out of range [0,1)", root))
	}
	return nil
}

// bcast is the binomial tree: in round i, every rank that has the data
// sends it to the rank 2^i above it (relative to root).
func (k coll) bcast(b []byte, root int) error {
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
	return Waitall(reqs...)
}

// Reduce combines send of every rank element-wise with op into recv at
// rank root (MPI_Reduce). recv is only used at root, where it must have
// len(send) elements; elsewhere it may be nil.
//
// Reduce is collective over c and blocking. It uses a binomial tree.
// Errors: ErrInvalid for a bad root or an op not defined for T (on every
// rank); a recv of the wrong length at root aborts the world; ErrAborted,
// ErrClosed.
func Reduce[T Elem](c *Comm, send, recv []T, op Op, root int) error {
	f, err := commKernel[T](c, op)
	if c == nil {
		if err == nil {
			err = checkSerialRoot(root)
		}
		if err == nil {
			err = serialCopy(send, recv)
		}
		return (*Comm)(nil).opErr("Reduce", root, err)
	}
	if err != nil {
		return c.opErr("Reduce", root, err)
	}
	k, err := c.startRooted("Reduce", root)
	if err != nil {
		return c.opErr("Reduce", root, err)
	}
	if c.rank == root && len(recv) != len(send) {
		return c.opErr("Reduce", root, k.abortArg(errInvalid(fmt.Sprintf("recv has %d elements, want len(send) = %d", len(recv), len(send)))))
	}
	return c.opErr("Reduce", root, reduce(k, send, recv, f, root))
}

func serialCopy[T Elem](send, recv []T) error {
	if len(recv) != len(send) {
		return errInvalid(fmt.Sprintf("recv has %d elements, want len(send) = %d", len(recv), len(send)))
	}
	copy(recv, send)
	return nil
}

func reduce[T Elem](k coll, send, recv []T, f func(dst, src []T), root int) error {
	n, vr := k.c.size, (k.c.rank-root+k.c.size)%k.c.size
	acc := append([]T(nil), send...)
	var tmp []T
	for mask := 1; mask < n; mask <<= 1 {
		if vr&mask != 0 {
			return k.send((vr-mask+root)%n, asBytes(acc))
		}
		if vr|mask < n {
			if tmp == nil {
				tmp = make([]T, len(send))
			}
			if err := k.recv((vr|mask+root)%n, asBytes(tmp)); err != nil {
				return err
			}
			f(acc, tmp)
		}
	}
	copy(recv, acc)
	return nil
}

// Allreduce combines send of every rank element-wise with op and leaves the
// result in recv on every rank (MPI_Allreduce). recv must have len(send)
// elements; it may be send itself (in place). Every rank gets bit-identical
// results, floating point included.
//
// Allreduce is collective over c and blocking. It uses recursive doubling
// for short vectors and a ring (reduce-scatter, then allgather) from 64 KiB.
// On a communicator that spans several nodes with several ranks on some
// node, it reduces inside each node to its leader, allreduces among the
// leaders as above, and broadcasts inside each node (hier.go).
// Errors: ErrInvalid for an op not defined for T or a recv of the wrong
// length (on every rank that passes one); lengths that differ between ranks
// abort the world; ErrAborted, ErrClosed.
func Allreduce[T Elem](c *Comm, send, recv []T, op Op) error {
	return allreduce(c, send, recv, op, true)
}

// allreduceMsg is Allreduce with messages only.
func allreduceMsg[T Elem](c *Comm, send, recv []T, op Op) error {
	return allreduce(c, send, recv, op, false)
}

func allreduce[T Elem](c *Comm, send, recv []T, op Op, node bool) error {
	k, f, done, err := startElementwise(c, "Allreduce", send, recv, op)
	if done {
		return err
	}
	copy(recv, send)
	if node {
		if nc := c.nodeColl(); nc != nil {
			done, err := allreduceNode(c, nc, recv, f)
			if done || err != nil {
				return c.opErr("Allreduce", NoPeer, err)
			}
		}
	}
	if c.hierarchical() {
		return c.opErr("Allreduce", NoPeer, hierAllreduce(c, recv, f))
	}
	if len(recv)*sizeOf[T]() >= ringThreshold && len(recv) >= c.size {
		err = ringAllreduce(k, recv, f)
	} else {
		err = rdAllreduce(k, recv, f)
	}
	return c.opErr("Allreduce", NoPeer, err)
}

// startElementwise checks the arguments of Allreduce and Scan (the same on
// every rank), does the whole call on the serial communicator, and begins
// the collective. done means there is nothing more to do; err is then the
// call's result.
func startElementwise[T Elem](c *Comm, name string, send, recv []T, op Op) (k coll, f func(dst, src []T), done bool, err error) {
	f, err = commKernel[T](c, op)
	if err == nil && len(recv) != len(send) {
		err = errInvalid(fmt.Sprintf("recv has %d elements, want len(send) = %d", len(recv), len(send)))
	}
	if err == nil && c == nil {
		copy(recv, send)
		return coll{}, nil, true, nil
	}
	if err == nil {
		k, err = c.start(name)
	}
	if err != nil {
		return coll{}, nil, true, c.opErr(name, NoPeer, err)
	}
	return k, f, false, nil
}

// rdAllreduce is recursive doubling on acc in place. With n not a power of
// two, the first 2·rem ranks pair up: the even one hands its vector to the
// odd one and sits out, then gets the result back at the end.
func rdAllreduce[T Elem](k coll, acc []T, f func(dst, src []T)) error {
	n, r := k.c.size, k.c.rank
	if n == 1 {
		return nil
	}
	p2 := 1 << (bits.Len(uint(n)) - 1)
	rem := n - p2
	tmp := scratch[T](k.c, len(acc))
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
		f(acc, tmp)
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
		f(acc, tmp)
	}
	if r < 2*rem {
		return k.send(r-1, asBytes(acc))
	}
	return nil
}

// ringAllreduce is the bandwidth-optimal ring: n-1 steps of reduce-scatter
// leave rank r with the full result of block (r+1) mod n, then n-1 steps of
// allgather pass the finished blocks around.
func ringAllreduce[T Elem](k coll, acc []T, f func(dst, src []T)) error {
	n, r := k.c.size, k.c.rank
	block := func(i int) []T {
		i = ((i % n) + n) % n
		lo, hi := i*len(acc)/n, (i+1)*len(acc)/n
		return acc[lo:hi]
	}
	next, prev := (r+1)%n, (r-1+n)%n
	tmp := scratch[T](k.c, len(acc)/n+1)
	for s := 0; s < n-1; s++ {
		out, in := block(r-s), block(r-s-1)
		t := tmp[:len(in)]
		if err := k.sendrecv(next, asBytes(out), prev, asBytes(t)); err != nil {
			return err
		}
		f(in, t)
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
// Scan is collective over c and blocking. It uses recursive doubling.
// Errors as Allreduce.
func Scan[T Elem](c *Comm, send, recv []T, op Op) error {
	k, f, done, err := startElementwise(c, "Scan", send, recv, op)
	if done {
		return err
	}
	n, r := c.size, c.rank
	copy(recv, send)
	partial := append([]T(nil), send...)
	tmp := make([]T, len(send))
	for mask := 1; mask < n; mask <<= 1 {
		peer := r ^ mask
		if peer >= n {
			continue
		}
		if err := k.sendrecv(peer, asBytes(partial), peer, asBytes(tmp)); err != nil {
			return c.opErr("Scan", NoPeer, err)
		}
		f(partial, tmp)
		if peer < r {
			f(recv, tmp)
		}
	}
	return nil
}

package patterns

import (
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/gorun-hpc/gorun/runtime"
)

// tagSet is the tag of the block a sender that is not its node's first
// rank hands to it, on the node communicator.
const tagSet = 1<<30 - 17

// Set writes the block data, of shape dataShape, into the array at offset
// (one index per dimension; nil means the origin) on every node (pshmem's
// set()). Only fromRank's data, dataShape and offset matter; the other
// ranks may pass nil.
//
// Set is collective over the communicator and blocking: when it returns
// on a rank, that rank sees the block in Data. data must hold
// prod(dataShape) elements in row-major order and is only read. Errors,
// returned by every rank alike, with the array unchanged and usable:
// ErrInvalid for an array without data, a fromRank out of range or
// different between ranks, and on fromRank data of another number of
// dimensions or elements than its shape says, or a block outside the
// array; ErrClosed when any rank has closed the array; ErrAborted.
//
// It costs one Allreduce of a few words, the copy by the sender into its
// node's copy, and a Barrier; with several nodes also a Bcast of the block
// among one rank of each node, which copies it into its node's copy.
func (s *Shared[T]) Set(data []T, dataShape, offset []int, fromRank int) error {
	return opErr("Set", s.comm, s.set(data, dataShape, offset, fromRank, false))
}

// Assign is Set with the sender found by the call: the one rank that
// passes data other than nil (pshmem's x[key] = value, where the others
// pass None). It costs what Set costs. Errors as Set, and ErrInvalid on
// every rank when no rank or more than one passes data.
func (s *Shared[T]) Assign(data []T, dataShape, offset []int) error {
	return opErr("Assign", s.comm, s.set(data, dataShape, offset, 0, true))
}

// The agreement record of Set and Assign, reduced with Max; a rank with
// nothing to say fills math.MinInt64.
const (
	recFrom     = iota // fromRank (Set) or the sender's rank (Assign)
	recNegFrom         // its negation: the Max gives the lowest
	recClosed          // size-rank on a rank that has closed the array
	recErr             // the sender's rank, if its arguments are bad
	recNode            // the sender's node
	recNodeRank        // the sender's rank in its node
	recShape           // the block's shape, then its offset
)

func (s *Shared[T]) set(data []T, dataShape, offset []int, fromRank int, assign bool) error {
	if s.n == 0 {
		// The same on every rank: the shape was agreed by NewShared.
		return errInvalid("the array of shape %v has no data to set", s.shape)
	}
	// Close waits for a Set in progress on another goroutine.
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, nd := s.comm, len(s.shape)
	if s.closed && c.Size() <= 1 {
		return errClosed("the array")
	}
	me := c.Rank()
	sending := me == fromRank
	if assign {
		sending = data != nil
	}
	if sending && (within(data, s.ro) || within(data, s.rw)) {
		data = slices.Clone(data) // a block of the array itself
	}
	var bad error
	if sending && !s.closed {
		if offset == nil {
			offset = make([]int, nd)
		}
		bad = s.checkBlock(offset, dataShape)
		if bad == nil && len(data) != prod(dataShape) {
			bad = errInvalid("the data has %d elements; its shape %v has %d", len(data), dataShape, prod(dataShape))
		}
	}
	rec := make([]int64, recShape+2*nd)
	for i := range rec {
		rec[i] = math.MinInt64
	}
	if !assign {
		f := int64(max(fromRank, -1<<40))
		rec[recFrom], rec[recNegFrom] = f, -f
	}
	switch {
	case s.closed:
		// A rank that has closed the array still takes part in the
		// agreement (the communicator is the caller's and still works),
		// so that the others fail with it instead of waiting.
		rec[recClosed] = int64(c.Size() - me)
	case sending:
		if assign {
			rec[recFrom], rec[recNegFrom] = int64(me), -int64(me)
		}
		if bad != nil {
			rec[recErr] = int64(me)
		} else {
			rec[recNode], rec[recNodeRank] = int64(s.myNode), int64(s.node.Rank())
			for i := range nd {
				rec[recShape+i], rec[recShape+nd+i] = int64(dataShape[i]), int64(offset[i])
			}
		}
	}
	if c.Size() > 1 {
		if err := runtime.Allreduce(c, rec, rec, runtime.Max); err != nil {
			return err
		}
	}
	lo, hi := -rec[recNegFrom], rec[recFrom]
	switch {
	case rec[recClosed] != math.MinInt64:
		return errClosed(fmt.Sprintf("the array on rank %d", c.Size()-int(rec[recClosed])))
	case assign && hi == math.MinInt64:
		return errInvalid("no rank passed data; exactly one must")
	case assign && lo != hi:
		return errInvalid("ranks %d and %d both passed data; exactly one may", lo, hi)
	case lo != hi:
		return errInvalid("the ranks passed different fromRank: %d and %d", lo, hi)
	case hi < 0 || hi >= int64(c.Size()):
		return errInvalid("fromRank %d is out of range [0,%d)", hi, c.Size())
	case rec[recErr] != math.MinInt64:
		return share(c, int(rec[recErr]), bad)
	}
	sender := int(hi)
	if sending {
		s.write(data, dataShape, offset)
	}
	if s.nodes > 1 {
		shape, off := make([]int, nd), make([]int, nd)
		for i := range nd {
			shape[i], off[i] = int(rec[recShape+i]), int(rec[recShape+nd+i])
		}
		if err := s.spread(data, shape, off, sender, int(rec[recNode]), int(rec[recNodeRank])); err != nil {
			return err
		}
	}
	if c.Size() > 1 {
		return c.Barrier()
	}
	return nil
}

// spread takes the block from the sender's node to the others: the
// sender hands it to its node's first rank if that is another rank, and
// the first ranks of the nodes broadcast it and copy it into their node's
// copy.
func (s *Shared[T]) spread(data []T, shape, offset []int, sender, senderNode, senderNodeRank int) error {
	me := s.comm.Rank()
	first := s.node.Rank() == 0
	if !first {
		if me == sender {
			return runtime.Send(s.node, data, 0, tagSet)
		}
		return nil
	}
	buf := data
	if me != sender {
		buf = make([]T, prod(shape))
	}
	if s.myNode == senderNode && me != sender {
		if _, err := runtime.Recv(s.node, buf, senderNodeRank, tagSet); err != nil {
			return err
		}
	}
	if err := runtime.Bcast(s.leaders, buf, senderNode); err != nil {
		return err
	}
	if s.myNode != senderNode {
		s.write(buf, shape, offset)
	}
	return nil
}

// within reports whether a and b share memory: a block taken from Data
// is the node copy itself, seen through another mapping, which copy
// cannot tell.
func within[T any](a, b []T) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa, pb := uintptr(unsafe.Pointer(unsafe.SliceData(a))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	size := unsafe.Sizeof(a[0])
	return pa < pb+uintptr(len(b))*size && pb < pa+uintptr(len(a))*size
}

// write copies the block blk of shape bshape into the node copy at offset.
func (s *Shared[T]) write(blk []T, bshape, offset []int) {
	if prod(bshape) > 0 {
		copyBlock(blk, s.rw, s.shape, s.strides, offset, bshape, true)
	}
}

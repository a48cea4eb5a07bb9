package runtime

import (
	"fmt"

	"github.com/gorun-hpc/gorun/shm"
)

// Shared is memory that the ranks of a one-node communicator map together
// (the memory half of MPI_Win_allocate_shared): one segment holding a part
// for each rank, contiguous in rank order, so that every rank reads and
// writes every part with plain loads and stores. Package rma builds its
// shared windows on it, and the patterns their node-shared arrays.
//
// A Shared may be used from any goroutine. Ordering between ranks is the
// caller's business: atomics on the memory, or a collective on the
// communicator (Barrier orders everything written before it before
// everything read after it).
type Shared struct {
	seg  *shm.Segment
	ro   []byte // the read-only view, with SharedConfig.ReadOnly
	offs []int  // offs[r] is where rank r's part starts; offs[n] the end
}

// SharedConfig configures AllocShared. The zero value is the default.
type SharedConfig struct {
	// ReadOnly also maps the segment read-only on every rank
	// (Shared.ReadOnly): hand that view to code that must not write, and a
	// stray store faults instead of changing every rank's data.
	ReadOnly bool
}

// AllocShared gives every rank of c one mapping of one new zeroed segment
// with size bytes for each rank (sizes may differ between ranks; 0 is
// fine). The segment has no name: it is freed with the last rank that maps
// it, whatever ends the job. Part r starts where part r-1 ends, and the
// segment is page-aligned, so parts whose sizes are multiples of an element
// size are aligned for it.
//
// AllocShared is collective over c and blocking. c must be nil (the memory
// is then this rank's alone) or have all its ranks on one node (a
// SplitShared result, or the world of a one-node job); under gorun
// --nodes, emulated nodes count as nodes. Errors: ErrInvalid for a c that
// spans nodes (on every rank) or a negative size on any rank (returned by
// every rank); an error from the operating system, the same on every rank;
// ErrAborted, ErrClosed. Close the Shared to unmap it.
func (c *Comm) AllocShared(size int) (*Shared, error) {
	return SharedConfig{}.Alloc(c, size)
}

// Alloc is AllocShared with this configuration.
func (cfg SharedConfig) Alloc(c *Comm, size int) (*Shared, error) {
	if c == nil {
		if size < 0 {
			return nil, (*Comm)(nil).opErr("AllocShared", NoPeer, errInvalid(fmt.Sprintf("size %d is negative", size)))
		}
		seg, err := shm.Create(int64(max(size, 1)), shm.Options{})
		var ro []byte
		if err == nil && cfg.ReadOnly {
			if ro, err = seg.ReadOnly(); err != nil {
				seg.Close()
			}
		}
		if err != nil {
			return nil, (*Comm)(nil).opErr("AllocShared", NoPeer, err)
		}
		seg.CloseFD()
		return &Shared{seg: seg, ro: ro, offs: []int{0, size}}, nil
	}
	for _, wr := range c.group {
		if c.w.nodes[wr] != c.w.nodes[c.group[0]] {
			return nil, c.opErr("AllocShared", NoPeer, errInvalid(fmt.Sprintf("%s spans several nodes; use a communicator from SplitShared", c.name)))
		}
	}
	var local error
	if size < 0 {
		local = errInvalid(fmt.Sprintf("size %d is negative", size))
	}
	sizes := make([]int64, c.size)
	if err := c.allgatherInts(callAllocShared, "AllocShared", []int64{int64(size)}, sizes, local); err != nil {
		return nil, c.opErr("AllocShared", NoPeer, err)
	}
	offs := make([]int, c.size+1)
	for r, n := range sizes {
		offs[r+1] = offs[r] + int(n)
	}
	seg, err := c.shareSegment(int64(max(offs[c.size], 1)), cfg.ReadOnly)
	if err != nil {
		return nil, c.opErr("AllocShared", NoPeer, err)
	}
	sh := &Shared{seg: seg, offs: offs}
	if cfg.ReadOnly {
		sh.ro, _ = seg.ReadOnly() // mapped by shareSegment
	}
	return sh, nil
}

// Bytes returns the whole segment, every rank's part in rank order.
func (s *Shared) Bytes() []byte { return s.seg.Bytes()[:s.offs[len(s.offs)-1]] }

// Part returns rank r's part, or nil if r is out of range.
func (s *Shared) Part(r int) []byte {
	if r < 0 || r >= len(s.offs)-1 {
		return nil
	}
	return s.seg.Bytes()[s.offs[r]:s.offs[r+1]:s.offs[r+1]]
}

// Offset returns where rank r's part starts in Bytes (r may be Size(), for
// the end).
func (s *Shared) Offset(r int) int { return s.offs[r] }

// ReadOnly returns the whole segment as Bytes does, through the read-only
// mapping of SharedConfig.ReadOnly (nil without it): a store through it
// faults.
func (s *Shared) ReadOnly() []byte {
	if s.ro == nil {
		return nil
	}
	return s.ro[:s.offs[len(s.offs)-1]]
}

// Segment returns the segment, for typed views (shm.View) and futex words.
func (s *Shared) Segment() *shm.Segment { return s.seg }

// Close unmaps the memory on this rank; the others keep theirs. Close is
// local and idempotent. Slices obtained before must not be used after.
func (s *Shared) Close() error { return s.seg.Close() }

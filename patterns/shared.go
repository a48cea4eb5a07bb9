package patterns

import (
	"fmt"
	"math"
	"reflect"
	"sync"
	"unsafe"

	"github.com/gorun-hpc/gorun/runtime"
)

// Shared is an N-dimensional row-major array of which every node holds one
// copy, in memory its ranks share (pshmem's MPIShared). Every rank reads
// the copy of its node freely; Set and Assign, collective over the
// communicator, change it on every node at once.
//
// The node copy is read-only for the application: Data returns it through
// a mapping without write permission, so a stray store faults (SIGSEGV)
// instead of silently changing the data of every rank of the node. Only
// Set and Assign write, through a second mapping of their own.
//
// Reads (Data, At, Block, String) may be made from any goroutine, also
// while another goroutine of the rank is in Set; what they see of a block
// being set is undefined until Set returns. Set and Assign are collective
// and follow the communicator's rules for collectives. Close is local
// (it waits for a Set or Assign in progress on another goroutine): after
// it Data returns nil, and Set and Assign return ErrClosed on every rank,
// since a rank that has closed still takes part in their agreement.
// At, Block and String hold off a concurrent Close; slices obtained from
// Data must not be used after Close, nor once the Shared is unreachable:
// they do not keep the mapping alive.
type Shared[T runtime.Number] struct {
	comm    *runtime.Comm
	node    *runtime.Comm // the ranks of this node (comm itself on one node)
	leaders *runtime.Comm // node rank 0 of every node, on those ranks; nil on one node
	owned   []*runtime.Comm

	shape   []int
	strides []int // in elements
	n       int

	nodes     int // nodes the communicator spans
	nodeProcs int // ranks of this node
	myNode    int // this node's rank in leaders

	mu     sync.RWMutex // guards closed and the mappings against Close
	closed bool
	mem    *runtime.Shared
	ro     []T // the node copy, read-only
	rw     []T // the node copy, for Set
}

// SharedConfig configures NewSharedWith; the zero value is the default.
type SharedConfig struct {
	// Node is the communicator of the ranks of this rank's node (pshmem's
	// comm_node). Nil: made with SplitShared, or comm itself when all its
	// ranks share a node. Its size must divide comm's. With several
	// nodes the array keeps a Dup of it, so the caller's messages on Node
	// never meet the array's.
	Node *runtime.Comm
	// NodeRank is the communicator of the ranks with this rank's rank in
	// Node, one on every node, ordered by node (pshmem's comm_node_rank:
	// comm.Split(node rank, node index)). Nil: made with Split. Its size
	// must be the number of nodes, and the ranks of one node must have
	// the same rank in theirs. The array keeps a Dup of it.
	NodeRank *runtime.Comm
}

// NewShared makes a Shared of the given shape on comm, zeroed (pshmem's
// MPIShared(shape, dtype, comm)). A shape with a zero dimension gives an
// array without data (Set then fails); an empty shape, one element.
//
// NewShared is collective over comm and blocking; every rank passes the
// same shape and element type. comm may be nil: the array is then this
// rank's alone. Errors, the same on every rank: ErrInvalid for a negative
// dimension on any rank, a shape of more bytes than an int counts, or
// shapes or element types that differ between ranks; an error of the
// operating system (no memory); ErrAborted.
func NewShared[T runtime.Number](comm *runtime.Comm, shape ...int) (*Shared[T], error) {
	return NewSharedWith[T](comm, SharedConfig{}, shape...)
}

// NewSharedWith is NewShared with caller-supplied node communicators
// (pshmem's comm_node and comm_node_rank). Errors as NewShared, and
// ErrInvalid, the same on every rank, when the ranks do not all pass them
// or not all omit them, when one holds a rank that is not in comm or is not
// this rank's, when Node's size does not divide comm's or NodeRank's is not
// the number of nodes, or when the NodeRank communicators number the nodes
// differently on ranks of one node.
func NewSharedWith[T runtime.Number](comm *runtime.Comm, cfg SharedConfig, shape ...int) (*Shared[T], error) {
	s, err := newShared[T](comm, cfg, shape)
	return s, opErr("NewShared", comm, err)
}

func newShared[T runtime.Number](comm *runtime.Comm, cfg SharedConfig, shape []int) (*Shared[T], error) {
	s := &Shared[T]{comm: comm, shape: append([]int(nil), shape...)}
	var local error
	s.n = 1
	size := int(unsafe.Sizeof(*new(T)))
	for i, d := range shape {
		if d < 0 {
			local = errInvalid("dimension %d of shape %v is negative", i, shape)
			s.n = 0
			break
		}
		if d != 0 && s.n > math.MaxInt/size/d {
			local = errInvalid("shape %v has more bytes than memory can hold", shape)
			s.n = 0
			break
		}
		s.n *= d
	}
	s.strides = make([]int, len(shape))
	for i, st := len(shape)-1, 1; i >= 0; i-- {
		s.strides[i] = st
		st *= max(shape[i], 1)
	}
	if local == nil {
		local = s.plan(cfg)
	}
	if local == nil {
		local = members(comm, cfg)
	}
	kind := elemName[T]()
	err := check(comm, local,
		field{"the shape", hashInts(shape...), fmt.Sprint(shape)},
		field{"the element type", hashInts(size) ^ hashString(kind), kind},
		intField("the number of nodes", s.nodes),
		intField("whether SharedConfig.Node is given (1) or not (0)", b2i(cfg.Node != nil)),
		intField("whether SharedConfig.NodeRank is given (1) or not (0)", b2i(cfg.NodeRank != nil)),
	)
	if err == nil {
		err = s.connect(cfg)
	}
	if err == nil {
		err = s.alloc()
	}
	if err != nil {
		s.closeComms()
		return nil, err
	}
	return s, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// members checks that the communicators of cfg hold this rank and only
// ranks of comm.
func members(comm *runtime.Comm, cfg SharedConfig) error {
	if comm == nil {
		return nil
	}
	in := make(map[int]bool, comm.Size())
	for r := range comm.Size() {
		in[comm.WorldRank(r)] = true
	}
	me := comm.WorldRank(comm.Rank())
	for _, x := range []struct {
		name string
		c    *runtime.Comm
	}{{"node", cfg.Node}, {"node-rank", cfg.NodeRank}} {
		if x.c == nil {
			continue
		}
		if x.c.WorldRank(x.c.Rank()) != me {
			return errInvalid("the %s communicator is not this rank's", x.name)
		}
		for i := range x.c.Size() {
			if !in[x.c.WorldRank(i)] {
				return errInvalid("rank %d of the %s communicator is not in %s", i, x.name, comm.Name())
			}
		}
	}
	return nil
}

// plan finds the nodes from the communicator (or cfg) without a collective:
// how many, this node's ranks and (on the default path) its place. It
// returns an argument error of cfg.
func (s *Shared[T]) plan(cfg SharedConfig) error {
	c := s.comm
	s.nodes, s.nodeProcs = 1, 1
	if c == nil || c.Size() == 1 {
		return nil
	}
	if cfg.Node != nil {
		s.nodeProcs = cfg.Node.Size()
		if c.Size()%s.nodeProcs != 0 {
			return errInvalid("the node communicator's size (%d) does not divide the communicator's (%d)", s.nodeProcs, c.Size())
		}
		s.nodes = c.Size() / s.nodeProcs
	} else {
		seen := map[int]bool{}
		mine := c.Node(c.Rank())
		s.nodeProcs = 0
		for r := range c.Size() {
			nd := c.Node(r)
			if !seen[nd] {
				seen[nd] = true
				if nd == mine {
					s.myNode = len(seen) - 1
				}
			}
			if nd == mine {
				s.nodeProcs++
			}
		}
		s.nodes = len(seen)
	}
	if cfg.NodeRank != nil && cfg.NodeRank.Size() != s.nodes {
		return errInvalid("the node-rank communicator's size (%d) is not the number of nodes (%d)", cfg.NodeRank.Size(), s.nodes)
	}
	return nil
}

// connect makes (or takes from cfg) the node communicator and the leaders'.
// It is collective over comm, the same calls on every rank once plan's
// results agree.
func (s *Shared[T]) connect(cfg SharedConfig) error {
	c := s.comm
	switch {
	case c == nil || c.Size() == 1:
		s.node = c
		return nil
	case cfg.Node != nil && s.nodes == 1:
		s.node = cfg.Node
	case cfg.Node != nil:
		// Set hands blocks to a node's first rank by message on the node
		// communicator: a Dup keeps them out of the caller's messages.
		node, err := cfg.Node.Dup()
		if err != nil {
			return err
		}
		s.node = node
		s.owned = append(s.owned, node)
	case s.nodes == 1:
		s.node = c
	default:
		node, err := c.SplitShared()
		if err != nil {
			return err
		}
		s.node = node
		s.owned = append(s.owned, node)
	}
	if s.nodes == 1 {
		return nil
	}
	if cfg.NodeRank != nil {
		// Every rank of a node must have the node's place.
		m := int64(cfg.NodeRank.Rank())
		v := []int64{m, -m}
		if err := runtime.Allreduce(s.node, v, v, runtime.Max); err != nil {
			return err
		}
		var bad error
		if v[0] != -v[1] {
			bad = errInvalid("the node-rank communicators number the nodes differently: the ranks of one node are ranks %d and %d in theirs", -v[1], v[0])
		}
		if err := agree(c, bad); err != nil {
			return err
		}
		s.myNode = int(m)
		if s.node.Rank() == 0 {
			// Set broadcasts among the leaders: a Dup keeps that out of
			// the caller's messages.
			leaders, err := cfg.NodeRank.Dup()
			if err != nil {
				return err
			}
			s.leaders = leaders
			s.owned = append(s.owned, leaders)
		}
		return nil
	}
	color, key := runtime.Undefined, s.myNode
	if s.node.Rank() == 0 {
		color = 0
	}
	if cfg.Node != nil {
		key = c.Rank() // nodes in the order of their first rank
	}
	leaders, err := c.Split(color, key)
	if err != nil {
		return err
	}
	if leaders != nil {
		s.leaders = leaders
		s.owned = append(s.owned, leaders)
	}
	if cfg.Node != nil {
		// Number the nodes by their leaders' ranks, told to every node.
		me := []int64{0}
		if leaders != nil {
			me[0] = int64(leaders.Rank())
		}
		if err := runtime.Bcast(s.node, me, 0); err != nil {
			return err
		}
		s.myNode = int(me[0])
	}
	return nil
}

// alloc maps the node copy: node rank 0 asks for all of it, the others for
// nothing, and every rank maps it read-only too. Errors are agreed over
// comm.
func (s *Shared[T]) alloc() error {
	if s.n == 0 {
		return nil
	}
	bytes := 0
	if s.node.Rank() == 0 {
		bytes = s.n * int(unsafe.Sizeof(*new(T)))
	}
	mem, err := runtime.SharedConfig{ReadOnly: true}.Alloc(s.node, bytes)
	if s.nodes > 1 || s.node != s.comm {
		err = agree(s.comm, err)
	}
	if err != nil {
		if mem != nil {
			mem.Close()
		}
		return err
	}
	s.mem = mem
	s.rw = fromBytes[T](mem.Bytes(), s.n)
	s.ro = fromBytes[T](mem.ReadOnly(), s.n)
	return nil
}

// fromBytes is b as n elements of T. b is page-aligned (a segment).
func fromBytes[T runtime.Number](b []byte, n int) []T {
	var z T
	if n == 0 || len(b) < n*int(unsafe.Sizeof(z)) {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

func elemName[T any]() string { return reflect.TypeFor[T]().String() }

func (s *Shared[T]) closeComms() {
	for _, c := range s.owned {
		c.Close()
	}
	s.owned = nil
}

// Close unmaps this rank's view of the node copy and frees the
// communicators NewShared made. It is local (not collective) and
// idempotent; the node copy is freed with the last rank of the node that
// closes it or exits, however it exits.
func (s *Shared[T]) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.ro, s.rw = nil, nil
	var err error
	if s.mem != nil {
		err = s.mem.Close()
		s.mem = nil
	}
	s.closeComms()
	return err
}

// Data returns the node copy, flat in row-major order, read-only: a store
// into it faults. It is nil for an array without data and after Close.
func (s *Shared[T]) Data() []T {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ro
}

// Shape returns the shape (a copy).
func (s *Shared[T]) Shape() []int { return append([]int(nil), s.shape...) }

// Len returns the number of elements.
func (s *Shared[T]) Len() int { return s.n }

// Comm returns the communicator.
func (s *Shared[T]) Comm() *runtime.Comm { return s.comm }

// NodeComm returns the communicator of the ranks that share this rank's
// copy (pshmem's nodecomm): comm itself on one node, else one the array
// made or was given (or its Dup), valid until Close.
func (s *Shared[T]) NodeComm() *runtime.Comm { return s.node }

// Nodes returns how many nodes hold a copy, and NodeProcs how many ranks
// share this node's.
func (s *Shared[T]) Nodes() int     { return s.nodes }
func (s *Shared[T]) NodeProcs() int { return s.nodeProcs }

// At returns the element at index idx (one index per dimension). It
// panics if idx is out of range or the array is closed, as indexing a
// slice does.
func (s *Shared[T]) At(idx ...int) T {
	if len(idx) != len(s.shape) {
		panic(fmt.Sprintf("patterns: At with %d indices on a %d-dimensional array", len(idx), len(s.shape)))
	}
	off := 0
	for i, x := range idx {
		if x < 0 || x >= s.shape[i] {
			panic(fmt.Sprintf("patterns: index %v out of range for shape %v", idx, s.shape))
		}
		off += x * s.strides[i]
	}
	s.mu.RLock() // against a Close on another goroutine unmapping it
	defer s.mu.RUnlock()
	if s.ro == nil {
		panic("patterns: At on an array without data (closed, or a zero dimension)")
	}
	return s.ro[off]
}

// Block returns a copy of the block of the given shape at offset (nil: the
// origin).
// Errors: ErrInvalid for a block outside the array, ErrClosed.
func (s *Shared[T]) Block(offset, shape []int) ([]T, error) {
	if offset == nil {
		offset = make([]int, len(s.shape))
	}
	if err := s.checkBlock(offset, shape); err != nil {
		return nil, opErr("Block", s.comm, err)
	}
	s.mu.RLock() // against a Close on another goroutine unmapping it
	defer s.mu.RUnlock()
	d := s.ro
	if d == nil && s.n > 0 {
		return nil, opErr("Block", s.comm, errClosed("the array"))
	}
	out := make([]T, prod(shape))
	if len(out) > 0 {
		copyBlock(out, d, s.shape, s.strides, offset, shape, false)
	}
	return out, nil
}

// checkBlock checks that a block of shape at offset lies in the array.
func (s *Shared[T]) checkBlock(offset, shape []int) error {
	if len(shape) != len(s.shape) {
		return errInvalid("the data has %d dimensions, the array %d (shape %v)", len(shape), len(s.shape), s.shape)
	}
	if len(offset) != len(s.shape) {
		return errInvalid("the offset has %d dimensions, the array %d (shape %v)", len(offset), len(s.shape), s.shape)
	}
	for i := range shape {
		if shape[i] < 0 {
			return errInvalid("dimension %d of the data's shape %v is negative", i, shape)
		}
		if offset[i] < 0 || offset[i] > s.shape[i]-shape[i] {
			return errInvalid("a block of shape %v at offset %v is outside the array of shape %v", shape, offset, s.shape)
		}
	}
	return nil
}

func prod(xs []int) int {
	n := 1
	for _, x := range xs {
		n *= x
	}
	return n
}

// copyBlock copies between the flat block blk (row-major, of shape bshape)
// and the array arr (of shape ashape and strides) at offset: into the
// array if in, out of it otherwise. The block lies in the array.
func copyBlock[T any](blk, arr []T, ashape, strides, offset, bshape []int, in bool) {
	nd := len(ashape)
	if nd == 0 {
		if in {
			arr[0] = blk[0]
		} else {
			blk[0] = arr[0]
		}
		return
	}
	row := bshape[nd-1]
	if row == 0 || prod(bshape) == 0 {
		return
	}
	idx := make([]int, nd-1) // index of the row within the block
	for b := 0; b < len(blk); b += row {
		a := offset[nd-1]
		for i, x := range idx {
			a += (offset[i] + x) * strides[i]
		}
		if in {
			copy(arr[a:a+row], blk[b:b+row])
		} else {
			copy(blk[b:b+row], arr[a:a+row])
		}
		for i := nd - 2; i >= 0; i-- { // next row
			idx[i]++
			if idx[i] < bshape[i] {
				break
			}
			idx[i] = 0
		}
	}
}

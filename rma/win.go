package rma

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gorun-hpc/gorun/internal/am"
	"github.com/gorun-hpc/gorun/internal/shmsync"
	"github.com/gorun-hpc/gorun/runtime"
)

// A Win is a window: memory of elements of type T that each rank of a
// communicator exposes to the others' one-sided operations.
//
// A Win may be used by several goroutines of its rank at once, except that
// the synchronization calls that open and close epochs (Fence, Lock,
// Unlock, LockAll, UnlockAll, Post, Start, Complete, Wait) must not race
// with operations of the epoch they open or close. Close is collective and
// frees the window; every call after it returns an error wrapping
// runtime.ErrClosed, and a failed job makes every pending and later call
// return runtime.ErrAborted with the cause.
type Win[T runtime.Number] struct {
	winBase
}

// flavor says how a window's memory was made.
type flavor uint8

const (
	flavorAllocate flavor = iota // node-shared memory; same-node peers load and store it
	flavorShared                 // one node, contiguous, Shared(r) for every rank
	flavorCreate                 // the caller's slice; served by messages only
)

// winBase is everything of a window that does not depend on T.
type winBase struct {
	name       string
	comm       *runtime.Comm // a Dup of the caller's communicator: the window's own
	port       am.Port
	rank, size int
	kind       elemKind
	flavor     flavor
	sizes      []int    // elements each rank exposes
	mem        []byte   // this rank's window memory
	direct     [][]byte // rank r's memory where this rank maps it, else nil
	ctls       []*ctl   // rank r's control block where this rank maps it, else nil
	dataSh     *runtime.Shared
	ctlSh      *runtime.Shared

	mgr lockManager // the lock of this rank's memory, for remote origins (target.go)

	// Access epochs, read without a lock by every operation: per target,
	// the lock mode of a Lock or LockAll epoch (epochLock bits, epochAll)
	// and epochStarted for a Start; fenced after a Fence that opened one.
	epochs   []atomic.Uint32
	fenced   atomic.Bool
	directOK []bool // operations on rank r take the direct path

	mu     sync.Mutex     // message-path origin state below
	tgt    []originTarget // per target
	start  []int          // the targets of a Start, until Complete
	nextID uint64         // reply ids

	replies sync.Map // id → *pend: replies this rank waits for (origin.go)

	// Exposure epochs (PSCW) and their signals, counted by the handler.
	pscw pscwState

	closed atomic.Bool
}

// ctl is a rank's control block: its lock word and the bell its waiters
// sleep on, and the lock of its accumulates. In a window of node-shared
// memory every rank of the node maps every rank's block.
type ctl struct {
	lock *uint64 // lockExcl | lockQueued | shared holders
	bell shmsync.Bell
	acc  *uint32 // the accumulate lock (atomic.go)
}

// ctlSize is the bytes of one control block: the lock word, the bell's
// sleepers and word on the first line, the accumulate lock on the second.
const ctlSize = 128

func newCtl(b []byte) (*ctl, error) {
	if len(b) < ctlSize || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%64 != 0 {
		return nil, fmt.Errorf("rma: control block of %d bytes at an unaligned address", len(b))
	}
	words := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), ctlSize/8)
	return &ctl{
		lock: &words[0],
		bell: shmsync.NewBell(&words[1], (*uint32)(unsafe.Pointer(&words[2]))),
		acc:  (*uint32)(unsafe.Pointer(&words[8])),
	}, nil
}

// Allocate creates a window in which each rank of c exposes n elements
// (n may differ between ranks), zeroed, in memory that the ranks of each
// node share: an operation on a rank of the same node is a load, store or
// atomic of the caller's own (the direct path), one on another node an
// active message applied by the target's receive path (the message path),
// so neither needs the target to call the library.
//
// Allocate is collective over c and blocking. Errors: ErrInvalid, the same
// on every rank, for a negative n on any rank; ErrAborted, ErrClosed.
func Allocate[T runtime.Number](c *runtime.Comm, n int) (*Win[T], error) {
	w := &Win[T]{}
	err := w.init(c, n, nil, flavorAllocate, kindOf[T]())
	return w.ret("Allocate", err)
}

// AllocateShared is Allocate on a communicator whose ranks all run on one
// node (MPI_Win_allocate_shared): the window's memory is one segment, each
// rank's part following the one of the rank before, and Shared returns any
// rank's part for loads and stores.
//
// AllocateShared is collective over c and blocking. Errors: ErrInvalid, on
// every rank, for a c that spans nodes or a negative n on any rank;
// ErrAborted, ErrClosed.
func AllocateShared[T runtime.Number](c *runtime.Comm, n int) (*Win[T], error) {
	w := &Win[T]{}
	err := w.init(c, n, nil, flavorShared, kindOf[T]())
	return w.ret("AllocateShared", err)
}

// Create creates a window over memory the caller owns (MPI_Win_create):
// buf, which belongs to the window until Close. Every operation on it,
// from every rank including this one, is an active message applied by
// this rank's receive path; there is no direct path, since other processes
// cannot map a Go slice.
//
// Create is collective over c and blocking. Errors: ErrAborted, ErrClosed.
func Create[T runtime.Number](c *runtime.Comm, buf []T) (*Win[T], error) {
	w := &Win[T]{}
	err := w.init(c, len(buf), asBytes(buf), flavorCreate, kindOf[T]())
	return w.ret("Create", err)
}

func (w *Win[T]) ret(op string, err error) (*Win[T], error) {
	if err != nil {
		return nil, w.opErr(op, NoTarget, err)
	}
	return w, nil
}

// init makes the window collectively: its communicator, the sizes, the
// memory, the port.
func (w *winBase) init(c *runtime.Comm, n int, buf []byte, fl flavor, k elemKind) (err error) {
	w.name, w.rank, w.size, w.kind, w.flavor = c.Name(), c.Rank(), c.Size(), k, fl
	if c == nil {
		return errInvalid("a window needs a communicator; the nil (serial) one has no active messages")
	}
	d, err := c.Dup()
	if err != nil {
		return err
	}
	w.comm, w.name = d, d.Name()
	defer func() {
		if err != nil {
			w.release()
		}
	}()
	// Every rank's n, with a flag for a negative one, so that every rank
	// returns the same error.
	all := make([]int64, w.size)
	if err := runtime.Allgather(d, []int64{int64(n)}, all); err != nil {
		return err
	}
	w.sizes = make([]int, w.size)
	for r, v := range all {
		if v < 0 {
			return errInvalid("rank %d: %d elements is negative", r, v)
		}
		w.sizes[r] = int(v)
	}
	w.direct = make([][]byte, w.size)
	w.ctls = make([]*ctl, w.size)
	w.tgt = make([]originTarget, w.size)
	w.epochs = make([]atomic.Uint32, w.size)
	w.directOK = make([]bool, w.size)
	switch fl {
	case flavorCreate:
		w.mem = buf
		own := make([]uint64, ctlSize/8) // on the heap: only this process uses it
		if w.ctls[w.rank], err = newCtl(unsafe.Slice((*byte)(unsafe.Pointer(&own[0])), ctlSize)); err != nil {
			return err
		}
	default:
		if err := w.mapNode(d, fl == flavorShared); err != nil {
			return err
		}
	}
	for r := range w.size {
		w.directOK[r] = fl != flavorCreate && (w.direct[r] != nil || w.ctls[r] != nil)
	}
	w.mgr.init(w)
	w.pscw = pscwState{posts: make([]int, w.size), expect: -1, wake: make(chan struct{})}
	if w.port, err = am.Open(d, w.handle); err != nil {
		return err
	}
	// No rank sends before every rank's port is open.
	return d.Barrier()
}

// mapNode maps the node-shared memory of the window: data and control
// blocks of every rank of this node.
func (w *winBase) mapNode(d *runtime.Comm, oneNode bool) error {
	node, err := d.SplitShared()
	if err != nil {
		return err
	}
	defer node.Close()
	if oneNode && node.Size() != d.Size() {
		return errInvalid("%s spans several nodes; AllocateShared needs a communicator from SplitShared", d.Name())
	}
	if w.dataSh, err = node.AllocShared(w.sizes[w.rank] * w.kind.size); err != nil {
		return err
	}
	if w.ctlSh, err = node.AllocShared(ctlSize); err != nil {
		return err
	}
	// Rank i of node is which rank of d?
	of := make(map[int]int, d.Size())
	for r := range d.Size() {
		of[d.WorldRank(r)] = r
	}
	for i := range node.Size() {
		r := of[node.WorldRank(i)]
		w.direct[r] = w.dataSh.Part(i)
		if w.ctls[r], err = newCtl(w.ctlSh.Part(i)); err != nil {
			return err
		}
	}
	w.mem = w.direct[w.rank]
	return nil
}

// release frees what init made, on this rank.
func (w *winBase) release() {
	if w.port != nil {
		w.port.Close()
	}
	if w.dataSh != nil {
		w.dataSh.Close()
	}
	if w.ctlSh != nil {
		w.ctlSh.Close()
	}
	if w.comm != nil {
		w.comm.Close()
	}
}

// Close frees the window (MPI_Win_free). Every epoch must be over: Close
// completes this rank's outstanding operations, waits until every rank has
// called Close (so no rank's memory goes while another may still reach it),
// and releases the memory; slices from Local and Shared must not be used
// after. A window created by Create gives its slice back.
//
// Close is collective and blocking. It is idempotent. Errors: ErrAborted.
func (w *Win[T]) Close() error {
	if w == nil || w.closed.Swap(true) {
		return nil
	}
	err := w.flushAll()
	if berr := w.comm.Barrier(); err == nil {
		err = berr
	}
	w.release()
	return w.opErr("Close", NoTarget, err)
}

// Local returns this rank's window memory, for loads and stores between
// epochs (MPI's unified model: there is one copy). Accessing it while
// another rank's operations on it may be in flight is a data race unless
// the accesses are atomic or ordered by a synchronization call.
func (w *Win[T]) Local() []T { return fromBytes[T](w.mem) }

// Shared returns rank r's window memory in a window whose memory this rank
// maps (MPI_Win_shared_query): any rank of an AllocateShared window, the
// ranks of this node in an Allocate window. Errors: ErrInvalid for a rank
// out of range or one on another node, or a Create window.
func (w *Win[T]) Shared(r int) ([]T, error) {
	if r < 0 || r >= w.size {
		return nil, w.opErr("Shared", r, errInvalid("rank %d out of range [0,%d)", r, w.size))
	}
	if w.direct[r] == nil && w.sizes[r] > 0 || w.flavor == flavorCreate {
		return nil, w.opErr("Shared", r, errInvalid("rank %d's window memory is not mapped by rank %d", r, w.rank))
	}
	return fromBytes[T](w.direct[r]), nil
}

// Size returns the number of elements rank r exposes.
func (w *Win[T]) Size(r int) int { return w.sizes[r] }

// Comm returns the window's communicator: a Dup of the one it was created
// on, which the window uses alone.
func (w *Win[T]) Comm() *runtime.Comm { return w.comm }

// asBytes and fromBytes are the package's one conversion between typed
// slices and bytes; runtime.Number has no pointers.
func asBytes[T runtime.Number](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(s[0])))
}

func fromBytes[T runtime.Number](b []byte) []T {
	var z T
	size := int(unsafe.Sizeof(z))
	if len(b) < size {
		return []T{}
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%uintptr(min(size, 8)) != 0 {
		panic("rma: window memory not aligned for its elements")
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/size)
}

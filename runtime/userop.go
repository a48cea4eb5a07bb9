package runtime

import (
	"fmt"
	"hash/fnv"
	"reflect"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// User-defined reduction operations (MPI_Op_create).
//
// A user op is a handle, an Op from firstUserOp up, into a table of this
// process. Handles are local: goroutine ranks of one process that each
// create "the same" op get different handles. What ranks compare (the call
// word, the shared-memory descriptor) is the op's identity instead, a hash
// of its name, element type and commutativity, the same on every rank
// that creates the op the same way.

// firstUserOp is the lowest handle of a user op; below it are the built-in
// ops (and room for more). Handles go up to 255, so at most 224 user ops
// are live at once in a process.
const firstUserOp Op = 32

// The op field of the call word is 5 bits. Built-in ops use their value;
// a user op uses userWordCode | its commutativity<<2 | 2 bits of its
// identity, so ranks that disagree about commutativity always differ there.
const userWordCode = 24

type userOp struct {
	name    string
	typ     reflect.Type
	fn      any // func(acc, in []T) for typ, catching panics (opPanic)
	commute bool
	ident   uint32 // hash of name, typ and commute
}

var (
	userOpsMu sync.Mutex // allocation and Free
	userOps   [256]atomic.Pointer[userOp]
)

// NewOp creates a reduction operation on elements of type T that every
// reduction (Reduce, Allreduce, Scan, Exscan, ReduceScatter,
// ReduceScatterBlock) accepts like a built-in op (MPI_Op_create).
//
// fn combines in into acc element-wise: acc[i] = acc[i] ∘ in[i], where acc
// holds the contributions of lower ranks and in those of higher ones. (This
// is the reverse of the argument order of MPI_Op_create's function, whose
// first argument, invec, comes from the lower ranks and whose second,
// inoutvec, gets the result.) The op must be associative. acc and in have
// the same length, which may be any part of the vectors (an algorithm may
// split them into blocks), so fn must treat every index on its own; in may
// be memory other ranks read at the same time, so fn must not modify in,
// and it must not keep either slice. fn runs on the goroutine of the
// reduction call, one call at a time per communicator.
//
// commute says that the op is also commutative. If it is not, every
// reduction combines the contributions in rank order, x0 ∘ x1 ∘ … ∘ x(n-1)
// (Scan and Exscan: up to the rank), and where the operands group
// differently the grouping is that of a tree or of recursive doubling.
// Ordered reductions use order-preserving algorithms, which may be slower:
// Allreduce of a large vector uses recursive doubling instead of the ring
// (about log2(n)/2 times the bytes per rank), Reduce to a root other than
// 0 reduces to rank 0 and sends the result on, and the node-aware
// Allreduce is used only where each node's ranks are consecutive in the
// communicator. With commute set, the order of the operands is
// unspecified, as for the built-in ops.
//
// Ranks agree on an op by its name, its element type and its
// commutativity: every rank must create the op with the same three (and
// of course the same function), as MPI requires the same op on every rank.
// Ranks that pass ops with different names to one call find out as with any
// other difference between their calls (see "Collectives with bad
// arguments" in the package doc), on the message path as far as 2 bits of
// a hash of the name can tell. The Op value itself is a handle of this
// process: goroutine ranks in one process get different values for the
// same op, which is fine. Using a user op with another element type than
// T is ErrInvalid naming both types; it is the same error on every rank
// that makes that mistake, and ranks that disagree are handled like any
// argument error of one rank.
//
// If fn panics, the reduction recovers the panic, aborts the world with a
// cause that names the op, the rank, the place and the panic's value, and
// returns ErrAborted; the other ranks return it from that call or their
// next one (a rank that folded nothing of the offending data may finish
// the call first). Ops are for collectives only:
// one-sided accumulates (package rma) refuse them.
//
// NewOp may be called from any goroutine. At most 224 user ops may be live
// at once in a process; Free releases one. Errors: ErrInvalid for an empty
// name, a nil fn, or no free handle.
func NewOp[T Elem](name string, fn func(acc, in []T), commute bool) (Op, error) {
	fail := func(msg string) (Op, error) {
		return 0, &OpError{Op: "NewOp", Comm: "-", Peer: NoPeer, Err: errInvalid(msg)}
	}
	if name == "" {
		return fail("an op needs a name")
	}
	if fn == nil {
		return fail(fmt.Sprintf("op %s: nil function", name))
	}
	typ := reflect.TypeFor[T]()
	h := fnv.New32a()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(typ.String()))
	if commute {
		h.Write([]byte{1})
	}
	u := &userOp{name: name, typ: typ, commute: commute, ident: h.Sum32()}
	u.fn = func(acc, in []T) {
		defer func() {
			if v := recover(); v != nil {
				panic(&opPanic{op: name, value: v, at: panicSite()})
			}
		}()
		fn(acc, in)
	}
	userOpsMu.Lock()
	defer userOpsMu.Unlock()
	for o := int(firstUserOp); o < len(userOps); o++ {
		if userOps[o].Load() == nil {
			userOps[o].Store(u)
			return Op(o), nil
		}
	}
	return fail(fmt.Sprintf("op %s: %d user ops are live, the most a process may have", name, len(userOps)-int(firstUserOp)))
}

// Free releases a user op created by NewOp (MPI_Op_free): its handle may
// then name an op created later. Calls that have already started with the
// op finish with it. Free is local and does not block. Errors: ErrInvalid
// for a built-in op or one that is not live.
func (o Op) Free() error {
	if o < firstUserOp {
		return &OpError{Op: "Free", Comm: "-", Peer: NoPeer, Err: errInvalid(fmt.Sprintf("op %v is not a user op", o))}
	}
	userOpsMu.Lock()
	defer userOpsMu.Unlock()
	if userOps[o].Swap(nil) == nil {
		return &OpError{Op: "Free", Comm: "-", Peer: NoPeer, Err: errInvalid(fmt.Sprintf("op %v is not live", o))}
	}
	return nil
}

// userOpOf returns the user op o, or nil.
func userOpOf(o Op) *userOp {
	if o < firstUserOp {
		return nil
	}
	return userOps[o].Load()
}

// userKernel returns user op o's function for T, or an argument error if o
// is not live or not for T.
func userKernel[T Elem](o Op) (func(acc, in []T), error) {
	u := userOpOf(o)
	if u == nil {
		return nil, errInvalid(fmt.Sprintf("op %v is not a reduction operation (not a live user op)", o))
	}
	if t := reflect.TypeFor[T](); t != u.typ {
		return nil, errInvalid(fmt.Sprintf("op %s is a user op on %s elements, used with %s", u.name, u.typ, t))
	}
	return u.fn.(func(acc, in []T)), nil
}

// ordered reports whether reductions with op must combine the ranks'
// contributions in rank order: op is a user op that does not commute.
func (o Op) ordered() bool {
	u := userOpOf(o)
	return u != nil && !u.commute
}

// wordCode is o's 5-bit field of the call word: a built-in op's value, or
// for a user op a code from its commutativity and identity that is the
// same on every rank (not its handle, which is local).
func (o Op) wordCode() uint32 {
	u := userOpOf(o)
	if u == nil {
		return uint32(o)
	}
	c := uint32(userWordCode) | u.ident&3
	if u.commute {
		c |= 4
	}
	return c
}

// identBits are 16 more bits of a user op's identity, compared by the
// arrival of a one-node collective (nodecoll.go); 0 for other ops.
func (o Op) identBits() uint64 {
	if u := userOpOf(o); u != nil {
		return uint64(u.ident >> 16)
	}
	return 0
}

// opPanic is the panic of a user op's function, recovered by the
// reduction that called it (catchOp).
type opPanic struct {
	op    string
	value any
	at    string // file:line of the panic, if found
}

// panicSite returns the file and line where the panic being recovered
// was raised: the first frame after the runtime's panic machinery.
func panicSite() string {
	pcs := make([]uintptr, 32)
	n := goruntime.Callers(3, pcs)
	frames := goruntime.CallersFrames(pcs[:n])
	inPanic := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			inPanic = true
		case inPanic && !strings.HasPrefix(f.Function, "runtime."):
			return fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if !more {
			return ""
		}
	}
}

// catchOp, deferred by every reduction, turns a panic of a user op's
// function into an abort of c's world and the call's error *err; any other
// panic goes on.
func (c *Comm) catchOp(call string, err *error) {
	v := recover()
	if v == nil {
		return
	}
	p, ok := v.(*opPanic)
	if !ok {
		panic(v)
	}
	where := ""
	if p.at != "" {
		where = " at " + p.at
	}
	c.w.abort(fmt.Errorf("%s on %s: user op %s panicked on rank %d%s: %v", call, c.name, p.op, c.rank, where, p.value))
	*err = c.opErr(call, NoPeer, c.w.err())
}

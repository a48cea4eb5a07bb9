package rma

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/gorun-hpc/gorun/internal/am"
	"github.com/gorun-hpc/gorun/internal/wire"
	"github.com/gorun-hpc/gorun/runtime"
)

// The origin side: what this rank knows of its epochs on each target, the
// answers it waits for, and how an operation takes the direct or the
// message path.

// originTarget is this rank's access state on one target.
type originTarget struct {
	mode    lockMode // the lock of a Lock or LockAll epoch, lockNone outside one
	sent    bool     // the lock request went out with a message
	unacked int      // puts and accumulates sent and not yet confirmed
	pending []*pend  // answers awaited from the target
	held    *heldOp  // a small put or accumulate not sent yet (send)
}

// Bits of winBase.epochs.
const (
	epochLock    = 3 // the lockMode of a Lock or LockAll epoch
	epochAll     = 4 // the lock epoch is LockAll's
	epochStarted = 8 // target is in the group of a Start
)

// pend is an answer this rank waits for: data into dst, or a confirmation.
type pend struct {
	dst  []byte
	done atomic.Bool
	ch   chan struct{}
	err  error
}

func newPend(dst []byte) *pend { return &pend{dst: dst, ch: make(chan struct{})} }

func (p *pend) finish(err error) {
	p.err = err
	// release: dst and err above happen-before a waiter that sees done.
	p.done.Store(true)
	close(p.ch)
}

// onReply takes an answer off the wire into its pend.
func (w *winBase) onReply(h wire.Header, body am.Body) error {
	v, ok := w.replies.LoadAndDelete(h.Arg1)
	if !ok {
		return fmt.Errorf("rma: answer to unknown request %d", h.Arg1)
	}
	p := v.(*pend)
	var err error
	switch n := body.Len(); {
	case n == 0:
	case n != len(p.dst):
		err = fmt.Errorf("rma: answer of %d bytes for %d", n, len(p.dst))
	default:
		err = body.ReadInto(p.dst)
	}
	p.finish(err)
	return err
}

// wait waits for p's answer.
func (w *winBase) wait(p *pend) error {
	if err := w.port.Await(p.done.Load, p.ch); err != nil {
		return err
	}
	return p.err
}

// waitAll waits for every answer in ps and returns the first error.
func (w *winBase) waitAll(ps []*pend) error {
	var first error
	for _, p := range ps {
		if err := w.wait(p); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// begin checks an operation on target at displacement disp over count
// elements: the window, the target, the bounds, the epoch. It takes no
// lock: the direct path costs a few loads more than the memory access.
func (w *winBase) begin(target, disp, count int) error {
	if w.closed.Load() {
		return runtime.ErrClosed
	}
	if uint(target) >= uint(w.size) {
		return errInvalid("target rank %d out of range [0,%d)", target, w.size)
	}
	if disp < 0 || count < 0 || disp+count > w.sizes[target] {
		return errInvalid("elements [%d,%d) are outside rank %d's window of %d", disp, disp+count, target, w.sizes[target])
	}
	if !w.fenced.Load() && w.epochs[target].Load() == 0 {
		return errInvalid("rank %d has no access epoch on rank %d: call Fence, Lock, LockAll or Start first", w.rank, target)
	}
	return w.port.Err()
}

// isDirect reports whether an operation on target takes the direct path.
func (w *winBase) isDirect(target int) bool { return w.directOK[target] }

// send sends one operation to target on the message path. The first
// message of a lock epoch carries the lock request. A put or accumulate
// counts as unconfirmed until the next answer from the target; an
// operation with an answer registers p for it.
//
// A small put or accumulate is held back (copied) until the next message
// to the target, so that the Flush or Unlock that usually follows rides on
// it: lock, put and unlock, or put and flush, are one message and one
// answer.
func (w *winBase) send(target, msg int, op runtime.Op, disp, count int, payload []byte, p *pend) error {
	w.mu.Lock()
	defer w.mu.Unlock() // held across the send: the lock request must go first
	t := &w.tgt[target]
	if err := w.sendHeld(target, t, 0, nil); err != nil {
		return err
	}
	if p == nil && len(payload) <= holdMax {
		t.held = &heldOp{header(msg, op, disp, count, 0), append([]byte(nil), payload...)}
		return nil
	}
	return w.sendLocked(target, t, header(msg, op, disp, count, 0), payload, p)
}

// holdMax is the largest put or accumulate that send holds back.
const holdMax = 4096

// heldOp is a put or accumulate held back by send.
type heldOp struct {
	h    wire.Header
	data []byte
}

// sendHeld sends the operation held back for target, if any, with flags
// added and answer p (an ack) registered. Callers hold w.mu.
func (w *winBase) sendHeld(target int, t *originTarget, flags uint8, p *pend) error {
	op := t.held
	if op == nil {
		return nil
	}
	t.held = nil
	op.h.Flags |= flags
	return w.sendLocked(target, t, op.h, op.data, p)
}

// sendLocked sends h and payload to target, registering answer p if it
// is not nil. Callers hold w.mu.
func (w *winBase) sendLocked(target int, t *originTarget, h wire.Header, payload []byte, p *pend) error {
	if p != nil {
		w.nextID++
		h.Arg1 = w.nextID
		w.replies.Store(h.Arg1, p)
		if h.Flags&flagAck == 0 {
			t.pending = append(t.pending, p)
		}
	} else {
		t.unacked++
	}
	if t.mode != lockNone && !t.sent {
		h.Flags |= t.mode.flag()
		t.sent = true
	}
	if err := w.port.Send(target, h, payload); err != nil {
		if p != nil {
			w.replies.Delete(h.Arg1)
		}
		return err
	}
	return nil
}

// confirm asks target to confirm everything sent before, if anything
// needs it, and with unlock releases the lock of the epoch: the held-back
// operation carries the request if there is one, else a msgFlush or
// msgUnlock does. It takes the answers awaited from target and returns
// them to wait for.
func (w *winBase) confirm(target int, unlock bool) ([]*pend, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := &w.tgt[target]
	var flags uint8
	if unlock {
		flags = flagUnlock
	}
	if t.held != nil {
		ack := newPend(nil)
		if err := w.sendHeld(target, t, flags|flagAck, ack); err != nil {
			return nil, err
		}
		t.unacked = 0
		waits := append(t.pending, ack)
		t.pending = nil
		return waits, nil
	}
	waits := t.pending
	t.pending = nil
	if t.unacked == 0 && !(unlock && t.sent) {
		return waits, nil
	}
	msg := msgFlush
	if unlock {
		msg = msgUnlock
	}
	h := header(msg, 0, 0, 0, 0)
	var ack *pend
	if t.unacked > 0 {
		ack = newPend(nil)
		h.Flags |= flagAck
		waits = append(waits, ack)
	}
	if err := w.sendLocked(target, t, h, nil, ack); err != nil {
		return nil, err
	}
	t.unacked = 0
	return waits, nil
}

// flushAll completes every operation of this rank on every target.
func (w *winBase) flushAll() error {
	var waits []*pend
	for t := range w.size {
		if w.directOK[t] {
			continue // complete already
		}
		ps, err := w.confirm(t, false)
		if err != nil {
			return err
		}
		waits = append(waits, ps...)
	}
	return w.waitAll(waits)
}

// Put writes src into rank target's window at element disp
// (MPI_Put). It is not collective. On the direct path the elements are in
// place when Put returns; on the message path, when the epoch's next
// synchronization completes (Flush, Unlock, Fence, Complete); src may be
// reused as soon as Put returns. Errors: ErrInvalid for a target or range
// outside the window or a call outside an access epoch on target (before
// anything is written); ErrClosed; ErrAborted.
func (w *Win[T]) Put(src []T, target, disp int) error {
	if err := w.begin(target, disp, len(src)); err != nil {
		return w.opErr("Put", target, err)
	}
	b := asBytes(src)
	if w.isDirect(target) {
		copy(w.direct[target][disp*w.kind.size:], b)
		return nil
	}
	return w.opErr("Put", target, w.send(target, msgPut, 0, disp, len(src), b, nil))
}

// Get reads len(dst) elements of rank target's window from element disp
// into dst (MPI_Get). It is not collective. dst belongs to the window
// until the epoch's next synchronization completes (Flush, FlushLocal,
// Unlock, Fence, Complete): on the message path the data lands in it
// later. Use Rget to wait for one Get alone. Errors as Put.
func (w *Win[T]) Get(dst []T, target, disp int) error {
	_, err := w.get("Get", dst, target, disp)
	return err
}

func (w *Win[T]) get(name string, dst []T, target, disp int) (*pend, error) {
	if err := w.begin(target, disp, len(dst)); err != nil {
		return nil, w.opErr(name, target, err)
	}
	b := asBytes(dst)
	if w.isDirect(target) {
		copy(b, w.direct[target][disp*w.kind.size:])
		return nil, nil
	}
	p := newPend(b)
	return p, w.opErr(name, target, w.send(target, msgGet, 0, disp, len(dst), nil, p))
}

// Accumulate combines src element-wise with op into rank target's window
// from element disp (MPI_Accumulate): Sum, Prod, Min, Max, Land, Lor,
// Band, Bor, Bxor or Replace, as defined for T. Each element's update is
// atomic with respect to every other accumulate, get-accumulate,
// fetch-and-op and compare-and-swap on it, by either path; one origin's
// accumulates to one target are applied in the order issued. Completion
// and errors as Put, and ErrInvalid for an op not defined for T.
func (w *Win[T]) Accumulate(src []T, target, disp int, op runtime.Op) error {
	if op == runtime.NoOp {
		return w.opErr("Accumulate", target, errInvalid("NoOp accumulates nothing; use GetAccumulate to read atomically"))
	}
	if err := w.kind.checkOp(op); err != nil {
		return w.opErr("Accumulate", target, errInvalid("%v", err))
	}
	if err := w.begin(target, disp, len(src)); err != nil {
		return w.opErr("Accumulate", target, err)
	}
	b := asBytes(src)
	if w.isDirect(target) {
		w.updateMem(target, disp*w.kind.size, len(src), op, b, nil, false)
		return nil
	}
	return w.opErr("Accumulate", target, w.send(target, msgAcc, op, disp, len(src), b, nil))
}

// GetAccumulate is Accumulate that also returns, in result, the elements
// as they were before (MPI_Get_accumulate); op may also be NoOp, an
// atomic read (src is then ignored and may be nil). result, of len(src)
// elements (or any length with NoOp), belongs to the window until the
// epoch's next synchronization completes, as for Get. Errors as
// Accumulate.
func (w *Win[T]) GetAccumulate(src, result []T, target, disp int, op runtime.Op) error {
	_, err := w.getAcc("GetAccumulate", src, result, target, disp, op)
	return err
}

func (w *Win[T]) getAcc(name string, src, result []T, target, disp int, op runtime.Op) (*pend, error) {
	if err := w.kind.checkOp(op); err != nil {
		return nil, w.opErr(name, target, errInvalid("%v", err))
	}
	if op == runtime.NoOp {
		src = nil
	} else if len(src) != len(result) {
		return nil, w.opErr(name, target, errInvalid("result has %d elements, want len(src) = %d", len(result), len(src)))
	}
	if err := w.begin(target, disp, len(result)); err != nil {
		return nil, w.opErr(name, target, err)
	}
	b, r := asBytes(src), asBytes(result)
	if w.isDirect(target) {
		w.updateMem(target, disp*w.kind.size, len(result), op, b, r, false)
		return nil, nil
	}
	p := newPend(r)
	return p, w.opErr(name, target, w.send(target, msgGetAcc, op, disp, len(result), b, p))
}

// FetchAndOp combines v with op into the element at disp of rank target's
// window and returns the element as it was, atomically (MPI_Fetch_and_op;
// NoOp reads). It is not collective, and blocks until the old value is
// here: that also completes the operation at the target. Errors as
// Accumulate.
func (w *Win[T]) FetchAndOp(v T, target, disp int, op runtime.Op) (T, error) {
	if err := w.kind.checkOp(op); err != nil {
		var old T
		return old, w.opErr("FetchAndOp", target, errInvalid("%v", err))
	}
	n := 1
	if op == runtime.NoOp {
		n = 0
	}
	return w.one("FetchAndOp", msgGetAcc, op, [2]T{v}, n, target, disp)
}

// CompareAndSwap replaces the element at disp of rank target's window with
// v if it equals compare (bit for bit), atomically, and returns the element
// as it was (MPI_Compare_and_swap). It is not collective and blocks until
// the old value is here. Errors as Put.
func (w *Win[T]) CompareAndSwap(v, compare T, target, disp int) (T, error) {
	return w.one("CompareAndSwap", msgCas, 0, [2]T{v, compare}, 2, target, disp)
}

// one applies a one-element atomic (msgGetAcc with op, or msgCas) with
// the first n elements of args and returns the element as it was. On the
// direct path nothing escapes to the heap.
func (w *Win[T]) one(name string, msg int, op runtime.Op, args [2]T, n int, target, disp int) (T, error) {
	var old [1]T
	if err := w.begin(target, disp, 1); err != nil {
		return old[0], w.opErr(name, target, err)
	}
	if w.isDirect(target) {
		w.updateMem(target, disp*w.kind.size, 1, op, asBytes(args[:n]), asBytes(old[:]), msg == msgCas)
		return old[0], nil
	}
	res := make([]T, 1)
	p := newPend(asBytes(res))
	err := w.send(target, msg, op, disp, 1, asBytes(slices.Clone(args[:n])), p)
	if err == nil {
		err = w.wait(p)
		w.dropPending(target, p)
	}
	return res[0], w.opErr(name, target, err)
}

// dropPending forgets an answer already waited for.
func (w *winBase) dropPending(target int, p *pend) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := &w.tgt[target]
	if i := slices.Index(t.pending, p); i >= 0 {
		t.pending = slices.Delete(t.pending, i, i+1)
	}
}

// A Request is a one-sided operation in progress (Rput, Rget, ...). Its
// Wait completes the operation at the origin: a Get's or GetAccumulate's
// data is in its buffer, a Put's or Accumulate's buffer may be reused.
// Completion at the target still takes Flush, Unlock, Fence or Complete.
type Request struct {
	w    *winBase
	p    *pend
	op   string
	peer int
}

// Wait blocks until the operation completes at the origin. A nil Request
// completes at once.
func (r *Request) Wait() error {
	if r == nil || r.p == nil {
		return nil
	}
	return r.w.opErr(r.op, r.peer, r.w.wait(r.p))
}

// Rput is Put returning a request (MPI_Rput); with Go's copying sends the
// request is complete when Rput returns.
func (w *Win[T]) Rput(src []T, target, disp int) (*Request, error) {
	if err := w.Put(src, target, disp); err != nil {
		return nil, err
	}
	return &Request{w: &w.winBase, op: "Rput", peer: target}, nil
}

// Rget is Get returning a request whose Wait waits for the data (MPI_Rget).
func (w *Win[T]) Rget(dst []T, target, disp int) (*Request, error) {
	p, err := w.get("Rget", dst, target, disp)
	if err != nil {
		return nil, err
	}
	return &Request{w: &w.winBase, p: p, op: "Rget", peer: target}, nil
}

// Raccumulate is Accumulate returning a request (MPI_Raccumulate),
// complete when Raccumulate returns.
func (w *Win[T]) Raccumulate(src []T, target, disp int, op runtime.Op) (*Request, error) {
	if err := w.Accumulate(src, target, disp, op); err != nil {
		return nil, err
	}
	return &Request{w: &w.winBase, op: "Raccumulate", peer: target}, nil
}

// RgetAccumulate is GetAccumulate returning a request whose Wait waits for
// result (MPI_Rget_accumulate).
func (w *Win[T]) RgetAccumulate(src, result []T, target, disp int, op runtime.Op) (*Request, error) {
	p, err := w.getAcc("RgetAccumulate", src, result, target, disp, op)
	if err != nil {
		return nil, err
	}
	return &Request{w: &w.winBase, p: p, op: "RgetAccumulate", peer: target}, nil
}

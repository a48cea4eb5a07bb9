package runtime

import (
	"fmt"
	"math"

	"github.com/gorun-hpc/gorun/internal/wire"
)

// Send sends buf to rank dest of c with tag (≥ 0).
//
// Send is blocking and not collective. It returns when buf may be reused: a
// message up to the eager limit has been handed to the transport, unless
// the receiver already holds Config.EagerBudget bytes of this rank's
// unreceived messages; then, like any larger message, it is written after
// the receiver matched it, so Send to a rank that never receives blocks
// until the world fails or that rank closes. Messages between one pair of
// ranks on one communicator are received in the order they were sent.
// Multiple goroutines may call Send and Recv on the same Comm concurrently.
// Errors: ErrInvalid for a bad rank or tag, the nil communicator, or an
// element type with a pointer (see Elem); ErrClosed, naming it, when dest
// has entered Close of its world (or enters it before matching the
// message); ErrAborted and ErrClosed as for every call. The message carries
// its element type; a receive of another type refuses it (see Recv) and
// the send completes normally, as MPI does for a truncated one.
func Send[T Elem](c *Comm, buf []T, dest, tag int) error {
	et, err := elemOf[T]()
	if err != nil {
		return c.opErr("Send", dest, err)
	}
	if dest == ProcNull {
		return nil
	}
	if err := c.checkP2P(dest, tag, false); err != nil {
		return c.opErr("Send", dest, err)
	}
	r, err := c.isend(c.ctx, asBytes(buf), dest, int32(tag), et.code, et.size, "Send")
	if err != nil {
		return c.opErr("Send", dest, err)
	}
	_, err = r.Wait()
	return err
}

// Isend starts sending buf to rank dest with tag and returns at once. buf
// belongs to the request until it completes (see Request). Errors as Send.
func Isend[T Elem](c *Comm, buf []T, dest, tag int) (*Request, error) {
	et, err := elemOf[T]()
	if err != nil {
		return nil, c.opErr("Isend", dest, err)
	}
	if dest == ProcNull {
		return nullRequest("Isend", reqSend, Status{}), nil
	}
	if err := c.checkP2P(dest, tag, false); err != nil {
		return nil, c.opErr("Isend", dest, err)
	}
	r, err := c.isend(c.ctx, asBytes(buf), dest, int32(tag), et.code, et.size, "Isend")
	return r, c.opErr("Isend", dest, err)
}

// Recv receives a message from rank src (or AnySource) with tag (or AnyTag)
// into buf and returns its status.
//
// Recv is blocking and not collective. A message larger than buf returns an
// error wrapping ErrTruncated, with the Status naming its real size; a
// smaller one fills the front of buf (Status.Count says how much). A
// message of another element type is consumed and returns ErrInvalid
// naming both types, unless its layout is the same (a named type and its
// underlying type, [3]float64 and three float64, two structs with the
// same kinds at the same offsets) or T is a byte type, which takes any
// message raw (see Element types in the package doc). Errors as Send.
func Recv[T Elem](c *Comm, buf []T, src, tag int) (Status, error) {
	et, err := elemOf[T]()
	if err != nil {
		return Status{}, c.opErr("Recv", src, err)
	}
	if src == ProcNull {
		return nullStatus, nil
	}
	if err := c.checkP2P(src, tag, true); err != nil {
		return Status{}, c.opErr("Recv", src, err)
	}
	// The request never leaves this call, so it can be reused.
	r, err := c.irecv(c.ctx, asBytes(buf), src, tag, et.word, false, et, "Recv", true)
	if err != nil {
		return Status{}, c.opErr("Recv", src, err)
	}
	st, err := r.Wait()
	recycle(r)
	return st, err
}

// Irecv starts a receive into buf and returns at once; buf belongs to the
// request until it completes. Errors as Recv.
func Irecv[T Elem](c *Comm, buf []T, src, tag int) (*Request, error) {
	et, err := elemOf[T]()
	if err != nil {
		return nil, c.opErr("Irecv", src, err)
	}
	if src == ProcNull {
		return nullRequest("Irecv", reqRecv, nullStatus), nil
	}
	if err := c.checkP2P(src, tag, true); err != nil {
		return nil, c.opErr("Irecv", src, err)
	}
	r, err := c.irecv(c.ctx, asBytes(buf), src, tag, et.word, false, et, "Irecv", false)
	return r, c.opErr("Irecv", src, err)
}

// Probe blocks until a message from src (or AnySource) with tag (or AnyTag)
// can be received, and returns its status without receiving it;
// Status.Count is in elements of T (rounded down). A message that a Recv
// into []T would refuse for its element type returns that ErrInvalid, with
// the status, and stays to be received; Probe[byte] accepts any message.
// Errors as Recv.
func Probe[T Elem](c *Comm, src, tag int) (Status, error) {
	et, err := elemOf[T]()
	if err != nil {
		return Status{}, c.opErr("Probe", src, err)
	}
	if src == ProcNull {
		return nullStatus, nil
	}
	if err := c.checkP2P(src, tag, true); err != nil {
		return Status{}, c.opErr("Probe", src, err)
	}
	r, st, ok, err := c.probe(src, tag, et, true)
	if err != nil || ok {
		return st, c.opErr("Probe", src, err)
	}
	return r.Wait()
}

// Iprobe is Probe without blocking: ok is false if no such message has
// arrived yet.
func Iprobe[T Elem](c *Comm, src, tag int) (st Status, ok bool, err error) {
	et, err := elemOf[T]()
	if err != nil {
		return Status{}, false, c.opErr("Iprobe", src, err)
	}
	if src == ProcNull {
		return nullStatus, true, nil
	}
	if err := c.checkP2P(src, tag, true); err != nil {
		return Status{}, false, c.opErr("Iprobe", src, err)
	}
	_, st, ok, err = c.probe(src, tag, et, false)
	return st, ok, c.opErr("Iprobe", src, err)
}

// checkP2P validates a point-to-point call. recv allows the wildcards.
func (c *Comm) checkP2P(peer, tag int, recv bool) error {
	if c == nil {
		return errInvalid("point-to-point on the nil (serial) communicator")
	}
	if err := c.usable(); err != nil {
		return err
	}
	if peer < 0 || peer >= c.size {
		if !(recv && peer == AnySource) {
			return errInvalid(fmt.Sprintf("rank %d out of range [0,%d)", peer, c.size))
		}
	}
	if tag < 0 || tag > math.MaxInt32 {
		if !(recv && tag == AnyTag) {
			return errInvalid(fmt.Sprintf("tag %d out of range [0,%d]", tag, math.MaxInt32))
		}
	}
	return nil
}

// sendEager sends b in one frame of call word call and returns when b may
// be reused, or reports false, having sent nothing, when the receiver's
// budget for this rank's eager messages is spent (flow.go).
func (c *Comm) sendEager(ctx uint32, b []byte, dest int, tag int32, call uint32) (bool, error) {
	to := c.group[dest]
	if !c.w.takeCredit(to, len(b)) {
		return false, nil
	}
	h := wire.Header{Kind: wire.KindEager, Context: ctx, Src: int32(c.rank), Tag: tag, Call: call}
	return true, c.w.send(to, h, b)
}

// sendPoison sends a collective's argument error to dest in place of the
// data of call word call: always eager, whatever the credit.
func (c *Comm) sendPoison(ctx uint32, dest int, tag int32, call uint32, e *argError) error {
	to := c.group[dest]
	b := e.encode()
	c.w.credit[to].Add(-eagerCost(len(b)))
	h := wire.Header{Kind: wire.KindEager, Flags: wire.FlagPoison, Context: ctx, Src: int32(c.rank), Tag: tag, Call: call}
	return c.w.send(to, h, b)
}

// isend starts a send on context ctx of call word call (0 for
// point-to-point): a message up to the eager limit that the receiver's
// budget allows goes out at once and returns a completed request; any other
// sends an RTS and waits for the CTS.
func (c *Comm) isend(ctx uint32, b []byte, dest int, tag int32, call uint32, esize int, op string) (*Request, error) {
	if err := c.sendable(ctx, dest); err != nil {
		return nil, err
	}
	if len(b) <= c.w.eager {
		ok, err := c.sendEager(ctx, b, dest, tag, call)
		if err != nil {
			return nil, err
		}
		if ok {
			return sent, nil
		}
	}
	return c.sendRTS(ctx, b, dest, tag, call, esize, op)
}

// sendRTS starts a rendezvous send: it sends the RTS and returns the
// request, which completes once the receiver matched the message and took
// (or declined) the data.
func (c *Comm) sendRTS(ctx uint32, b []byte, dest int, tag int32, call uint32, esize int, op string) (*Request, error) {
	r := c.newRequest(op, reqSend, dest, b, esize)
	r.to = c.group[dest]
	r.ctx, r.tag, r.call = ctx, int(tag), call
	w := c.w
	w.mu.Lock()
	if err := w.errLocked(); err != nil {
		w.mu.Unlock()
		return nil, err
	}
	r.id = w.newID()
	w.sends[r.id] = r
	w.mu.Unlock()
	h := wire.Header{Kind: wire.KindRTS, Context: ctx, Src: int32(c.rank), Tag: tag, Call: call, Arg0: r.id, Arg1: uint64(len(b))}
	payload, flags := w.rtsPayload(r.to, b)
	h.Flags |= flags
	if err := w.send(r.to, h, payload); err != nil {
		w.mu.Lock()
		delete(w.sends, r.id)
		w.mu.Unlock()
		return nil, err
	}
	return r, nil
}

// irecv posts a receive on context ctx for a frame of call word call, or
// matches an unexpected message at once. A collective passes its call word
// and a nil et; point-to-point passes its element type et and et.word (the
// frame's word is the sender's type code: elem.go). A discarding receive (a
// collective that knows of an argument error) takes any message and keeps
// nothing of it.
//
// A pooled request comes from reqPool; the caller must not let it escape
// and hands it to recycle once it waited for it.
func (c *Comm) irecv(ctx uint32, b []byte, src, tag int, call uint32, discard bool, et *elemType, op string, pooled bool) (*Request, error) {
	var r *Request
	esize := 0
	if et != nil {
		esize = et.size
	}
	if pooled {
		r = c.pooledRequest(op, reqRecv, src, b, esize)
	} else {
		r = c.newRequest(op, reqRecv, src, b, esize)
	}
	r.ctx, r.src, r.tag, r.call, r.discard, r.et = ctx, src, tag, call, discard, et
	w := c.w
	w.mu.Lock()
	if err := w.errLocked(); err != nil {
		w.mu.Unlock()
		return nil, err
	}
	q := w.queue(ctx)
	i := q.findUnexp(r)
	if i < 0 {
		if w.unreachable(r) {
			w.mu.Unlock()
			return nil, w.closedPeerErr(r)
		}
		q.posted = append(q.posted, r)
		w.mu.Unlock()
		return r, nil
	}
	m := q.takeUnexp(w, i)
	if !m.rts {
		w.mu.Unlock()
		w.consumed(m.from, m.size)
		_ = r.fillEager(m.src, m.tag, m.call, m.poison, (*eagerBody)(m))
		return r, nil
	}
	if err := w.acceptLocked(r, m); err != nil {
		return nil, err
	}
	return r, nil
}

// takeUnexp removes and returns the unexpected message at index i. The
// caller, after unlocking, reports an eager one as consumed (flow.go).
// Callers hold w.mu.
func (q *matchQueue) takeUnexp(w *world, i int) *inMsg {
	m := q.unexp[i]
	q.unexp = append(q.unexp[:i], q.unexp[i+1:]...)
	if !m.rts {
		w.unexpBytes -= int64(m.size)
	}
	return m
}

// acceptLocked matches the receive r with the rendezvous message m, which
// is off its queue, and answers its sender. Callers hold w.mu, which it
// releases.
func (w *world) acceptLocked(r *Request, m *inMsg) error {
	cts, done, fail, single := w.acceptRTSLocked(r, m.from, m.src, m.tag, m.call, m.size, m.sreq, m.addr)
	w.mu.Unlock()
	if single {
		return w.singleCopy(r, m.from, m.addr, cts, func(h wire.Header) error { return w.send(m.from, h, nil) })
	}
	if err := w.send(m.from, cts, nil); err != nil {
		return err
	}
	if done {
		r.complete(fail)
	}
	return nil
}

// probe looks for a matching unexpected message. If there is none and block
// is set, it registers a probe request that completes when one arrives. A
// message whose element type a receive of et would refuse fails the probe
// with that error, and stays.
func (c *Comm) probe(src, tag int, et *elemType, block bool) (*Request, Status, bool, error) {
	w := c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.errLocked(); err != nil {
		return nil, Status{}, false, err
	}
	r := c.newRequest("Probe", reqProbe, src, nil, et.size)
	r.ctx, r.src, r.tag, r.et = c.ctx, src, tag, et
	q := w.queue(c.ctx)
	if i := q.findUnexp(r); i >= 0 {
		m := q.unexp[i]
		st := Status{Source: m.src, Tag: m.tag, Count: m.size / et.size, Bytes: m.size}
		if m.call != et.word {
			return nil, st, true, et.check(m.call, m.size, m.src)
		}
		return nil, st, true, nil
	}
	if w.unreachable(r) {
		return nil, Status{}, false, w.closedPeerErr(r)
	}
	if block {
		q.probes = append(q.probes, r)
	}
	return r, Status{}, false, nil
}

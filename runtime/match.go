package runtime

import (
	"fmt"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// The matching engine.
//
// Every communicator owns two context ids: ctx for user point-to-point and
// ctx+1 for its collectives, so messages of two communicators, or of a
// collective and a user Send, never match each other. Per context there is a
// queue of posted receives and a queue of unexpected messages, both in
// arrival order. A frame from a peer first looks for the oldest posted
// receive it matches; a posted receive first looks for the oldest
// unexpected message it matches. Frames from one peer are handled one at a
// time, in order, by that peer's receive goroutine, so two messages from the
// same sender on the same communicator are matched in the order they were
// sent (MPI's non-overtaking rule).
//
// Small messages travel eagerly: header and data in one frame. A message
// larger than the eager limit sends a request to send (RTS); when a receive
// matches it, the receiver answers clear to send (CTS) with the id of its
// request, and the sender's data goroutine writes the data in chunks that the
// receiver reads straight into the user's buffer. So a large send never
// buffers at the receiver unasked, and a matched receive costs no extra copy.

// inMsg is an unexpected message: eager data already read, or an RTS.
type inMsg struct {
	src, tag int
	from     int    // world rank of the sender
	call     uint32 // the call word of a collective's frame (call.go), or a message's element type code (elem.go)
	poison   bool   // eager: the payload is a collective's argument error
	data     []byte // eager: the payload (owned)
	rts      bool
	size     int    // bytes
	sreq     uint64 // rts: the sender's request id
	addr     uint64 // rts: the data's address in the sender, for single copy (cma.go), or 0
}

type matchQueue struct {
	posted []*Request // receives
	probes []*Request // blocked Probes
	unexp  []*inMsg
}

func matches(r *Request, src, tag int) bool {
	return (r.src == AnySource || r.src == src) && (r.tag == AnyTag || r.tag == tag)
}

// takePosted removes and returns the oldest posted receive matching src and
// tag. Callers hold w.mu.
func (q *matchQueue) takePosted(src, tag int) *Request {
	for i, r := range q.posted {
		if matches(r, src, tag) {
			q.posted = append(q.posted[:i], q.posted[i+1:]...)
			return r
		}
	}
	return nil
}

// findUnexp returns the index of the oldest unexpected message matching r,
// or -1. Callers hold w.mu.
func (q *matchQueue) findUnexp(r *Request) int {
	for i, m := range q.unexp {
		if matches(r, m.src, m.tag) {
			return i
		}
	}
	return -1
}

// addUnexp appends m and completes the blocked probes it matches. Callers
// hold w.mu; the returned probes are completed by the caller after
// unlocking.
func (q *matchQueue) addUnexp(m *inMsg) []*Request {
	q.unexp = append(q.unexp, m)
	var hit []*Request
	keep := q.probes[:0]
	for _, p := range q.probes {
		if matches(p, m.src, m.tag) {
			p.status = Status{Source: m.src, Tag: m.tag, Bytes: m.size}
			p.call = m.call
			hit = append(hit, p)
		} else {
			keep = append(keep, p)
		}
	}
	q.probes = keep
	return hit
}

// completeAll completes the probes that addUnexp matched, each with the
// error a receive of its element type would meet.
func completeAll(rs []*Request) {
	for _, r := range rs {
		var err error
		if r.et != nil && r.call != r.et.word {
			err = r.et.check(r.call, r.status.Bytes, r.status.Source)
		}
		r.complete(err)
	}
}

// callErr is the error of a frame with call word call, not the receive's
// own, of n bytes from src: a collective's receive takes only frames of its
// call; a point-to-point receive checks the sender's element type code
// (elem.go) and may take it (into bytes, or a whole number of aggregates).
func (r *Request) callErr(src int, call uint32, n int) error {
	if r.et != nil {
		return r.et.check(call, n, src)
	}
	return wordMismatch(r.c.name, r.c.rank, uint32(r.tag), r.call, src, call)
}

// HandleFrame implements transport.Handler. It runs on a transport receive
// goroutine and never blocks on the network: the sends it causes (CTS) go
// out from goroutines of their own. Frames are dispatched by kind from
// frameHandlers.
func (w *world) HandleFrame(from int, h wire.Header, body transport.Body) error {
	if int(h.Kind) < len(frameHandlers) {
		if f := frameHandlers[h.Kind]; f != nil {
			return f(w, from, h, body)
		}
	}
	return fmt.Errorf("unexpected frame kind %v from world rank %d", h.Kind, from)
}

// frameHandlers are the handlers of the frame kinds above the transport.
var frameHandlers = [...]func(w *world, from int, h wire.Header, body transport.Body) error{
	wire.KindEager: (*world).onEager,
	wire.KindRTS:   (*world).onRTS,
	wire.KindCTS:   func(w *world, from int, h wire.Header, _ transport.Body) error { return w.onCTS(from, h) },
	wire.KindData:  (*world).onData,
	wire.KindAbort: func(w *world, from int, _ wire.Header, body transport.Body) error {
		msg, _ := body.Bytes()
		w.failByPeer(fmt.Errorf("rank %d aborted the job: %s", from, msg))
		return nil
	},
	wire.KindAM:      (*world).onAM,
	wire.KindClosing: func(w *world, from int, _ wire.Header, _ transport.Body) error { return w.onClosing(from) },
	wire.KindCredit:  func(w *world, from int, h wire.Header, _ transport.Body) error { return w.onCredit(from, h) },
	wire.KindCheck:   func(w *world, _ int, h wire.Header, _ transport.Body) error { return w.onCheck(h) },
}

// PeerLost implements transport.Handler.
func (w *world) PeerLost(from int, err error) {
	w.failByPeer(fmt.Errorf("world rank %d lost: %w", from, err))
}

func (w *world) onEager(from int, h wire.Header, body transport.Body) error {
	src, tag := int(h.Src), int(h.Tag)
	poison := h.Flags&wire.FlagPoison != 0
	w.mu.Lock()
	if w.failure != nil {
		w.mu.Unlock()
		return nil
	}
	q := w.queue(h.Context)
	if r := q.takePosted(src, tag); r != nil {
		w.mu.Unlock()
		w.consumed(from, body.Len())
		return r.fillEager(src, tag, h.Call, poison, body)
	}
	w.mu.Unlock()
	// No receive yet: read the data before taking the lock again, so a slow
	// payload never holds up the other peers' matching.
	m := &inMsg{src: src, tag: tag, from: from, call: h.Call, poison: poison, size: body.Len()}
	timingAllocs.Add(1)
	if m.size > 0 {
		m.data = make([]byte, m.size)
		timingAllocs.Add(1)
		if err := body.ReadInto(m.data); err != nil {
			return err
		}
	}
	w.mu.Lock()
	if r := q.takePosted(src, tag); r != nil {
		w.mu.Unlock()
		w.consumed(from, m.size)
		return r.fillEager(src, tag, m.call, m.poison, (*eagerBody)(m))
	}
	probes := q.addUnexp(m)
	w.unexpBytes += int64(m.size)
	w.unexpPeak = max(w.unexpPeak, w.unexpBytes)
	w.mu.Unlock()
	completeAll(probes)
	return nil
}

// eagerBody is the payload of an unexpected eager message as a
// transport.Body. A pointer goes into the interface as it is, where a
// transport.BytesBody would be copied to the heap on every match.
type eagerBody inMsg

func (b *eagerBody) Len() int                  { return len(b.data) }
func (b *eagerBody) ReadInto(dst []byte) error { return transport.BytesBody(b.data).ReadInto(dst) }
func (b *eagerBody) Bytes() ([]byte, error)    { return b.data, nil }

// fillEager delivers an eager payload, of a frame with call word call, into
// the receive r. A collective's receive takes only a frame of its own call,
// a point-to-point one only an element type it accepts (callErr); a poison
// frame of the same kind of call completes it with the argument error it
// carries; a discarding receive takes anything and keeps nothing.
func (r *Request) fillEager(src, tag int, call uint32, poison bool, body transport.Body) error {
	if r.kind == reqMprobe {
		return r.holdEager(src, tag, call, body)
	}
	n := body.Len()
	r.status = Status{Source: src, Tag: tag, Bytes: n}
	switch {
	case poison && sameKind(call, r.call):
		// The sender's own arguments may be what makes its word differ.
		b, err := body.Bytes()
		if err != nil {
			r.complete(err)
			return err
		}
		r.complete(decodeArgError(b))
		return nil
	case r.discard && sameKind(call, r.call):
		// This rank's arguments, or the call's, are wrong already.
		r.complete(nil)
		return nil
	case call != r.call:
		if err := r.callErr(src, call, n); err != nil {
			r.complete(err)
			return nil
		}
	}
	if n > len(r.buf) {
		r.complete(&truncError{got: n, room: len(r.buf)})
		return nil
	}
	if n > 0 {
		if err := body.ReadInto(r.buf[:n]); err != nil {
			r.complete(err)
			return err
		}
	}
	r.complete(nil)
	return nil
}

func (w *world) onRTS(from int, h wire.Header, body transport.Body) error {
	src, tag := int(h.Src), int(h.Tag)
	var payload []byte
	if body.Len() > 0 {
		var err error
		if payload, err = body.Bytes(); err != nil {
			return err
		}
	}
	addr, err := rtsAddr(h, payload)
	if err != nil {
		return fmt.Errorf("%w from world rank %d", err, from)
	}
	w.mu.Lock()
	if w.failure != nil {
		w.mu.Unlock()
		return nil
	}
	q := w.queue(h.Context)
	r := q.takePosted(src, tag)
	if r == nil && w.leaving && h.Context != worldCollCtx {
		w.mu.Unlock()
		w.sendAsync(from, goneCTS(h.Arg0), nil)
		return nil
	}
	if r == nil || r.kind == reqMprobe {
		m := &inMsg{src: src, tag: tag, from: from, call: h.Call, rts: true, size: int(h.Arg1), sreq: h.Arg0, addr: addr}
		if r != nil {
			w.mu.Unlock()
			r.hold(m)
			return nil
		}
		probes := q.addUnexp(m)
		w.mu.Unlock()
		completeAll(probes)
		return nil
	}
	cts, done, fail, single := w.acceptRTSLocked(r, from, src, tag, h.Call, int(h.Arg1), h.Arg0, addr)
	w.mu.Unlock()
	if single {
		return w.singleCopy(r, from, addr, cts, func(h wire.Header) error { w.sendAsync(from, h, nil); return nil })
	}
	w.sendAsync(from, cts, nil)
	if done {
		r.complete(fail)
	}
	return nil
}

// acceptRTSLocked matches the receive r with an announced rendezvous message
// of a frame with call word call, and returns the CTS to send. With done, r
// completes with fail once the CTS is out: the CTS declines a message of
// another collective call, one for a discarding receive, an empty one (the
// sender completes at once) and one that does not fit (ErrTruncated).
// Callers hold w.mu.
func (w *world) acceptRTSLocked(r *Request, from, src, tag int, call uint32, size int, sreq, addr uint64) (cts wire.Header, done bool, fail error, single bool) {
	r.status = Status{Source: src, Tag: tag, Bytes: size}
	cts = wire.Header{Kind: wire.KindCTS, Arg0: sreq}
	if r.discard && sameKind(call, r.call) {
		cts.Flags = wire.FlagDecline
		return cts, true, nil, false
	}
	if call != r.call {
		if err := r.callErr(src, call, size); err != nil {
			cts.Flags = wire.FlagDecline
			return cts, true, err, false
		}
	}
	switch {
	case size == 0:
		cts.Flags = wire.FlagDecline
		return cts, true, nil, false
	case size > len(r.buf):
		cts.Flags = wire.FlagDecline
		return cts, true, &truncError{got: size, room: len(r.buf)}, false
	}
	if addr != 0 && w.cma[from].Load() {
		// The caller copies the data itself (singleCopy), outside w.mu.
		cts.Flags = wire.FlagCMA
		return cts, false, nil, true
	}
	w.expectLocked(r, size)
	cts.Arg1 = r.id
	return cts, false, nil, false
}

func (w *world) onCTS(from int, h wire.Header) error {
	w.mu.Lock()
	s := w.sends[h.Arg0]
	delete(w.sends, h.Arg0)
	failed := w.failure != nil
	w.mu.Unlock()
	if s == nil {
		if failed {
			return nil
		}
		return fmt.Errorf("CTS for unknown send request %d from world rank %d", h.Arg0, from)
	}
	if h.Flags&wire.FlagGone != 0 {
		s.complete(&peerClosedError{rank: s.peer, comm: s.c.name})
		return nil
	}
	if h.Flags&(wire.FlagDecline|wire.FlagCMA) != 0 {
		// The receiver could not take it and reports the truncation on its
		// side (MPI completes the send normally), or it copied the data
		// out of our buffer itself (cma.go).
		s.complete(nil)
		return nil
	}
	s.pushing.Store(true)
	w.bulk.Add(1)
	go s.pushData(h.Arg1)
	return nil
}

// dataChunk is the largest rendezvous data frame: big enough that the
// per-frame cost vanishes, small enough that other frames to the same peer
// are not held up for long behind one message.
const dataChunk = 4 << 20

// pushData writes the data of a rendezvous send to its receiver's request
// rid, then completes the send.
func (s *Request) pushData(rid uint64) {
	w := s.w // s may be recycled once complete
	defer w.bulk.Add(-1)
	for off := 0; off < len(s.buf); off += dataChunk {
		end := min(off+dataChunk, len(s.buf))
		h := wire.Header{Kind: wire.KindData, Arg0: rid, Arg1: uint64(off)}
		if err := s.w.send(s.to, h, s.buf[off:end]); err != nil {
			s.complete(err)
			return
		}
	}
	s.complete(nil)
}

// expectLocked files the rendezvous receive r, of size bytes, under a
// fresh id in w.recvs, where its data frames find it; w.bulk counts it
// until forgetLocked. The caller holds w.mu.
func (w *world) expectLocked(r *Request, size int) {
	r.id = w.newID()
	r.size = size
	w.recvs[r.id] = r
	w.bulk.Add(1)
}

// forgetLocked removes receive id from w.recvs (its data came, or the world
// failed). The caller holds w.mu.
func (w *world) forgetLocked(id uint64) {
	delete(w.recvs, id)
	w.bulk.Add(-1)
}

func (w *world) onData(from int, h wire.Header, body transport.Body) error {
	w.mu.Lock()
	r := w.recvs[h.Arg0]
	failed := w.failure != nil
	w.mu.Unlock()
	if r == nil {
		if failed {
			return nil
		}
		return fmt.Errorf("data for unknown receive request %d from world rank %d", h.Arg0, from)
	}
	off, n := int(h.Arg1), body.Len()
	if off < 0 || off+n > r.size {
		return fmt.Errorf("data [%d,%d) outside the announced %d bytes from world rank %d", off, off+n, r.size, from)
	}
	if err := body.ReadInto(r.buf[off : off+n]); err != nil {
		return err
	}
	r.got += n
	if r.got == r.size {
		w.mu.Lock()
		w.forgetLocked(r.id)
		w.mu.Unlock()
		r.complete(nil)
	}
	return nil
}

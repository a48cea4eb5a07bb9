package runtime

import (
	"sync/atomic"

	"github.com/gorun-hpc/gorun/internal/transport"
)

// Matched probes (MPI_Mprobe, MPI_Improbe, MPI_Mrecv, MPI_Imrecv).
//
// Probe then Recv with AnySource is racy when several goroutines receive:
// another goroutine's Recv may take the probed message first. A matched
// probe takes the message out of matching instead: Improbe removes an
// unexpected message from its queue, and a blocked Mprobe is posted among
// the receives (so it competes with them in the order they were posted);
// when a frame matches it, the handler keeps the message (an eager payload
// is copied out; a rendezvous message stays an RTS, whose sender waits)
// and completes the probe. Mrecv then delivers the kept message to the
// buffer as a receive would have: an eager payload is copied, and an RTS
// is answered with a CTS then, so the data of a large message is read
// straight into the buffer given to Mrecv. A message held by a Message
// counts as received for flow control.

// A Message is a message that Mprobe or Improbe took out of matching
// (MPI_Message): no receive and no other probe can match it any more, and
// only Mrecv or Imrecv of this Message receives it, exactly once. It
// belongs to the communicator it was probed on.
//
// A Message of a probe from ProcNull (MPI_MESSAGE_NO_PROC) receives nothing:
// Mrecv of it completes at once with Source ProcNull, any number of times.
// A Message that is never received is lost; a large one (rendezvous)
// leaves its sender waiting until the world fails or the receiver closes.
type Message struct {
	c     *Comm
	m     *inMsg // nil: from ProcNull
	taken atomic.Bool
}

// Mprobe blocks until a message from src (or AnySource) with tag (or
// AnyTag) arrives on c, takes it out of matching and returns it with its
// status (MPI_Mprobe); Status.Count is in elements of T (rounded down).
// Receive it with Mrecv or Imrecv. With src ProcNull it returns at once a
// Message that receives nothing, and Source ProcNull.
//
// Mprobe is blocking and not collective; any number of goroutines may
// Mprobe and receive on c at once, and each message goes to exactly one of
// them. A blocked Mprobe competes for arriving messages with the receives
// posted on c, in the order they were all posted. Errors as Recv:
// ErrInvalid for a bad rank or tag or the nil communicator; ErrClosed when
// only ranks that closed could send such a message, or when c is closed
// while it waits; ErrAborted.
func Mprobe[T Elem](c *Comm, src, tag int) (*Message, Status, error) {
	if src == ProcNull {
		return &Message{c: c}, nullStatus, nil
	}
	if err := c.checkP2P(src, tag, true); err != nil {
		return nil, Status{}, c.opErr("Mprobe", src, err)
	}
	m, r, err := c.mprobe(src, tag, true)
	if err != nil {
		return nil, Status{}, c.opErr("Mprobe", src, err)
	}
	if r != nil {
		if _, err := r.Wait(); err != nil {
			return nil, Status{}, err
		}
		m = r.msg
	}
	return &Message{c: c, m: m}, m.status(sizeOf[T]()), nil
}

// Improbe is Mprobe without blocking (MPI_Improbe): ok is false, and the
// Message nil, if no such message has arrived yet. Errors as Mprobe.
func Improbe[T Elem](c *Comm, src, tag int) (msg *Message, st Status, ok bool, err error) {
	if src == ProcNull {
		return &Message{c: c}, nullStatus, true, nil
	}
	if err := c.checkP2P(src, tag, true); err != nil {
		return nil, Status{}, false, c.opErr("Improbe", src, err)
	}
	m, _, err := c.mprobe(src, tag, false)
	if err != nil || m == nil {
		return nil, Status{}, false, c.opErr("Improbe", src, err)
	}
	return &Message{c: c, m: m}, m.status(sizeOf[T]()), true, nil
}

// Mrecv receives the message m into buf and returns its status
// (MPI_Mrecv). A message larger than buf returns an error wrapping
// ErrTruncated (the message is then gone, as with Recv), with the Status
// naming its real size; a smaller one fills the front of buf.
//
// Mrecv is blocking and not collective. Errors: ErrInvalid for a nil
// Message or one already received; ErrTruncated; ErrClosed if the
// communicator was closed; ErrAborted.
func Mrecv[T Elem](m *Message, buf []T) (Status, error) {
	et, err := elemOf[T]()
	if err != nil {
		return Status{}, m.comm().opErr("Mrecv", NoPeer, err)
	}
	r, err := m.recv(asBytes(buf), et, "Mrecv")
	if err != nil {
		return Status{}, err
	}
	return r.Wait()
}

// Imrecv starts receiving the message m into buf and returns at once
// (MPI_Imrecv); buf belongs to the request until it completes. Errors as
// Mrecv.
func Imrecv[T Elem](m *Message, buf []T) (*Request, error) {
	et, err := elemOf[T]()
	if err != nil {
		return nil, m.comm().opErr("Imrecv", NoPeer, err)
	}
	return m.recv(asBytes(buf), et, "Imrecv")
}

// comm is m's communicator, or nil.
func (m *Message) comm() *Comm {
	if m == nil {
		return nil
	}
	return m.c
}

// status is the Status of m for elements of esize bytes.
func (m *inMsg) status(esize int) Status {
	return Status{Source: m.src, Tag: m.tag, Count: m.size / esize, Bytes: m.size}
}

// mprobe takes the oldest unexpected message from src with tag on c's
// point-to-point context. If there is none and block is set, it posts a
// matched probe among the receives and returns it; the frame that matches
// it completes it with the message in r.msg (hold).
func (c *Comm) mprobe(src, tag int, block bool) (*inMsg, *Request, error) {
	w := c.w
	r := c.newRequest("Mprobe", reqMprobe, src, nil, 0)
	r.ctx, r.src, r.tag = c.ctx, src, tag
	w.mu.Lock()
	if err := w.errLocked(); err != nil {
		w.mu.Unlock()
		return nil, nil, err
	}
	q := w.queue(c.ctx)
	if i := q.findUnexp(r); i >= 0 {
		m := q.takeUnexp(w, i)
		w.mu.Unlock()
		if !m.rts {
			w.consumed(m.from, m.size)
		}
		return m, nil, nil
	}
	if w.unreachable(r) {
		w.mu.Unlock()
		return nil, nil, w.closedPeerErr(r)
	}
	if !block {
		w.mu.Unlock()
		return nil, nil, nil
	}
	q.posted = append(q.posted, r)
	w.mu.Unlock()
	return nil, r, nil
}

// hold completes the matched probe r with m, which a frame handler took
// off the posted queue for it.
func (r *Request) hold(m *inMsg) {
	r.msg = m
	r.status = Status{Source: m.src, Tag: m.tag, Bytes: m.size}
	r.complete(nil)
}

// holdEager completes the matched probe r with an eager message, whose
// payload it copies out of the transport.
func (r *Request) holdEager(src, tag int, call uint32, body transport.Body) error {
	m := &inMsg{src: src, tag: tag, call: call, size: body.Len()}
	if m.size > 0 {
		m.data = make([]byte, m.size)
		if err := body.ReadInto(m.data); err != nil {
			r.complete(err)
			return err
		}
	}
	r.hold(m)
	return nil
}

// recv starts the receive of m into b.
func (m *Message) recv(b []byte, et *elemType, op string) (*Request, error) {
	if m == nil {
		return nil, (*Comm)(nil).opErr(op, NoPeer, errInvalid("nil Message"))
	}
	c, in := m.c, m.m
	if in == nil {
		return nullRequest(op, reqRecv, nullStatus), nil
	}
	if m.taken.Swap(true) {
		return nil, c.opErr(op, in.src, errInvalid("the Message was received already"))
	}
	if err := c.usable(); err != nil {
		return nil, c.opErr(op, in.src, err)
	}
	r := c.newRequest(op, reqRecv, in.src, b, et.size)
	r.ctx, r.src, r.tag, r.et, r.call = c.ctx, in.src, in.tag, et, et.word
	if !in.rts {
		data := in.data
		in.data = nil // m was taken once: nobody else reads it
		_ = r.fillEager(in.src, in.tag, in.call, false, transport.BytesBody(data))
		return r, nil
	}
	w := c.w
	w.mu.Lock()
	if err := w.errLocked(); err != nil {
		w.mu.Unlock()
		return nil, c.opErr(op, in.src, err)
	}
	if err := w.acceptLocked(r, in); err != nil {
		return nil, c.opErr(op, in.src, err)
	}
	return r, nil
}

package runtime

import (
	"bytes"
	"errors"
	"sync"
)

// Nonblocking collectives (Ibarrier, Ibcast, Iallreduce, ...).
//
// An I-call begins its collective in the caller's goroutine: begin checks
// the communicator, takes the call's sequence number and logs its word, as
// every blocking collective does. So the collectives of a communicator,
// blocking and nonblocking, are matched in the order each rank calls them:
// the sequence number is the tag of every frame of the call, and a receive
// accepts only frames of its own call (match.go). The rest of the call, the
// algorithm of its blocking form on the message path, runs in a goroutine
// of its own, which completes the returned Request; the frames move through
// the receive goroutines, so the call progresses whether or not anybody
// waits for it. Calls in progress on one communicator use different tags
// and their own temporary buffers (collScratch), so they run at the same
// time as each other and as blocking collectives made after them.
//
// A nonblocking call never goes through the shared segment of a one-node
// communicator (nodecoll.go), whose arrival is a blocking step in call
// order; its word says it is nonblocking (call.go), so a rank that made
// Bcast where the others made Ibcast is found out as any other mismatch.
//
// Argument errors follow the message path of the blocking form: the calls
// that pass errors on (Iallreduce, Iallgather, Ialltoall) end with the same
// ErrInvalid on every rank, the others abort the world. Either way the
// error comes from the request, never from the I-call, which fails only
// when the call cannot begin (ErrClosed, ErrAborted).
//
// Close of a communicator other than the world stops its calls in progress:
// their receives are cancelled, their rendezvous sends that no receiver has
// taken yet send a copy of the data if one ever asks, the log forgets the
// calls so that a peer waiting for this rank in one learns that it closed
// (verify.go), and the requests complete with ErrClosed once nothing of the
// runtime touches their buffers. Close of the world first lets every
// nonblocking collective of this rank finish.

// errStopped ends the waits of a nonblocking collective whose communicator
// was closed.
var errStopped = errors.New("nonblocking collective stopped by Close")

// nbcOps is a communicator's record of its nonblocking collectives in
// progress on this rank.
type nbcOps struct {
	mu      sync.Mutex
	stop    chan struct{} // closed by Close; made with the first call
	stopped bool
	live    sync.WaitGroup // calls whose goroutine has not ended
}

// nbOp is one nonblocking collective in progress.
type nbOp struct {
	k    coll
	req  *Request      // the caller's
	stop chan struct{} // c.nbc.stop
	// pending are the requests of the call not waited for yet: what Close
	// must settle before the caller's buffers are free again.
	pending []*Request
}

// keep records request r of the call.
func (o *nbOp) keep(r *Request) { o.pending = append(o.pending, r) }

// await blocks until r completes (then forgets it) or the communicator is
// closed (errStopped).
func (o *nbOp) await(r *Request) error {
	if !r.isDone() {
		select {
		case <-r.doneChan():
		case <-o.stop:
			if !r.isDone() {
				return errStopped
			}
		}
	}
	for i, p := range o.pending {
		if p == r {
			o.pending = append(o.pending[:i], o.pending[i+1:]...)
			break
		}
	}
	return nil
}

// beginNB begins nonblocking call id on c in the caller's goroutine, with
// this rank's argument error local. A call that passes errors on (not
// strict) sends it in place of its data; a strict one aborts the world at
// once, and beginNB returns the request that reports it. err is set when
// the call cannot begin.
func (c *Comm) beginNB(k *coll, name string, id callID, peer int, local error, strict bool) (done *Request, err error) {
	id.nb = true
	if err := c.begin(k, name, id); err != nil {
		return nil, c.opErr(name, peer, err)
	}
	k.strict = strict
	if local != nil {
		k.err = newArgError(c.rank, local)
		if strict {
			return doneRequest(c, name, peer, k.abort(k.err)), nil
		}
	}
	return nil, nil
}

// startNB runs body, the algorithm of call k, in a goroutine of its own and
// returns the request that completes with its outcome.
func (c *Comm) startNB(k *coll, peer int, body func(k *coll) error) *Request {
	// The request's kind matters only to recycle, which leaves it alone.
	o := &nbOp{k: *k, req: c.newRequest(k.name, reqSend, peer, nil, 0)}
	o.k.nb = o
	c.nbc.mu.Lock()
	if c.nbc.stop == nil {
		c.nbc.stop = make(chan struct{})
	}
	o.stop = c.nbc.stop
	c.nbc.live.Add(1)
	c.nbc.mu.Unlock()
	c.w.nbcLive.Add(1)
	go o.run(body)
	return o.req
}

func (o *nbOp) run(body func(k *coll) error) {
	c := o.k.c
	defer c.w.nbcLive.Done()
	defer c.nbc.live.Done()
	err := func() (err error) {
		defer c.catchOp(o.k.name, &err) // a user op that panics aborts the world
		return body(&o.k)
	}()
	select {
	case <-o.stop:
		o.settle()
		if err != nil {
			o.req.complete(ErrClosed)
			return
		}
	default:
	}
	o.req.complete(o.k.end(err))
}

// settle makes sure that nothing of the runtime touches the buffers of a
// call stopped by Close: it cancels the receives still posted (also ones
// posted after Close's own cancel), waits for those already matched, and
// detaches the sends no receiver has taken. The log forgets the call, so a
// peer that waits for this rank in it learns that c is closed (verify.go).
func (o *nbOp) settle() {
	c := o.k.c
	c.w.cancel(c)
	for _, r := range o.pending {
		if r.kind == reqRecv {
			<-r.doneChan()
		} else {
			detach(r)
		}
	}
	o.pending = nil
	c.log.forget(o.k.seq, o.k.word)
}

// detach frees the caller's buffer of rendezvous send s: if no CTS came
// yet, the send goes on with a copy of the data; otherwise it waits until
// the data is out.
func detach(s *Request) {
	w := s.w
	w.mu.Lock()
	if w.sends[s.id] == s {
		// onCTS takes s out of w.sends under w.mu before anything reads
		// s.buf again.
		s.buf = bytes.Clone(s.buf)
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	<-s.doneChan()
}

// forget drops call seq, made as word, from the log of a closed
// communicator: a check for it then reports that the communicator closed.
func (l *callLog) forget(seq, word uint32) {
	seq &= 0x7fffffff
	l.slots[seq%logSize].CompareAndSwap(uint64(seq)<<32|uint64(word), 0)
}

// stopNB stops c's nonblocking collectives (Close of c) and returns when
// their goroutines are done.
func (c *Comm) stopNB() {
	c.nbc.mu.Lock()
	switch {
	case c.nbc.stop == nil:
		c.nbc.stop = closed
	case !c.nbc.stopped:
		close(c.nbc.stop)
	}
	c.nbc.stopped = true
	c.nbc.mu.Unlock()
	c.nbc.live.Wait()
}

// collScratch is scratch for call k: c's shared buffer for a blocking call,
// fresh memory for a nonblocking one, which runs beside other calls on c.
func collScratch[T Elem](k *coll, n int) []T {
	if k.nb != nil {
		return make([]T, n)
	}
	return scratch[T](k.c, n)
}

// doneRequest is a request of call op on c (nil: the serial communicator)
// that completed with err.
func doneRequest(c *Comm, op string, peer int, err error) *Request {
	var oe *OpError
	if errors.As(err, &oe) {
		err = oe.Err // named again, as op, by Wait
	}
	r := &Request{c: c, op: op, peer: peer, err: err}
	if c != nil {
		r.w = c.w
	}
	r.claimed.Store(true)
	// release: err above happen-before an isDone that sees reqDone.
	r.state.Store(reqDone)
	return r
}

package runtime

// Cancel withdraws a receive that no message has matched yet
// (MPI_Cancel). Such a receive completes at once: Wait and Test report a
// Status with Canceled set (Source and Tag as the receive asked, Count 0)
// and no error, and its buffer is untouched and the caller's again; a
// message that arrives later goes to the next matching receive, as if this
// one had never been posted. A receive that a message has already matched
// (its data may still be arriving) is not affected: it completes normally
// with Canceled false. So after Cancel, Wait always returns soon, and
// Status.Canceled says which of the two happened.
//
// Cancel is not collective and does not block. It may be called from any
// goroutine, more than once, and on a request that completed (it then does
// nothing); a nil request is a no-op too. Errors: cancelling a send
// (Isend, Issend) is not supported — MPI has deprecated it — and returns
// ErrInvalid without touching the send, which completes as it would have;
// the same for any request that is not a receive.
func (r *Request) Cancel() error {
	if r == nil {
		return nil
	}
	if r.kind != reqRecv || r.et == nil { // a collective's receive has no element type
		return r.c.opErr("Cancel", r.peer, errInvalid("only a receive can be canceled; this request is an "+r.op))
	}
	if r.isDone() || r.w == nil {
		return nil
	}
	w := r.w
	found := false
	w.mu.Lock()
	if q := w.queues[r.ctx]; q != nil {
		for i, p := range q.posted {
			if p == r {
				q.posted = append(q.posted[:i], q.posted[i+1:]...)
				found = true
				break
			}
		}
	}
	w.mu.Unlock()
	if found {
		// Off its queue, r is reachable by nobody else: no frame can match
		// it and no failure drains it.
		r.status = Status{Source: r.src, Tag: r.tag, Canceled: true}
		r.complete(nil)
	}
	return nil
}

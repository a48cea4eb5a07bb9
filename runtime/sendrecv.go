package runtime

// ProcNull is the rank of nobody (MPI_PROC_NULL): a send to it and a
// receive or probe from it complete at once and move nothing, so the edge
// ranks of a halo exchange need no special case. A receive from ProcNull
// returns a Status with Source ProcNull, Tag AnyTag and Count 0.
const ProcNull = -3

// nullStatus is the status of a receive or probe from ProcNull.
var nullStatus = Status{Source: ProcNull, Tag: AnyTag}

// nullRequest is a request of kind kind already complete, for ProcNull.
func nullRequest(op string, kind reqKind, st Status) *Request {
	r := &Request{op: op, kind: kind, peer: ProcNull, status: st}
	r.claimed.Store(true)
	// release: status above happen-before an isDone that sees reqDone.
	r.state.Store(reqDone)
	return r
}

// Sendrecv sends sendbuf to rank dest with sendtag and receives into
// recvbuf from rank src (or AnySource) with recvtag (or AnyTag) at the same
// time (MPI_Sendrecv), so a ring or halo exchange cannot deadlock whatever
// the message sizes. dest and src may be ProcNull.
//
// Sendrecv is blocking and not collective. sendbuf and recvbuf must not
// overlap; sendbuf may be reused and recvbuf read when it returns. Errors:
// those of Send and Recv (ErrInvalid naming the bad rank or tag,
// ErrTruncated, ErrClosed, ErrAborted); on an error of the send, the
// receive is still completed or failed before Sendrecv returns.
func Sendrecv[S, R Elem](c *Comm, sendbuf []S, dest, sendtag int, recvbuf []R, src, recvtag int) (Status, error) {
	rr, err := Irecv(c, recvbuf, src, recvtag)
	if err != nil {
		return Status{}, err
	}
	serr := Send(c, sendbuf, dest, sendtag)
	st, rerr := rr.Wait()
	if serr != nil {
		return st, serr
	}
	return st, rerr
}

// SendrecvReplace is Sendrecv with one buffer (MPI_Sendrecv_replace): buf
// is sent to dest and then holds what came from src. The message received
// must fit buf. It copies buf once to send it. Errors as Sendrecv.
func SendrecvReplace[T Elem](c *Comm, buf []T, dest, sendtag, src, recvtag int) (Status, error) {
	out := append([]T(nil), buf...)
	return Sendrecv(c, out, dest, sendtag, buf, src, recvtag)
}

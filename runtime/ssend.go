package runtime

// Synchronous sends (MPI_Ssend, MPI_Issend).
//
// A synchronous send always takes the rendezvous path, whatever its size:
// its request to send is matched like any message (so it keeps its place
// in the order of the pair's messages), and the receiver answers only once
// a receive has matched it, so the sender completes after the matching
// receive started. The data then follows as for any large message (or is
// declined: a receive too small reports ErrTruncated on its side, and an
// empty message needs no data frame). No frame kind or flag is added, and
// no eager credit is used.

// Ssend sends buf to rank dest of c with tag (≥ 0) in synchronous mode
// (MPI_Ssend): it returns only once a matching receive (Recv, Irecv, Mrecv
// after an Mprobe) has started on dest, and buf may be reused.
//
// Ssend is blocking and not collective, and costs a round trip more than a
// small Send: the data goes out after the receiver's answer. Messages
// between one pair of ranks on one communicator are still received in the
// order they were sent, synchronous or not. dest may be ProcNull (nothing
// happens). Errors as Send: ErrInvalid for a bad rank or tag or the nil
// communicator; ErrClosed, naming it, when dest has entered Close of its
// world before matching the message; ErrAborted.
func Ssend[T Elem](c *Comm, buf []T, dest, tag int) error {
	et, err := elemOf[T]()
	if err != nil {
		return c.opErr("Ssend", dest, err)
	}
	if dest == ProcNull {
		return nil
	}
	r, err := issend(c, asBytes(buf), dest, tag, et, "Ssend")
	if err != nil {
		return err
	}
	_, err = r.Wait()
	return err
}

// Issend starts a synchronous send of buf to rank dest with tag and returns
// at once (MPI_Issend); the request completes once a matching receive has
// started on dest and the data went out. buf belongs to the request until
// it completes (see Request). Errors as Ssend.
func Issend[T Elem](c *Comm, buf []T, dest, tag int) (*Request, error) {
	et, err := elemOf[T]()
	if err != nil {
		return nil, c.opErr("Issend", dest, err)
	}
	if dest == ProcNull {
		return nullRequest("Issend", reqSend, Status{}), nil
	}
	return issend(c, asBytes(buf), dest, tag, et, "Issend")
}

func issend(c *Comm, b []byte, dest, tag int, et *elemType, op string) (*Request, error) {
	if err := c.checkP2P(dest, tag, false); err != nil {
		return nil, c.opErr(op, dest, err)
	}
	if err := c.sendable(c.ctx, dest); err != nil {
		return nil, c.opErr(op, dest, err)
	}
	r, err := c.sendRTS(c.ctx, b, dest, int32(tag), et.code, et.size, op)
	return r, c.opErr(op, dest, err)
}

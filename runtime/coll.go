package runtime

import (
	"fmt"
)

// Collectives are built on the point-to-point engine, on the communicator's
// second context (ctx+1) so they never match user messages. Each call takes
// the next sequence number of the communicator as its tag: every rank makes
// collective calls in the same order, so the messages of one call can only
// match the same call elsewhere.
//
// An argument error that every rank can see (a bad op, a root out of range,
// buffers whose sizes disagree with each other) is returned by every rank
// without communicating. An error only one rank can see (the root's receive
// buffer too small, a count that differs between ranks) aborts the world
// with a cause naming that rank, the call and the argument, so the others
// return ErrAborted with that cause instead of hanging.

// coll is one collective call in progress.
type coll struct {
	c   *Comm
	op  string
	tag int32
}

// begin starts collective op on c: it checks the communicator and takes
// the call's tag.
func (c *Comm) begin(op string) (coll, error) {
	if err := c.usable(); err != nil {
		return coll{}, err
	}
	tag := int32(c.seq & 0x7fffffff)
	c.seq++
	return coll{c: c, op: op, tag: tag}, nil
}

// checkRoot validates a root argument; every rank sees the same answer.
func (c *Comm) checkRoot(root int) error {
	if root < 0 || root >= c.Size() {
		return errInvalid(fmt.Sprintf("root %d out of range [0,%d)", root, c.Size()))
	}
	return nil
}

// abortArg reports an argument error that only this rank can see: it aborts
// the world so that no other rank waits for this one, and returns err.
func (k coll) abortArg(err error) error {
	k.c.w.abort(fmt.Errorf("rank %d of %s: %s: %w", k.c.rank, k.c.name, k.op, err))
	return err
}

func (k coll) isend(dest int, b []byte) (*Request, error) {
	return k.c.isend(k.c.ctx+1, b, dest, k.tag, 0, k.op)
}

func (k coll) irecv(src int, b []byte) (*Request, error) {
	return k.c.irecv(k.c.ctx+1, b, src, int(k.tag), 0, k.op, true)
}

func (k coll) send(dest int, b []byte) error {
	if len(b) <= k.c.w.eager {
		return k.c.sendEager(k.c.ctx+1, b, dest, k.tag)
	}
	r, err := k.isend(dest, b)
	if err != nil {
		return err
	}
	_, err = r.Wait()
	return err
}

// wait completes a collective receive and checks that exactly len(b) bytes
// arrived: a difference means the ranks passed different counts, which
// aborts the world.
func (k coll) wait(r *Request, src int, want int) error {
	st, err := r.Wait()
	recycle(r)
	if err == nil && st.Bytes == want {
		return nil
	}
	if err != nil && !isTrunc(err) {
		return err
	}
	return k.abortArg(errInvalid(fmt.Sprintf("rank %d sent %d bytes where %d were expected: the ranks passed different counts", src, st.Bytes, want)))
}

func (k coll) recv(src int, b []byte) error {
	r, err := k.irecv(src, b)
	if err != nil {
		return err
	}
	return k.wait(r, src, len(b))
}

// sendrecv sends sb to dest and receives rb from src at the same time, so
// that two ranks exchanging large messages do not wait for each other.
func (k coll) sendrecv(dest int, sb []byte, src int, rb []byte) error {
	rr, err := k.irecv(src, rb)
	if err != nil {
		return err
	}
	sr, err := k.isend(dest, sb)
	if err != nil {
		return err
	}
	if err := k.wait(rr, src, len(rb)); err != nil {
		return err
	}
	_, err = sr.Wait()
	return err
}

func isTrunc(err error) bool {
	_, ok := err.(*truncError)
	if ok {
		return true
	}
	if oe, ok := err.(*OpError); ok {
		_, ok = oe.Err.(*truncError)
		return ok
	}
	return false
}

// Barrier blocks until every rank of c has called it (MPI_Barrier).
//
// Barrier is collective over c. It uses the dissemination algorithm:
// ceil(log2 n) rounds of empty messages; on a communicator that spans
// several nodes with several ranks on some node, it goes node-aware: a
// barrier inside each node, one among the node leaders, and a release
// (hier.go). Errors: ErrAborted, ErrClosed.
func (c *Comm) Barrier() error {
	if c == nil {
		return nil
	}
	if c.closed.Load() {
		return c.opErr("Barrier", NoPeer, ErrClosed)
	}
	if c.hierarchical() {
		return c.opErr("Barrier", NoPeer, hierBarrier(c))
	}
	return c.opErr("Barrier", NoPeer, barrier(c))
}

func barrier(c *Comm) error {
	k, err := c.begin("Barrier")
	if err != nil {
		return err
	}
	if nc := c.nodeColl(); nc != nil {
		_, err := nc.arrive(c, nil, 0)
		return err
	}
	n, r := c.size, c.rank
	for d := 1; d < n; d <<= 1 {
		if err := k.sendrecv((r+d)%n, nil, (r-d+n)%n, nil); err != nil {
			return err
		}
	}
	return nil
}

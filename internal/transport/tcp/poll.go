package tcp

import (
	"io"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
	"golang.org/x/sys/unix"
)

// Caller polling (transport.Poller), as in shmring (docs/wire.md).
//
// Each connection has one reader at a time: whoever holds the endpoint's
// token (endpoint.tok), the receive goroutine or a caller inside Poll. The
// token carries the reader state (rd, body, pollErr) from one holder to the
// next. A caller reads with non-blocking read(2) through RawConn.Control and
// handles the frames it finds on its own goroutine, so a rank waiting for a
// reply is not woken by another goroutine: the reply costs it one read.
//
// While any caller polls, and until a whole nap passed without one, the
// receive goroutines stand aside, napping in the Go scheduler rather than
// waiting for their sockets, where every arriving segment would wake them.
// A caller that gives up polling to park says so (EndPoll(true)), which
// kicks them to take over at once. When nobody polls, frames are handled
// within two naps by the receive goroutine, so a rank that computes keeps
// making progress (a one-sided operation it is the target of, for example).

// pollNap is one nap of a receive goroutine that stands aside.
const pollNap = time.Millisecond

// pollBatch bounds the connections one Poll reads, taking them in turn, so
// that a rank connected to many peers pays a bounded number of read(2)s per
// Poll.
const pollBatch = 8

// BeginPoll implements transport.Poller.
func (t *Transport) BeginPoll() { t.polls.Begin() }

// EndPoll implements transport.Poller.
func (t *Transport) EndPoll(sleeping bool) {
	if t.polls.End(sleeping) {
		for _, e := range t.polled() {
			e.kick()
		}
	}
}

// Poll implements transport.Poller: it handles the frames that have
// arrived on up to pollBatch connections that no other goroutine is
// reading.
func (t *Transport) Poll() bool {
	eps := t.polled()
	n := len(eps)
	if n == 0 {
		return false
	}
	first := 0
	if n > pollBatch {
		first = int(t.pollNext.Add(pollBatch) % uint32(n))
	}
	handled := false
	for i := range min(n, pollBatch) {
		if eps[(first+i)%n].poll() {
			handled = true
		}
	}
	if !handled {
		runtime.Gosched()
	}
	return handled
}

func (t *Transport) polled() []*endpoint {
	if p := t.pollEps.Load(); p != nil {
		return *p
	}
	return nil
}

// addPolled and unpoll add and remove an endpoint of the list Poll reads,
// copy on write: Poll reads it without a lock.
func (t *Transport) addPolled(e *endpoint) {
	t.mu.Lock()
	defer t.mu.Unlock()
	eps := append(slices.Clip(t.polled()), e)
	t.pollEps.Store(&eps)
}

func (t *Transport) unpoll(e *endpoint) {
	t.mu.Lock()
	defer t.mu.Unlock()
	eps := slices.DeleteFunc(slices.Clone(t.polled()), func(x *endpoint) bool { return x == e })
	t.pollEps.Store(&eps)
}

// poll handles the frames readable on e now, on the calling goroutine,
// unless another goroutine reads e's stream.
func (e *endpoint) poll() bool {
	// acquire (seq-cst CAS): rd, body and pollErr are ours until the
	// Store below.
	if !e.tok.CompareAndSwap(0, 1) {
		return false
	}
	rd := &e.rd
	rd.byCaller = true
	handled := false
	for e.pollErr == nil && !e.killed.Load() {
		if rd.buffered() < wire.HeaderSize {
			got, err := rd.tryFill()
			if err != nil {
				// The receive goroutine reports it when it next
				// takes the token.
				e.pollErr = err
				break
			}
			if !got {
				break
			}
			continue
		}
		if err := e.frame(); err != nil {
			e.pollErr = err
			break
		}
		handled = true
	}
	rd.byCaller = false
	failed := e.pollErr != nil
	if failed {
		e.failed.Store(true) // the receive goroutine stops standing aside
	}
	e.tok.Store(0) // release: hands rd, body and pollErr to the next holder
	if failed {
		e.kick()
	}
	return handled
}

// kick wakes e's receive goroutine if it stands aside.
func (e *endpoint) kick() { e.nap.Kick() }

// release gives the token back (receive goroutine only).
func (e *endpoint) release() {
	e.holding = false
	e.tok.Store(0) // release: hands rd, body and pollErr to the next holder
}

// grab takes the token, waiting for a caller that is finishing a frame
// (receive goroutine only).
func (e *endpoint) grab() {
	for !e.holding {
		if e.tok.CompareAndSwap(0, 1) { // acquire, see poll
			e.holding = true
			return
		}
		runtime.Gosched()
	}
}

// turn returns, holding the token, once a whole frame header is buffered
// and no caller polls, or with why the stream cannot go on (io.EOF at its
// end).
func (e *endpoint) turn() error {
	rd := &e.rd
	defer e.nap.Stop()
	var aside transport.Aside
	for {
		// A failed stream is reported at once, however busy the callers.
		if aside.Should(&e.t.polls) && !e.closing.Load() && !e.failed.Load() {
			if e.holding {
				e.release()
			}
			aside.Nap(&e.nap, pollNap)
			continue
		}
		e.grab()
		if e.pollErr != nil {
			return e.pollErr
		}
		if rd.buffered() >= wire.HeaderSize {
			return nil
		}
		if rd.err != nil {
			return rd.err
		}
		e.aside, e.werr = false, nil
		err := rd.rc.Read(e.waitFn)
		if err == nil {
			err = e.werr
		}
		if err != nil {
			e.grab()
			rd.err = err
			return err
		}
		// Bytes came, or a caller took the token: look again.
	}
}

// wait is the RawConn.Read callback of the receive goroutine at a frame
// boundary: true when it read something, failed, or must give way to a
// caller (aside); false to park until the socket is readable, after giving
// the token back so callers may read meanwhile. Parking (sock.Read, armed
// level-triggered) loses no wake-up: a segment that arrives after the read that found the
// socket empty makes it readable again.
func (e *endpoint) wait(fd uintptr) bool {
	rd := &e.rd
	if !e.holding {
		if !e.tok.CompareAndSwap(0, 1) { // acquire, see poll
			e.aside = true
			return true
		}
		e.holding = true
		if e.pollErr != nil || rd.buffered() >= wire.HeaderSize {
			return true // a caller left a frame or an error
		}
	}
	rd.room(wire.HeaderSize)
	var start time.Time
	for {
		n, err := unix.Read(int(fd), rd.buf[rd.w:])
		switch err {
		case nil:
			if n == 0 {
				e.werr = io.EOF
			}
			rd.w += n
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if e.t.polls.Polling() {
				e.release()
				e.aside = true
				return true
			}
			if rd.spin != nil && !e.closing.Load() && rd.spin() {
				if start.IsZero() {
					start = time.Now()
				}
				if time.Since(start) <= spinBudget {
					runtime.Gosched() // see reader.poll
					continue
				}
			}
			e.release()
			return false
		default:
			e.werr = os.NewSyscallError("read", err)
			return true
		}
	}
}

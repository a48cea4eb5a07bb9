package runtime

import (
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"
)

// AnySource and AnyTag are the wildcards of Recv, Irecv and Probe.
const (
	AnySource = -1
	AnyTag    = -1
)

// Status describes a received (or probed) message.
type Status struct {
	Source int // the sender's rank in the communicator
	Tag    int
	Count  int // elements of the receive's type (for a truncated message: of the message)
	Bytes  int // the message size in bytes
	// Canceled reports a receive that Request.Cancel withdrew before any
	// message matched it; Source and Tag are then those it asked for.
	Canceled bool
}

// A Request is a nonblocking send, receive or probe in progress.
//
// The buffer passed to Isend or Irecv belongs to the request until the
// request completes, that is until Wait returns, Test reports true, or Done
// is closed — even if the caller stops waiting. Reading or writing it before
// then is a data race. Wait and Test may be called from any goroutine, and
// more than once; all see the same outcome. If the world fails, every
// pending request completes with an error wrapping ErrAborted.
type Request struct {
	w     *world
	c     *Comm
	op    string
	peer  int // comm rank for errors
	esize int
	buf   []byte

	// Receive matching (under w.mu).
	ctx     uint32
	src     int       // comm rank or AnySource
	tag     int       // or AnyTag
	call    uint32    // a collective's call word (call.go), or the element type word (elem.go); a probe: the code of the message it found
	et      *elemType // point-to-point receive or probe: its element type
	discard bool      // take any message and keep nothing (a collective in error)
	scans   uint8     // scans of the stall watcher that found r pending (verify.go)
	kind    reqKind

	// Rendezvous.
	id   uint64 // key in w.sends or w.recvs
	to   int    // send: world rank of the receiver
	size int    // receive: total bytes announced by RTS
	got  int    // receive: bytes arrived (touched by one receive goroutine)

	msg *inMsg // matched probe: the message it took (mprobe.go)

	status  Status
	err     error
	claimed atomic.Bool   // complete ran; only its first call counts
	state   atomic.Uint32 // reqPending, reqWatched or reqDone
	waiting atomic.Bool   // someone is parked in Wait
	pushing atomic.Bool   // send: the CTS came, a goroutine pushes the data
	mu      sync.Mutex    // serializes doneChan
	done    chan struct{} // made by doneChan (Done, a parking Wait) before state becomes reqWatched
}

// The states of a Request. Only complete leaves reqPending for reqDone or
// reqWatched for reqDone; only doneChan moves reqPending to reqWatched.
const (
	reqPending uint32 = iota // not complete, no done channel
	reqWatched               // not complete, done channel made
	reqDone                  // complete: status and err are final
)

// closed is the done channel of every request that completed before anyone
// asked for one.
var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// isDone reports whether r completed.
func (r *Request) isDone() bool {
	// acquire: status and err, stored before the state became reqDone,
	// are visible to the caller.
	return r.state.Load() == reqDone
}

type reqKind uint8

const (
	reqSend reqKind = iota
	reqRecv
	reqProbe
	reqMprobe // a blocked Mprobe, posted like a receive (mprobe.go)
)

func (c *Comm) newRequest(op string, kind reqKind, peer int, buf []byte, esize int) *Request {
	return &Request{w: c.w, c: c, op: op, kind: kind, peer: peer, buf: buf, esize: esize}
}

// reqPool holds receive requests that completed inside the call that made
// them (Recv, collectives), for the next such call: a small message then
// allocates nothing, and the garbage collector, whose stops preempt a
// polling waiter, runs less often.
var reqPool = sync.Pool{New: func() any { return new(Request) }}

// pooledRequest is newRequest from reqPool; see irecv.
func (c *Comm) pooledRequest(op string, kind reqKind, peer int, buf []byte, esize int) *Request {
	r := reqPool.Get().(*Request)
	*r = Request{w: c.w, c: c, op: op, kind: kind, peer: peer, buf: buf, esize: esize}
	return r
}

// recycle returns a pooled request that completed to reqPool. Only an
// eager receive qualifies: it was completed exactly once, by whoever took
// it off its matching queue, and nothing refers to it any more, whereas a
// rendezvous receive (id != 0) may still be reached through the world's
// tables by a late completion after a failure.
func recycle(r *Request) {
	// complete touches nothing of r once the state is reqDone.
	if r == nil || r.kind != reqRecv || r.id != 0 || !r.isDone() {
		return
	}
	r.buf, r.w, r.c, r.err, r.done = nil, nil, nil, nil, nil
	reqPool.Put(r)
}

// sent is the request of every eager send: complete when it is made, with
// nothing to report, so one shared request serves them all.
var sent = func() *Request {
	r := &Request{op: "Isend"}
	r.claimed.Store(true)
	r.state.Store(reqDone)
	return r
}()

// complete finishes r with err (nil on success). Only the first call counts.
func (r *Request) complete(err error) {
	if r.claimed.Swap(true) {
		return
	}
	r.err = err
	if r.esize > 0 {
		r.status.Count = r.status.Bytes / r.esize
	}
	// Read before the state changes: once a waiter sees reqDone, r may be
	// recycled (see recycle), so nothing of r is touched after.
	parked := r.waiting.Load()
	// release (seq-cst CAS and store): status and err above happen-before
	// an isDone that sees reqDone.
	if !r.state.CompareAndSwap(reqPending, reqDone) {
		done := r.done // reqWatched: written before the state said so
		r.state.Store(reqDone)
		close(done)
	}
	// A goroutine parked in Wait was readied onto this P; yielding lets it
	// run now instead of after a wake-up of another thread (which costs
	// microseconds), while this goroutine goes back to its queue.
	if parked {
		goruntime.Gosched()
	}
}

// Wait blocks until the request completes and returns its status. A nil
// Request completes at once (MPI_REQUEST_NULL). When the world's Config set a
// Timeout and the request does not complete in time, the world is aborted
// with a timeout cause, which this and every other pending call return.
func (r *Request) Wait() (Status, error) {
	if r == nil {
		return Status{}, nil
	}
	if !r.isDone() {
		r.w.waiting()
		if !r.w.pollWait(r) {
			r.park()
		}
	}
	return r.status, r.c.opErr(r.op, r.peer, r.err)
}

// timingAllocs counts the allocations the order of events decides, not
// the call: the done channel of a wait that parks (doneChan) and the record
// and payload of an eager message that arrived before its receive
// (onEager). alloc_test.go tells them from the calls' own.
var timingAllocs atomic.Int64

// doneChan returns r's done channel, making it if needed.
func (r *Request) doneChan() chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state.Load() {
	case reqDone:
		return closed
	case reqWatched:
		return r.done
	}
	r.done = make(chan struct{})
	timingAllocs.Add(1)
	// release: r.done above happen-before complete's load of reqWatched.
	if r.state.CompareAndSwap(reqPending, reqWatched) {
		return r.done
	}
	return closed // completed meanwhile
}

// park blocks until r completes, enforcing the world's watchdog.
func (r *Request) park() {
	done := r.doneChan()
	r.waiting.Store(true)
	if r.w.timeout > 0 {
		t := time.NewTimer(r.w.timeout)
		select {
		case <-done:
		case <-t.C:
			r.w.abort(fmt.Errorf("watchdog: %s on %s rank %d waited longer than %v", r.op, r.c.name, r.c.rank, r.w.timeout))
		}
		t.Stop()
	}
	<-done
}

// pollBudget bounds how long a waiting caller polls without progress
// before it parks, unless the node is oversubscribed (oversub.go). It is several futex wake-ups long (docs/shmring.md), so a
// busy exchange never parks, and short enough that ranks sharing a core
// yield it soon.
const pollBudget = 50 * time.Microsecond

// pollWait receives for r itself until r completes (true) or w.wait.Poll
// passes without progress (false; the caller then parks). See
// transport.Poller.
func (w *world) pollWait(r *Request) bool {
	// Once a goroutine pushes r's data, only it can complete r: polling
	// would take the CPU it needs.
	return w.pollUntil(r.isDone, r.pushing.Load)
}

// pollUntil receives for the caller until done reports true (true), or
// stop does, or w.wait.Poll passes without progress (false).
func (w *world) pollUntil(done, stop func() bool) bool {
	if len(w.pollers) == 0 && len(w.sysPollers) == 0 {
		return false
	}
	for _, p := range w.pollers {
		p.BeginPoll()
	}
	for _, p := range w.sysPollers {
		p.BeginPoll()
	}
	sysEvery := 1
	if len(w.pollers) > 0 {
		sysEvery = sysPollEvery
	}
	var start time.Time
	ok := false
	for i := 1; ; i++ {
		if done() {
			ok = true
			break
		}
		if stop != nil && stop() {
			break
		}
		progressed := false
		for _, p := range w.pollers {
			if p.Poll() {
				progressed = true
			}
		}
		if i%sysEvery == 0 {
			for _, p := range w.sysPollers {
				if p.Poll() {
					progressed = true
				}
			}
		}
		if progressed {
			start = time.Time{}
			continue
		}
		if i%64 == 0 {
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > w.wait.Poll {
				break
			}
		}
		// Lets goroutines this wait depends on (a clear-to-send for a
		// rendezvous receive) run when Ps are few, and on an
		// oversubscribed node the ranks this one waits for.
		w.wait.Pause(i)
	}
	for _, p := range w.pollers {
		p.EndPoll(!ok)
	}
	for _, p := range w.sysPollers {
		p.EndPoll(!ok)
	}
	return ok
}

// sysPollEvery is how often (in rounds) a wait that also polls shared
// memory polls TCP: a shared-memory round costs tens of nanoseconds, a
// read(2) on this VM about a microsecond.
const sysPollEvery = 8

// Test reports whether the request has completed, without blocking; when it
// has, it also returns the status and error that Wait would.
func (r *Request) Test() (bool, Status, error) {
	if r == nil {
		return true, Status{}, nil
	}
	if r.isDone() {
		return true, r.status, r.c.opErr(r.op, r.peer, r.err)
	}
	return false, Status{}, nil
}

// Done returns a channel closed when the request completes, for use in a
// select with the caller's own cancellation. Stopping to wait does not
// cancel the request: abort the communicator to give up.
func (r *Request) Done() <-chan struct{} {
	if r == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return r.doneChan()
}

// Waitall waits for every request, even after one fails, and returns the
// first error (nil if all succeeded). Nil requests are skipped.
func Waitall(reqs ...*Request) error {
	var first error
	for _, r := range reqs {
		if _, err := r.Wait(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

package runtime

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/internal/shmsync"
	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// world is the state one rank shares among all its communicators: the
// endpoints to every other rank, the matching engine, and the abort state.
// Failure is per world: when anything breaks, every communicator of the
// world fails with ErrAborted (see Comm).
type world struct {
	rank, size int
	nodes      []string // node identity of each world rank
	nodeIdx    []int    // each world rank's node, numbered in order of first appearance
	hosts      []string // each world rank's host name, as it reported it; nil: this host
	eps        []transport.Endpoint
	eager      int // eager limit in bytes
	timeout    time.Duration
	log        *slog.Logger

	// spinUntil is when, in nanoseconds of monotonic time (monoNow), the
	// last wait to start is spinWindow old: until then the TCP receive
	// goroutines poll their sockets instead of parking, for the reply a
	// caller is waiting for. A goroutine that stays parked longer (a lock
	// request, a service loop) keeps nobody spinning.
	spinUntil atomic.Int64
	// bulk counts this rank's rendezvous transfers under way: sends whose
	// data a goroutine pushes, and receives in w.recvs (spinning).
	bulk atomic.Int32

	// wait is how a waiting caller polls before it sleeps (pollUntil, the
	// node collectives, rma's locks); oversub says this rank's node has
	// more ranks than CPUs, so waits yield between polls and the
	// transports' receive goroutines never spin (oversub.go). Both are
	// set before the world is used.
	wait    shmsync.Policy
	oversub atomic.Bool

	// jobID names the job's shared segments ("" in a world of goroutine
	// ranks); shmOK says ranks of one node may share memory.
	jobID string
	shmOK bool

	// pids and cma serve single copy (cma.go): each world rank's process
	// id, and whether single copy to it is on.
	pids []int
	cma  []atomic.Bool

	// pollers are the transports a waiting caller polls itself before it
	// parks (see pollWait); set before the world is used. sysPollers make
	// a system call per Poll (TCP): beside a cheaper poller they are
	// polled every sysPollEvery rounds, so that waiting on a peer of the
	// node does not pay a read(2) per look.
	pollers, sysPollers []transport.Poller

	// Flow control of eager messages (flow.go): the budget each peer's
	// unconsumed eager messages may take here, what this rank may still
	// send to each peer, and what it owes each peer back.
	budget int64
	credit []atomic.Int64
	owed   []atomic.Int64

	// gone marks the world ranks that entered Close (a KindClosing frame
	// came); goneN counts them.
	gone  []atomic.Bool
	goneN atomic.Int32

	// watching says the stall watcher runs (verify.go).
	watching atomic.Bool

	// nbcLive counts this rank's nonblocking collectives in progress, on
	// every communicator (nbc.go); Close of the world waits for them.
	nbcLive sync.WaitGroup

	// broken is set once failure is (an atomic load for hot paths).
	broken atomic.Bool

	// services are the active-message services open on this rank's
	// communicators, by context (am.go).
	services atomic.Pointer[services]

	mu     sync.Mutex
	queues map[uint32]*matchQueue // by context id
	// unexpBytes is the eager data held for receives not posted yet, and
	// unexpPeak its largest value so far (flow.go bounds it per peer).
	unexpBytes, unexpPeak int64
	logs                  map[uint32]*callLog // this rank's communicators' call logs, by collective context (verify.go)
	orphans               map[uint32][]check  // checks for communicators this rank has not made yet (verify.go)
	closedServices        map[uint32]bool     // contexts whose active-message service closed (am.go)
	sends                 map[uint64]*Request // rendezvous sends waiting for CTS
	recvs                 map[uint64]*Request // rendezvous receives waiting for data
	nextID                uint64
	nextCtx               uint32 // lowest context id this rank has not used; ids come in pairs
	failure               error  // first cause of failure; nil while healthy
	failed                chan struct{}
	stopped               chan struct{}     // closed by close
	closed                bool              // close ran: calls return ErrClosed
	leaving               bool              // Close of the world began: unmatched RTS are refused (closing.go)
	onAbort               func(cause error) // propagates an Abort beyond this process (peers, launcher)
	// tellPeers sends cause to every peer as an abort notice (nil where
	// onAbort reaches the peers' worlds directly).
	tellPeers func(cause error)
	cause     error             // the first cause of failure, as given to fail
	mine      bool              // this rank is where cause arose (failWith)
	onPeer    func(cause error) // tells the launcher this rank fails because of another
	closers   []io.Closer       // released by Close after the endpoints
}

func newWorld(rank, size int, nodes []string, cfg *Config) *world {
	w := &world{
		rank:           rank,
		size:           size,
		eps:            make([]transport.Endpoint, size),
		pids:           make([]int, size),
		cma:            make([]atomic.Bool, size),
		eager:          cfg.eagerLimit(),
		wait:           shmsync.Policy{Poll: pollBudget},
		timeout:        cfg.Timeout,
		log:            cfg.logger(),
		queues:         make(map[uint32]*matchQueue),
		logs:           make(map[uint32]*callLog),
		orphans:        make(map[uint32][]check),
		closedServices: make(map[uint32]bool),
		budget:         cfg.eagerBudget(size),
		credit:         make([]atomic.Int64, size),
		owed:           make([]atomic.Int64, size),
		gone:           make([]atomic.Bool, size),
		sends:          make(map[uint64]*Request),
		recvs:          make(map[uint64]*Request),
		nextID:         1,
		nextCtx:        2, // 0 and 1 are the world's
		failed:         make(chan struct{}),
		stopped:        make(chan struct{}),
	}
	for i := range w.credit {
		w.credit[i].Store(w.budget)
	}
	if nodes != nil {
		w.setNodes(nodes)
	}
	w.services.Store(&services{})
	return w
}

// setNodes records each world rank's node identity and numbers the nodes.
func (w *world) setNodes(nodes []string) {
	w.nodes = nodes
	w.nodeIdx = make([]int, len(nodes))
	seen := map[string]int{}
	for r, n := range nodes {
		i, ok := seen[n]
		if !ok {
			i = len(seen)
			seen[n] = i
		}
		w.nodeIdx[r] = i
	}
}

// spinWindow is how long after a wait starts the TCP receive goroutines
// poll for its reply: a few loopback round trips.
const spinWindow = 200 * time.Microsecond

// monoEpoch is the origin of monoNow.
var monoEpoch = time.Now()

// monoNow is monotonic time in nanoseconds.
func monoNow() int64 { return int64(time.Since(monoEpoch)) }

// waiting notes that a goroutine starts to wait for a reply (spinUntil).
func (w *world) waiting() { w.spinFor(spinWindow) }

// spinFor keeps the TCP receive goroutines polling for d from now.
func (w *world) spinFor(d time.Duration) {
	until := monoNow() + int64(d)
	// Stores only when the window moves on by a tenth, so concurrent
	// waiters do not fight over the line.
	if until-w.spinUntil.Load() > int64(spinWindow/10) {
		w.spinUntil.Store(until)
	}
}

// spinning reports whether a wait started within spinWindow, or a
// rendezvous transfer of this rank is under way (bulk): the transports'
// Config.Spin. A transfer's writer waiting for ring space and its reader
// waiting for the rest of a frame then poll rather than sleep on the futex
// each time the ring fills or empties, however long the transfer takes:
// a 4 MiB message through a 256 KiB ring outlasts the window, and sleeping
// halved shared-memory bandwidth (docs/performance.md).
func (w *world) spinning() bool {
	if w.bulk.Load() == 0 && monoNow() >= w.spinUntil.Load() {
		return false
	}
	if w.oversub.Load() {
		w.wait.Yield()
	}
	return true
}

// err returns the world's failure, or nil.
func (w *world) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errLocked()
}

func (w *world) errLocked() error {
	if w.failure != nil {
		return w.failure
	}
	if w.closed {
		return ErrClosed
	}
	return nil
}

// fail moves the world to the failed state with cause (once) and completes
// every pending request with it. It reports whether this was the first
// failure.
func (w *world) fail(cause error) bool { return w.failWith(cause, false) }

// failWith is fail; mine says the cause arose in this rank (an Abort, an
// argument error, a mismatch it found), which it then tells its peers
// again when it closes.
func (w *world) failWith(cause error, mine bool) bool {
	given := cause
	if !errors.Is(cause, ErrAborted) {
		cause = fmt.Errorf("%w: %w", ErrAborted, cause)
	}
	w.mu.Lock()
	if w.failure != nil {
		w.mu.Unlock()
		return false
	}
	w.cause = given
	w.mine = mine
	w.failure = cause
	w.broken.Store(true)
	close(w.failed)
	w.mu.Unlock()
	w.log.Debug("world failed", "rank", w.rank, "cause", cause)
	w.drain(cause)
	return true
}

// drain completes every pending request with err.
func (w *world) drain(err error) {
	w.mu.Lock()
	var pending []*Request
	for _, q := range w.queues {
		pending = append(pending, q.posted...)
		pending = append(pending, q.probes...)
		q.posted, q.probes = nil, nil
	}
	for id, r := range w.sends {
		pending = append(pending, r)
		delete(w.sends, id)
	}
	for id, r := range w.recvs {
		pending = append(pending, r)
		w.forgetLocked(id)
	}
	w.mu.Unlock()
	for _, r := range pending {
		r.complete(err)
	}
}

// cancel completes the receives and probes still posted on communicator
// c, which is being closed, with ErrClosed.
func (w *world) cancel(c *Comm) {
	var dead []*Request
	w.mu.Lock()
	for _, ctx := range []uint32{c.ctx, c.ctx + 1} {
		q := w.queues[ctx]
		if q == nil {
			continue
		}
		mine := func(rs []*Request) []*Request {
			keep := rs[:0]
			for _, r := range rs {
				if r.c == c {
					dead = append(dead, r)
				} else {
					keep = append(keep, r)
				}
			}
			return keep
		}
		q.posted, q.probes = mine(q.posted), mine(q.probes)
	}
	w.mu.Unlock()
	for _, r := range dead {
		r.complete(ErrClosed)
	}
}

// failByPeer fails the world because of another rank. The launcher hears
// of it before the application does (the pending calls complete after the
// notice is written), so it can blame the rank that failed first.
func (w *world) failByPeer(cause error) {
	if w.onPeer != nil && w.failureErr() == nil {
		w.onPeer(cause)
	}
	w.fail(cause)
}

// abort is Comm.Abort: fail here, then tell the rest of the job. A world
// that failed already keeps its first cause, which the job has heard of.
func (w *world) abort(cause error) {
	if w.failWith(cause, true) && w.onAbort != nil {
		w.onAbort(cause)
	}
}

// queue returns the matching queue of context ctx. Callers hold w.mu.
func (w *world) queue(ctx uint32) *matchQueue {
	q := w.queues[ctx]
	if q == nil {
		q = &matchQueue{}
		w.queues[ctx] = q
	}
	return q
}

func (w *world) newID() uint64 {
	id := w.nextID
	w.nextID++
	return id
}

// send transmits one frame to world rank to, failing the world if the
// transport breaks (a broken endpoint means a lost peer).
func (w *world) send(to int, h wire.Header, payload []byte) error {
	ep := w.eps[to]
	if ep == nil {
		return fmt.Errorf("no route to world rank %d", to)
	}
	if err := ep.Send(h, payload); err != nil {
		if e := w.err(); e != nil {
			return e
		}
		// A peer that aborted told us why before it went, but that notice
		// may still wait to be read on the receive side: let the receive
		// goroutine report first, so the job fails with the real cause.
		t := time.NewTimer(peerVerdict)
		select {
		case <-w.failed:
		case <-w.stopped:
		case <-t.C:
		}
		t.Stop()
		if e := w.err(); e != nil {
			return e
		}
		err = fmt.Errorf("sending to world rank %d: %w", to, err)
		w.fail(err)
		return w.err()
	}
	return nil
}

// peerVerdict bounds how long a failed send waits for the receive side to
// explain the failure.
const peerVerdict = 250 * time.Millisecond

// sendAsync sends a frame without blocking the caller (a transport receive
// goroutine): at once if the transport can take it without waiting, else
// from a goroutine of its own. Frames sent this way may overtake each
// other. The frame owns payload.
func (w *world) sendAsync(to int, h wire.Header, payload []byte) {
	w.sendAsyncBy(to, h, payload, w.send)
}

// sendAsyncBy is sendAsync with send doing the sending that may block,
// and reporting a failure (TrySend's, too) its own way.
func (w *world) sendAsyncBy(to int, h wire.Header, payload []byte, send func(int, wire.Header, []byte) error) {
	if ts, ok := w.eps[to].(transport.TrySender); ok {
		sent, err := ts.TrySend(h, payload)
		if sent {
			return
		}
		if err != nil {
			_ = send(to, h, payload) // reports the failure as send does
			return
		}
	}
	go func() { _ = send(to, h, payload) }()
}

// close releases the transports. Callers have already synchronised the
// ranks (Comm.Close runs a barrier first).
func (w *world) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.stopped)
	cause := w.cause
	mine := w.mine
	w.mu.Unlock()
	if cause != nil && mine && w.tellPeers != nil {
		// A world that failed here does not say an orderly goodbye: peers
		// still waiting for this rank learn why instead (its abort notice
		// may not have gone out yet).
		w.tellPeers(cause)
	}
	var first error
	for i, ep := range w.eps {
		if ep == nil {
			continue
		}
		if err := ep.Close(); err != nil && first == nil && w.err() == ErrClosed {
			first = fmt.Errorf("closing endpoint to rank %d: %w", i, err)
		}
	}
	for _, c := range w.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	// Anything still pending can never complete now.
	w.drain(ErrClosed)
	return first
}

// allocCtx reserves and returns a context pair id not used by this rank, at
// least min. Callers agree on min collectively (see Comm.newContext).
func (w *world) allocCtx(min uint32) uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if min < w.nextCtx {
		min = w.nextCtx
	}
	w.nextCtx = min + 2
	return min
}

func (w *world) peekCtx() uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nextCtx
}

// failureErr returns the failure cause, ignoring an orderly close.
func (w *world) failureErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failure
}

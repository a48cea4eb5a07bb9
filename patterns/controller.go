package patterns

import (
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/runtime"
)

// WindowController is a readers-writer lock across the ranks of a
// communicator (mpilock's WindowController): any number of ranks may be in
// Read at once, a rank in Write excludes every other reader and writer,
// and SingleWrite runs a function on one rank under the write lock and
// gives its result to every rank.
//
// The lock's state lives in a window on the master rank and is reached by
// one-sided operations, which the master's receive path serves (or, on its
// node, direct loads and stores): the master may compute without calling
// the library while others read and write, so no progress thread is
// needed. A reader registers with one atomic add to a word on the master
// and leaves with another. A writer passes a FIFO gate (the queue of
// Lock), marks the word, and waits for the readers to leave; a reader that
// finds the mark queues at the gate behind the writer, so writers are not
// starved by a stream of readers and readers not by writers.
//
// The controller belongs to its rank: its methods must be called from one
// goroutine at a time (the function passed to Read or Write may call
// them again, which nests). Nesting: Read or Write inside Write, and Read
// inside Read, cost nothing; Write inside Read promotes the rank, which
// gives up its read registration, takes the write lock, and registers as a
// reader again afterwards; promotion is not atomic (another writer may run
// between the read and the write), as in mpilock.
//
// Errors: ErrClosed after Close; ErrAborted when the job fails (a rank
// this one waits for died); ErrInvalid for a bad argument to a collective
// call, the same on every rank. An error of f is returned as it is, after
// the lock is released; a panic in f releases the lock and continues.
type WindowController struct {
	comm   *runtime.Comm
	master int
	trace  func(Span)
	q      *queue // nil on a serial communicator

	readDepth, writeDepth int
	registered            bool // this rank counts in the master's readers
	closed                bool
	stats                 statCounters
}

// ControllerConfig configures NewWindowController; the zero value is the
// default.
type ControllerConfig struct {
	// Master is the rank whose window holds the lock's state.
	Master int
	// Trace, if set, is called with every Read and Write when it ends, on
	// the calling goroutine (mpilock's spans mpilock.read and
	// mpilock.write, with their wait).
	Trace func(Span)
}

// A Span is one Read or Write of a WindowController, for tracing.
type Span struct {
	Write    bool      // a write (also a SingleWrite's writer); else a read
	Nested   bool      // inside another Read or Write of this rank: no wait
	Promoted bool      // a Write inside a Read
	Start    time.Time // the call
	Acquired time.Time // the lock held
	Released time.Time // the lock released
}

// ctlReaders is the index, after the gate's queue, of the master's word:
// the number of registered readers, plus writerIn while a writer is in.
const ctlReaders = qWords

// NewWindowController makes a controller on comm. It is collective over
// comm and blocking. comm may be nil (or of one rank): every lock is then
// free at once. Errors, the same on every rank: ErrInvalid for a Master
// out of range or different between ranks; ErrAborted.
func NewWindowController(comm *runtime.Comm, cfg ControllerConfig) (*WindowController, error) {
	q, err := newQueue(comm, cfg.Master, 1)
	if err != nil {
		return nil, opErr("NewWindowController", comm, err)
	}
	return &WindowController{comm: comm, master: cfg.Master, trace: cfg.Trace, q: q}, nil
}

// Master returns the rank that holds the lock's state.
func (c *WindowController) Master() int { return c.master }

// Rank returns this rank's rank in the communicator.
func (c *WindowController) Rank() int { return c.comm.Rank() }

// Closed reports whether Close has been called (mpilock's closed).
func (c *WindowController) Closed() bool { return c.closed }

// Comm returns the communicator.
func (c *WindowController) Comm() *runtime.Comm { return c.comm }

// Read runs f under the read lock: other ranks may read at the same time,
// none writes. It is not collective; it blocks until the lock is held
// (while a rank writes) and returns f's error as it is, or an error of the
// lock.
func (c *WindowController) Read(f func() error) error {
	return c.run("Read", false, f)
}

// run runs f under the read or write lock: the acquisition (nested or
// not), the counters and the span, the release even if f panics.
func (c *WindowController) run(op string, write bool, f func() error) error {
	sp := Span{Write: write, Start: time.Now()}
	if c.closed {
		return opErr(op, c.comm, errClosed("the controller"))
	}
	var outer bool
	if write {
		outer = c.writeDepth == 0
		sp.Promoted = outer && c.registered
	} else {
		outer = c.readDepth == 0 && c.writeDepth == 0
	}
	sp.Nested = !outer
	if outer && c.q != nil {
		var err error
		if write {
			err = c.lockWrite(sp.Promoted)
		} else {
			err = c.register()
		}
		if err != nil {
			return opErr(op, c.comm, err)
		}
	}
	if write {
		c.writeDepth++
	} else {
		c.readDepth++
	}
	sp.Acquired = time.Now()
	c.stats.count(sp)
	released := false
	end := func() error {
		released = true
		if write {
			return c.endWrite(outer, sp.Promoted)
		}
		return c.endRead(outer)
	}
	defer func() {
		if !released { // f panicked
			end()
		}
	}()
	ferr := f()
	err := end()
	if c.trace != nil {
		sp.Released = time.Now()
		c.trace(sp)
	}
	if ferr != nil {
		return ferr
	}
	return opErr(op, c.comm, err)
}

// endRead leaves a Read; the outermost drops the registration.
func (c *WindowController) endRead(outer bool) error {
	c.readDepth--
	if !outer || !c.registered || c.closed {
		return nil
	}
	c.registered = false
	_, err := c.addReaders(-1)
	return err
}

// register counts this rank in the master's readers. Usually that is one
// atomic add; if a writer is in, the rank takes its increment back and
// queues at the gate behind the writer, where no writer can come in
// between.
func (c *WindowController) register() error {
	v, err := c.addReaders(1)
	if err != nil {
		return err
	}
	if v < writerIn { // no writer in (one that is leaving may add a second mark)
		c.registered = true
		return nil
	}
	if _, err := c.addReaders(-1); err != nil {
		return err
	}
	if err := c.q.acquire(); err != nil {
		return err
	}
	_, err = c.addReaders(1)
	if e := c.q.release(); err == nil {
		err = e
	}
	c.registered = err == nil
	return err
}

// writerIn is added to the master's reader count by the writer that holds
// the gate, so readers see it with their own add.
const writerIn = 1 << 40

// addReaders adds d to the master's word and returns its old value.
func (c *WindowController) addReaders(d int64) (int64, error) {
	return c.q.win.FetchAndOp(d, c.master, ctlReaders, runtime.Sum)
}

// Write runs f under the write lock: no other rank reads or writes. It is
// not collective; it blocks until the lock is held and returns f's error
// as it is, or an error of the lock.
func (c *WindowController) Write(f func() error) error {
	return c.run("Write", true, f)
}

func (c *WindowController) write(op string, f func() error) error {
	return c.run(op, true, f)
}

// lockWrite passes the gate, marks the word, and waits until the readers
// have left; new readers see the mark and queue at the gate. A promoted
// rank gives up its own registration first.
func (c *WindowController) lockWrite(promoted bool) error {
	if promoted {
		c.registered = false
		if _, err := c.addReaders(-1); err != nil {
			return err
		}
	}
	if err := c.q.acquire(); err != nil {
		return err
	}
	// Wait until only this writer's mark is left: the readers have gone,
	// and so has the mark of a writer that released the gate before its
	// mark (see endWrite).
	v, err := c.addReaders(writerIn)
	for wait := time.Duration(0); err == nil && v != 0; wait = backoff(wait) {
		v, err = c.q.win.FetchAndOp(0, c.master, ctlReaders, runtime.NoOp)
		v -= writerIn
	}
	return err
}

// endWrite leaves a Write; the outermost opens the gate, and a promoted
// one registers as a reader again.
func (c *WindowController) endWrite(outer, promoted bool) error {
	c.writeDepth--
	if !outer || c.q == nil || c.closed {
		return nil
	}
	// The gate first, then the mark: a reader that comes in between still
	// sees a mark and queues behind whoever waits at the gate (a writer,
	// FIFO), instead of overtaking it.
	err := c.q.release()
	if _, e := c.addReaders(-writerIn); err == nil {
		err = e
	}
	if promoted && err == nil {
		err = c.register()
	}
	return err
}

// Close frees the controller's window. It is collective over the
// communicator and idempotent; a rank inside Read or Write gives up its
// lock first. Later calls return ErrClosed.
func (c *WindowController) Close() error {
	if c.closed {
		return nil
	}
	var err error
	if c.q != nil {
		if c.writeDepth > 0 {
			err = c.q.release()
			if _, e := c.addReaders(-writerIn); err == nil {
				err = e
			}
		}
		if c.registered {
			if _, e := c.addReaders(-1); err == nil {
				err = e
			}
		}
	}
	c.closed, c.registered = true, false
	if e := c.q.close(); err == nil {
		err = e
	}
	return opErr("Close", c.comm, err)
}

// ControllerStats counts a controller's acquisitions on this rank and the
// time they waited for the lock (mpilock's mpilock.read.wait and
// mpilock.write.wait spans, summed).
type ControllerStats struct {
	Reads, Writes int64 // outermost acquisitions (a SingleWrite's writer counts as a write)
	Nested        int64 // acquisitions inside another of this rank
	Promotions    int64 // writes inside a read
	ReadWait      time.Duration
	WriteWait     time.Duration
	MaxReadWait   time.Duration
	MaxWriteWait  time.Duration
}

// statCounters are ControllerStats kept with atomics, so Stats may be
// called from any goroutine while the owner takes locks. Each field is
// written by the owner only; atomic loads and stores (relaxed ordering
// suffices: the fields are independent counters) keep the readers' view
// torn-free.
type statCounters struct {
	reads, writes, nested, promotions atomic.Int64
	readWait, writeWait               atomic.Int64 // ns
	maxReadWait, maxWriteWait         atomic.Int64 // ns
}

func (s *statCounters) count(sp Span) {
	if sp.Nested {
		s.nested.Add(1)
		return
	}
	w := int64(sp.Acquired.Sub(sp.Start))
	if sp.Write {
		s.writes.Add(1)
		s.writeWait.Add(w)
		if w > s.maxWriteWait.Load() {
			s.maxWriteWait.Store(w)
		}
		if sp.Promoted {
			s.promotions.Add(1)
		}
		return
	}
	s.reads.Add(1)
	s.readWait.Add(w)
	if w > s.maxReadWait.Load() {
		s.maxReadWait.Store(w)
	}
}

// Stats returns the controller's counters on this rank. It may be called
// from any goroutine, also after Close.
func (c *WindowController) Stats() ControllerStats {
	s := &c.stats
	return ControllerStats{
		Reads: s.reads.Load(), Writes: s.writes.Load(),
		Nested: s.nested.Load(), Promotions: s.promotions.Load(),
		ReadWait: time.Duration(s.readWait.Load()), WriteWait: time.Duration(s.writeWait.Load()),
		MaxReadWait: time.Duration(s.maxReadWait.Load()), MaxWriteWait: time.Duration(s.maxWriteWait.Load()),
	}
}

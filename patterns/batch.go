package patterns

import (
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/gorun-hpc/gorun/rma"
	"github.com/gorun-hpc/gorun/runtime"
)

// BatchConfig configures NewBatch; the zero value is the default: the
// states on rank 0, in memory only, every task Open.
type BatchConfig struct {
	// Root is the rank that holds the tasks' states in memory (and, with
	// Dir, reads them from the directory at NewBatch). It need not take
	// part in the others' calls: they reach its memory one-sidedly.
	Root int

	// Dir, if not empty, keeps every task's state in a file as well,
	// Dir/Names[i]/state (pshmem's task_fs_root), so that a job started
	// again on the same Dir resumes where the last one stopped (see
	// Restarts in the Batch documentation). Every rank must see the same
	// directory (one machine, or a shared file system): each worker's rank
	// 0 reads and writes the files.
	Dir string

	// Names are the tasks' subdirectories of Dir, one per task, each a
	// single path element and all different (pshmem's task_fs_names).
	// Required with Dir.
	Names []string

	// InitState, if not nil, is every task's initial state, one per task
	// (pshmem's init_state). With Dir it is only allowed when Dir does not
	// exist yet: an existing Dir holds the states.
	InitState []TaskState
}

// Batch hands out tasks, numbered from 0, to workers: groups of a fixed
// number of ranks of a communicator (pshmem's MPIBatch). Rank r is rank
// r % workerSize of worker r / workerSize; the ranks of a worker share a
// communicator, WorkerComm. A worker asks for work with NextTask, which
// takes the first task, in index order, that is Open, marks it Running and
// returns it to every rank of the worker; when the work is done, one of
// them records the outcome with SetTaskState (Done or Failed).
//
// The states are int32s in a window on the root, read and changed under an
// exclusive lock of the root's window by one-sided operations, which the
// runtime serves without the root (its receive path, or on its node direct
// loads and stores): the root works on tasks like any other rank. Each
// Batch has its own window and communicators, so its messages never meet
// another object's.
//
// NewBatch and Close are collective over the communicator, NextTask over
// the worker's; SetTaskState and TaskState are not collective. A Batch may
// be used by several goroutines of its rank, but NextTask, being
// collective, by one of them at a time. Errors are *OpError values:
// ErrInvalid for a bad argument (of a collective call: on every rank, the
// same words); ErrClosed after Close; ErrAborted when the job fails (a rank
// of the worker died, or the root); an error of the file system with Dir.
//
// # Restarts
//
// With Dir, a state is written to the task's file before it changes in
// memory, atomically (to state.temp, then renamed to state: a reader sees
// the old state or the new, never a part of one), and whenever a state is
// read the file wins over memory (memory is corrected), so a state file
// edited by hand takes effect. NewBatch on an existing Dir takes the states
// from its files: Done, Failed and Open stay, a missing file is Open, and
// Running — a task whose worker was stopped before it recorded an outcome
// — becomes Open again. That is safe because only one Batch at a time may
// use a directory: the root holds an exclusive lock (flock) on Dir from
// NewBatch to Close, which the kernel releases however the process ends,
// and a second NewBatch on Dir meanwhile fails.
//
// So take a job whose workers run each task as NextTask, the task's work,
// SetTaskState(task, Done), killed (SIGKILL of any rank, a crash, a time
// limit) and started again on the same Dir, as often as need be, with the
// same or another layout. A task recorded Done before a kill is not run
// again; a task not yet taken is run once; a task in progress at a kill
// (NextTask had returned it and SetTaskState had not recorded its outcome:
// at most one per worker) is run again from the start. So every task's
// work is done exactly once in all, except that the work of a task in
// progress at a kill, complete or not, is done again: make it restartable
// (write its outputs under temporary names and rename them before
// SetTaskState, or overwrite them). The files survive the death of
// processes, not of the machine: they are not synced to disk.
type Batch struct {
	comm       *runtime.Comm
	workerComm *runtime.Comm // the user's
	msgs       *runtime.Comm // NextTask's own: a Dup of workerComm; nil for workers of one rank
	root       int
	nTask      int
	workerSize int
	nWorker    int
	worker     int
	workerRank int
	dir        string
	names      []string

	mu      sync.Mutex // guards the fields below and serializes the rank's epochs on win
	closed  bool
	win     *rma.Win[int32] // nTask states on the root; nil on a serial communicator
	local   []int32         // the states, on a serial communicator
	buf     []int32         // NextTask's copy of the states
	dirLock *os.File        // on the root with Dir: Dir, locked
}

// NewBatch makes a Batch of nTask tasks for workers of workerSize ranks of
// comm, whose size workerSize must divide (pshmem's MPIBatch). Every task
// starts Open, or in cfg.InitState, or, with an existing cfg.Dir, in the
// state its file says (see Restarts in the Batch documentation).
//
// NewBatch is collective over comm and blocking; every rank passes the
// same arguments. comm may be nil, with workerSize 1: the batch is then
// this rank's alone. Errors, the same on every rank: ErrInvalid for a
// workerSize that is not positive or does not divide comm's size (or is
// not 1 with a nil comm), a negative nTask, a Root out of range, a Dir
// without Names, Names or InitState not of nTask elements, a name that is
// empty, not a single path element, or repeated, a state in InitState that
// a task cannot be in, InitState with a Dir that exists on the root, and
// for arguments that differ between ranks; the error of the file system
// on the root with Dir, or that Dir is in use by another Batch; ErrAborted.
func NewBatch(comm *runtime.Comm, workerSize, nTask int, cfg BatchConfig) (*Batch, error) {
	b, err := newBatch(comm, workerSize, nTask, cfg)
	if err != nil {
		return nil, opErr("NewBatch", comm, err)
	}
	return b, nil
}

func newBatch(comm *runtime.Comm, workerSize, nTask int, cfg BatchConfig) (*Batch, error) {
	local := checkBatch(comm, workerSize, nTask, cfg)
	err := check(comm, local,
		intField("workerSize", workerSize),
		intField("nTask", nTask),
		intField("Root", cfg.Root),
		field{"Dir", hashStrings([]string{cfg.Dir}), strconv.Quote(cfg.Dir)},
		field{"Names", hashStrings(cfg.Names), showList(cfg.Names)},
		field{"InitState", hashStates(cfg.InitState), showStates(cfg.InitState)},
	)
	if err != nil {
		return nil, err
	}
	b := &Batch{
		comm:       comm,
		root:       cfg.Root,
		nTask:      nTask,
		workerSize: workerSize,
		nWorker:    comm.Size() / workerSize,
		worker:     comm.Rank() / workerSize,
		workerRank: comm.Rank() % workerSize,
		dir:        cfg.Dir,
	}
	if b.workerRank == 0 {
		b.buf = make([]int32, nTask)
	}
	if b.dir != "" {
		b.names = append([]string(nil), cfg.Names...)
	}
	// The root makes the initial states (from the directory).
	var states []int32
	if comm.Rank() == b.root {
		states, err = b.load(cfg.InitState)
	}
	if err = agree(comm, err); err == nil {
		err = b.connect(states)
	}
	if err != nil {
		b.release()
		return nil, err
	}
	return b, nil
}

// checkBatch returns this rank's argument error of NewBatch, or nil.
func checkBatch(comm *runtime.Comm, workerSize, nTask int, cfg BatchConfig) error {
	size := comm.Size()
	switch {
	case workerSize < 1:
		return errInvalid("workerSize %d is not positive", workerSize)
	case comm == nil && workerSize != 1:
		return errInvalid("workerSize is %d with a nil communicator; it must be 1", workerSize)
	case size%workerSize != 0:
		return errInvalid("workerSize %d does not divide the communicator's size %d", workerSize, size)
	case nTask < 0:
		return errInvalid("nTask %d is negative", nTask)
	case cfg.Root < 0 || cfg.Root >= size:
		return errInvalid("Root %d is out of range [0,%d)", cfg.Root, size)
	case cfg.Dir != "" && cfg.Names == nil:
		return errInvalid("Dir %q needs Names, one per task", cfg.Dir)
	case cfg.Names != nil && len(cfg.Names) != nTask:
		return errInvalid("%d Names for %d tasks", len(cfg.Names), nTask)
	case cfg.InitState != nil && len(cfg.InitState) != nTask:
		return errInvalid("%d states in InitState for %d tasks", len(cfg.InitState), nTask)
	}
	seen := make(map[string]int, len(cfg.Names))
	for i, n := range cfg.Names {
		if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") {
			return errInvalid("task %d's name %q is not a single path element", i, n)
		}
		if j, dup := seen[n]; dup {
			return errInvalid("tasks %d and %d have the same name %q", j, i, n)
		}
		seen[n] = i
	}
	for i, s := range cfg.InitState {
		if !s.valid() {
			return errInvalid("task %d's initial state %v is not a state (OPEN, RUNNING, DONE, FAILED)", i, s)
		}
	}
	return nil
}

// connect makes the worker communicators and the window, and puts the
// root's states into it. Collective over comm.
func (b *Batch) connect(states []int32) error {
	var err error
	if b.comm == nil {
		b.local = states
		return nil
	}
	if b.workerComm, err = b.comm.Split(b.worker, b.workerRank); err != nil {
		return err
	}
	if b.workerSize > 1 {
		if b.msgs, err = b.workerComm.Dup(); err != nil {
			return err
		}
	}
	if b.comm.Size() == 1 {
		b.local = states
		return nil
	}
	n := 0
	if b.comm.Rank() == b.root {
		n = b.nTask
	}
	if b.win, err = rma.Allocate[int32](b.comm, n); err != nil {
		return err
	}
	if n > 0 {
		err = b.win.Lock(b.root, rma.Exclusive)
		if err == nil {
			err = b.win.Put(states, b.root, 0)
			if e := b.win.Unlock(b.root); err == nil {
				err = e
			}
		}
	}
	// Nobody reaches the states before they are in place: the agreement
	// waits for the root.
	return agree(b.comm, err)
}

// release frees what NewBatch made, on its failure or at Close.
func (b *Batch) release() error {
	var err error
	if b.win != nil {
		err = b.win.Close()
		b.win = nil
	}
	b.msgs.Close()
	b.workerComm.Close()
	b.msgs = nil
	if b.dirLock != nil {
		b.dirLock.Close() // releases the lock
		b.dirLock = nil
	}
	return err
}

// Close frees the batch: its window, its communicators (WorkerComm's
// included) and, on the root, its lock on Dir. Close is collective over
// the communicator, blocking, and idempotent; every call but Close after
// it returns ErrClosed. Errors: ErrAborted.
func (b *Batch) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	return opErr("Close", b.comm, b.release())
}

// NextTask takes the first task, in index order, that is Open or in one of
// the states also, marks it Running, and returns it on every rank of this
// rank's worker with ok true; ok is false when there is none (pshmem's
// next_task, whose ignore_running, ignore_failed and ignore_done are also
// Running, Failed and Done here):
//
//	for {
//		task, ok, err := b.NextTask()
//		if err != nil || !ok { ... }
//		... // the worker's work on task
//		if b.WorkerRank() == 0 {
//			err = b.SetTaskState(task, patterns.Done)
//		}
//	}
//
// NextTask is collective over the worker and blocking: rank 0 of the
// worker scans the states under an exclusive lock of the root's window
// (with Dir, reading the files) and broadcasts its choice. Every rank of
// the worker passes the same states. Errors, on every rank of the worker
// alike: ErrInvalid for a state in also that is not a task's, or states
// that differ between the worker's ranks; ErrClosed; ErrAborted; an error
// of the file system with Dir. On an error no task was taken.
func (b *Batch) NextTask(also ...TaskState) (task int, ok bool, err error) {
	task, err = b.nextTask(also)
	if err != nil {
		return -1, false, opErr("NextTask", b.comm, err)
	}
	return task, task >= 0, nil
}

func (b *Batch) nextTask(also []TaskState) (int, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return -1, errClosed("the batch")
	}
	mask := 1 << Open
	var bad error
	for _, s := range also {
		if !s.valid() {
			bad = errInvalid("NextTask takes tasks that are OPEN, RUNNING, DONE or FAILED, not %v", s)
			break
		}
		mask |= 1 << s
	}
	if err := check(b.msgs, bad, field{"the states to take", int64(mask), showMask(mask)}); err != nil {
		return -1, err
	}
	res := []int64{-1, 0} // the task, and whether rank 0 failed
	var err error
	if b.workerRank == 0 {
		res[0], err = b.take(mask)
		if err != nil {
			res[0], res[1] = -1, 1
		}
	}
	if b.msgs == nil {
		return int(res[0]), err
	}
	if e := runtime.Bcast(b.msgs, res, 0); e != nil {
		return -1, e
	}
	if res[1] != 0 {
		return -1, share(b.msgs, 0, err)
	}
	return int(res[0]), nil
}

// take finds the first task whose state is in mask and marks it Running,
// under the root's lock; it returns the task or -1.
func (b *Batch) take(mask int) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return -1, errClosed("the batch")
	}
	if err := b.begin(); err != nil {
		return -1, err
	}
	found := int64(-1)
	err := b.get(b.buf, 0)
	for i := 0; err == nil && i < b.nTask; i++ {
		mem := TaskState(b.buf[i])
		s, fromFile, e := b.current(i, mem)
		if err = e; err != nil {
			break
		}
		if s.valid() && mask&(1<<s) != 0 {
			if err = b.writeState(i, Running); err == nil {
				err = b.put(i, Running)
				found = int64(i)
			}
			break
		}
		if fromFile && s != mem {
			err = b.put(i, s) // the file wins
		}
	}
	if err = b.end(err); err != nil {
		return -1, err
	}
	return found, nil
}

// SetTaskState records task's state: in its file first with Dir, then in
// the root's memory (pshmem's set_task_state). It is not collective; it
// blocks while another rank reads or changes states. Errors: ErrInvalid
// for a task out of range or a state a task cannot be in (Invalid);
// ErrClosed; ErrAborted; an error of the file system with Dir, when the
// state is unchanged.
func (b *Batch) SetTaskState(task int, state TaskState) error {
	return opErr("SetTaskState", b.comm, b.setTaskState(task, state))
}

func (b *Batch) setTaskState(task int, state TaskState) error {
	if err := b.checkTask(task); err != nil {
		return err
	}
	if !state.valid() {
		return errInvalid("%v is not a state (OPEN, RUNNING, DONE, FAILED)", state)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed("the batch")
	}
	if err := b.begin(); err != nil {
		return err
	}
	err := b.writeState(task, state)
	if err == nil {
		err = b.put(task, state)
	}
	return b.end(err)
}

// TaskState returns task's state (pshmem's get_task_state): with Dir the
// state its file says, if it has one (and the root's memory is corrected
// to it), else the root's memory. It is not collective; it blocks while
// another rank reads or changes states. Errors: ErrInvalid for a task out
// of range; ErrClosed; ErrAborted; an error of the file system with Dir.
// With an error the state is Invalid.
func (b *Batch) TaskState(task int) (TaskState, error) {
	s, err := b.taskState(task)
	if err != nil {
		return Invalid, opErr("TaskState", b.comm, err)
	}
	return s, nil
}

func (b *Batch) taskState(task int) (TaskState, error) {
	if err := b.checkTask(task); err != nil {
		return Invalid, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return Invalid, errClosed("the batch")
	}
	if err := b.begin(); err != nil {
		return Invalid, err
	}
	var one [1]int32
	var s TaskState
	err := b.get(one[:], task)
	if err == nil {
		var fromFile bool
		s, fromFile, err = b.current(task, TaskState(one[0]))
		if err == nil && fromFile && s != TaskState(one[0]) {
			err = b.put(task, s)
		}
	}
	return s, b.end(err)
}

func (b *Batch) checkTask(task int) error {
	if task < 0 || task >= b.nTask {
		return errInvalid("task %d is out of range [0,%d)", task, b.nTask)
	}
	return nil
}

// begin opens an epoch of exclusive access to the states; b.mu is held.
func (b *Batch) begin() error {
	if b.win == nil {
		return nil
	}
	return b.win.Lock(b.root, rma.Exclusive)
}

// end closes it, completing its puts, and returns err or its own error.
func (b *Batch) end(err error) error {
	if b.win == nil {
		return err
	}
	if e := b.win.Unlock(b.root); err == nil {
		err = e
	}
	return err
}

// get reads the states of the tasks from first on into dst.
func (b *Batch) get(dst []int32, first int) error {
	if b.win == nil {
		copy(dst, b.local[first:])
		return nil
	}
	if len(dst) == 0 {
		return nil
	}
	if err := b.win.Get(dst, b.root, first); err != nil {
		return err
	}
	return b.win.Flush(b.root)
}

// put sets task's state in memory (complete at end). An epoch puts a task
// at most once.
func (b *Batch) put(task int, s TaskState) error {
	if b.win == nil {
		b.local[task] = int32(s)
		return nil
	}
	return b.win.Put([]int32{int32(s)}, b.root, task)
}

// Comm returns the communicator.
func (b *Batch) Comm() *runtime.Comm { return b.comm }

// WorkerComm returns the communicator of this rank's worker (nil with a
// nil communicator). It belongs to the batch: Close closes it.
func (b *Batch) WorkerComm() *runtime.Comm { return b.workerComm }

// NTask returns the number of tasks, NWorker the number of workers,
// WorkerSize the ranks of each, Worker this rank's worker and WorkerRank
// its rank in it, Root the rank that holds the states.
func (b *Batch) NTask() int      { return b.nTask }
func (b *Batch) NWorker() int    { return b.nWorker }
func (b *Batch) WorkerSize() int { return b.workerSize }
func (b *Batch) Worker() int     { return b.worker }
func (b *Batch) WorkerRank() int { return b.workerRank }
func (b *Batch) Root() int       { return b.root }

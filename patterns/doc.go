// Package patterns holds the shared-memory patterns that Python HPC codes
// use through pshmem and mpilock, on gorun's runtime and one-sided windows:
// one copy of a large array per node (Shared), a FIFO mutex across ranks
// (Lock), dynamic task assignment to groups of ranks (Batch), and a
// readers-writer lock across ranks (WindowController).
//
//	a, err := patterns.NewShared[float64](comm, 1000, 1000) // collective
//	if err != nil { ... }
//	defer a.Close()
//	err = a.Set(block, []int{10, 1000}, []int{20, 0}, 0) // collective: rank 0's block
//	x := a.At(25, 7)                                      // local, free
//	row := a.Data()[25*1000 : 26*1000]                    // read-only view of the node copy
//
// # Shared arrays
//
// NewShared makes an N-dimensional row-major array of which each node
// holds one copy, in a segment its ranks map (the runtime's node-shared
// allocation, freed by the kernel when the last rank of the node exits,
// however it exits: a kill -9 leaves nothing in /dev/shm). Reads are plain
// loads: Data, At, Block, String. Writes are collective: Set (the sending
// rank is named) and Assign (the one rank that passes data is the sender)
// copy a block into every node's copy. Outside them the node copy is
// mapped read-only, so a stray store faults rather than changing every
// rank's data; Set writes through a second mapping of its own.
//
// # Locks
//
// Lock is a mutex granted in the order asked for (an MCS queue over a
// window on the root). WindowController lets many ranks read and one
// write (mpilock): Read and Write take a function to run under the lock,
// nest, and promote a read to a write; SingleWrite runs a function on one
// rank under the write lock and hands its result to every rank. Both keep
// their state in windows that the runtime serves on the owner's receive
// path (or by direct loads and stores on its node), so nothing waits for
// the root or master to call the library and no progress thread is needed.
// The point-to-point messages of an object (a lock's hand-over, a
// multi-node Set's block, a batch's answer) travel on a Dup of its own, so
// they never meet the application's or another object's; its collective
// calls are made on the communicator it was given, like any collective.
//
// # Batches
//
// Batch hands out task indices to groups of ranks (workers): NextTask,
// collective over a worker, takes the first open task and marks it
// running; SetTaskState records the outcome. With a directory the states
// are also files, so a job restarted after a failure runs what is left;
// one Batch at a time may use a directory.
//
// # Collective calls and errors
//
// The constructors, Set, Assign, SingleWrite and the Close of Lock,
// WindowController and Batch are collective over the object's
// communicator, with the runtime's rules for collectives. Their arguments
// are agreed before anything is changed: a bad argument on one rank, or
// arguments that must be alike and differ, is the same ErrInvalid on every
// rank, naming the rank and the argument, and the object stays usable.
// The errors of the package's calls are *OpError values naming the call,
// the communicator and the rank, and match runtime.ErrInvalid,
// runtime.ErrClosed or runtime.ErrAborted with errors.Is where one
// applies; the error of a function run under a lock (Read, Write,
// SingleWrite's writer) is returned as it is.
//
// A nil communicator (or one of one rank) is a program without gorun: every
// object works on this rank alone, as pshmem does with comm=None.
//
// # From Python
//
// docs/porting.md maps pshmem's and mpilock's calls to these, with what
// differs and why.
package patterns

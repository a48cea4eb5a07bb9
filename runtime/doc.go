// Package runtime is gorun's MPI-like runtime: ranks, communicators,
// point-to-point messages and collectives, in pure Go.
//
// Inside this module the standard library's runtime package is imported as
// goruntime; users import this one under any name they like.
//
// # Usage
//
//	world, err := runtime.Init(ctx) // 1 rank unless started by gorun
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer world.Close() // MPI_Finalize: collective
//
//	local := []float64{float64(world.Rank())}
//	sum := make([]float64, 1)
//	if err := runtime.Allreduce(world, local, sum, runtime.Sum); err != nil {
//		log.Fatal(err)
//	}
//
// Run it with N ranks: gorun -np 4 ./app. Started any other way (./app,
// go run, go test) the program is a world of one rank that opens no socket
// and no shared memory, so the same code runs serially.
//
// # The nil communicator
//
// A nil *Comm is the serial communicator, rank 0 of 1, the way pshmem takes
// comm=None. Rank and Size report 0 and 1; Barrier returns at once;
// collectives copy their input to their output; Dup and Split return nil;
// Close does nothing; point-to-point calls return ErrInvalid, since there
// is no peer. Code that wants a serial fast path tests c.Size() == 1, not
// c == nil.
//
// # Calls
//
// Data-moving calls are generic functions that take the communicator
// first, because methods cannot have type parameters: Send, Recv, Isend,
// Irecv, Probe, Iprobe; Barrier (a method), Bcast, Reduce, Allreduce, Scan,
// Gather, Gatherv, Allgather, Scatter, Alltoall. Element types are the
// fixed-size numbers of Elem; reductions take an Op (Sum, Prod, Min, Max,
// Land, Lor, Band, Bor, Bxor). Communicator management is methods: Rank,
// Size, Dup, Split, SplitShared, Abort, Close.
//
// Every call's documentation says, in this order: whether it is
// collective, whether it blocks, who owns the buffers and until when, and
// what it returns on error. Blocking calls are the nonblocking call plus
// Wait. A buffer passed to Isend or Irecv belongs to the request until it
// completes.
//
// # Concurrency and progress
//
// Point-to-point calls may be made from any number of goroutines at once.
// Collectives on one communicator must be called in the same order by all
// its ranks and not concurrently with each other; give concurrent
// goroutines their own communicator with Dup. Messages move without the
// application's help: every connection has a receive goroutine, so a rank
// that computes still receives, and a large send proceeds as soon as the
// receiver matches it. A call that waits first polls for up to 50 µs
// without progress before it parks, trading a little CPU for latency: on
// shared memory it reads the rings itself (the receive goroutines stand
// aside meanwhile, and take over within about 2 ms once nobody polls); on
// TCP the receive goroutine polls the socket for it. On a communicator
// whose ranks all share a node, Barrier, Bcast and Allreduce go through a
// segment the ranks map together, made on the first such call.
//
// # Errors
//
// Calls return an *OpError naming the call, the communicator, the calling
// rank and the peer, wrapping one of ErrAborted, ErrClosed, ErrInvalid or
// ErrTruncated where one applies. Failure is sticky and shared by the whole
// world: after a peer dies, a connection breaks, a rank calls Abort or the
// Config.Timeout watchdog fires, every pending and later call returns
// ErrAborted with the first cause, on every rank. Data-path calls take no
// context.Context: a matched message or a collective cannot be abandoned
// by one rank alone, so the way to give up is Abort, which unblocks every
// rank. Argument errors that every rank can see are returned by every rank
// without communication; an argument error only one rank can see (a
// root's buffer too small, counts that differ between ranks) aborts the
// world with a cause naming that rank, so no rank hangs. (On a one-node
// communicator, Bcast and Allreduce counts that differ are compared in
// shared memory and returned as the same ErrInvalid on every rank instead.)
//
// # Not here (yet)
//
// Derived datatypes, user-defined reduction operations, persistent and
// nonblocking collectives, intercommunicators and dynamic processes. One-
// sided windows live in package rma, node-shared arrays and locks in
// package patterns.
package runtime

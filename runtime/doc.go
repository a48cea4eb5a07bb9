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
// collectives copy their input to their output; Dup, Split and Create
// return nil;
// Close does nothing; point-to-point calls return ErrInvalid, since there
// is no peer. Code that wants a serial fast path tests c.Size() == 1, not
// c == nil.
//
// # Calls
//
// Requests complete with Wait, Test, Waitall, Waitany, Waitsome, Testany
// and Testall; Request.Cancel withdraws a receive no message has matched
// yet (Status.Canceled; sends cannot be canceled).
//
// Data-moving calls are generic functions that take the communicator
// first, because methods cannot have type parameters: Send, Recv, Isend,
// Irecv, Probe, Iprobe, Sendrecv, SendrecvReplace (a peer may be ProcNull,
// which makes the call a no-op); Ssend and Issend (synchronous: complete
// once the matching receive has started); Mprobe and Improbe, which take
// the message they find out of matching as a *Message that only Mrecv or
// Imrecv receives, so goroutines receiving from AnySource at once cannot
// take each other's message between probe and receive; Barrier (a
// method), Bcast, Reduce, Allreduce, Scan, Exscan, ReduceScatter,
// ReduceScatterBlock, Gather, Gatherv, Allgather, Allgatherv, Scatter,
// Scatterv, Alltoall, Alltoallv; on a Cartesian grid, NeighborAllgather(v)
// and NeighborAlltoall(v); and the nonblocking forms of the collectives,
// which return a Request: Ibarrier (a method), Ibcast, Ireduce,
// Iallreduce, Iscan, Iexscan, IreduceScatter, IreduceScatterBlock, Igather,
// Igatherv, Iallgather, Iallgatherv, Iscatter, Iscatterv, Ialltoall,
// Ialltoallv.
// Element types are any fixed-size types without pointers (Elem: numbers,
// bool, arrays and structs of them); reductions take an Op (Sum, Prod,
// Min, Max, Land, Lor, Lxor, Band, Bor, Bxor on numbers; MinLoc, MaxLoc on
// Loc pairs; or a user op made with NewOp). Communicator
// management is methods: Rank, Size, Node, NodeName, Dup, Split,
// SplitShared, Group, Create, CreateGroup, Cart (a Cartesian grid: Coords,
// RankOf, Shift, Sub, Neighbors; and DimsCreate), Abort, Close. Groups
// are local: Group's Size, Rank, Incl, Excl, and Union, Intersection,
// Difference, TranslateRanks, Compare.
//
// Any Go value, not only slices of Elem, travels through the value forms,
// encoded with encoding/gob (mpi4py's lowercase calls with pickle):
// SendValue, RecvValue (of any size: it probes first), SendrecvValue,
// BcastValue, GatherValue, ScatterValue, AllgatherValue, AlltoallValue,
// and ReduceValue and AllreduceValue, which combine with a Go func in rank
// order. Every received value is decoded afresh and shares no memory with
// the sender's; gob's rules apply (exported fields only; nil pointers,
// maps and slices arrive as nil; types inside interfaces need
// gob.Register). A value that cannot be encoded is ErrInvalid naming its
// type, in a collective the same error on every rank; one that cannot be
// decoded into the receiver's type is ErrInvalid on the rank that decodes
// it.
//
// Every call's documentation says, in this order: whether it is
// collective, whether it blocks, who owns the buffers and until when, and
// what it returns on error. Blocking calls are the nonblocking call plus
// Wait. A buffer passed to Isend or Irecv belongs to the request until it
// completes.
//
// # User-defined reductions
//
// NewOp makes a Go function an Op (MPI_Op_create), with a flag that says
// whether it commutes; Free releases it:
//
//	// compose applies acc's map, then in's: acc[i] = acc[i] ∘ in[i].
//	compose, err := runtime.NewOp("compose", func(acc, in []uint64) { ... }, false)
//	defer compose.Free()
//	err = runtime.Allreduce(world, maps, result, compose)
//
// The function gets acc from lower ranks and in from higher ones (MPI's
// user function takes them the other way round). An op that does not
// commute is applied in rank order by every reduction, x0 ∘ x1 ∘ … ∘ x(n-1),
// through algorithms that keep that order (a large Allreduce then costs
// more than with a commutative op; see NewOp). Every rank creates the op
// with the same name, type and flag: that is what the ranks compare, the Op
// value being a handle of the process. A panic in the function aborts the
// world with a cause that names the op.
//
// # Concurrency and progress
//
// Point-to-point calls may be made from any number of goroutines at once.
// Collectives on one communicator must be called in the same order by all
// its ranks and not concurrently with each other; give concurrent
// goroutines their own communicator with Dup.
//
// A nonblocking collective (Ibarrier, Ibcast, ...) counts in that order
// when it is called, not when it completes, and matches only the same
// nonblocking call on the other ranks. It runs in the background: the
// request completes whether or not anybody waits for it, so a rank may
// block in a Recv, or in a blocking collective called after it, while it
// progresses. Several may be in progress on one communicator and complete
// in any order; their buffers belong to the runtime until their requests
// complete. The I-call itself fails only when the communicator is closed or
// the world failed; any other error, argument errors included, comes from
// the request, on every rank: the same ErrInvalid for Iallreduce,
// Iallgather and Ialltoall, a world abort (ErrAborted with the cause) for
// the others, as on the message path of the blocking forms (see below;
// nonblocking calls never compare in shared memory). Close of a
// communicator completes its nonblocking collectives in progress with
// ErrClosed; Close of the world lets them finish first. Messages move without the
// application's help: every connection has a receive goroutine, so a rank
// that computes still receives, and a large send proceeds as soon as the
// receiver matches it. A call that waits first polls for up to 50 µs
// without progress before it parks, trading a little CPU for latency: it
// reads the shared-memory rings and the TCP sockets itself (TCP every 8th
// round when it also polls rings), and the receive goroutines stand aside
// meanwhile, taking over within about 2 ms once nobody polls. On a node with more
// ranks than CPUs (found at Init from the ranks' CPU affinity; GORUN_YIELD=0
// or 1 overrides) a wait instead gives up the CPU between polls
// (sched_yield) for up to 250 µs, so the rank it waits for can run. On a
// communicator whose ranks all share a node, every collective starts in a
// segment the ranks map together, made on the first collective call (an
// anonymous memfd: no name in /dev/shm, gone with the last rank); Barrier
// and Bcast and Allreduce of up to 256 bytes (Allgather, Allgatherv and
// Alltoall of up to 256 bytes per rank) complete there, and larger ones of
// these five go through a second such segment in 1 MiB chunks. On a communicator across
// nodes, Barrier, Bcast, Allreduce and Allgather (when each node's ranks
// are consecutive) are node-aware: a step inside each node as above, one
// among the nodes' leaders, and one inside each node again.
//
// A small Send, Recv, Barrier, Bcast or Allreduce allocates nothing of its
// own: what allocates is timing, one channel for a wait that parks and a
// copy of a message that arrived before its receive was
// posted. The runtime's tests hold these calls to that (alloc_test.go).
//
// # Element types
//
// A message or collective carries a slice of any type without pointers:
// numbers, bool, arrays and structs of them, as their bytes (padding
// included). Go cannot constrain "without pointers" at compile time, so
// every call checks its element type the first time it meets it (later
// calls of a predeclared number type cost a kind check, of another type a
// map lookup): a type with a pointer anywhere (a string, slice, pointer,
// interface field) or of size 0 is ErrInvalid naming the type and the
// field; in a collective, an argument error like any other.
//
// Each point-to-point message carries a 32-bit code of its element type,
// and the receive checks it, so float64 received as float32 is an error,
// not garbage: ErrInvalid naming the type sent and the receive's type, and
// the message is consumed (as a truncated one is). Codes describe layouts,
// not names: a named type matches its underlying type, two structs with
// the same kinds at the same offsets match, and a type that is n values of
// one kind without padding ([3]float64, struct{ X, Y, Z float64 }) matches
// that kind, as MPI's type signatures do, as long as the message is a whole
// number of the receive's elements. A receive into bytes (uint8, or any
// type whose layout is one uint8) takes any message raw. Probe and Iprobe
// check the same way and return the same error, leaving the message to be
// received (probe with byte to learn the size of a message of any type).
// Collectives check element sizes and counts (see below), not element
// kinds.
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
// rank.
//
// # Collectives with bad arguments
//
// The ranks of a communicator must make its collective calls in the same
// order, each with the same kind of call, root, op and element count. Every
// collective checks that they did, and never returns nil with the data of
// another call. What a rank gets when something is wrong:
//
//   - On a communicator whose ranks all run on one node (a one-node job's
//     world, a SplitShared result; shared memory allowed), the ranks compare
//     their calls in a shared segment as they enter. An argument error on
//     any rank (a root out of range, a buffer of the wrong size, an op not
//     defined for the type) or any difference between the ranks' calls is
//     returned by every rank as the same ErrInvalid, naming the rank and
//     what was wrong, before any data moves. The communicator stays usable.
//   - Elsewhere (ranks on several nodes, or --transports without shm),
//     Allreduce, Allgather, Alltoall, Split and Create still return any
//     rank's argument error as the same ErrInvalid on every rank: the erring
//     rank sends its error in place of its data and every rank passes it
//     on. Any other argument error, and any difference between the ranks'
//     calls, aborts the world with a cause that names the ranks and what
//     differed: every rank returns ErrAborted with that cause, from this
//     call or its next one (a rank whose part of the call ends with
//     sending, such as a root of Bcast or a non-root of Gather, may return
//     nil first, with its data right).
//   - Ranks that disagree without a message crossing (two ranks that each
//     think they are the root of a Reduce) find out too: a collective that
//     has waited a quarter of a second asks the peer it waits for which call
//     it made, and a difference aborts the world as above. A rank that is
//     merely slow costs the others a small message every few hundred
//     milliseconds.
//
// # Peers that close
//
// Close of the world tells every peer it exchanged messages with before its
// final barrier (connections are made on first use, and a peer that never
// talked to this rank is not connected just to be told). From then
// on a Recv, Probe or Send that only that rank could complete returns an
// error wrapping ErrClosed that names it (for AnySource: once every other
// rank of the communicator has closed), while whatever it sent before
// Close is still received. A collective on a communicator that a peer has
// closed, or that the peer left with Close, aborts the world naming it. A
// Recv from a rank that never sent this rank anything, nor received from
// it, is not told when that rank closes: it waits, as in MPI.
//
// # Flow control
//
// A message up to Config.EagerLimit goes out before its receive is posted.
// A rank holds at most Config.EagerBudget bytes of such unreceived messages
// from each peer, counting 64 bytes more for each: past that, the peer's
// next messages, however small, wait for their receive (rendezvous) until
// the receiver has taken a quarter of the budget off (credit comes back in
// such batches). So Isend never waits for the receiver (only, briefly, for
// room in the transport), and a blocking Send of a small message waits for
// its receive only while the receiver is that far behind.
//
// # Not here (yet)
//
// Derived datatypes, persistent collectives, intercommunicators and
// dynamic processes; docs/mpi4py.md maps mpi4py's and MPI's calls to
// this package's and lists all that is missing. One-sided windows live in
// package rma, node-shared arrays and locks in package patterns.
package runtime

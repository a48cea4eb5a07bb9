// Package rma is one-sided communication (MPI-3 RMA) for gorun: a rank
// reads, writes and atomically updates the window memory of another rank
// without that rank taking part.
//
//	win, err := rma.Allocate[float64](comm, 1000) // collective
//	if err != nil { ... }
//	defer win.Close()                              // collective
//
//	win.Lock(1, rma.Exclusive)
//	win.Put([]float64{1, 2, 3}, 1, 10) // into rank 1's window at element 10
//	old, _ := win.FetchAndOp(1, 1, 0, runtime.Sum)
//	win.Unlock(1)                      // everything above is complete at rank 1
//
// # Windows
//
// Allocate gives each rank n elements of memory that the ranks of its node
// share, so an operation on a rank of the same node is a plain load, store
// or atomic instruction of the caller (the direct path), and one on a rank
// of another node is an active message that the target's receive path
// applies as it arrives (the message path). AllocateShared does the same on
// a one-node communicator with the memory contiguous, and Shared returns
// any rank's part for loads and stores (MPI_Win_shared_query). Create
// exposes a slice the caller owns; other processes cannot map Go memory,
// so every operation on it, even from the same node, is a message. Close
// is collective and frees the window.
//
// # Operations
//
// Put, Get, Accumulate (Sum, Prod, Min, Max, Land, Lor, Band, Bor, Bxor,
// Replace), GetAccumulate (also NoOp, an atomic read), FetchAndOp and
// CompareAndSwap, and the request forms Rput, Rget, Raccumulate and
// RgetAccumulate. Displacements and counts are in elements and are checked
// against the target's window at the origin: out of range is ErrInvalid
// before anything is written. Every operation must be inside an access
// epoch on its target, or it is ErrInvalid saying so.
//
// Completion: an operation is complete at the target after the epoch's
// next Flush, Unlock, Fence or Complete; a Get's buffer is filled by then
// too (Rget, FetchAndOp and CompareAndSwap wait for their data
// themselves). The source buffer of a Put or Accumulate may be reused when
// the call returns.
//
// Atomicity and order: the accumulates, get-accumulates, fetch-and-ops and
// compare-and-swaps of every origin on one target are atomic with respect
// to each other, whichever path each took, because both paths apply them
// under the same lock word in the target's control memory (a spinlock held
// for the length of one operation's loop, so a 64 KiB accumulate runs at
// memory speed). One origin's accumulates to one target are applied in the
// order issued. Puts and Gets are plain copies: one that
// meets another update of the same element within an epoch is a conflict
// with an undefined result, as in MPI.
//
// # Synchronization
//
// Active target: Fence (collective) completes every operation of every
// rank and opens the next epoch; Post, Start, Complete and Wait (and Test)
// do the same for groups. Passive target: Lock (Exclusive or Shared),
// Unlock, LockAll, UnlockAll, Flush, FlushAll, FlushLocal, FlushLocalAll,
// Sync. On the message path the lock request rides on the epoch's first
// operation and Unlock needs no answer unless something is unconfirmed, so
// lock, put and unlock cost one round trip, and Flush one round trip when
// there is anything to flush. The memory model is unified (one copy):
// Local returns this rank's window memory, and Sync is a memory barrier.
//
// # Progress
//
// Progress is strong: the message path is served by the receive goroutines
// of the target's transports, so an operation completes while the target
// computes and never calls the package, and a same-node operation needs the
// target not at all. (MPICH and Open MPI over TCP serve one-sided
// operations only while the target is inside an MPI call; mpilock runs a
// progress thread because of it.)
//
// # Errors
//
// Calls return an *OpError naming the call, the window's communicator, the
// calling rank and the target, wrapping runtime.ErrInvalid (a bad argument,
// a call outside an epoch), runtime.ErrClosed (after Close) or
// runtime.ErrAborted (the job failed: a dead peer, an Abort). An origin
// waiting for a lock held by a rank that dies gets ErrAborted with the
// cause. Window creation and Close are collective; their argument errors
// are the same on every rank.
package rma

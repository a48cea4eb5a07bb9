// Package shm provides shared memory segments for the processes of one node:
// creation, mapping, sharing, typed views, futex wait and wake, and cleanup
// of what a crash leaves behind.
//
// It is a leaf: it knows nothing of ranks, jobs or transports, and imports
// only the standard library and golang.org/x/sys/unix. Segments need Linux;
// elsewhere every constructor returns an error matching [ErrNotSupported].
//
// # Usage
//
// One process creates an anonymous segment and hands its descriptor to its
// peers over a Unix socket; each maps it and takes a typed view:
//
//	s, err := shm.Create(64<<20, shm.Options{}) // memfd, 64 MiB reserved
//	if err != nil {
//		return err // e.g. ENOSPC: clear message, no SIGBUS later
//	}
//	defer s.Close()
//	for _, c := range peers { // *net.UnixConn
//		meta := binary.LittleEndian.AppendUint64(nil, uint64(s.Size()))
//		if err := shm.SendFD(c, s.FD(), meta); err != nil {
//			return err
//		}
//	}
//	s.CloseFD() // optional: every peer holds its own descriptor now
//
// and in each peer:
//
//	var meta [8]byte
//	fd, _, err := shm.RecvFD(conn, meta[:])
//	if err != nil {
//		return err
//	}
//	s, err := shm.FromFD(fd, int64(binary.LittleEndian.Uint64(meta[:])))
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//	xs, err := shm.View[float64](s, 0, 1<<20) // bounds and alignment checked
//
// Named segments ([Options.Name]) are for processes that cannot pass
// descriptors: the creator calls Create with a job-tagged name, peers call
// [Open] with the same name, and once every peer has opened it someone calls
// [Segment.Unlink].
//
// # Lifecycle: no segment outlives its job
//
//   - Prefer anonymous segments. A memfd has no name; the kernel frees it
//     when the last descriptor and the last mapping are gone, whatever ends
//     the processes (exit, panic, kill -9), and it is not capped by the size
//     of /dev/shm. Without memfd_create, Create falls back to an unnamed
//     O_TMPFILE file in Options.Dir, which is freed the same way.
//   - A named segment is a file in /dev/shm, mode 0600, created exclusively
//     (an existing name is an error, never reused). It survives every process
//     until unlinked. Unlink it as soon as every peer has opened it: from then
//     on it behaves like an anonymous segment. Close of the creating Segment
//     also unlinks it.
//   - Tag names with the job ("gorun-<job>-<id>"). A crash between Create and
//     Unlink leaves the file; the launcher calls [Sweep] with the job's prefix
//     after the job, whatever ended it.
//   - Create reserves every page (fallocate) before returning, so a full
//     /dev/shm is an error at Create, never a SIGBUS at first touch; so is a
//     request of 64 MiB or more beyond the memory left (MemAvailable, memory
//     cgroup), which would otherwise wake the OOM killer. Reservation zeroes
//     the pages, so Create costs time in proportion to the size (0.5 to
//     0.9 ms per MiB measured on a small VM).
//   - The size of a memfd is sealed: no peer can shrink the file under
//     another's mapping.
//   - Call Close. A Segment lost without Close is unmapped by the garbage
//     collector, so keep the Segment reachable while any slice from
//     [Segment.Bytes] or [View] is in use.
//
// # Memory model
//
// Processes sharing a segment access the same physical pages. Go's memory
// model speaks only of goroutines in one program, but [sync/atomic]
// operations are sequentially consistent and compile to the same
// instructions as C11 seq_cst atomics, which the hardware keeps coherent for
// every mapping of a page. So across processes, as within one:
//
//   - access every word that two processes use concurrently with
//     sync/atomic, 64-bit words at 8-byte aligned offsets ([View] checks
//     alignment);
//   - publish data with plain writes followed by an atomic store of a flag
//     or counter; a process that observes that store with an atomic load
//     then sees the data;
//   - never store a Go pointer (nor a slice, string, map, interface or
//     channel) in a segment: the garbage collector does not scan segments
//     and addresses differ between processes. Store offsets.
//
// This is a contract of the hardware and the kernel, not of the Go memory
// model. The race detector cannot see accesses to mapped memory; test shared
// structures with several processes, as this package's tests do.
//
// # Waiting
//
// [Wait] and [Wake] are the futex calls on a 32-bit word of a segment,
// without FUTEX_PRIVATE_FLAG so they work across processes. A waiting
// goroutine blocks an OS thread in the kernel, not a P. The kernel compares
// the word with the expected value atomically with going to sleep, so a Wake
// issued after the word changed is never lost; Wait may still return
// spuriously, so callers re-check in a loop.
package shm

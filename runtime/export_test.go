package runtime

import (
	"fmt"
	"strings"

	"github.com/gorun-hpc/gorun/shm"

	"golang.org/x/sys/unix"
)

// TransportTo names the transport that carries c's messages to rank r:
// "inproc", "tcp" or "shmring" (the package of the endpoint's type, or of
// the connection type of a transport.Peer: connections made on first use).
func TransportTo(c *Comm, r int) string {
	t := fmt.Sprintf("%T", c.w.eps[c.group[r]])
	switch {
	case strings.HasPrefix(t, "*inproc."):
		return "inproc"
	case strings.HasPrefix(t, "*shmring.") || strings.Contains(t, "/shmring."):
		return "shmring"
	case strings.HasPrefix(t, "*tcp.") || strings.Contains(t, "*net.TCPConn]"):
		return "tcp"
	}
	return t
}

// SingleCopies is how many rendezvous messages this process received by
// single copy (cma.go).
func SingleCopies() int64 { return cmaCopies.Load() }

// TimingAllocs is how many allocations this process made for waits that
// parked and messages that arrived before their receive (request.go).
func TimingAllocs() int64 { return timingAllocs.Load() }

// RefuseSingleCopy makes every single copy of this process fail as a
// kernel that forbids process_vm_readv would.
func RefuseSingleCopy() {
	cmaCopy = func(int, []byte, uint64) error { return fmt.Errorf("process_vm_readv: %w", unix.EPERM) }
}

// UnexpectedPeak is the most eager data c's rank has held at once for
// receives not yet posted.
func UnexpectedPeak(c *Comm) int64 {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return c.w.unexpPeak
}

// EagerBudget is the per-peer budget of c's world (flow.go).
func EagerBudget(c *Comm) int64 { return c.w.budget }

// RefuseOpenPeer makes this process fail to open peers' segments through
// /proc, as a system that forbids it would, so shared segments take the
// named fallback.
func RefuseOpenPeer() {
	openPeer = func(pid, fd int, size int64) (*shm.Segment, error) {
		return nil, fmt.Errorf("open /proc/%d/fd/%d: %w", pid, fd, unix.EACCES)
	}
}

// NodeCollState reports whether c's collectives go through a shared
// segment.
func NodeCollState(c *Comm) (shared bool, size int64) {
	if c.ncState != ncReady {
		return false, 0
	}
	return true, c.nc.seg.Size()
}

// NamedShares is how many shared segments this process got through a
// name (the fallback).
func NamedShares() int64 { return namedShares.Load() }

// Yielding reports whether c's waits yield the CPU between polls, as on a
// node with more ranks than CPUs (oversub.go).
func Yielding(c *Comm) bool { return c.w.oversub.Load() }

// BulkTransfers is the number of rendezvous transfers c's rank has under
// way (world.bulk), which keeps the transports' waits spinning.
func BulkTransfers(c *Comm) int32 { return c.w.bulk.Load() }

package runtime

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// TransportTo names the transport that carries c's messages to rank r:
// "inproc", "tcp" or "shmring" (the package of the endpoint's type).
func TransportTo(c *Comm, r int) string {
	t := fmt.Sprintf("%T", c.w.eps[c.group[r]])
	for _, name := range []string{"inproc", "shmring", "tcp"} {
		if len(t) > len(name) && t[1:len(name)+1] == name {
			return name
		}
	}
	return t
}

// SingleCopies is how many rendezvous messages this process received by
// single copy (cma.go).
func SingleCopies() int64 { return cmaCopies.Load() }

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

package runtime

import (
	"fmt"
	"math/bits"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gorun-hpc/gorun/internal/shmsync"
)

// Oversubscription: a node with more ranks than CPUs.
//
// A rank that waits polls for a while before it sleeps (pollBudget): on a
// node with a core per rank that costs nothing, and a reply that comes
// within the budget needs no wake-up. On a node with more ranks than CPUs
// the polling takes the CPU from the very rank it waits for, and every
// sleep costs a futex wake-up and two context switches. There, waits give
// the CPU away between polls (sched_yield, as Open MPI does with
// mpi_yield_when_idle when it knows it is oversubscribed) and poll for
// longer before they sleep, and the TCP receive goroutines do not spin.

// EnvYield forces the waits' policy: "1" yields between polls whatever the
// node, "0" never; unset or empty, the ranks detect oversubscription at
// Init (oversubscribed).
const EnvYield = "GORUN_YIELD"

// yieldPoll is how long a wait polls, yielding between polls, before it
// sleeps on an oversubscribed node: several rounds of the ranks sharing a
// CPU, and short enough that a rank waiting for long (for input, or a slow
// peer) soon stops taking its share of the CPU. Measured at np 4 and 8 on
// 2 cores (docs/performance.md), 50 µs, 250 µs and 1 ms differ by less than
// the noise for small collectives; 250 µs is the middle.
const yieldPoll = 250 * time.Microsecond

// cpuMask returns the CPUs this process may run on as a hexadecimal mask,
// lowest CPU in the lowest bit, or "" if the kernel will not say.
func cpuMask() string {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return ""
	}
	var b strings.Builder
	top := len(set) - 1
	for top > 0 && set[top] == 0 {
		top--
	}
	for i := top; i >= 0; i-- {
		if i == top {
			b.WriteString(strconv.FormatUint(uint64(set[i]), 16))
		} else {
			fmt.Fprintf(&b, "%016x", uint64(set[i]))
		}
	}
	return b.String()
}

// maskCPUs adds the CPUs of the hexadecimal mask m to set, indexed by
// 64-CPU word from the lowest; it reports false for a malformed mask.
func maskCPUs(m string, set *[]uint64) bool {
	if m == "" || len(m) > 1024 {
		return false
	}
	for w := 0; len(m) > 0; w++ {
		lo := max(0, len(m)-16)
		v, err := strconv.ParseUint(m[lo:], 16, 64)
		if err != nil {
			return false
		}
		for len(*set) <= w {
			*set = append(*set, 0)
		}
		(*set)[w] |= v
		m = m[:lo]
	}
	return true
}

// oversubscribed reports whether rank's host has more ranks than the CPUs
// those ranks may run on together: hosts holds each rank's host name (not
// its node: emulated nodes, gorun --nodes, share the host's CPUs) and
// masks each rank's CPU mask (cpuMask). Unknown masks make it report
// false: without them there is nothing to compare.
func oversubscribed(rank int, hosts, masks []string) bool {
	var set []uint64
	n := 0
	for i, host := range hosts {
		if host != hosts[rank] {
			continue
		}
		n++
		if !maskCPUs(masks[i], &set) {
			return false
		}
	}
	cpus := 0
	for _, w := range set {
		cpus += bits.OnesCount64(w)
	}
	return cpus > 0 && n > cpus
}

// yieldOverride reads EnvYield: (force, set, error).
func yieldOverride() (bool, bool, error) {
	switch v := os.Getenv(EnvYield); v {
	case "":
		return false, false, nil
	case "0":
		return false, true, nil
	case "1":
		return true, true, nil
	default:
		return false, false, errInvalid(fmt.Sprintf("%s=%q: want 0, 1 or unset", EnvYield, v))
	}
}

// setOversubscribed makes the world's waits yield the CPU (see above).
// It is called before the world is used.
func (w *world) setOversubscribed(yield func()) {
	w.oversub.Store(true)
	w.wait = shmsync.Policy{Poll: yieldPoll, Yield: yield}
}

// goroutinesOversubscribed reports whether a world of n goroutine ranks
// has more ranks than Ps to run them: then waits yield to the Go
// scheduler between polls.
func goroutinesOversubscribed(n int) bool { return n > goruntime.GOMAXPROCS(0) }

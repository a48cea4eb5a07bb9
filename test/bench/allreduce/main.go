// Command allreduce is the OSU-style Allreduce latency test of gorun:
// gorun -np 2 ./allreduce [-rows].
//
// Allreduce with Sum over float64 runs back to back: 8 B is 1 element,
// 1 MiB is 131072. The value is the mean µs per call, averaged over the
// ranks with Reduce, as allreduce in ../shared/bench/mpi/coll.c, and the
// 1 MiB result is checked (element i must be Size()·i). Any number of ranks
// works; the comparison with the MPIs uses 2.
package main

import (
	"fmt"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/test/bench/osu"
)

const big = 1 << 20

func main() {
	b := osu.Start("allreduce", "Allreduce Latency Test", false)
	run(b)
	b.Finish()
}

// run measures and prints the results on b.
func run(b *osu.Bench) {
	c := b.Comm
	a, r := floats(), floats()
	for i := range a {
		a[i] = float64(i)
	}
	b.Header("Avg Latency(us)", true)
	for _, n := range []int{8, big} {
		send, recv := a[:n/8], r[:n/8]
		b.Check(c.Barrier())
		per := b.Loop(osu.WarmFor(n), func() error {
			return runtime.Allreduce(c, send, recv, runtime.Sum)
		})
		us := b.MeanOverRanks(per * 1e6)
		b.Emit("allreduce", n, us, "us", us)
	}
	want := float64(c.Size())
	for i, v := range r {
		if v != want*float64(i) {
			b.Check(fmt.Errorf("allreduce result wrong: element %d is %g, want %g", i, v, want*float64(i)))
		}
	}
}

// floats returns 1 MiB of float64 with every page written.
func floats() []float64 {
	f := make([]float64, big/8)
	for i := 0; i < len(f); i += 512 {
		f[i] = 0
	}
	return f
}

// Command bcast is the OSU-style broadcast latency test of gorun:
// gorun -np 2 ./bcast [-rows].
//
// Bcasts of 8 B and 1 MiB run back to back with the root alternating
// between ranks 0 and 1 on every call, so a call cannot start before the
// previous one delivered. The value is the mean µs per call, averaged over
// the ranks with Reduce, as bcast in ../shared/bench/mpi/coll.c. Any number
// of ranks from 2 works; the comparison with the MPIs uses 2.
package main

import (
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/test/bench/osu"
)

func main() {
	b := osu.Start("bcast", "Broadcast Latency Test", false)
	run(b)
	b.Finish()
}

// run measures and prints the results on b.
func run(b *osu.Bench) {
	c := b.Comm
	buf := osu.Buffer(1 << 20)
	b.Header("Avg Latency(us)", true)
	for _, n := range []int{8, 1 << 20} {
		m := buf[:n]
		b.Check(c.Barrier())
		call := 0
		per := b.Loop(osu.WarmFor(n), func() error {
			root := (call & 1) % c.Size() // 0, 1, 0, ... (always 0 alone)
			call++
			return runtime.Bcast(c, m, root)
		})
		us := b.MeanOverRanks(per * 1e6)
		b.Emit("bcast", n, us, "us", us)
	}
}

// Command barrier is the OSU-style barrier latency test of gorun:
// gorun -np 2 ./barrier [-rows].
//
// Barriers run back to back; the value is the mean µs per call, averaged
// over the ranks with Reduce, as barrier in ../shared/bench/mpi/coll.c.
// Any number of ranks works; the comparison with the MPIs uses 2.
package main

import "github.com/gorun-hpc/gorun/test/bench/osu"

func main() {
	b := osu.Start("barrier", "Barrier Latency Test", false)
	run(b)
	b.Finish()
}

// run measures and prints the results on b.
func run(b *osu.Bench) {
	c := b.Comm
	b.Header("Avg Latency(us)", false)
	b.Check(c.Barrier())
	per := b.Loop(osu.WarmFor(0), c.Barrier)
	us := b.MeanOverRanks(per * 1e6)
	b.Emit("barrier", 0, us, "us", us)
}

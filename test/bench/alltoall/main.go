// Command alltoall is the OSU-style Alltoall latency test of gorun:
// gorun -np 2 ./alltoall [-rows].
//
// Alltoalls of 8 B and 64 KiB per pair run back to back: the size is the
// block each rank sends to each rank, as in osu_alltoall, so a rank's send
// and receive buffers hold Size() times it. The value is the mean µs per
// call, averaged over the ranks with Reduce, as alltoall in
// test/bench/oversub/c/coll.c, and the 64 KiB result is checked (block i
// is the one rank i addressed to this rank). Any number of ranks works.
package main

import (
	"fmt"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/test/bench/osu"
)

const big = 64 << 10

func main() {
	b := osu.Start("alltoall", "All-to-All Personalized Exchange Latency Test", false)
	run(b)
	b.Finish()
}

// run measures and prints the results on b.
func run(b *osu.Bench) {
	c := b.Comm
	n, me := c.Size(), c.Rank()
	send, recv := osu.Buffer(n*big), osu.Buffer(n*big)
	b.Header("Avg Latency(us)", true)
	for _, m := range []int{8, big} {
		s, r := send[:n*m], recv[:n*m]
		for j := range s { // block j goes to rank j
			s[j] = pattern(me, j/m, j%m)
		}
		b.Check(c.Barrier())
		per := b.Loop(osu.WarmFor(m), func() error {
			return runtime.Alltoall(c, s, r)
		})
		us := b.MeanOverRanks(per * 1e6)
		b.Emit("alltoall", m, us, "us", us)
	}
	for i, v := range recv {
		if want := pattern(i/big, me, i%big); v != want {
			b.Check(fmt.Errorf("alltoall result wrong: byte %d is %d, want %d", i, v, want))
		}
	}
}

// pattern is byte k of the block rank from sends to rank to.
func pattern(from, to, k int) byte {
	return byte(1 + from + 16*to + k)
}

// Command allgather is the OSU-style Allgather latency test of gorun:
// gorun -np 2 ./allgather [-rows].
//
// Allgathers of 8 B and 1 MiB per rank run back to back: the size is what
// each rank contributes, as in osu_allgather, so every rank receives
// Size() times it. The value is the mean µs per call, averaged over the
// ranks with Reduce, as allgather in test/bench/oversub/c/coll.c, and the
// 1 MiB result is checked (block i is rank i's). Any number of ranks works.
// With -v it measures Allgatherv with every count equal instead (as
// osu_allgatherv does), in rows named allgatherv.
package main

import (
	"flag"
	"fmt"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/test/bench/osu"
)

const big = 1 << 20

var vFlag = flag.Bool("v", false, "measure Allgatherv with equal counts instead of Allgather")

func main() {
	b := osu.Start("allgather", "Allgather Latency Test (-v: Allgatherv)", false)
	run(b)
	b.Finish()
}

// run measures and prints the results on b.
func run(b *osu.Bench) {
	name := "allgather"
	if *vFlag {
		name = "allgatherv"
	}
	c := b.Comm
	n := c.Size()
	send, recv := osu.Buffer(big), osu.Buffer(n*big)
	for i := range send {
		send[i] = byte(c.Rank() + i)
	}
	b.Header("Avg Latency(us)", true)
	for _, m := range []int{8, big} {
		s, r := send[:m], recv[:n*m]
		b.Check(c.Barrier())
		counts, displs := make([]int, n), make([]int, n)
		for i := range n {
			counts[i], displs[i] = m, i*m
		}
		per := b.Loop(osu.WarmFor(m), func() error {
			if *vFlag {
				return runtime.Allgatherv(c, s, r, counts, displs)
			}
			return runtime.Allgather(c, s, r)
		})
		us := b.MeanOverRanks(per * 1e6)
		b.Emit(name, m, us, "us", us)
	}
	for i, v := range recv {
		if want := byte(i/big + i%big); v != want {
			b.Check(fmt.Errorf("%s result wrong: byte %d is %d, want %d", name, i, v, want))
		}
	}
}

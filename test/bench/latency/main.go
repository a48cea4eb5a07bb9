// Command latency is the OSU-style ping-pong latency test of gorun, for 2
// ranks: gorun -np 2 ./latency [-rows].
//
// Rank 0 sends a message with blocking Send and receives it back with Recv;
// rank 1 does the reverse (tag 1). The value is half the mean round trip in
// µs, for 0 B to 4 MiB, measured as pingpong_lat in ../shared/bench/mpi/p2p.c.
package main

import (
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/test/bench/osu"
)

var sizes = []int{0, 8, 64, 1024, 8192, 65536, 1 << 20, 4 << 20}

func main() {
	b := osu.Start("latency", "Latency Test", true)
	run(b)
	b.Finish()
}

// run measures and prints the results on b.
func run(b *osu.Bench) {
	c := b.Comm
	maxb := sizes[len(sizes)-1]
	sbuf, rbuf := osu.Buffer(maxb), osu.Buffer(maxb)
	b.Header("Latency (us)", true)
	for _, n := range sizes {
		s, r := sbuf[:n], rbuf[:n]
		b.Check(c.Barrier())
		per := b.Loop(osu.WarmFor(n), func() error {
			if c.Rank() == 0 {
				if err := runtime.Send(c, s, 1, 1); err != nil {
					return err
				}
				_, err := runtime.Recv(c, r, 1, 1)
				return err
			}
			if _, err := runtime.Recv(c, r, 0, 1); err != nil {
				return err
			}
			return runtime.Send(c, s, 0, 1)
		})
		us := per / 2 * 1e6
		b.Emit("pingpong_lat", n, us, "us", us)
	}
}

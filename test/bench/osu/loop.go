package osu

import (
	"os"
	"strconv"
	"time"

	"github.com/gorun-hpc/gorun/runtime"
)

// WarmFor returns the number of warm-up iterations for a message of the
// given size, as warm_for in bench.h: 1000 up to 8 KiB, 200 up to 64 KiB,
// 20 up to 1 MiB, 5 above.
func WarmFor(bytes int) int {
	switch {
	case bytes <= 8192:
		return 1000
	case bytes <= 65536:
		return 200
	case bytes <= 1<<20:
		return 20
	}
	return 5
}

// targetSeconds is PERF_TARGET_S, or 0.25 when unset, unparsable or not
// positive.
func targetSeconds() float64 {
	t, err := strconv.ParseFloat(os.Getenv("PERF_TARGET_S"), 64)
	if err != nil || t <= 0 {
		return 0.25
	}
	return t
}

// PlanIters returns the iteration count that makes a loop last
// PERF_TARGET_S seconds when warmN iterations took warmS seconds, clamped
// to [10, 50e6] as plan_iters in bench.h.
func PlanIters(warmS float64, warmN int) int64 {
	per := warmS / float64(warmN)
	if per <= 0 {
		per = 1e-9
	}
	n := targetSeconds() / per
	n = min(max(n, 10), 50e6)
	return int64(n)
}

// Loop runs body warm times, lets rank 0 plan the count of the timed loop
// and broadcasts it, runs body that many times and returns the mean seconds
// per iteration (BENCH_LOOP with COLL=1 in bench.h). Every rank must call
// it. An error from body or from the broadcast ends the job (see Check).
func (b *Bench) Loop(warm int, body func() error) float64 {
	t := time.Now()
	for range warm {
		b.Check(body())
	}
	b.count[0] = PlanIters(time.Since(t).Seconds(), warm)
	b.Check(runtime.Bcast(b.Comm, b.count, 0))
	n := b.count[0]
	t = time.Now()
	for range n {
		b.Check(body())
	}
	return time.Since(t).Seconds() / float64(n)
}

// MeanOverRanks returns, at rank 0, the mean over all ranks of v (each
// rank's own loop time), gathered with Reduce as coll.c does. Other ranks
// get 0.
func (b *Bench) MeanOverRanks(v float64) float64 {
	in, sum := []float64{v}, []float64{0}
	b.Check(runtime.Reduce(b.Comm, in, sum, runtime.Sum, 0))
	return sum[0] / float64(b.Comm.Size())
}

// LoopLocal is Loop for a loop only this rank runs (BENCH_LOOP with
// COLL=0 in bench.h): no broadcast of the count.
func (b *Bench) LoopLocal(warm int, body func() error) float64 {
	t := time.Now()
	for range warm {
		b.Check(body())
	}
	n := PlanIters(time.Since(t).Seconds(), warm)
	t = time.Now()
	for range n {
		b.Check(body())
	}
	return time.Since(t).Seconds() / float64(n)
}

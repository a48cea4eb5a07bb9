// Command patterns measures the cases of the Python baseline of pshmem and
// mpilock (../shared/spec/seeds-reference.md section 4) on gorun's
// patterns: gorun -np 2 ./patterns [-rows]; with --nodes 2 the ranks are on
// two emulated nodes (a copy of each array per node, locks over TCP).
//
// Rows (value, unit):
//
//	shared_construct_close  n   µs   NewShared[float64](n) + Close, collective
//	shared_set_full         n   µs   Set of all n elements from rank 0
//	shared_set_100          n   µs   Set of 100 elements from rank 0
//	shared_set_100_last     n   µs   the same from the last rank
//	shared_assign_100       n   µs   Assign of 100 elements, rank 0 sends
//	lock_all                0   ops/s Lock+Unlock, all ranks at once (total;
//	                                  the same count on every rank, over the slowest's time)
//	lock_root, lock_last    0   ops/s only rank 0 / the last rank loops
//	lock_construct_close    0   µs
//	ctl_read_all, ctl_write_all        ops/s  empty Read / Write, all ranks (total)
//	ctl_read_master, ctl_read_last     ops/s  only the master / the last rank
//	ctl_write_master, ctl_write_last   ops/s
//	ctl_write_while_read    0   ops/s rank 0 writes while the others read (rank 0's rate)
//	ctl_single_write        0   µs   SingleWrite returning an int to every rank
//	ctl_construct_close     0   µs
package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/patterns"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/test/bench/osu"
)

func main() {
	b := osu.Start("patterns", "pshmem and mpilock patterns", false)
	b.Header("Value (us or ops/s)", true)
	shared(b)
	locks(b)
	controller(b)
	b.Finish()
}

func shared(b *osu.Bench) {
	c := b.Comm
	last := c.Size() - 1
	for _, n := range []int{1000, 1_000_000, 10_000_000} {
		warm := 20
		if n >= 1_000_000 {
			warm = 3
		}
		us := b.Loop(warm, func() error {
			a, err := patterns.NewShared[float64](c, n)
			if err != nil {
				return err
			}
			return a.Close()
		}) * 1e6
		b.Emit("shared_construct_close", n, us, "us", us)

		a, err := patterns.NewShared[float64](c, n)
		b.Check(err)
		full := make([]float64, n)
		for i := range full {
			full[i] = float64(i)
		}
		us = b.Loop(warm, func() error { return a.Set(full, []int{n}, nil, 0) }) * 1e6
		b.Check(verify(a, n-1, float64(n-1)))
		b.Emit("shared_set_full", n, us, "us", us)

		blk := full[:100]
		us = b.Loop(200, func() error { return a.Set(blk, []int{100}, []int{n / 2}, 0) }) * 1e6
		b.Emit("shared_set_100", n, us, "us", us)
		us = b.Loop(200, func() error { return a.Set(blk, []int{100}, []int{n / 2}, last) }) * 1e6
		b.Emit("shared_set_100_last", n, us, "us", us)
		us = b.Loop(200, func() error {
			if c.Rank() == 0 {
				return a.Assign(blk, []int{100}, []int{n / 3})
			}
			return a.Assign(nil, nil, nil)
		}) * 1e6
		b.Check(verify(a, n/3+99, 99))
		b.Emit("shared_assign_100", n, us, "us", us)
		b.Check(a.Close())
	}
}

// verify checks one element of a on every rank, so a broken Set cannot
// report fast but meaningless numbers.
func verify(a *patterns.Shared[float64], i int, want float64) error {
	if got := a.At(i); got != want {
		return fmt.Errorf("element %d is %v, want %v", i, got, want)
	}
	return nil
}

func locks(b *osu.Bench) {
	c := b.Comm
	l, err := patterns.NewLock(c, 0)
	b.Check(err)
	var inside atomic.Int32 // per process: catches a broken lock on one node's goroutines only
	body := func() error {
		if err := l.Lock(); err != nil {
			return err
		}
		inside.Add(1)
		inside.Add(-1)
		return l.Unlock()
	}
	r := allRate(b, body)
	b.Emit("lock_all", 0, r, "ops/s", r)
	for _, who := range []struct {
		name string
		rank int
	}{{"lock_root", 0}, {"lock_last", c.Size() - 1}} {
		r := soloRate(b, who.rank, body)
		b.Emit(who.name, 0, r, "ops/s", r)
	}
	b.Check(l.Close())
	us := b.Loop(20, func() error {
		l, err := patterns.NewLock(c, 0)
		if err != nil {
			return err
		}
		return l.Close()
	}) * 1e6
	b.Emit("lock_construct_close", 0, us, "us", us)
}

func controller(b *osu.Bench) {
	c := b.Comm
	wc, err := patterns.NewWindowController(c, patterns.ControllerConfig{})
	b.Check(err)
	nop := func() error { return nil }
	read := func() error { return wc.Read(nop) }
	write := func() error { return wc.Write(nop) }
	r := allRate(b, read)
	b.Emit("ctl_read_all", 0, r, "ops/s", r)
	r = allRate(b, write)
	b.Emit("ctl_write_all", 0, r, "ops/s", r)
	for _, k := range []struct {
		name string
		rank int
		f    func() error
	}{
		{"ctl_read_master", 0, read}, {"ctl_read_last", c.Size() - 1, read},
		{"ctl_write_master", 0, write}, {"ctl_write_last", c.Size() - 1, write},
	} {
		r := soloRate(b, k.rank, k.f)
		b.Emit(k.name, 0, r, "ops/s", r)
	}
	// Rank 0 writes while the others read until it tells them to stop.
	var wr float64
	b.Check(c.Barrier())
	if c.Rank() == 0 {
		wr = 1 / b.LoopLocal(1000, write)
		for r := 1; r < c.Size(); r++ {
			b.Check(runtime.Send(c, []int32{1}, r, 7))
		}
	} else {
		for {
			b.Check(read())
			_, ok, err := runtime.Iprobe[int32](c, 0, 7)
			b.Check(err)
			if ok {
				_, err := runtime.Recv(c, make([]int32, 1), 0, 7)
				b.Check(err)
				break
			}
		}
	}
	b.Emit("ctl_write_while_read", 0, wr, "ops/s", wr)
	us := b.Loop(1000, func() error {
		_, err := patterns.SingleWrite(wc, 0, func() (int, error) { return 5, nil })
		return err
	}) * 1e6
	b.Emit("ctl_single_write", 0, us, "us", us)
	b.Check(wc.Close())
	us = b.Loop(20, func() error {
		wc, err := patterns.NewWindowController(c, patterns.ControllerConfig{})
		if err != nil {
			return err
		}
		return wc.Close()
	}) * 1e6
	b.Emit("ctl_construct_close", 0, us, "us", us)
}

// allRate runs f on every rank at once, the same number of times, and
// returns the total operations per second: every rank's count over the
// slowest rank's time. The count is planned by the slowest rank's warm-up
// (a rank that reaches the state by the direct path is much faster than
// one that crosses TCP).
func allRate(b *osu.Bench, f func() error) float64 {
	c := b.Comm
	b.Check(c.Barrier())
	t := time.Now()
	for range 200 {
		b.Check(f())
	}
	n := []int64{osu.PlanIters(time.Since(t).Seconds(), 200)}
	b.Check(runtime.Allreduce(c, n, n, runtime.Min))
	b.Check(c.Barrier())
	t = time.Now()
	for range n[0] {
		b.Check(f())
	}
	slowest := []float64{time.Since(t).Seconds()}
	b.Check(runtime.Allreduce(c, slowest, slowest, runtime.Max))
	return float64(n[0]) * float64(c.Size()) / slowest[0]
}

// soloRate runs f in a loop on rank only, the others waiting in a
// Barrier, and returns its rate at rank 0.
func soloRate(b *osu.Bench, rank int, f func() error) float64 {
	c := b.Comm
	b.Check(c.Barrier())
	r := []float64{0}
	if c.Rank() == rank {
		r[0] = 1 / b.LoopLocal(1000, f)
	}
	b.Check(c.Barrier())
	b.Check(runtime.Bcast(c, r, rank))
	return r[0]
}

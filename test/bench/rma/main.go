// Command rma is the OSU-style one-sided latency test of gorun, for 2
// ranks: gorun -np 2 ./rma [-rows]; with --nodes 2 the ranks are on two
// emulated nodes, so every operation takes the message path over TCP.
//
// It measures what ../shared/bench/mpi/rma.c measures, with the same row
// names: rank 0 is the origin, rank 1 the target; Put, Get and Accumulate
// (Sum of float64, size/8 elements) of 8 B, 1 KiB, 64 KiB and 1 MiB, and
// FetchAndOp (Sum) and CompareAndSwap on one int64, each in three modes
// (value = mean µs per operation including its synchronization):
//
//	lock   Lock(Exclusive); op; Unlock            (per op)
//	flush  LockAll once, then op; Flush(1)          (per op)
//	fence  op; Fence on both ranks                  (one epoch per op)
//
// In the passive modes the target waits in a Barrier, as in the C program.
package main

import (
	"fmt"

	"github.com/gorun-hpc/gorun/rma"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/test/bench/osu"
)

var sizes = []int{8, 1024, 65536, 1 << 20}

const maxb = 1 << 20

type op int

const (
	opPut op = iota
	opGet
	opAcc
	opFop
	opCas
)

var opNames = []string{"put", "get", "acc", "fop", "cas"}

type mode int

const (
	modeLock mode = iota
	modeFlush
	modeFence
)

var modeNames = []string{"lock", "flush", "fence"}

func main() {
	b := osu.Start("rma", "One Sided Latency Test", true)
	run(b)
	b.Finish()
}

// wins are the benchmark's windows: bytes for Put and Get, float64 for
// Accumulate, int64 for the atomics.
type wins struct {
	bytes *rma.Win[byte]
	f64   *rma.Win[float64]
	i64   *rma.Win[int64]
}

func run(b *osu.Bench) {
	c := b.Comm
	var w wins
	var err error
	w.bytes, err = rma.Allocate[byte](c, maxb)
	b.Check(err)
	w.f64, err = rma.Allocate[float64](c, maxb/8)
	b.Check(err)
	w.i64, err = rma.Allocate[int64](c, 1)
	b.Check(err)
	b.Check(validate(c, w))
	b.Header("Latency (us)", true)
	obuf := osu.Buffer(maxb)
	of := make([]float64, maxb/8)
	for o := opPut; o <= opCas; o++ {
		for m := modeLock; m <= modeFence; m++ {
			if !b.Rows && c.Rank() == 0 {
				fmt.Fprintf(b.Out, "# %s, %s\n", opNames[o], modeNames[m])
			}
			for _, n := range sizes {
				if (o == opFop || o == opCas) && n != 8 {
					continue
				}
				us := measure(b, w, o, m, n, obuf[:n], of[:n/8]) * 1e6
				b.Emit(fmt.Sprintf("rma_%s_%s", opNames[o], modeNames[m]), n, us, "us", us)
			}
		}
	}
	b.Check(w.bytes.Close())
	b.Check(w.f64.Close())
	b.Check(w.i64.Close())
}

// do issues one operation of the origin.
func do(w wins, o op, ob []byte, of []float64, cas *int64) error {
	switch o {
	case opPut:
		return w.bytes.Put(ob, 1, 0)
	case opGet:
		return w.bytes.Get(ob, 1, 0)
	case opAcc:
		return w.f64.Accumulate(of, 1, 0, runtime.Sum)
	case opFop:
		_, err := w.i64.FetchAndOp(1, 1, 0, runtime.Sum)
		return err
	}
	// Usually fails, still a full round trip.
	old := *cas
	*cas++
	_, err := w.i64.CompareAndSwap(*cas, old, 1, 0)
	return err
}

// win returns the window of operation o.
func (w wins) sync(o op) interface {
	Lock(int, rma.LockType) error
	Unlock(int) error
	LockAll() error
	UnlockAll() error
	Flush(int) error
	Fence(rma.Assert) error
} {
	switch o {
	case opPut, opGet:
		return w.bytes
	case opAcc:
		return w.f64
	}
	return w.i64
}

func measure(b *osu.Bench, w wins, o op, m mode, n int, ob []byte, of []float64) float64 {
	c := b.Comm
	s := w.sync(o)
	var cas int64
	b.Check(c.Barrier())
	var per float64
	switch {
	case m == modeFence:
		b.Check(s.Fence(rma.NoPrecede))
		per = b.Loop(osu.WarmFor(n), func() error {
			if c.Rank() == 0 {
				if err := do(w, o, ob, of, &cas); err != nil {
					return err
				}
			}
			return s.Fence(0)
		})
		b.Check(s.Fence(rma.NoSucceed))
	case c.Rank() == 0 && m == modeLock:
		per = b.LoopLocal(osu.WarmFor(n), func() error {
			if err := s.Lock(1, rma.Exclusive); err != nil {
				return err
			}
			if err := do(w, o, ob, of, &cas); err != nil {
				return err
			}
			return s.Unlock(1)
		})
		b.Check(c.Barrier())
	case c.Rank() == 0:
		b.Check(s.LockAll())
		per = b.LoopLocal(osu.WarmFor(n), func() error {
			if err := do(w, o, ob, of, &cas); err != nil {
				return err
			}
			return s.Flush(1)
		})
		b.Check(s.UnlockAll())
		b.Check(c.Barrier())
	default:
		b.Check(c.Barrier()) // the target: waits while the origin works
	}
	return per
}

// validate checks each operation once, so that a broken path cannot
// report fast but meaningless numbers.
func validate(c *runtime.Comm, w wins) error {
	const n = 1024
	loc := w.bytes.Local()
	if c.Rank() == 0 {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i*7 + 1)
		}
		if err := w.bytes.Lock(1, rma.Exclusive); err != nil {
			return err
		}
		if err := w.bytes.Put(src, 1, 0); err != nil {
			return err
		}
		if err := w.bytes.Unlock(1); err != nil {
			return err
		}
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	if c.Rank() == 1 {
		for i := range n {
			if loc[i] != byte(i*7+1) {
				return fmt.Errorf("rma: VALIDATION FAILED: put byte %d = %d", i, loc[i])
			}
		}
	}
	if c.Rank() == 0 {
		if err := w.i64.Lock(1, rma.Exclusive); err != nil {
			return err
		}
		old, err := w.i64.FetchAndOp(40, 1, 0, runtime.Sum)
		if err == nil {
			old, err = w.i64.CompareAndSwap(7, 40, 1, 0)
		}
		if err != nil {
			return err
		}
		got := []int64{0}
		if err := w.i64.Get(got, 1, 0); err != nil {
			return err
		}
		if err := w.i64.Unlock(1); err != nil {
			return err
		}
		if old != 40 || got[0] != 7 {
			return fmt.Errorf("rma: VALIDATION FAILED: fetch-and-op and compare-and-swap gave %d then %d", old, got[0])
		}
	}
	return c.Barrier()
}

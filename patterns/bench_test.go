package patterns_test

import (
	"sync"
	"testing"

	"github.com/gorun-hpc/gorun/patterns"
	"github.com/gorun-hpc/gorun/runtime"
)

// Benchmarks on two goroutine ranks of one node (shared memory between
// them, as two processes of one node have), every rank running the loop.
// test/bench/patterns is the OSU-style program with the Python figures
// beside it (docs/performance.md).

// benchRanks runs setup on both ranks, then body b.N times on both at
// once, timing the loop.
func benchRanks[O any](b *testing.B, setup func(c *runtime.Comm) (O, error), body func(c *runtime.Comm, o O) error, done func(o O) error) {
	comms, err := runtime.InitLocal(2)
	if err != nil {
		b.Fatal(err)
	}
	objs := make([]O, 2)
	each := func(f func(i int, c *runtime.Comm) error) {
		var wg sync.WaitGroup
		for i, c := range comms {
			wg.Go(func() {
				if err := f(i, c); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
	}
	each(func(i int, c *runtime.Comm) (err error) { objs[i], err = setup(c); return err })
	each(func(i int, c *runtime.Comm) error { return c.Barrier() })
	b.ResetTimer()
	each(func(i int, c *runtime.Comm) error {
		for range b.N {
			if err := body(c, objs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	b.StopTimer()
	each(func(i int, c *runtime.Comm) error {
		if err := done(objs[i]); err != nil {
			return err
		}
		return c.Close()
	})
}

func BenchmarkSet100(b *testing.B) {
	blk := make([]float64, 100)
	benchRanks(b, func(c *runtime.Comm) (*patterns.Shared[float64], error) {
		return patterns.NewShared[float64](c, 1000)
	}, func(c *runtime.Comm, a *patterns.Shared[float64]) error {
		return a.Set(blk, []int{100}, []int{500}, 0)
	}, (*patterns.Shared[float64]).Close)
}

func BenchmarkLock(b *testing.B) {
	benchRanks(b, func(c *runtime.Comm) (*patterns.Lock, error) {
		return patterns.NewLock(c, 0)
	}, func(c *runtime.Comm, l *patterns.Lock) error {
		if err := l.Lock(); err != nil {
			return err
		}
		return l.Unlock()
	}, (*patterns.Lock).Close)
}

func newController(c *runtime.Comm) (*patterns.WindowController, error) {
	return patterns.NewWindowController(c, patterns.ControllerConfig{})
}

func nop() error { return nil }

func BenchmarkControllerRead(b *testing.B) {
	benchRanks(b, newController, func(c *runtime.Comm, w *patterns.WindowController) error {
		return w.Read(nop)
	}, (*patterns.WindowController).Close)
}

func BenchmarkControllerWrite(b *testing.B) {
	benchRanks(b, newController, func(c *runtime.Comm, w *patterns.WindowController) error {
		return w.Write(nop)
	}, (*patterns.WindowController).Close)
}

func BenchmarkSingleWrite(b *testing.B) {
	benchRanks(b, newController, func(c *runtime.Comm, w *patterns.WindowController) error {
		_, err := patterns.SingleWrite(w, 0, func() (int, error) { return 5, nil })
		return err
	}, (*patterns.WindowController).Close)
}

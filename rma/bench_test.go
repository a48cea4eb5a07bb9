package rma_test

import (
	"sync"
	"testing"

	"github.com/gorun-hpc/gorun/rma"
	"github.com/gorun-hpc/gorun/runtime"
)

// Benchmarks of one origin and one target, goroutine ranks: "direct" on
// one node, "tcp" on two emulated nodes over loopback TCP. The target waits
// in a Barrier meanwhile, as in test/bench/rma. test/bench/rma has the
// OSU-style program compared with the MPIs.

func benchPair(b *testing.B, cfg runtime.Config, body func(w *rma.Win[float64]) error, lock bool) {
	comms, err := cfg.InitLocal(2)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wins := make([]*rma.Win[float64], 2)
	for i, c := range comms {
		wg.Go(func() {
			w, err := rma.Allocate[float64](c, 1<<13)
			if err != nil {
				b.Error(err)
			}
			wins[i] = w
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	wg.Go(func() {
		if err := comms[1].Barrier(); err != nil {
			b.Error(err)
		}
	})
	w := wins[0]
	if !lock {
		if err := w.LockAll(); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if lock {
			if err := w.Lock(1, rma.Exclusive); err != nil {
				b.Fatal(err)
			}
		}
		if err := body(w); err != nil {
			b.Fatal(err)
		}
		if lock {
			if err := w.Unlock(1); err != nil {
				b.Fatal(err)
			}
		} else if err := w.Flush(1); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if !lock {
		if err := w.UnlockAll(); err != nil {
			b.Fatal(err)
		}
	}
	if err := comms[0].Barrier(); err != nil {
		b.Fatal(err)
	}
	wg.Wait()
	for i, c := range comms {
		wg.Go(func() {
			wins[i].Close()
			c.Close()
		})
	}
	wg.Wait()
}

var benchPaths = []struct {
	name string
	cfg  runtime.Config
}{
	{"direct", runtime.Config{}},
	{"tcp", runtime.Config{LocalNodes: 2, Transports: []string{"self", "tcp"}}},
}

func BenchmarkPut8(b *testing.B) {
	src := []float64{1}
	for _, p := range benchPaths {
		for _, lock := range []bool{false, true} {
			name := p.name + "/flush"
			if lock {
				name = p.name + "/lock"
			}
			b.Run(name, func(b *testing.B) {
				benchPair(b, p.cfg, func(w *rma.Win[float64]) error { return w.Put(src, 1, 0) }, lock)
			})
		}
	}
}

func BenchmarkFetchAndOp(b *testing.B) {
	for _, p := range benchPaths {
		b.Run(p.name, func(b *testing.B) {
			benchPair(b, p.cfg, func(w *rma.Win[float64]) error {
				_, err := w.FetchAndOp(1, 1, 0, runtime.Sum)
				return err
			}, false)
		})
	}
}

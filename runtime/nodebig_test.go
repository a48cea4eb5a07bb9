package runtime_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// Large Bcast and Allreduce on one node go through the large-call segment
// (nodebig.go): chunked, every rank folding its share in rank order. Checked
// against a naive fold of seeded random inputs, with sizes around the chunk
// size, every root, a user op that does not commute (which catches a fold
// out of rank order) and calls of other sizes in between (which catch an
// area reused too early).
func TestNodeBig(t *testing.T) {
	const chunk = 1 << 20 / 8 // float64s per chunk
	counts := []int{33, chunk - 1, chunk, chunk + 3, 3*chunk + 17}
	// Composing affine maps is associative and does not commute: the
	// result depends on the order of the ranks.
	compose, err := runtime.NewOp[affine]("compose", func(acc, in []affine) {
		for i := range acc {
			acc[i] = affine{acc[i].A * in[i].A, acc[i].B*in[i].A + in[i].B}
		}
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer compose.Free()
	for _, np := range []int{1, 2, 3, 5} {
		t.Run(fmt.Sprint("np", np), func(t *testing.T) {
			cfg := ranktest.Config{Runtime: runtime.Config{Transports: []string{"self", "shm"}}}
			cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
				me := c.Rank()
				input := func(r, n, seed int) []float64 {
					rng := rand.New(rand.NewPCG(uint64(r), uint64(seed)))
					v := make([]float64, n)
					for i := range v {
						v[i] = float64(rng.IntN(1000))
					}
					return v
				}
				for seed, n := range counts {
					for _, op := range []runtime.Op{runtime.Sum, runtime.Max} {
						got := make([]float64, n)
						if err := runtime.Allreduce(c, input(me, n, seed), got, op); err != nil {
							t.Fatalf("rank %d: Allreduce of %d with %v: %v", me, n, op, err)
						}
						want := input(0, n, seed)
						for r := 1; r < np; r++ {
							in := input(r, n, seed)
							for i := range want {
								switch op {
								case runtime.Sum:
									want[i] += in[i]
								default:
									want[i] = max(want[i], in[i])
								}
							}
						}
						for i := range want {
							if got[i] != want[i] {
								t.Fatalf("rank %d: Allreduce of %d with %v: element %d is %g, want %g", me, n, op, i, got[i], want[i])
							}
						}
					}
					maps := func(r int) []affine {
						v := input(r, 2*n, seed)
						a := make([]affine, n)
						for i := range a {
							a[i] = affine{1 + float64(int(v[2*i])%9), float64(int(v[2*i+1]) % 10)}
						}
						return a
					}
					gotA := make([]affine, n)
					if err := runtime.Allreduce(c, maps(me), gotA, compose); err != nil {
						t.Fatalf("rank %d: Allreduce of %d affine maps: %v", me, n, err)
					}
					wantA := maps(0)
					for r := 1; r < np; r++ {
						for i, m := range maps(r) {
							wantA[i] = affine{wantA[i].A * m.A, wantA[i].B*m.A + m.B}
						}
					}
					for i := range wantA {
						if gotA[i] != wantA[i] {
							t.Fatalf("rank %d: Allreduce of %d affine maps: element %d is %v, want %v (out of rank order?)", me, n, i, gotA[i], wantA[i])
						}
					}
					root := seed % np
					buf := make([]int32, 2*n+1)
					if me == root {
						for i := range buf {
							buf[i] = int32(i*7 + seed)
						}
					}
					if err := runtime.Bcast(c, buf, root); err != nil {
						t.Fatalf("rank %d: Bcast of %d from %d: %v", me, len(buf), root, err)
					}
					for i, v := range buf {
						if v != int32(i*7+seed) {
							t.Fatalf("rank %d: Bcast of %d from %d: element %d is %d", me, len(buf), root, i, v)
						}
					}
				}
			})
		})
	}
}

// affine is the map x ↦ A·x + B.
type affine struct{ A, B float64 }

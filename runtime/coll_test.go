package runtime_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gorun-hpc/gorun/internal/collcheck"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// Every collective is checked against a naive version on seeded random
// input (internal/collcheck), at 1 to 9 ranks, powers of two and not.

var rankCounts = []int{1, 2, 3, 4, 5, 6, 7, 8, 9}

func checkReductions[T runtime.Elem](t *testing.T, gen func(*rand.Rand) T, cases []collcheck.OpCase[T]) {
	for _, n := range rankCounts {
		for _, m := range collcheck.Lengths {
			for _, oc := range cases {
				seed := uint64(n*1_000_003 + m*31 + int(oc.Op))
				t.Run(fmt.Sprintf("%v/np%d/len%d", oc.Op, n, m), func(t *testing.T) {
					ranktest.Run(t, n, func(t testing.TB, c *runtime.Comm) {
						if err := collcheck.Reductions(c, seed, m, gen, oc); err != nil {
							t.Fatal(err)
						}
					})
				})
			}
		}
	}
}

func TestReductionsInt64(t *testing.T) { checkReductions(t, collcheck.GenInt64, collcheck.Int64Ops) }
func TestReductionsFloat64(t *testing.T) {
	checkReductions(t, collcheck.GenFloat64, collcheck.Float64Ops)
}

func TestReductionsSmallTypes(t *testing.T) {
	if testing.Short() {
		t.Skip("long matrix")
	}
	checkReductions(t, collcheck.GenUint8, collcheck.Uint8Ops)
	checkReductions(t, collcheck.GenInt32, collcheck.Int32Ops)
	checkReductions(t, collcheck.GenComplex128, collcheck.Complex128Ops)
}

func TestDataMovement(t *testing.T) {
	for _, n := range rankCounts {
		for _, m := range collcheck.Lengths {
			seed := uint64(n*7 + m)
			t.Run(fmt.Sprintf("np%d/len%d", n, m), func(t *testing.T) {
				ranktest.Run(t, n, func(t testing.TB, c *runtime.Comm) {
					if err := collcheck.Movement(c, seed, m); err != nil {
						t.Fatal(err)
					}
				})
			})
		}
	}
}

func TestCollectiveArgErrors(t *testing.T) {
	// Argument errors on every rank are returned by every rank, without
	// hanging, and the communicator still works (one at a time on one
	// rank: TestBadInput).
	ranktest.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
		checks := []struct {
			name string
			err  error
		}{
			{"bad root", runtime.Bcast(c, []int{1}, 3)},
			{"negative root", runtime.Bcast(c, []int{1}, -1)},
			{"negative Reduce root", runtime.Reduce(c, []int{1}, []int{0}, runtime.Sum, -1)},
			{"negative Gather root", runtime.Gather(c, []int{1}, []int{0, 0, 0}, -1)},
			{"float Band", runtime.Allreduce(c, []float64{1}, []float64{0}, runtime.Band)},
			{"complex Max", runtime.Allreduce(c, []complex64{1}, []complex64{0}, runtime.Max)},
			{"bad op", runtime.Allreduce(c, []int{1}, []int{0}, runtime.Op(99))},
			{"short recv", runtime.Allreduce(c, []int{1, 2}, []int{0}, runtime.Sum)},
			{"allgather size", runtime.Allgather(c, []int{1}, []int{0})},
			{"alltoall size", runtime.Alltoall(c, []int{1, 2}, []int{0, 0})},
		}
		for _, ch := range checks {
			if !errors.Is(ch.err, runtime.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", ch.name, ch.err)
			}
		}
		// The communicator still works.
		got := []int{0}
		if err := runtime.Allreduce(c, []int{1}, got, runtime.Sum); err != nil || got[0] != 3 {
			t.Fatalf("after errors: %v %v", got, err)
		}
	})
}

func TestSerialComm(t *testing.T) {
	var c *runtime.Comm
	if c.Rank() != 0 || c.Size() != 1 {
		t.Fatal("nil comm is not rank 0 of 1")
	}
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
	out := []float64{0, 0}
	if err := runtime.Allreduce(c, []float64{1, 2}, out, runtime.Sum); err != nil || out[1] != 2 {
		t.Fatal(out, err)
	}
	if err := runtime.Bcast(c, out, 1); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Bcast root 1 on nil comm: %v", err)
	}
	d, err := c.Dup()
	if d != nil || err != nil {
		t.Fatal(d, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

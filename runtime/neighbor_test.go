package runtime_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gorun-hpc/gorun/internal/collcheck"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// The neighbour collectives against a naive model (collcheck.Neighbors:
// grids of up to three dimensions drawn from a seed, blocks of seeded
// sizes), on the configurations of the group tests; processes run them
// through collcheck.All.

func TestNeighbors(t *testing.T) {
	for _, gc := range groupConfigs {
		for _, np := range gc.nps {
			t.Run(fmt.Sprint(gc.name, "/np", np), func(t *testing.T) {
				cfg := ranktest.Config{Runtime: gc.cfg}
				cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
					seeds := uint64(12)
					if testing.Short() {
						seeds = 4
					}
					for seed := range seeds {
						for _, m := range []int{0, 1, 5} {
							if err := collcheck.Neighbors(c, seed, m); err != nil {
								t.Fatalf("seed %d, m %d: %v", seed, m, err)
							}
						}
					}
					// Rendezvous-sized blocks.
					if err := collcheck.Neighbors(c, 99, 20011); err != nil {
						t.Fatal(err)
					}
				})
			})
		}
	}
}

// The grids where a rank is its own neighbour or the same neighbour twice
// (periodic dimensions of size 1 and 2), and open ones of those sizes.
func TestNeighborsSmallPeriodic(t *testing.T) {
	for _, tc := range []struct {
		np      int
		dims    []int
		periods []bool
	}{
		{1, []int{1}, []bool{true}},
		{1, []int{1, 1}, []bool{true, false}},
		{1, nil, nil},
		{2, []int{2}, []bool{true}},
		{2, []int{2}, []bool{false}},
		{2, []int{1, 2}, []bool{true, true}},
		{3, []int{2, 1}, []bool{true, true}},
		{4, []int{2, 2}, []bool{true, true}},
		{4, []int{2, 2}, []bool{true, false}},
		{5, []int{2, 1, 2}, []bool{false, true, true}},
	} {
		for _, gc := range groupConfigs[:2] {
			if tc.np < gc.nps[0] {
				continue
			}
			t.Run(fmt.Sprint(gc.name, "/np", tc.np, tc.dims, tc.periods), func(t *testing.T) {
				cfg := ranktest.Config{Runtime: gc.cfg}
				cfg.Run(t, tc.np, func(t testing.TB, c *runtime.Comm) {
					for _, m := range []int{0, 3, 20011} {
						if err := collcheck.NeighborsGrid(c, tc.dims, tc.periods, 5, m); err != nil {
							t.Fatalf("m %d: %v", m, err)
						}
					}
				})
			})
		}
	}
}

// The serial grid, and a rank outside any grid.
func TestNeighborsSerial(t *testing.T) {
	for _, periods := range [][]bool{{true}, {false}} {
		if err := collcheck.NeighborsGrid(nil, []int{1}, periods, 3, 4); err != nil {
			t.Fatal(err)
		}
	}
	var outside *runtime.Cart
	if err := runtime.NeighborAllgather(outside, []int{1}, nil); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("NeighborAllgather on a nil grid: %v, want ErrInvalid", err)
	}
}

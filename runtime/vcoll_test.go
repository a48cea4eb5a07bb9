package runtime_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/internal/collcheck"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// The v-collectives against a naive model (collcheck.Varied: seeded random
// counts and displacements, gaps, empty blocks), on one node and over the
// real transports across two emulated nodes; processes run them through
// collcheck.All.

func TestVCollectives(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		for _, np := range []int{1, 2, 3, 4} {
			if np < sc.cfg.LocalNodes {
				continue
			}
			t.Run(fmt.Sprint(sc.name, "/np", np), func(t *testing.T) {
				cfg := ranktest.Config{Runtime: sc.cfg}
				cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
					for seed := range uint64(8) {
						if err := collcheck.Varied(c, seed); err != nil {
							t.Fatalf("seed %d: %v", seed, err)
						}
					}
				})
			})
		}
	}
}

// Bad counts on one rank of a one-node communicator: the same ErrInvalid
// on every rank, and the communicator still works.
func TestVCollectivesBadInput(t *testing.T) {
	errs := make([]error, 3)
	ranktest.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
		counts, displs := []int{1, 1, 1}, []int{0, 1, 2}
		if c.Rank() == 1 {
			counts = counts[:2]
		}
		errs[c.Rank()] = runtime.Allgatherv(c, []int32{1}, make([]int32, 3), counts, displs)
		if err := c.Barrier(); err != nil {
			t.Fatal(err)
		}
	})
	for r, err := range errs {
		if !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("rank %d: %v, want ErrInvalid", r, err)
		}
	}
	if !slices.EqualFunc(errs[1:], errs[:2], func(a, b error) bool { return a != nil && b != nil && trimRank(a) == trimRank(b) }) {
		t.Errorf("the ranks' errors differ: %v", errs)
	}
}

// trimRank is an error's text without the caller's "world rank N" prefix.
func trimRank(err error) string {
	_, cause, _ := strings.Cut(err.Error(), "invalid argument:")
	return cause
}

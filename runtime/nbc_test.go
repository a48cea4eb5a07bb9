package runtime_test

import (
	"fmt"
	"testing"

	"github.com/gorun-hpc/gorun/internal/collcheck"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// The nonblocking collectives against the naive versions (collcheck.
// Nonblocking: all in progress at once, a blocking Allreduce among them,
// completed in reverse order or as they finish), at 1 to 9 ranks, on one
// node and over the real transports across two emulated nodes; processes
// run them through collcheck.All.
func TestNonblockingCollectives(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		for _, np := range rankCounts {
			if np < sc.cfg.LocalNodes {
				continue
			}
			t.Run(fmt.Sprint(sc.name, "/np", np), func(t *testing.T) {
				cfg := ranktest.Config{Runtime: sc.cfg}
				cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
					for _, m := range []int{0, 1, 7, 20011} {
						for seed := range uint64(2) {
							if err := collcheck.Nonblocking(c, seed+uint64(31*m+np), m); err != nil {
								t.Fatalf("len %d seed %d: %v", m, seed, err)
							}
						}
					}
				})
			})
		}
	}
}

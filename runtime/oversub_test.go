package runtime_test

import (
	"fmt"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

func init() { ranktest.Register("oversub-report", oversubReport) }

// oversubReport prints whether this rank's waits yield, after a Barrier and
// an Allreduce, which must still be right.
func oversubReport(c *runtime.Comm) error {
	if err := c.Barrier(); err != nil {
		return err
	}
	in, out := []int64{int64(c.Rank())}, []int64{0}
	if err := runtime.Allreduce(c, in, out, runtime.Sum); err != nil {
		return err
	}
	if n := int64(c.Size()); out[0] != n*(n-1)/2 {
		return fmt.Errorf("rank %d: Allreduce sum of ranks is %d, want %d", c.Rank(), out[0], n*(n-1)/2)
	}
	fmt.Printf("rank %d yielding=%v\n", c.Rank(), runtime.Yielding(c))
	return nil
}

// The ranks of a node with more ranks than CPUs detect it at Init and
// yield between polls; GORUN_YIELD overrides the detection either way.
func TestProcessOversubscribed(t *testing.T) {
	cpus := goruntime.NumCPU() // the affinity set the ranks inherit
	if cpus+1 > 8 {
		t.Skipf("%d CPUs: oversubscribing them takes more than 8 process ranks", cpus)
	}
	for _, tc := range []struct {
		name string
		n    int
		env  []string
		want bool
	}{
		{"a CPU each", cpus, nil, false},
		{"more ranks than CPUs", cpus + 1, nil, true},
		{"forced on", 2, []string{runtime.EnvYield + "=1"}, true},
		{"forced off", cpus + 1, []string{runtime.EnvYield + "=0"}, false},
		{"two emulated nodes of one host", cpus + 1, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ranktest.SpawnConfig{Env: tc.env}
			if tc.name == "two emulated nodes of one host" {
				cfg.Nodes = 2 // they share the host's CPUs
			}
			out := cfg.Spawn(t, tc.n, "oversub-report")
			if got := strings.Count(out, fmt.Sprintf("yielding=%v", tc.want)); got != tc.n {
				t.Fatalf("want %d ranks with yielding=%v:\n%s", tc.n, tc.want, out)
			}
		})
	}
}

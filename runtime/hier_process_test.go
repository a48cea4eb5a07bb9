package runtime_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// The node-aware collectives on real processes over emulated nodes
// (gorun --nodes).

func init() {
	ranktest.Register("hier-suite", hierSuite)
}

func hierSuite(c *runtime.Comm) error {
	// The data-moving collectives that are not node-aware run too, on
	// the shortest lengths only.
	for _, m := range []int{0, 7, 1000, 20011} {
		if err := hierCheck(c, uint64(c.Size()*31+m), m, m > 7); err != nil {
			return err
		}
	}
	if err := checkHierShape(c); err != nil {
		return err
	}
	_, node, leaders, _ := runtime.HierState(c)
	fmt.Printf("rank %d of %d hier ok, node of %d, leader %v\n", c.Rank(), c.Size(), node.Size(), leaders != nil)
	return nil
}

func TestHierProcesses(t *testing.T) {
	for _, nk := range [][2]int{{4, 2}, {6, 3}, {5, 2}} {
		n, k := nk[0], nk[1]
		t.Run(fmt.Sprintf("np%d/nodes%d", n, k), func(t *testing.T) {
			cfg := ranktest.SpawnConfig{Nodes: k}
			out := cfg.Spawn(t, n, "hier-suite")
			if got := strings.Count(out, " hier ok,"); got != n {
				t.Fatalf("%d ranks reported ok, want %d:\n%s", got, n, out)
			}
			if got := strings.Count(out, "leader true"); got != k {
				t.Fatalf("%d leaders, want %d:\n%s", got, k, out)
			}
		})
	}
}

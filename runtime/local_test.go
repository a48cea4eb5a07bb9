package runtime_test

import (
	"fmt"
	"testing"

	"github.com/gorun-hpc/gorun/internal/collcheck"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// Goroutine ranks over the real transports: shared-memory rings inside an
// emulated node, TCP between nodes.
func TestInitLocalRealTransports(t *testing.T) {
	for _, tc := range []struct {
		transports []string
		nodes      int
		want       func(same bool) string
	}{
		{[]string{"self", "shm", "tcp"}, 2, func(same bool) string {
			if same {
				return "shmring"
			}
			return "tcp"
		}},
		{[]string{"self", "tcp"}, 1, func(bool) string { return "tcp" }},
	} {
		t.Run(fmt.Sprint(tc.transports, tc.nodes), func(t *testing.T) {
			cfg := ranktest.Config{Runtime: runtime.Config{Transports: tc.transports, LocalNodes: tc.nodes}}
			cfg.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
				for r := range c.Size() {
					if r == c.Rank() {
						continue
					}
					same := r/2 == c.Rank()/2 || tc.nodes == 1
					if got, want := runtime.TransportTo(c, r), tc.want(same); got != want {
						t.Errorf("rank %d reaches %d over %s, want %s", c.Rank(), r, got, want)
					}
				}
				if err := collcheck.All(c, 7, []int{0, 7, 20011}); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

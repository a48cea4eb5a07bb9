package runtime_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// The collectives' shared segment comes without a name where /proc lets
// ranks open each other's memfd, and through a job-tagged name, removed
// once every rank has it, where it does not.

func init() {
	ranktest.Register("named-fallback", func(c *runtime.Comm) error {
		if c.Rank() != 0 {
			runtime.RefuseOpenPeer()
		}
		v := []int64{int64(c.Rank())}
		if err := runtime.Allreduce(c, v, v, runtime.Sum); err != nil {
			return err
		}
		if want := int64(c.Size() * (c.Size() - 1) / 2); v[0] != want {
			return fmt.Errorf("Allreduce gave %d, want %d", v[0], want)
		}
		shared, _ := runtime.NodeCollState(c)
		entries, _ := os.ReadDir("/dev/shm")
		var names []string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "gorun-"+os.Getenv("GORUN_JOB_ID")) {
				names = append(names, e.Name())
			}
		}
		fmt.Printf("rank %d shared=%v named=%d names=%v\n", c.Rank(), shared, runtime.NamedShares(), names)
		return c.Barrier()
	})
}

func TestSharedSegmentNamedFallback(t *testing.T) {
	out := ranktest.Spawn(t, 3, "named-fallback")
	if strings.Count(out, "shared=true named=1 names=[]") != 3 {
		t.Fatalf("want every rank on the shared segment with no name left:\n%s", out)
	}
}

package runtime_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/internal/collcheck"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// These tests run ranks as real processes over TCP (ranktest.Spawn
// re-executes this test binary), where the goroutine tests above use the
// in-process transport.

func init() {
	ranktest.Register("tcp-suite", tcpSuite)
	ranktest.Register("tcp-truncate", tcpTruncate)
}

func tcpSuite(c *runtime.Comm) error {
	n, r := c.Size(), c.Rank()
	next, prev := (r+1)%n, (r-1+n)%n
	// A ring of eager and rendezvous messages.
	for _, m := range []int{0, 1, 1000, 300_000} {
		out := make([]int32, m)
		for i := range out {
			out[i] = int32(r*1_000_000 + i)
		}
		in := make([]int32, m)
		rq, err := runtime.Irecv(c, in, prev, m)
		if err != nil {
			return err
		}
		if err := runtime.Send(c, out, next, m); err != nil {
			return err
		}
		st, err := rq.Wait()
		if err != nil {
			return err
		}
		if st.Count != m || st.Source != prev {
			return fmt.Errorf("ring %d: status %+v", m, st)
		}
		for i, v := range in {
			if v != int32(prev*1_000_000+i) {
				return fmt.Errorf("ring %d: element %d = %d", m, i, v)
			}
		}
	}
	// Every collective against its naive version, both Allreduce algorithms.
	if err := collcheck.All(c, 11, []int{1, 20011}); err != nil {
		return err
	}
	// Split into even and odd ranks; each half sums its world ranks.
	half, err := c.Split(r%2, r)
	if err != nil {
		return err
	}
	defer half.Close()
	sum := []int{0}
	if err := runtime.Allreduce(half, []int{r}, sum, runtime.Sum); err != nil {
		return err
	}
	want := 0
	for q := r % 2; q < n; q += 2 {
		want += q
	}
	if sum[0] != want {
		return fmt.Errorf("split allreduce = %d, want %d", sum[0], want)
	}
	node, err := c.SplitShared()
	if err != nil {
		return err
	}
	defer node.Close()
	// Peers on this node are reached over shared memory, the others over
	// TCP, unless GORUN_TRANSPORTS says otherwise.
	route := map[bool]string{true: "shmring", false: "tcp"}
	if os.Getenv("GORUN_TRANSPORTS") == "self,tcp" {
		route[true] = "tcp"
	}
	for q := range n {
		if q == r {
			continue
		}
		local := runtime.NodeOfWorldRank(c, c.WorldRank(q)) == runtime.NodeOfWorldRank(c, c.WorldRank(r))
		if got := runtime.TransportTo(c, q); got != route[local] {
			return fmt.Errorf("rank %d is reached over %s, want %s", q, got, route[local])
		}
	}
	fmt.Printf("rank %d of %d ok, %d on my node\n", r, n, node.Size())
	return nil
}

func tcpTruncate(c *runtime.Comm) error {
	if c.Rank() == 0 {
		for _, m := range []int{100, 100_000} {
			if err := runtime.Send(c, make([]byte, m), 1, 0); err != nil {
				return err
			}
		}
		return nil
	}
	if c.Rank() == 1 {
		for _, m := range []int{100, 100_000} {
			_, err := runtime.Recv(c, make([]byte, m-1), 0, 0)
			if !errors.Is(err, runtime.ErrTruncated) {
				return fmt.Errorf("receive of %d bytes into %d: %v, want ErrTruncated", m, m-1, err)
			}
		}
	}
	return nil
}

func TestProcessRanks(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			out := ranktest.Spawn(t, n, "tcp-suite")
			if got := strings.Count(out, " ok,"); got != n {
				t.Fatalf("%d ranks reported ok, want %d:\n%s", got, n, out)
			}
		})
	}
}

func TestProcessEmulatedNodes(t *testing.T) {
	cfg := ranktest.SpawnConfig{Nodes: 2}
	out := cfg.Spawn(t, 4, "tcp-suite")
	if got := strings.Count(out, "2 on my node"); got != 4 {
		t.Fatalf("want every rank on a node of 2:\n%s", out)
	}
}

func TestProcessTCPOnly(t *testing.T) {
	cfg := ranktest.SpawnConfig{Nodes: 2, Transports: "self,tcp"}
	out := cfg.Spawn(t, 4, "tcp-suite")
	if got := strings.Count(out, " ok,"); got != 4 {
		t.Fatalf("%d ranks reported ok, want 4:\n%s", got, out)
	}
}

func TestProcessTruncation(t *testing.T) {
	ranktest.Spawn(t, 2, "tcp-truncate")
}

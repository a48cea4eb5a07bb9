package runtime_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

func init() {
	ranktest.Register("large", large)
}

// large exchanges rendezvous messages between every pair of ranks, with
// the receive posted before and after the message arrives, checks every
// element, and reports how many arrived by single copy. With
// GORUN_TEST_REFUSE_CMA set, every single copy fails as a kernel that
// forbids process_vm_readv would.
func large(c *runtime.Comm) error {
	if os.Getenv("GORUN_TEST_REFUSE_CMA") != "" {
		runtime.RefuseSingleCopy()
	}
	n, r := c.Size(), c.Rank()
	for _, m := range []int{100_000, 3_000_000} {
		for d := 1; d < n; d++ {
			to, from := (r+d)%n, (r-d+n)%n
			out := make([]int32, m)
			for i := range out {
				out[i] = int32(r*7 + i)
			}
			in := make([]int32, m)
			// Even rounds post the receive first; odd ones let the RTS
			// arrive unexpected.
			var rq *runtime.Request
			var err error
			if d%2 == 0 {
				if rq, err = runtime.Irecv(c, in, from, m); err != nil {
					return err
				}
			}
			sq, err := runtime.Isend(c, out, to, m)
			if err != nil {
				return err
			}
			if d%2 == 1 {
				if err := c.Barrier(); err != nil {
					return err
				}
				if rq, err = runtime.Irecv(c, in, from, m); err != nil {
					return err
				}
			}
			if err := runtime.Waitall(rq, sq); err != nil {
				return err
			}
			for i, v := range in {
				if v != int32(from*7+i) {
					return fmt.Errorf("%d elements from rank %d: element %d = %d", m, from, i, v)
				}
			}
		}
	}
	fmt.Printf("rank %d: %d single copies\n", r, runtime.SingleCopies())
	return nil
}

// TestSingleCopy: with "cma" among the transports, rendezvous messages
// between ranks of one node are copied straight from the sender's buffer;
// by default, across nodes, or when the kernel refuses, they come through
// the ring or the socket; the data is right in every case.
func TestSingleCopy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    ranktest.SpawnConfig
		single bool
	}{
		{"on", ranktest.SpawnConfig{Transports: "self,shm,cma"}, true},
		{"refused", ranktest.SpawnConfig{Transports: "self,shm,cma", Env: []string{"GORUN_TEST_REFUSE_CMA=1"}}, false},
		{"default", ranktest.SpawnConfig{}, false},
		{"tcp", ranktest.SpawnConfig{Nodes: 3, Transports: "self,tcp,cma"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.cfg.Spawn(t, 3, "large")
			for r := range 3 {
				var copies int
				line := fmt.Sprintf("rank %d: ", r)
				i := strings.Index(out, line)
				if i < 0 {
					t.Fatalf("no report from rank %d:\n%s", r, out)
				}
				fmt.Sscanf(out[i+len(line):], "%d", &copies)
				// 2 sizes × 2 peers.
				if tc.single && copies != 4 || !tc.single && copies != 0 {
					t.Errorf("rank %d: %d single copies, want %v:\n%s", r, copies, map[bool]int{true: 4, false: 0}[tc.single], out)
				}
			}
		})
	}
}

func init() {
	ranktest.Register("node-counts", nodeCounts)
}

// nodeCounts: an Allreduce or Bcast whose ranks pass different counts
// returns the same error on every rank, and the communicator goes on
// working.
func nodeCounts(c *runtime.Comm) error {
	in := make([]float64, 1+c.Rank()%2)
	out := make([]float64, len(in))
	err := runtime.Allreduce(c, in, out, runtime.Sum)
	if !errors.Is(err, runtime.ErrInvalid) {
		return fmt.Errorf("Allreduce with mismatched counts: %v, want ErrInvalid", err)
	}
	fmt.Printf("rank %d: %v\n", c.Rank(), errors.Unwrap(err))
	if err := runtime.Bcast(c, make([]byte, 3+c.Rank()), 0); !errors.Is(err, runtime.ErrInvalid) {
		return fmt.Errorf("Bcast with mismatched counts: %v, want ErrInvalid", err)
	}
	b := []byte("xxxxx")
	if c.Rank() == 1 {
		copy(b, "hello")
	}
	if err := runtime.Bcast(c, b, 1); err != nil || string(b) != "hello" {
		return fmt.Errorf("Bcast after the error: %q, %v", b, err)
	}
	sum := []int{0}
	if err := runtime.Allreduce(c, []int{c.Rank()}, sum, runtime.Sum); err != nil {
		return err
	}
	if want := c.Size() * (c.Size() - 1) / 2; sum[0] != want {
		return fmt.Errorf("Allreduce after the error = %d, want %d", sum[0], want)
	}
	return c.Barrier()
}

// TestNodeCollectiveCounts runs nodeCounts on one node, where Barrier and
// Allreduce go through a shared segment.
func TestNodeCollectiveCounts(t *testing.T) {
	out := ranktest.Spawn(t, 3, "node-counts")
	var msgs []string
	for r := range 3 {
		line := fmt.Sprintf("rank %d: ", r)
		i := strings.Index(out, line)
		if i < 0 {
			t.Fatalf("no report from rank %d:\n%s", r, out)
		}
		msg, _, _ := strings.Cut(out[i+len(line):], "\n")
		msgs = append(msgs, msg)
	}
	if msgs[0] != msgs[1] || msgs[1] != msgs[2] || !strings.Contains(msgs[0], "different counts") {
		t.Fatalf("the ranks report different errors, or not the counts:\n%s", out)
	}
}

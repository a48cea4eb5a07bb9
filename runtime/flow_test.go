package runtime_test

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// Flow control: a sender cannot make its receiver hold more than the budget
// of unreceived eager data, messages keep their order when some go eager
// and some by rendezvous, and ranks that both send first do not deadlock.

// flood has rank 0 post n messages of size bytes (the first 8 bytes their
// number, the rest 0xa5) to rank 1 before rank 1 posts any receive, then
// tell rank 1 on tag 2; rank 1 then receives them all and checks them. It
// returns rank 1's peak of unreceived eager data.
func flood(c *runtime.Comm, n int, size func(i int) int) (int64, error) {
	switch c.Rank() {
	case 0:
		reqs := make([]*runtime.Request, n)
		for i := range n {
			b := make([]byte, size(i))
			for j := range b {
				b[j] = 0xa5
			}
			if len(b) >= 8 {
				putInt(b, i)
			}
			r, err := runtime.Isend(c, b, 1, 1)
			if err != nil {
				return 0, err
			}
			reqs[i] = r
		}
		if err := runtime.Send(c, []byte{1}, 1, 2); err != nil {
			return 0, err
		}
		return 0, runtime.Waitall(reqs...)
	case 1:
		if _, err := runtime.Recv(c, make([]byte, 1), 0, 2); err != nil {
			return 0, err
		}
		for i := range n {
			b := make([]byte, size(i)+1)
			st, err := runtime.Recv(c, b, 0, 1)
			if err != nil {
				return 0, err
			}
			if st.Bytes != size(i) {
				return 0, fmt.Errorf("message %d has %d bytes, want %d (out of order?)", i, st.Bytes, size(i))
			}
			b = b[:st.Bytes]
			if len(b) >= 8 && getInt(b) != i {
				return 0, fmt.Errorf("message %d arrived as number %d", getInt(b), i)
			}
			for j := 8; j < len(b); j++ {
				if b[j] != 0xa5 {
					return 0, fmt.Errorf("message %d byte %d = %#x", i, j, b[j])
				}
			}
		}
		return runtime.UnexpectedPeak(c), nil
	}
	return 0, nil
}

func putInt(b []byte, v int) {
	for k := range 8 {
		b[k] = byte(v >> (8 * k))
	}
}

func getInt(b []byte) int {
	v := 0
	for k := range 8 {
		v |= int(b[k]) << (8 * k)
	}
	return v
}

func TestEagerBudget(t *testing.T) {
	const budget = 64 << 10
	for _, tc := range []struct {
		name string
		size func(i int) int
	}{
		{"1KiB", func(int) int { return 1024 }},
		{"mixed", func(i int) int { return (i * 977) % 5000 }}, // empty to 5000 bytes
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ranktest.Config{Runtime: runtime.Config{EagerBudget: budget}}
			cfg.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
				peak, err := flood(c, 2000, tc.size)
				if err != nil {
					t.Fatal(err)
				}
				if c.Rank() == 1 && peak > budget {
					t.Errorf("the receiver held %d bytes of unreceived eager data; the budget is %d", peak, budget)
				}
			})
		})
	}
}

func TestEagerBudgetExchange(t *testing.T) {
	// Both ranks post all their sends before any receive: past the budget
	// the sends go by rendezvous, and complete once the receives come.
	cfg := ranktest.Config{Runtime: runtime.Config{EagerBudget: 32 << 10}}
	cfg.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		const n = 500
		peer := 1 - c.Rank()
		var reqs []*runtime.Request
		for i := range n {
			r, err := runtime.Isend(c, []int64{int64(i), int64(c.Rank())}, peer, 3)
			if err != nil {
				t.Fatal(err)
			}
			reqs = append(reqs, r)
		}
		got := make([][]int64, n)
		for i := range n {
			got[i] = make([]int64, 2)
			r, err := runtime.Irecv(c, got[i], peer, 3)
			if err != nil {
				t.Fatal(err)
			}
			reqs = append(reqs, r)
		}
		if err := runtime.Waitall(reqs...); err != nil {
			t.Fatal(err)
		}
		for i, g := range got {
			if g[0] != int64(i) || g[1] != int64(peer) {
				t.Fatalf("message %d = %v", i, g)
			}
		}
	})
}

func TestEagerBudgetBlockingSends(t *testing.T) {
	// The usual unsafe-but-common exchange: both ranks Send, then Recv.
	// Within the budget it works, as eager sends do in every MPI.
	ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		peer := 1 - c.Rank()
		for i := range 1000 {
			if err := runtime.Send(c, []int64{int64(i)}, peer, 4); err != nil {
				t.Fatal(err)
			}
			got := []int64{0}
			if _, err := runtime.Recv(c, got, peer, 4); err != nil || got[0] != int64(i) {
				t.Fatalf("round %d: %v %v", i, got, err)
			}
		}
	})
}

func init() {
	ranktest.Register("flood", func(c *runtime.Comm) error {
		// The flood is 10,000 messages (GORUN_TEST_FLOOD_N=10000);
		// 2,000 show the bound in a fifth of the time.
		n, _ := strconv.Atoi(os.Getenv("GORUN_TEST_FLOOD_N"))
		if n <= 0 {
			n = 2000
		}
		peak, err := flood(c, n, func(int) int { return 64 << 10 })
		if err != nil || c.Rank() != 1 {
			return err
		}
		fmt.Printf("FLOOD unexpected-peak=%d budget=%d peak-rss-kib=%d\n", peak, runtime.EagerBudget(c), peakRSS())
		return nil
	})
}

// peakRSS returns this process's peak resident set (VmHWM) in KiB.
func peakRSS() int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return -1
}

func TestFloodProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 130 MB")
	}
	// The flood, 64 KiB messages sent before any receive. Without
	// flow control the receiver grew to 650 MB for 10,000 of them.
	for _, tc := range []struct {
		name string
		cfg  ranktest.SpawnConfig
	}{
		{"shm", ranktest.SpawnConfig{}},
		{"tcp", ranktest.SpawnConfig{Transports: "self,tcp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Env = []string{"GORUN_TEST_FLOOD_N=" + os.Getenv("GORUN_TEST_FLOOD_N")}
			out := tc.cfg.Spawn(t, 2, "flood")
			var peak, budget, rss int64
			i := strings.Index(out, "FLOOD ")
			if i < 0 {
				t.Fatalf("no report:\n%s", out)
			}
			if _, err := fmt.Sscanf(out[i:], "FLOOD unexpected-peak=%d budget=%d peak-rss-kib=%d", &peak, &budget, &rss); err != nil {
				t.Fatalf("bad report: %v\n%s", err, out)
			}
			t.Logf("receiver: unexpected data peak %d bytes (budget %d), peak RSS %d KiB", peak, budget, rss)
			if peak > budget {
				t.Errorf("the receiver held %d bytes of unreceived eager data; the budget is %d", peak, budget)
			}
		})
	}
}

package runtime_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

func TestDupIsolation(t *testing.T) {
	// A message on the parent never matches a receive on the duplicate.
	ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		d, err := c.Dup()
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if d.Rank() != c.Rank() || d.Size() != c.Size() || d.Name() != "world.dup" {
			t.Fatalf("dup: rank %d size %d name %q", d.Rank(), d.Size(), d.Name())
		}
		if c.Rank() == 0 {
			if err := runtime.Send(c, []int{1}, 1, 0); err != nil {
				t.Fatal(err)
			}
			if err := runtime.Send(d, []int{2}, 1, 0); err != nil {
				t.Fatal(err)
			}
			return
		}
		v := []int{0}
		if _, err := runtime.Recv(d, v, 0, 0); err != nil || v[0] != 2 {
			t.Fatalf("dup recv: %v %v", v, err)
		}
		if _, err := runtime.Recv(c, v, 0, 0); err != nil || v[0] != 1 {
			t.Fatalf("world recv: %v %v", v, err)
		}
	})
}

func TestSplit(t *testing.T) {
	ranktest.Run(t, 7, func(t testing.TB, c *runtime.Comm) {
		r := c.Rank()
		color := r % 3
		if r == 6 {
			color = runtime.Undefined
		}
		s, err := c.Split(color, -r) // reverse order within each color
		if err != nil {
			t.Fatal(err)
		}
		if r == 6 {
			if s != nil {
				t.Fatal("Undefined color got a communicator")
			}
			return
		}
		var members []int
		for q := 5; q >= 0; q-- {
			if q%3 == color {
				members = append(members, q)
			}
		}
		if s.Size() != len(members) {
			t.Fatalf("size %d, want %d", s.Size(), len(members))
		}
		for i, q := range members {
			if s.WorldRank(i) != q {
				t.Fatalf("rank %d of split is world %d, want %d", i, s.WorldRank(i), q)
			}
			if q == r && s.Rank() != i {
				t.Fatalf("my rank %d, want %d", s.Rank(), i)
			}
		}
		sum := []int{0}
		if err := runtime.Allreduce(s, []int{r}, sum, runtime.Sum); err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, q := range members {
			want += q
		}
		if sum[0] != want {
			t.Fatalf("sum %d, want %d", sum[0], want)
		}
		// Nested split and dup keep working and stay isolated.
		d, err := s.Dup()
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Barrier(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if err := s.Barrier(); !errors.Is(err, runtime.ErrClosed) {
			t.Fatalf("Barrier on closed comm: %v", err)
		}
		if err := d.Barrier(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSplitShared(t *testing.T) {
	ranktest.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
		s, err := c.SplitShared()
		if err != nil {
			t.Fatal(err)
		}
		if s.Size() != 3 || s.Rank() != c.Rank() {
			t.Fatalf("in-process ranks share a node: size %d rank %d", s.Size(), s.Rank())
		}
	})
}

func TestSplitSharedEmulatedNodes(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{4, 2}, {7, 3}, {3, 3}} {
		cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: tc.k}}
		cfg.Run(t, tc.n, func(t testing.TB, c *runtime.Comm) {
			s, err := c.SplitShared()
			if err != nil {
				t.Fatal(err)
			}
			// Every node gets n/k or n/k+1 consecutive ranks.
			if s.Size() != tc.n/tc.k && s.Size() != tc.n/tc.k+1 {
				t.Fatalf("%d ranks on %d nodes: node of size %d", tc.n, tc.k, s.Size())
			}
			for i := 1; i < s.Size(); i++ {
				if s.WorldRank(i) != s.WorldRank(i-1)+1 {
					t.Fatalf("node members %d and %d not consecutive", s.WorldRank(i-1), s.WorldRank(i))
				}
			}
			sizes := make([]int, c.Size())
			if err := runtime.Allgather(c, []int{s.Size()}, sizes); err != nil {
				t.Fatal(err)
			}
			nodes, total := 0, 0
			for r := 0; r < c.Size(); r += sizes[r] {
				total += sizes[r]
				nodes++
			}
			if total != tc.n || nodes != tc.k {
				t.Fatalf("node sizes %v do not tile %d ranks in %d nodes", sizes, tc.n, tc.k)
			}
		})
	}
}

func TestAbortUnblocks(t *testing.T) {
	// A rank blocked in Recv returns ErrAborted, naming the cause, when
	// another rank aborts.
	ranktest.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
		if c.Rank() == 2 {
			time.Sleep(20 * time.Millisecond)
			c.Abort(errors.New("giving up"))
			return
		}
		_, err := runtime.Recv(c, []int{0}, 2, 0)
		if !errors.Is(err, runtime.ErrAborted) {
			t.Fatalf("Recv: %v, want ErrAborted", err)
		}
		if want := "giving up"; !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not name the cause %q", err, want)
		}
		// Later calls fail the same way.
		if err := c.Barrier(); !errors.Is(err, runtime.ErrAborted) {
			t.Fatalf("Barrier after abort: %v", err)
		}
	})
}

func TestWatchdog(t *testing.T) {
	cfg := ranktest.Config{Runtime: runtime.Config{Timeout: 100 * time.Millisecond}}
	cfg.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		if c.Rank() == 1 {
			// Never sends; rank 0's receive trips the watchdog.
			_, err := runtime.Recv(c, []int{0}, 0, 0)
			if !errors.Is(err, runtime.ErrAborted) {
				t.Fatalf("rank 1: %v", err)
			}
			return
		}
		_, err := runtime.Recv(c, []int{0}, 1, 0)
		if !errors.Is(err, runtime.ErrAborted) || !strings.Contains(err.Error(), "watchdog") {
			t.Fatalf("Recv: %v, want a watchdog abort", err)
		}
	})
}

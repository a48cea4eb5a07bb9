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

func TestReduceScatter(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		for _, np := range []int{1, 3, 4} {
			if np < sc.cfg.LocalNodes {
				continue
			}
			t.Run(fmt.Sprint(sc.name, "/np", np), func(t *testing.T) {
				cfg := ranktest.Config{Runtime: sc.cfg}
				cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
					n, me := c.Size(), c.Rank()
					v := func(from, to, i int) int64 { return int64(from*1000 + to*10 + i) }
					counts := make([]int, n)
					for i := range counts {
						counts[i] = i % 3 // 0, 1, 2, 0: empty blocks too
					}
					var send []int64
					for j := range n {
						for i := range counts[j] {
							send = append(send, v(me, j, i))
						}
					}
					for _, op := range []runtime.Op{runtime.Sum, runtime.Max} {
						recv := make([]int64, counts[me])
						if err := runtime.ReduceScatter(c, send, recv, counts, op); err != nil {
							t.Fatal(err)
						}
						for i := range recv {
							want := v(0, me, i)
							for r := 1; r < n; r++ {
								if op == runtime.Sum {
									want += v(r, me, i)
								} else {
									want = max(want, v(r, me, i))
								}
							}
							if recv[i] != want {
								t.Errorf("rank %d %v: recv[%d] = %d, want %d", me, op, i, recv[i], want)
							}
						}
					}
					blk := make([]float64, 2)
					in := make([]float64, 2*n)
					for i := range in {
						in[i] = float64(me + i)
					}
					if err := runtime.ReduceScatterBlock(c, in, blk, runtime.Sum); err != nil {
						t.Fatal(err)
					}
					for i := range blk {
						want := 0.0
						for r := range n {
							want += float64(r + 2*me + i)
						}
						if blk[i] != want {
							t.Errorf("rank %d: block[%d] = %v, want %v", me, i, blk[i], want)
						}
					}
				})
			})
		}
	}
}

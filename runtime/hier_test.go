package runtime_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorun-hpc/gorun/internal/collcheck"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// The node-aware Barrier, Bcast and Allreduce (hier.go) are checked against
// the naive versions at 1 to 9 ranks on 1, 2 and 3 emulated nodes, and
// their structure is checked: only the leaders communicator, one rank per
// node, carries messages between nodes.

var (
	hierSum64 = collcheck.OpCase[int64]{Op: runtime.Sum, F: func(a, b int64) int64 { return a + b }}
	hierSumF  = collcheck.OpCase[float64]{Op: runtime.Sum, F: func(a, b float64) float64 { return a + b }, Tol: 1e-9}
)

// hierCheck runs the checks of one length on c: Bcast from every root
// and the other movements (unless short), Allreduce of int64 and float64
// sums (exact, in place, bit-identical on every rank; Reduce and Scan come
// along), a Bcast of float64 from every root, and Barrier.
func hierCheck(c *runtime.Comm, seed uint64, m int, short bool) error {
	if !short {
		if err := collcheck.Movement(c, seed, m); err != nil {
			return err
		}
	}
	if err := collcheck.Reductions(c, seed, m, collcheck.GenInt64, hierSum64); err != nil {
		return err
	}
	if err := collcheck.Reductions(c, seed, m, collcheck.GenFloat64, hierSumF); err != nil {
		return err
	}
	for root := range c.Size() {
		want := collcheck.Input(seed+3, root, m, collcheck.GenFloat64)
		buf := make([]float64, m)
		if c.Rank() == root {
			copy(buf, want)
		}
		if err := runtime.Bcast(c, buf, root); err != nil {
			return err
		}
		if err := collcheck.Equal(buf, want, 0); err != nil {
			return fmt.Errorf("Bcast float64 from %d len %d: %w", root, m, err)
		}
	}
	return c.Barrier()
}

func TestHierCollectives(t *testing.T) {
	// With -short (for -race), the flat one-node case is left to the
	// flat tests, and so are the collectives that are not node-aware;
	// 6 and 8 ranks add no new shape of nodes.
	for _, n := range rankCounts {
		for _, k := range []int{1, 2, 3} {
			if k > n || testing.Short() && (k == 1 || n == 6 || n == 8) {
				continue
			}
			t.Run(fmt.Sprintf("np%d/nodes%d", n, k), func(t *testing.T) {
				cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: k}}
				cfg.Run(t, n, func(t testing.TB, c *runtime.Comm) {
					for _, m := range collcheck.Lengths {
						if err := hierCheck(c, uint64(n*1009+k*101+m), m, testing.Short()); err != nil {
							t.Fatal(err)
						}
					}
				})
			})
		}
	}
}

func TestHierBarrierOrders(t *testing.T) {
	// No rank leaves Barrier before every rank has entered it.
	for _, nk := range [][2]int{{4, 2}, {5, 2}, {7, 3}, {9, 3}} {
		n, k := nk[0], nk[1]
		t.Run(fmt.Sprintf("np%d/nodes%d", n, k), func(t *testing.T) {
			const rounds = 50
			var entered [rounds]atomic.Int32
			cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: k}}
			cfg.Run(t, n, func(t testing.TB, c *runtime.Comm) {
				rng := rand.New(rand.NewPCG(uint64(c.Rank()), 1))
				for i := range rounds {
					if rng.IntN(4) == 0 {
						for range rng.IntN(1000) {
							_ = rng.Int() // a little skew
						}
					}
					entered[i].Add(1)
					if err := c.Barrier(); err != nil {
						t.Fatal(err)
					}
					if got := entered[i].Load(); got != int32(n) {
						t.Fatalf("round %d: left Barrier with %d of %d ranks entered", i, got, n)
					}
				}
			})
		})
	}
}

// checkHierShape checks c's sub-communicators: the node communicator holds
// exactly the ranks of c on this rank's node, in order, and the leaders
// communicator (on leaders only) holds the lowest rank of c of each node.
func checkHierShape(c *runtime.Comm) error {
	hier, node, leaders, _ := runtime.HierState(c)
	if !hier || node == nil {
		return fmt.Errorf("hierarchical %v, node %v: want a node-aware comm with sub-communicators", hier, node)
	}
	mine := runtime.NodeOfWorldRank(c, c.WorldRank(c.Rank()))
	var members []int
	lowest := map[string]int{}
	var leaderRanks []int
	for q := range c.Size() {
		id := runtime.NodeOfWorldRank(c, c.WorldRank(q))
		if id == mine {
			members = append(members, c.WorldRank(q))
		}
		if _, ok := lowest[id]; !ok {
			lowest[id] = q
			leaderRanks = append(leaderRanks, c.WorldRank(q))
		}
	}
	if node.Size() != len(members) {
		return fmt.Errorf("node comm has %d ranks, want %d", node.Size(), len(members))
	}
	for i, wr := range members {
		if node.WorldRank(i) != wr {
			return fmt.Errorf("node comm rank %d is world rank %d, want %d", i, node.WorldRank(i), wr)
		}
	}
	if node.WorldRank(node.Rank()) != c.WorldRank(c.Rank()) {
		return fmt.Errorf("node comm rank %d is not me", node.Rank())
	}
	isLeader := lowest[mine] == c.Rank()
	if isLeader != (leaders != nil) || isLeader != (node.Rank() == 0) {
		return fmt.Errorf("leader %v but leaders comm %v and node rank %d", isLeader, leaders, node.Rank())
	}
	if leaders != nil {
		if leaders.Size() != len(leaderRanks) {
			return fmt.Errorf("leaders comm has %d ranks, want %d", leaders.Size(), len(leaderRanks))
		}
		for i, wr := range leaderRanks {
			if leaders.WorldRank(i) != wr {
				return fmt.Errorf("leaders comm rank %d is world rank %d, want %d", i, leaders.WorldRank(i), wr)
			}
		}
	}
	return nil
}

func TestHierStructure(t *testing.T) {
	// On 2 or 3 nodes with a node of several ranks, the world's Barrier,
	// Bcast and Allreduce send nothing on the world's own collective
	// context (its sequence advances by one per call, the argument and
	// state check): all their messages go over the node communicator,
	// whose ranks share a node, and the leaders communicator, one rank
	// per node. So only leaders send between nodes.
	for _, nk := range [][2]int{{4, 2}, {5, 2}, {6, 3}, {8, 3}, {3, 2}} {
		n, k := nk[0], nk[1]
		t.Run(fmt.Sprintf("np%d/nodes%d", n, k), func(t *testing.T) {
			cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: k}}
			cfg.Run(t, n, func(t testing.TB, c *runtime.Comm) {
				if hier, node, _, _ := runtime.HierState(c); !hier || node != nil {
					t.Fatalf("before any collective: hierarchical %v, node %v", hier, node)
				}
				// The first node-aware call builds the sub-communicators.
				if err := c.Barrier(); err != nil {
					t.Fatal(err)
				}
				if err := checkHierShape(c); err != nil {
					t.Fatal(err)
				}
				_, node, leaders, seq0 := runtime.HierState(c)
				_, _, _, nseq0 := runtime.HierState(node)
				var lseq0 uint32
				if leaders != nil {
					_, _, _, lseq0 = runtime.HierState(leaders)
				}
				small := []float64{float64(c.Rank())}
				big := make([]float64, 20011)
				for i := range big {
					big[i] = float64(c.Rank()*i) * 0.1
				}
				if err := runtime.Allreduce(c, small, small, runtime.Sum); err != nil {
					t.Fatal(err)
				}
				if want := float64(n * (n - 1) / 2); small[0] != want {
					t.Fatalf("Allreduce = %v, want %v", small[0], want)
				}
				if err := runtime.Allreduce(c, big, big, runtime.Sum); err != nil {
					t.Fatal(err)
				}
				if err := runtime.Bcast(c, big, n-1); err != nil {
					t.Fatal(err)
				}
				if err := c.Barrier(); err != nil {
					t.Fatal(err)
				}
				// The sub-communicators are cached: still the same ones.
				_, node2, leaders2, seq1 := runtime.HierState(c)
				if node2 != node || leaders2 != leaders {
					t.Fatal("sub-communicators were rebuilt")
				}
				if seq1-seq0 != 4 {
					t.Fatalf("world's collective sequence advanced by %d over 4 calls: messages went over the world's collective context", seq1-seq0)
				}
				_, _, _, nseq1 := runtime.HierState(node)
				want := uint32(2 + 2 + 1 + 2)
				if node.Size() > 1 {
					// The large Bcast sets up the node's large-call
					// segment (nodebig.go): a Bcast and an Allreduce
					// over messages.
					want += 2
				}
				if got := nseq1 - nseq0; got != want {
					t.Fatalf("node comm ran %d collectives, want %d", got, want)
				}
				if leaders != nil {
					_, _, _, lseq1 := runtime.HierState(leaders)
					if got := lseq1 - lseq0; got != 4 {
						t.Fatalf("leaders comm ran %d collectives, want 4", got)
					}
				}
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
				if !runtime.IsClosed(node) || (leaders != nil && !runtime.IsClosed(leaders)) {
					t.Fatal("Close left the sub-communicators open")
				}
			})
		})
	}
}

func TestHierFlatCases(t *testing.T) {
	// One node, or one rank per node: the flat algorithms, no
	// sub-communicators. A Dup of a node-aware comm is node-aware with
	// sub-communicators of its own, which its Close closes; a SplitShared
	// comm is on one node and flat.
	for _, nk := range [][2]int{{1, 1}, {4, 1}, {3, 3}, {2, 2}} {
		n, k := nk[0], nk[1]
		t.Run(fmt.Sprintf("np%d/nodes%d", n, k), func(t *testing.T) {
			cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: k}}
			cfg.Run(t, n, func(t testing.TB, c *runtime.Comm) {
				if err := hierCheck(c, 5, 7, false); err != nil {
					t.Fatal(err)
				}
				if hier, node, _, _ := runtime.HierState(c); hier || node != nil {
					t.Fatalf("hierarchical %v, node %v: want flat", hier, node)
				}
			})
		})
	}
	cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: 2}}
	cfg.Run(t, 5, func(t testing.TB, c *runtime.Comm) {
		d, err := c.Dup()
		if err != nil {
			t.Fatal(err)
		}
		if err := hierCheck(d, 9, 1000, false); err != nil {
			t.Fatal(err)
		}
		if err := checkHierShape(d); err != nil {
			t.Fatal(err)
		}
		if _, node, _, _ := runtime.HierState(c); node != nil {
			t.Fatal("the Dup's node-aware calls built sub-communicators on the parent")
		}
		_, node, leaders, _ := runtime.HierState(d)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if !runtime.IsClosed(node) || (leaders != nil && !runtime.IsClosed(leaders)) {
			t.Fatal("Close of the Dup left its sub-communicators open")
		}
		if err := runtime.Allreduce(d, []int{1}, []int{0}, runtime.Sum); !errors.Is(err, runtime.ErrClosed) {
			t.Fatalf("Allreduce on closed Dup: %v", err)
		}
		if err := d.Barrier(); !errors.Is(err, runtime.ErrClosed) {
			t.Fatalf("Barrier on closed Dup: %v", err)
		}
		if err := runtime.Bcast(d, []int{1}, 0); !errors.Is(err, runtime.ErrClosed) {
			t.Fatalf("Bcast on closed Dup: %v", err)
		}
		s, err := c.SplitShared()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := hierCheck(s, 13, 7, false); err != nil {
			t.Fatal(err)
		}
		if hier, node, _, _ := runtime.HierState(s); hier || node != nil {
			t.Fatalf("SplitShared comm: hierarchical %v, node %v: want flat", hier, node)
		}
	})
}

func TestHierArgErrors(t *testing.T) {
	// Allreduce passes argument errors through all three steps, so every
	// rank returns them and the communicator still works. (A bad root
	// aborts the world off shared memory: TestBadInput.)
	cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: 2}}
	cfg.Run(t, 5, func(t testing.TB, c *runtime.Comm) {
		checks := []struct {
			name string
			err  error
		}{
			{"float Band", runtime.Allreduce(c, []float64{1}, []float64{0}, runtime.Band)},
			{"bad op", runtime.Allreduce(c, []int{1}, []int{0}, runtime.Op(99))},
			{"short recv", runtime.Allreduce(c, []int{1, 2}, []int{0}, runtime.Sum)},
		}
		for _, ch := range checks {
			if !errors.Is(ch.err, runtime.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", ch.name, ch.err)
			}
		}
		got := []int{0}
		if err := runtime.Allreduce(c, []int{1}, got, runtime.Sum); err != nil || got[0] != 5 {
			t.Fatalf("after errors: %v %v", got, err)
		}
	})
}

func TestHierMismatchAborts(t *testing.T) {
	// Counts that differ between ranks abort the world; nobody hangs.
	for _, root := range []int{0, 1, 4} {
		t.Run(fmt.Sprint("root", root), func(t *testing.T) {
			cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: 2}}
			cfg.Run(t, 5, func(t testing.TB, c *runtime.Comm) {
				// Build the sub-communicators first. The abort of the
				// Bcast below may overtake this Barrier's release on
				// a rank that has not returned from it yet.
				if err := c.Barrier(); err != nil && !errors.Is(err, runtime.ErrAborted) {
					t.Fatal(err)
				}
				buf := make([]int, 4+c.Rank())
				err := runtime.Bcast(c, buf, root)
				if c.Rank() == root {
					return // the root sends and may finish first
				}
				if err == nil {
					t.Fatal("Bcast with mismatched counts succeeded")
				}
				if !errors.Is(err, runtime.ErrAborted) && !errors.Is(err, runtime.ErrInvalid) {
					t.Fatalf("err = %v", err)
				}
				var oe *runtime.OpError
				if !errors.As(err, &oe) || oe.Op != "Bcast" || oe.Comm != c.Name() || oe.Rank != c.Rank() || oe.Peer != root {
					t.Fatalf("error %#v does not name Bcast on %s rank %d root %d", oe, c.Name(), c.Rank(), root)
				}
			})
		})
	}
}

// TestHierAllreduceNodeSteps: the node steps of the node-aware Allreduce go
// through the nodes' segments (the slot, and the large-call segment past
// it). Checked with a bad argument on one rank at a time (every rank
// returns the same error, naming that rank), and with a user op that does
// not commute, small and larger than a chunk, against a naive fold in rank
// order.
func TestHierAllreduceNodeSteps(t *testing.T) {
	const chunk = 1 << 20 / 16 // affine elements per chunk of the large-call segment
	compose := newCompose(t)
	for _, shape := range []struct{ n, nodes int }{{5, 2}, {7, 3}, {4, 2}} {
		t.Run(fmt.Sprintf("np%d/nodes%d", shape.n, shape.nodes), func(t *testing.T) {
			// Guarded by mu: the ranks' Barrier orders the accesses,
			// but through shared memory, which -race does not see.
			var mu sync.Mutex
			errs := make([]string, shape.n)
			cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: shape.nodes}}
			cfg.Run(t, shape.n, func(t testing.TB, c *runtime.Comm) {
				me, np := c.Rank(), c.Size()
				for _, m := range []int{1, 3, chunk + 7} {
					for bad := range np {
						// The bad rank passes a short recv, or at the
						// small sizes an op its type does not have (past
						// the ring threshold that op would pick another
						// algorithm: TestAllreduceOrderDisagreementAborts).
						recv := make([]affine, m)
						op := compose
						switch {
						case me == bad && m == 3:
							op = runtime.Band // no Band on a struct
						case me == bad:
							recv = recv[:m-1]
						}
						err := runtime.Allreduce(c, make([]affine, m), recv, op)
						sameArgErr(t, c, &mu, errs, bad, m, err)
					}
					input := func(r int) []affine {
						rng := rand.New(rand.NewPCG(uint64(r), uint64(m)))
						v := make([]affine, m)
						for i := range v {
							v[i] = affine{float64(rng.IntN(7) - 3), float64(rng.IntN(1000))}
						}
						return v
					}
					got := make([]affine, m)
					if err := runtime.Allreduce(c, input(me), got, compose); err != nil {
						t.Fatalf("rank %d: Allreduce of %d: %v", me, m, err)
					}
					want := input(0)
					for r := 1; r < np; r++ {
						composeInto(want, input(r))
					}
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("rank %d: Allreduce of %d: element %d is %v, want %v", me, m, i, got[i], want[i])
						}
					}
				}
			})
		})
	}
}

// sameArgErr checks the error err of a call of m elements in which rank
// bad passed a bad argument: ErrInvalid, and once every rank has returned
// (errs, guarded by mu, collects their texts), every rank's names bad.
func sameArgErr(t testing.TB, c *runtime.Comm, mu *sync.Mutex, errs []string, bad, m int, err error) {
	t.Helper()
	if !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("rank %d, bad rank %d, %d elements: err = %v, want ErrInvalid", c.Rank(), bad, m, err)
	}
	mu.Lock()
	errs[c.Rank()] = err.Error()
	mu.Unlock()
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	seen := slices.Clone(errs)
	mu.Unlock()
	for r, e := range seen {
		if want := fmt.Sprintf("rank %d:", bad); !strings.Contains(e, want) {
			t.Fatalf("bad rank %d: rank %d's error %q does not name it", bad, r, e)
		}
	}
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
}

// TestAllreduceOrderDisagreementAborts: one rank passes an op its type does
// not have where the others pass a user op that does not commute, past the
// ring threshold. The ranks would run different algorithms (a ring and
// recursive doubling) and wait for each other; the stall check finds the
// difference and the world aborts, on one node and across nodes.
func TestAllreduceOrderDisagreementAborts(t *testing.T) {
	compose := newCompose(t)
	for _, tc := range []struct {
		name string
		cfg  runtime.Config
	}{
		{"tcp", runtime.Config{Transports: []string{"self", "tcp"}}},
		{"nodes2", runtime.Config{LocalNodes: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ranktest.Config{Runtime: tc.cfg}
			cfg.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
				if err := c.Barrier(); err != nil {
					t.Fatal(err)
				}
				op := compose
				if c.Rank() == 0 {
					op = runtime.Band
				}
				const m = 1<<20/16 + 7
				err := runtime.Allreduce(c, make([]affine, m), make([]affine, m), op)
				// Ranks that finished (with the poison of rank 0's
				// error) stay until the others learn of the difference.
				c.Barrier()
				if !errors.Is(err, runtime.ErrAborted) && !errors.Is(err, runtime.ErrInvalid) {
					t.Fatalf("rank %d: err = %v, want ErrAborted or ErrInvalid", c.Rank(), err)
				}
			})
		})
	}
}

// newCompose is a user op that does not commute: composing affine maps is
// associative, and its result depends on the order of the ranks. It is
// freed at the end of the test.
func newCompose(t *testing.T) runtime.Op {
	op, err := runtime.NewOp[affine]("compose", composeInto, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Free() })
	return op
}

// composeInto is newCompose's kernel.
func composeInto(acc, in []affine) {
	for i := range acc {
		acc[i] = affine{acc[i].A * in[i].A, acc[i].B*in[i].A + in[i].B}
	}
}

// TestHierAllgather: the node-aware Allgather (consecutive nodes) through
// the nodes' segments (the slot, the large-call segment, past a chunk) and,
// with TCP only, through node messages, against the naive result; with a
// short recv on one rank at a time, every rank returns the same error
// naming that rank, and the next call works. It also checks that the call
// took the node-aware path (steps on the node and leaders communicators).
func TestHierAllgather(t *testing.T) {
	for _, tc := range []struct {
		n, nodes int
		tcp      bool
	}{{5, 2, false}, {7, 3, false}, {4, 2, false}, {5, 2, true}, {3, 2, true}} {
		name := fmt.Sprintf("np%d/nodes%d", tc.n, tc.nodes)
		if tc.tcp {
			name += "/tcp"
		}
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex // see TestHierAllreduceNodeSteps
			errs := make([]string, tc.n)
			rc := runtime.Config{LocalNodes: tc.nodes}
			if tc.tcp {
				rc.Transports = []string{"self", "tcp"}
			}
			cfg := ranktest.Config{Runtime: rc}
			cfg.Run(t, tc.n, func(t testing.TB, c *runtime.Comm) {
				me, np := c.Rank(), c.Size()
				if err := c.Barrier(); err != nil { // builds the sub-communicators
					t.Fatal(err)
				}
				for _, m := range []int{1, 40, 1<<17 + 5} { // 8 B, past a slot, past a chunk
					if m > 1000 && tc.tcp {
						m = 3000
					}
					for bad := range np {
						recv := make([]int64, np*m)
						if me == bad {
							recv = recv[:np*m-1]
						}
						err := runtime.Allgather(c, make([]int64, m), recv)
						sameArgErr(t, c, &mu, errs, bad, m, err)
					}
					input := func(r int) []int64 {
						rng := rand.New(rand.NewPCG(uint64(r), uint64(m)))
						v := make([]int64, m)
						for i := range v {
							v[i] = rng.Int64()
						}
						return v
					}
					_, node, leaders, _ := runtime.HierState(c)
					_, _, _, nseq0 := runtime.HierState(node)
					var lseq0, lseq1 uint32
					if leaders != nil {
						_, _, _, lseq0 = runtime.HierState(leaders)
					}
					got := make([]int64, np*m)
					if err := runtime.Allgather(c, input(me), got); err != nil {
						t.Fatalf("rank %d: Allgather of %d: %v", me, m, err)
					}
					// Node-aware: two steps on the node communicator
					// (more the first time a large call sets up its
					// segment), one on the leaders'.
					_, _, _, nseq1 := runtime.HierState(node)
					if leaders != nil {
						_, _, _, lseq1 = runtime.HierState(leaders)
					}
					wantL := uint32(0)
					if leaders != nil {
						wantL = 1
					}
					if nseq1-nseq0 < 2 || lseq1-lseq0 != wantL {
						t.Fatalf("Allgather ran %d calls on the node communicator and %d on the leaders': not node-aware", nseq1-nseq0, lseq1-lseq0)
					}
					for r := range np {
						if want := input(r); !slices.Equal(got[r*m:(r+1)*m], want) {
							t.Fatalf("rank %d: Allgather of %d: block %d differs", me, m, r)
						}
					}
				}
			})
		})
	}
}

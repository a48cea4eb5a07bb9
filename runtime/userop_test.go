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

// User ops (NewOp): every reduction with a non-commutative op against the
// serial fold in rank order, and with a commutative one against the naive
// fold, at 1..9 ranks on one node and on two emulated nodes over the real
// transports, and on communicators whose nodes are not in rank order;
// processes run the same checks (userOpsSuite).

var userOpLengths = []int{0, 1, 7, 33, 1000, 20011}

func TestUserOps(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		for np := 1; np <= 9; np++ {
			if np < sc.cfg.LocalNodes {
				continue
			}
			t.Run(fmt.Sprint(sc.name, "/np", np), func(t *testing.T) {
				cfg := ranktest.Config{Runtime: sc.cfg}
				cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
					if err := userOpsSuite(c); err != nil {
						t.Fatal(err)
					}
				})
			})
		}
	}
}

// userOpsSuite checks the user ops on c and on two reorderings of it: its
// ranks reversed (on two nodes: each node's ranks still consecutive, the
// nodes in the other order) and interleaved (even ranks first: on two
// nodes, a node's ranks no longer consecutive).
func userOpsSuite(c *runtime.Comm) error {
	if err := collcheck.UserOps(c, 7, userOpLengths); err != nil {
		return err
	}
	n, r := c.Size(), c.Rank()
	for _, o := range []struct {
		name string
		key  int
	}{{"reversed", n - r}, {"interleaved", r%2*n + r}} {
		s, err := c.Split(0, o.key)
		if err != nil {
			return err
		}
		err = collcheck.UserOps(s, 9, []int{1, 33, 20011})
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	return nil
}

func init() {
	ranktest.Register("userops", func(c *runtime.Comm) error {
		if err := userOpsSuite(c); err != nil {
			return err
		}
		fmt.Printf("rank %d userops ok\n", c.Rank())
		return nil
	})
}

func TestUserOpsProcesses(t *testing.T) {
	for _, pc := range []struct {
		name string
		n    int
		cfg  ranktest.SpawnConfig
	}{
		{"node/np1", 1, ranktest.SpawnConfig{}},
		{"node/np3", 3, ranktest.SpawnConfig{}},
		{"node/np5", 5, ranktest.SpawnConfig{}},
		{"tcp/np4", 4, ranktest.SpawnConfig{Transports: "self,tcp"}},
		{"nodes2/np5", 5, ranktest.SpawnConfig{Nodes: 2}},
	} {
		t.Run(pc.name, func(t *testing.T) {
			cfg := pc.cfg
			out := cfg.Spawn(t, pc.n, "userops")
			if got := strings.Count(out, "userops ok"); got != pc.n {
				t.Fatalf("%d ranks reported ok, want %d:\n%s", got, pc.n, out)
			}
		})
	}
}

// A user op used with another element type: the same ErrInvalid on every
// rank, naming both types, and the communicator still works.
func TestUserOpWrongType(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		t.Run(sc.name, func(t *testing.T) {
			errs := make([]error, 4)
			cfg := ranktest.Config{Runtime: sc.cfg}
			cfg.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
				op, err := runtime.NewOp("affine", collcheck.Affine, false)
				if err != nil {
					t.Fatal(err)
				}
				defer op.Free()
				errs[c.Rank()] = runtime.Allreduce(c, []int64{1}, make([]int64, 1), op)
				recv := make([]uint64, 1)
				if err := runtime.Allreduce(c, []uint64{1<<32 | 1}, recv, op); err != nil {
					t.Fatal(err)
				}
				if recv[0] != 1<<32|4 {
					t.Errorf("Allreduce after the error: %#x", recv[0])
				}
			})
			for r, err := range errs {
				if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "user op on uint64 elements, used with int64") {
					t.Errorf("rank %d: %v, want ErrInvalid naming uint64 and int64", r, err)
				}
			}
			if !slices.EqualFunc(errs[1:], errs[:3], func(a, b error) bool { return a != nil && b != nil && trimRank(a) == trimRank(b) }) {
				t.Errorf("the ranks' errors differ: %v", errs)
			}
		})
	}
}

// A user op whose function panics on the ranks that fold rank 1's
// contribution: their calls return ErrAborted naming the op, the rank, the
// place and the panic; every other rank fails in that call or its next one,
// with such a cause.
func TestUserOpPanic(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		for _, m := range []int{1, 1000} { // through the shared segment, and messages
			t.Run(fmt.Sprint(sc.name, "/len", m), func(t *testing.T) {
				cfg := ranktest.Config{Runtime: sc.cfg}
				cfg.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
					me := c.Rank()
					op, err := runtime.NewOp("boom", func(acc, in []int64) {
						if slices.Contains(in, 99) || slices.Contains(acc, 99) {
							panic("bad luck")
						}
						collcheck.MulAdd(acc, in)
					}, true)
					if err != nil {
						t.Fatal(err)
					}
					defer op.Free()
					send := make([]int64, m)
					if me == 1 {
						send[0] = 99
					}
					err = runtime.Allreduce(c, send, make([]int64, m), op)
					if err == nil {
						err = c.Barrier()
					}
					if !errors.Is(err, runtime.ErrAborted) {
						t.Fatalf("%v, want ErrAborted", err)
					}
					for _, want := range []string{"user op boom panicked on rank ", "userop_test.go:", ": bad luck"} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("%q does not say %q", err, want)
						}
					}
				})
			})
		}
	}
}

// On the serial communicator a user op is checked but never applied.
func TestUserOpSerial(t *testing.T) {
	op, err := runtime.NewOp("plain", func(acc, in []int64) {}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Free()
	if err := runtime.Allreduce(nil, []int64{1}, make([]int64, 1), op); err != nil {
		t.Fatal(err)
	}
	if err := runtime.Scan(nil, []uint64{1}, make([]uint64, 1), op); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Scan of uint64 with an int64 op on the serial communicator: %v", err)
	}
}

func TestNewOpErrors(t *testing.T) {
	f := func(acc, in []int32) {}
	if _, err := runtime.NewOp("", f, true); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("empty name: %v", err)
	}
	if _, err := runtime.NewOp[int32]("x", nil, true); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("nil function: %v", err)
	}
	if err := runtime.Sum.Free(); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("Free of Sum: %v", err)
	}
	a, err := runtime.NewOp("first", f, false)
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != "first" {
		t.Errorf("String() = %q", a)
	}
	if err := a.Free(); err != nil {
		t.Fatal(err)
	}
	if err := a.Free(); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("second Free: %v", err)
	}
	if err := runtime.Allreduce(nil, []int32{1}, make([]int32, 1), a); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("Allreduce with a freed op: %v", err)
	}
	// The handles run out, and a freed one is used again.
	var ops []runtime.Op
	defer func() {
		for _, o := range ops {
			o.Free()
		}
	}()
	for {
		o, err := runtime.NewOp(fmt.Sprint("op", len(ops)), f, true)
		if err != nil {
			if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "user ops are live") {
				t.Fatalf("after %d ops: %v", len(ops), err)
			}
			break
		}
		ops = append(ops, o)
		if len(ops) > 1000 {
			t.Fatal("NewOp never runs out of handles")
		}
	}
	if err := ops[5].Free(); err != nil {
		t.Fatal(err)
	}
	o, err := runtime.NewOp("again", f, true)
	if err != nil || o != ops[5] {
		t.Fatalf("NewOp after a Free: %v, %v; want the freed handle %v", o, err, ops[5])
	}
	ops[5] = o
}

// Ranks that pass user ops of different names to one call: the same
// ErrInvalid on every rank of a one-node communicator, even where the call
// word cannot tell the names apart.
func TestUserOpOtherName(t *testing.T) {
	errs := make([]error, 3)
	ranktest.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
		name := "affine"
		if c.Rank() == 2 {
			name = "muladd2" // the same 2 bits in the call word as "affine"
		}
		op, err := runtime.NewOp(name, collcheck.Affine, false)
		if err != nil {
			t.Fatal(err)
		}
		defer op.Free()
		errs[c.Rank()] = runtime.Allreduce(c, []uint64{1}, make([]uint64, 1), op)
		if err := c.Barrier(); err != nil {
			t.Fatal(err)
		}
	})
	for r, err := range errs {
		if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "different user ops") {
			t.Errorf("rank %d: %v, want ErrInvalid saying different user ops", r, err)
		}
	}
}

package patterns_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/testutil"
	"github.com/gorun-hpc/gorun/patterns"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// The tests of Shared: pshmem's test_world on every layout (one node, two
// emulated nodes over the real transports, processes on two nodes), a
// naive model under seeded random blocks, bad input on one rank, the
// read-only mapping, the text form, Close, many objects, a large array and
// a rank killed.

// sharedNum are the element types of pshmem's test_world.
type sharedNum interface {
	~int32 | ~int64 | ~float32 | ~float64
}

// sharedLayouts are the goroutine-rank layouts the collective tests run
// on: np 1 to 4 on one node, and two emulated nodes over shared-memory
// rings and TCP (even, and uneven: 2+1).
var sharedLayouts = []struct {
	name string
	np   int
	cfg  runtime.Config
}{
	{"np1", 1, runtime.Config{}},
	{"np2", 2, runtime.Config{}},
	{"np3", 3, runtime.Config{}},
	{"np4", 4, runtime.Config{}},
	{"np4-nodes2", 4, runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}},
	{"np3-nodes2", 3, runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}},
}

// sharedWorld is pshmem's test_world for one element type: every rank in
// turn writes its own value over the whole (2,5,10) array in slabs of
// (1,1,5), once with Set and once with Assign (the others pass nil), then
// the whole array at once with both, and every rank checks every element
// after each pass.
func sharedWorld[T sharedNum](c *runtime.Comm) error {
	x, err := patterns.NewShared[T](c, 2, 5, 10)
	if err != nil {
		return err
	}
	defer x.Close()
	if got := x.Shape(); !slices.Equal(got, []int{2, 5, 10}) || x.Len() != 100 {
		return fmt.Errorf("shape %v, len %d; want [2 5 10], 100", got, x.Len())
	}
	me, np := c.Rank(), c.Size()
	verify := func(what string, want T) error {
		d := x.Data()
		if len(d) != 100 {
			return fmt.Errorf("%s: Data has %d elements, want 100", what, len(d))
		}
		for i, v := range d {
			if v != want {
				return fmt.Errorf("%s: rank %d sees element %d = %v, want %v", what, me, i, v, want)
			}
		}
		for i := range 2 {
			for j := range 5 {
				for k := range 10 {
					if v := x.At(i, j, k); v != want {
						return fmt.Errorf("%s: rank %d sees At(%d,%d,%d) = %v, want %v", what, me, i, j, k, v, want)
					}
				}
			}
		}
		return nil
	}
	if err := verify("new", 0); err != nil {
		return err
	}
	slab := []int{1, 1, 5}
	for p := range np {
		for mode, call := range []string{"Set", "Assign"} {
			want := T(10*p + mode + 1)
			val := slices.Repeat([]T{want}, 5)
			for i := range 2 {
				for j := range 5 {
					for k := 0; k < 10; k += 5 {
						var d []T
						if me == p {
							d = val
						}
						off := []int{i, j, k}
						if mode == 0 {
							err = x.Set(d, slab, off, p)
						} else {
							err = x.Assign(d, slab, off)
						}
						if err != nil {
							return fmt.Errorf("%s of a slab at %v from rank %d: %w", call, off, p, err)
						}
					}
				}
			}
			if err := verify(fmt.Sprintf("slabs by %s from rank %d", call, p), want); err != nil {
				return err
			}
		}
		// The whole array, as pshmem's x[:, :, :] = local.
		want := T(10*p + 3)
		var d []T
		if me == p {
			d = slices.Repeat([]T{want}, 100)
		}
		if err := x.Assign(d, []int{2, 5, 10}, nil); err != nil {
			return fmt.Errorf("Assign of the whole array from rank %d: %w", p, err)
		}
		if err := verify(fmt.Sprintf("whole array assigned by rank %d", p), want); err != nil {
			return err
		}
		want++
		if me == p {
			d = slices.Repeat([]T{want}, 100)
		}
		if err := x.Set(d, []int{2, 5, 10}, []int{0, 0, 0}, p); err != nil {
			return fmt.Errorf("Set of the whole array from rank %d: %w", p, err)
		}
		if err := verify(fmt.Sprintf("whole array set by rank %d", p), want); err != nil {
			return err
		}
	}
	return x.Close()
}

// sharedWorldAll runs sharedWorld for pshmem's four types, and with four
// objects alive at once (pshmem's test_separated).
func sharedWorldAll(c *runtime.Comm) error {
	for _, f := range []struct {
		name string
		fn   func(*runtime.Comm) error
	}{
		{"int32", sharedWorld[int32]},
		{"int64", sharedWorld[int64]},
		{"float32", sharedWorld[float32]},
		{"float64", sharedWorld[float64]},
	} {
		if err := f.fn(c); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return sharedSeparated(c)
}

// sharedSeparated makes four arrays, sets each from another rank, checks
// all four, and closes them.
func sharedSeparated(c *runtime.Comm) error {
	xs := make([]*patterns.Shared[float64], 4)
	for i := range xs {
		x, err := patterns.NewShared[float64](c, 3, 4)
		if err != nil {
			return err
		}
		defer x.Close()
		xs[i] = x
	}
	for i, x := range xs {
		from := i % c.Size()
		var d []float64
		if c.Rank() == from {
			d = slices.Repeat([]float64{float64(i + 1)}, 12)
		}
		if err := x.Set(d, []int{3, 4}, nil, from); err != nil {
			return err
		}
	}
	for i, x := range xs {
		for j, v := range x.Data() {
			if v != float64(i+1) {
				return fmt.Errorf("array %d element %d = %v, want %d", i, j, v, i+1)
			}
		}
	}
	for _, x := range xs {
		if err := x.Close(); err != nil {
			return err
		}
	}
	return nil
}

func init() {
	ranktest.Register("patterns-shared-world", sharedWorldAll)
}

func TestSharedWorld(t *testing.T) {
	for _, l := range sharedLayouts {
		t.Run(l.name, func(t *testing.T) {
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, l.np, func(t testing.TB, c *runtime.Comm) {
				if err := sharedWorldAll(c); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestSharedWorldProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("process ranks")
	}
	cfg := ranktest.SpawnConfig{Nodes: 2}
	cfg.Spawn(t, 4, "patterns-shared-world")
}

// Arrays on communicators split from the world (pshmem's test_split): on
// two nodes of two ranks, the columns have one rank on each node and the
// rows both ranks of one node; an array on each, alive at once.
func TestSharedSplit(t *testing.T) {
	cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}}
	cfg.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
		col, err := c.Split(c.Rank()%2, c.Rank())
		if err != nil {
			t.Fatal(err)
		}
		defer col.Close()
		row, err := c.Split(c.Rank()/2, c.Rank())
		if err != nil {
			t.Fatal(err)
		}
		defer row.Close()
		other, err := patterns.NewShared[int64](c, 8)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		for _, sub := range []*runtime.Comm{col, row} {
			if err := sharedWorld[float64](sub); err != nil {
				t.Fatal(err)
			}
		}
		x, err := patterns.NewShared[int32](col, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		if x.Nodes() != 2 || x.NodeProcs() != 1 {
			t.Errorf("on a column: Nodes %d, NodeProcs %d; want 2, 1", x.Nodes(), x.NodeProcs())
		}
		var d []int32
		if col.Rank() == 1 {
			d = []int32{int32(c.Rank())}
		}
		if err := x.Assign(d, []int{1}, []int{1}); err != nil {
			t.Fatal(err)
		}
		if want := int32(2 + c.Rank()%2); x.At(1) != want {
			t.Errorf("At(1) = %d, want %d", x.At(1), want)
		}
		if got := other.Data(); !slices.Equal(got, make([]int64, 8)) {
			t.Errorf("the world's array changed: %v", got)
		}
	})
}

// A nil communicator gives a private array that behaves as on one rank.
func TestSharedSerial(t *testing.T) {
	if err := sharedWorldAll(nil); err != nil {
		t.Fatal(err)
	}
	x, err := patterns.NewShared[float64](nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if x.Comm() != nil || x.Nodes() != 1 || x.NodeProcs() != 1 {
		t.Errorf("Comm %v, Nodes %d, NodeProcs %d; want nil, 1, 1", x.Comm(), x.Nodes(), x.NodeProcs())
	}
	// With no communicator there is no other rank to send.
	if err := x.Set([]float64{1}, []int{1}, nil, 1); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("Set from rank 1 without a communicator: %v, want ErrInvalid", err)
	}
	if err := x.Assign(nil, []int{1}, nil); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("Assign without data: %v, want ErrInvalid", err)
	}
	if err := x.Assign([]float64{7}, []int{1}, []int{3}); err != nil {
		t.Fatal(err)
	}
	if got := x.Data(); !slices.Equal(got, []float64{0, 0, 0, 7}) {
		t.Errorf("Data %v, want [0 0 0 7]", got)
	}
	// An empty shape is one element.
	s, err := patterns.NewShared[int64](nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Set([]int64{5}, nil, nil, 0); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 || s.At() != 5 {
		t.Errorf("0-d array: Len %d, At() %d; want 1, 5", s.Len(), s.At())
	}
}

// A 0-d array (empty shape) holds one element, set from any rank.
func TestSharedScalar(t *testing.T) {
	for _, l := range sharedLayouts {
		t.Run(l.name, func(t *testing.T) {
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, l.np, func(t testing.TB, c *runtime.Comm) {
				x, err := patterns.NewShared[complex128](c)
				if err != nil {
					t.Fatal(err)
				}
				defer x.Close()
				for from := range c.Size() {
					var d []complex128
					if c.Rank() == from {
						d = []complex128{complex(float64(from), 1)}
					}
					if err := x.Set(d, nil, nil, from); err != nil {
						t.Fatal(err)
					}
					if v := x.At(); v != complex(float64(from), 1) {
						t.Fatalf("At() = %v after a Set from rank %d", v, from)
					}
					if err := x.Assign(d, []int{}, []int{}); err != nil {
						t.Fatal(err)
					}
				}
			})
		})
	}
}

// sharedFlat is the row-major flat index of idx in an array of shape.
func sharedFlat(shape, idx []int) int {
	f := 0
	for i := range shape {
		f = f*shape[i] + idx[i]
	}
	return f
}

// sharedModel sets random blocks at random offsets of a random 3-d array
// from random ranks, alternating Set and Assign, applies each to a plain
// slice too, and compares the two on every rank after every call. The
// ranks draw the same numbers from the same seed; the ranks that do not
// send pass garbage to Set (only fromRank's arguments matter).
func sharedModel(c *runtime.Comm, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	shape := []int{1 + rng.IntN(5), 1 + rng.IntN(6), 1 + rng.IntN(9)}
	x, err := patterns.NewShared[int64](c, shape...)
	if err != nil {
		return err
	}
	defer x.Close()
	model := make([]int64, x.Len())
	me := c.Rank()
	for step := range 60 {
		bs, off := make([]int, 3), make([]int, 3)
		for i := range 3 {
			bs[i] = rng.IntN(shape[i] + 1) // may be 0: an empty block
			off[i] = rng.IntN(shape[i] - bs[i] + 1)
		}
		data := make([]int64, bs[0]*bs[1]*bs[2])
		for i := range data {
			data[i] = rng.Int64()
		}
		from := rng.IntN(c.Size())
		assign := rng.IntN(2) == 0
		nilOffset := rng.IntN(8) == 0
		if nilOffset {
			off = []int{0, 0, 0}
		}
		// The model.
		n := 0
		for i := range bs[0] {
			for j := range bs[1] {
				for k := range bs[2] {
					model[sharedFlat(shape, []int{off[0] + i, off[1] + j, off[2] + k})] = data[n]
					n++
				}
			}
		}
		argOff := off
		if nilOffset {
			argOff = nil
		}
		switch {
		case assign && me == from:
			err = x.Assign(data, bs, argOff)
		case assign:
			err = x.Assign(nil, []int{99}, []int{-1})
		case me == from:
			err = x.Set(data, bs, argOff, from)
		default:
			err = x.Set([]int64{1, 2, 3}, []int{99, 99}, []int{-7}, from)
		}
		if err != nil {
			return fmt.Errorf("step %d (assign %v) of a block %v at %v from rank %d: %w", step, assign, bs, off, from, err)
		}
		if d := x.Data(); !slices.Equal(d, model) {
			for i := range d {
				if d[i] != model[i] {
					return fmt.Errorf("step %d: after a block %v at %v from rank %d, rank %d sees element %d = %d, want %d", step, bs, off, from, me, i, d[i], model[i])
				}
			}
			return fmt.Errorf("step %d: Data has %d elements, want %d", step, len(d), len(model))
		}
		// A block read back through Block agrees with the model.
		got, err := x.Block(off, bs)
		if err != nil {
			return fmt.Errorf("step %d: Block: %w", step, err)
		}
		if !slices.Equal(got, data) {
			return fmt.Errorf("step %d: Block(%v, %v) = %v, want %v", step, off, bs, got, data)
		}
	}
	return x.Close()
}

func TestSharedModel(t *testing.T) {
	for _, l := range sharedLayouts {
		if l.np == 1 {
			continue
		}
		t.Run(l.name, func(t *testing.T) {
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, l.np, func(t testing.TB, c *runtime.Comm) {
				for seed := range uint64(3) {
					if err := sharedModel(c, seed); err != nil {
						t.Fatalf("seed %d: %v", seed, err)
					}
				}
			})
		})
	}
	t.Run("serial", func(t *testing.T) {
		for seed := range uint64(3) {
			if err := sharedModel(nil, seed); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		}
	})
}

// sharedBadCase is a call of Set or Assign on the (2,5,10) array where
// rank `bad` (or every rank) gets something wrong.
type sharedBadCase struct {
	name string
	call func(x *patterns.Shared[float64], me int) error
}

// sharedBadRank is the rank that errs when only one does.
const sharedBadRank = 2

func sharedSlab(v float64) []float64 { return slices.Repeat([]float64{v}, 5) }

var sharedBadCases = []sharedBadCase{
	{"dims", func(x *patterns.Shared[float64], me int) error {
		return x.Set(sharedSlab(1), []int{1, 5}, []int{0, 0, 0}, sharedBadRank)
	}},
	{"offset-dims", func(x *patterns.Shared[float64], me int) error {
		return x.Set(sharedSlab(1), []int{1, 1, 5}, []int{0, 0}, sharedBadRank)
	}},
	{"outside", func(x *patterns.Shared[float64], me int) error {
		return x.Set(sharedSlab(1), []int{1, 1, 5}, []int{0, 0, 8}, sharedBadRank)
	}},
	{"outside-dim0", func(x *patterns.Shared[float64], me int) error {
		return x.Set(sharedSlab(1), []int{1, 1, 5}, []int{2, 0, 0}, sharedBadRank)
	}},
	{"negative-offset", func(x *patterns.Shared[float64], me int) error {
		return x.Set(sharedSlab(1), []int{1, 1, 5}, []int{0, -1, 0}, sharedBadRank)
	}},
	{"negative-shape", func(x *patterns.Shared[float64], me int) error {
		return x.Set(nil, []int{1, -1, 5}, []int{0, 0, 0}, sharedBadRank)
	}},
	{"data-short", func(x *patterns.Shared[float64], me int) error {
		return x.Set(sharedSlab(1)[:4], []int{1, 1, 5}, []int{0, 0, 0}, sharedBadRank)
	}},
	{"data-long", func(x *patterns.Shared[float64], me int) error {
		return x.Set(slices.Repeat([]float64{1}, 6), []int{1, 1, 5}, []int{0, 0, 0}, sharedBadRank)
	}},
	{"data-nil", func(x *patterns.Shared[float64], me int) error {
		return x.Set(nil, []int{1, 1, 5}, []int{0, 0, 0}, sharedBadRank)
	}},
	{"from-too-big", func(x *patterns.Shared[float64], me int) error {
		return x.Set(sharedSlab(1), []int{1, 1, 5}, nil, x.Comm().Size())
	}},
	{"from-negative", func(x *patterns.Shared[float64], me int) error {
		return x.Set(sharedSlab(1), []int{1, 1, 5}, nil, -1)
	}},
	{"from-out-of-range-on-one", func(x *patterns.Shared[float64], me int) error {
		from := 0
		if me == sharedBadRank {
			from = 99
		}
		return x.Set(sharedSlab(1), []int{1, 1, 5}, nil, from)
	}},
	{"from-differs", func(x *patterns.Shared[float64], me int) error {
		from := 0
		if me == sharedBadRank {
			from = 1
		}
		return x.Set(sharedSlab(1), []int{1, 1, 5}, nil, from)
	}},
	{"assign-nobody", func(x *patterns.Shared[float64], me int) error {
		return x.Assign(nil, []int{1, 1, 5}, nil)
	}},
	{"assign-two", func(x *patterns.Shared[float64], me int) error {
		var d []float64
		if me == 1 || me == 3 {
			d = sharedSlab(1)
		}
		return x.Assign(d, []int{1, 1, 5}, nil)
	}},
	{"assign-outside", func(x *patterns.Shared[float64], me int) error {
		var d []float64
		if me == sharedBadRank {
			d = sharedSlab(1)
		}
		return x.Assign(d, []int{1, 1, 5}, []int{0, 5, 0})
	}},
}

// sharedBadOps is the operation that a case's errors name.
func sharedBadOp(name string) string {
	if strings.HasPrefix(name, "assign") {
		return "Assign"
	}
	return "Set"
}

// Bad input on one rank (or on all) is the same ErrInvalid on every rank,
// with the same words, the array unchanged, and the array still works.
func TestSharedBadInput(t *testing.T) {
	for _, l := range []struct {
		name string
		cfg  runtime.Config
	}{
		{"node", runtime.Config{}},
		{"nodes2", runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}},
	} {
		t.Run(l.name, func(t *testing.T) {
			const np = 4
			set, assign := newRankErrs(np), newRankErrs(np)
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
				me := c.Rank()
				x, err := patterns.NewShared[float64](c, 2, 5, 10)
				if err != nil {
					t.Fatal(err)
				}
				defer x.Close()
				for i, bc := range sharedBadCases {
					err := bc.call(x, me)
					if sharedBadOp(bc.name) == "Assign" {
						assign.put(bc.name, me, err)
					} else {
						set.put(bc.name, me, err)
					}
					for j, v := range x.Data() {
						if v != float64(i) {
							t.Fatalf("after %s: element %d = %v, want %d (unchanged)", bc.name, j, v, i)
						}
					}
					// A valid Set follows, from the rank that erred.
					var d []float64
					if me == sharedBadRank {
						d = slices.Repeat([]float64{float64(i + 1)}, 100)
					}
					if err := x.Set(d, []int{2, 5, 10}, nil, sharedBadRank); err != nil {
						t.Fatalf("the Set after %s: %v", bc.name, err)
					}
					if v := x.At(1, 4, 9); v != float64(i+1) {
						t.Fatalf("the Set after %s: At(1,4,9) = %v, want %d", bc.name, v, i+1)
					}
				}
			})
			words := set.check(t, "Set", runtime.ErrInvalid)
			for k, v := range assign.check(t, "Assign", runtime.ErrInvalid) {
				words[k] = v
			}
			if len(words) != len(sharedBadCases) {
				t.Errorf("%d cases reported, want %d", len(words), len(sharedBadCases))
			}
			for _, bc := range sharedBadCases {
				t.Logf("%s: %s", bc.name, words[bc.name])
			}
		})
	}
}

// An array with a zero dimension has no data: Set and Assign are ErrInvalid
// on every rank, reads are empty.
func TestSharedZeroSize(t *testing.T) {
	const np = 3
	set, assign := newRankErrs(np), newRankErrs(np)
	ranktest.Run(t, np, func(t testing.TB, c *runtime.Comm) {
		x, err := patterns.NewShared[float64](c, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		if x.Len() != 0 || x.Data() != nil {
			t.Errorf("Len %d, Data %v; want 0, nil", x.Len(), x.Data())
		}
		var d []float64
		if c.Rank() == 0 {
			d = []float64{1}
		}
		set.put("zero", c.Rank(), x.Set(d, []int{1}, nil, 0))
		assign.put("zero", c.Rank(), x.Assign(d, []int{1}, nil))
		y, err := patterns.NewShared[int32](c, 3, 0, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer y.Close()
		set.put("zero-3d", c.Rank(), y.Set(nil, []int{0, 0, 0}, nil, 0))
		if b, err := y.Block([]int{0, 0, 0}, []int{3, 0, 2}); err != nil || len(b) != 0 {
			t.Errorf("Block of an empty array: %v, %v", b, err)
		}
	})
	set.check(t, "Set", runtime.ErrInvalid)
	assign.check(t, "Assign", runtime.ErrInvalid)
}

// NewShared with a bad shape or element type on one rank is the same
// ErrInvalid on every rank, and a following NewShared works.
func TestSharedBadNew(t *testing.T) {
	const np = 4
	var errs *rankErrs
	cases := []struct {
		name string
		make func(c *runtime.Comm) error
	}{
		{"negative-dim-on-one", func(c *runtime.Comm) error {
			shape := []int{2, 5, 10}
			if c.Rank() == sharedBadRank {
				shape[1] = -5
			}
			return sharedNewClose[float64](c, shape...)
		}},
		{"negative-dim-on-all", func(c *runtime.Comm) error { return sharedNewClose[float64](c, 3, -1) }},
		{"shape-differs", func(c *runtime.Comm) error {
			shape := []int{2, 5, 10}
			if c.Rank() == sharedBadRank {
				shape[2] = 11
			}
			return sharedNewClose[float64](c, shape...)
		}},
		{"dims-differ", func(c *runtime.Comm) error {
			if c.Rank() == sharedBadRank {
				return sharedNewClose[float64](c, 100)
			}
			return sharedNewClose[float64](c, 10, 10)
		}},
		{"type-differs", func(c *runtime.Comm) error {
			if c.Rank() == sharedBadRank {
				return sharedNewClose[int64](c, 10)
			}
			return sharedNewClose[float64](c, 10)
		}},
		{"type-differs-same-size", func(c *runtime.Comm) error {
			// Same size, and names of the same length.
			if c.Rank() == sharedBadRank {
				return sharedNewClose[uintptr](c, 10)
			}
			return sharedNewClose[float64](c, 10)
		}},
	}
	for _, l := range []struct {
		name string
		cfg  runtime.Config
	}{
		{"node", runtime.Config{}},
		{"nodes2", runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}},
	} {
		t.Run(l.name, func(t *testing.T) {
			errs = newRankErrs(np)
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
				for _, tc := range cases {
					errs.put(tc.name, c.Rank(), tc.make(c))
					// A good one follows.
					if err := sharedWorld[float64](c); err != nil {
						t.Fatalf("after %s: %v", tc.name, err)
					}
				}
			})
			for name, w := range errs.check(t, "NewShared", runtime.ErrInvalid) {
				t.Logf("%s: %s", name, w)
			}
		})
	}
}

// sharedNewClose makes an array and closes it.
func sharedNewClose[T runtime.Number](c *runtime.Comm, shape ...int) error {
	x, err := patterns.NewShared[T](c, shape...)
	if err != nil {
		return err
	}
	return x.Close()
}

// NewSharedWith takes the node and node-rank communicators from the
// caller (pshmem's test_comm_reuse and test_split) and checks them.
func TestSharedCommReuse(t *testing.T) {
	cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}}
	const np = 4
	bad := newRankErrs(np)
	cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
		node, err := c.SplitShared()
		if err != nil {
			t.Fatal(err)
		}
		defer node.Close()
		nodeRank, err := c.Split(node.Rank(), c.Rank())
		if err != nil {
			t.Fatal(err)
		}
		defer nodeRank.Close()
		x, err := patterns.NewSharedWith[int64](c, patterns.SharedConfig{Node: node, NodeRank: nodeRank}, 4, 6)
		if err != nil {
			t.Fatal(err)
		}
		if x.Nodes() != 2 || x.NodeProcs() != 2 {
			t.Errorf("Nodes %d, NodeProcs %d; want 2, 2", x.Nodes(), x.NodeProcs())
		}
		// A receive of the caller's on the node communicator, for any
		// source and tag, pending through the Sets: it gets the caller's
		// message, not a block of Set's.
		mine := []int64{0}
		req, err := runtime.Irecv(node, mine, runtime.AnySource, runtime.AnyTag)
		if err != nil {
			t.Fatal(err)
		}
		for from := range np {
			var d []int64
			if c.Rank() == from {
				d = []int64{int64(from), int64(from + 1)}
			}
			if err := x.Set(d, []int{1, 2}, []int{from, 2}, from); err != nil {
				t.Fatal(err)
			}
		}
		for from := range np {
			if x.At(from, 2) != int64(from) || x.At(from, 3) != int64(from+1) {
				t.Errorf("row %d: %d %d, want %d %d", from, x.At(from, 2), x.At(from, 3), from, from+1)
			}
		}
		if err := runtime.Send(node, []int64{777}, (node.Rank()+1)%node.Size(), 5); err != nil {
			t.Fatal(err)
		}
		if _, err := req.Wait(); err != nil || mine[0] != 777 {
			t.Errorf("the caller's receive got %v, %v; want 777", mine, err)
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		// Only the node communicator: the leaders are found.
		y, err := patterns.NewSharedWith[int64](c, patterns.SharedConfig{Node: node}, 4)
		if err != nil {
			t.Fatal(err)
		}
		var d []int64
		if c.Rank() == 3 {
			d = []int64{9}
		}
		if err := y.Assign(d, []int{1}, []int{2}); err != nil {
			t.Fatal(err)
		}
		if got := y.Data(); !slices.Equal(got, []int64{0, 0, 9, 0}) {
			t.Errorf("Data %v, want [0 0 9 0]", got)
		}
		y.Close()
		// A node communicator whose size does not divide the world's (3 of
		// 4 ranks: one rank alone) is refused on every rank.
		odd, err := c.Split(min(c.Rank(), 1), c.Rank()) // {0}, {1,2,3}
		if err != nil {
			t.Fatal(err)
		}
		defer odd.Close()
		_, err = patterns.NewSharedWith[int64](c, patterns.SharedConfig{Node: odd}, 4)
		bad.put("node-size", c.Rank(), err)
		// A node-rank communicator of the wrong size.
		_, err = patterns.NewSharedWith[int64](c, patterns.SharedConfig{Node: node, NodeRank: c}, 4)
		bad.put("node-rank-size", c.Rank(), err)
	})
	for name, w := range bad.check(t, "NewShared", runtime.ErrInvalid) {
		t.Logf("%s: %s", name, w)
	}
}

// The node copy is mapped read-only for the application: a store into
// Data faults (here turned into a panic by debug.SetPanicOnFault) and
// changes nothing; Set still works after.
func TestSharedReadOnly(t *testing.T) {
	for _, l := range []struct {
		name string
		np   int
		cfg  runtime.Config
	}{
		{"np1", 1, runtime.Config{}},
		{"np2", 2, runtime.Config{}},
		{"np4-nodes2", 4, runtime.Config{LocalNodes: 2}},
	} {
		t.Run(l.name, func(t *testing.T) {
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, l.np, func(t testing.TB, c *runtime.Comm) {
				if err := sharedReadOnly(c); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
	t.Run("serial", func(t *testing.T) {
		if err := sharedReadOnly(nil); err != nil {
			t.Fatal(err)
		}
	})
}

func sharedReadOnly(c *runtime.Comm) error {
	x, err := patterns.NewShared[float64](c, 16)
	if err != nil {
		return err
	}
	defer x.Close()
	for _, stage := range []string{"new", "after Set"} {
		if err := sharedStore(x.Data(), 3, 42); err != nil {
			return fmt.Errorf("%s: %w", stage, err)
		}
		if v := x.At(3); v == 42 {
			return fmt.Errorf("%s: the store went through", stage)
		}
		var d []float64
		if c.Rank() == 0 {
			d = []float64{1, 2}
		}
		if err := x.Set(d, []int{2}, []int{2}, 0); err != nil {
			return err
		}
		if x.At(2) != 1 || x.At(3) != 2 {
			return fmt.Errorf("%s: Set wrote %v %v, want 1 2", stage, x.At(2), x.At(3))
		}
	}
	return x.Close()
}

// sharedStore stores v at d[i] and returns nil if that faulted.
func sharedStore(d []float64, i int, v float64) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			err = fmt.Errorf("a store into Data did not fault")
			return
		}
		if e, ok := r.(interface{ Addr() uintptr }); !ok {
			err = fmt.Errorf("the store panicked with %v, not a memory fault", r)
		} else if e.Addr() == 0 {
			err = fmt.Errorf("the fault's address is 0")
		}
	}()
	d[i] = v
	return nil
}

func TestSharedString(t *testing.T) {
	head := func(nodes, procs, total int, shape, dtype string) string {
		return fmt.Sprintf("<Shared\n  replicated on %d nodes, each with %d processes (%d total)\n  shape = %s, dtype = %s\n", nodes, procs, total, shape, dtype)
	}
	serial := func(t *testing.T, want, line string, x fmt.Stringer, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if got := x.String(); got != want+line+"\n>" {
			t.Errorf("got\n%s\nwant\n%s", got, want+line+"\n>")
		}
	}
	// pshmem's measured examples (spec 1.2), with our type's name.
	x1, err := patterns.NewShared[float64](nil, 10)
	serial(t, head(1, 1, 1, "(10,)", "float64"), "  [ 0.0 0.0 ... 0.0 0.0 ]", x1, err)
	x2, err := patterns.NewShared[int32](nil, 3)
	serial(t, head(1, 1, 1, "(3,)", "int32"), "  [ 0 0 0 ]", x2, err)
	x3, err := patterns.NewShared[float32](nil, 5, 2)
	serial(t, head(1, 1, 1, "(5, 2)", "float32"), "  [ [0. 0.] [0. 0.] ... [0. 0.] [0. 0.] ]", x3, err)
	x4, err := patterns.NewShared[int64](nil, 4, 3)
	serial(t, head(1, 1, 1, "(4, 3)", "int64"), "  [ [0 0 0] [0 0 0] [0 0 0] [0 0 0] ]", x4, err)
	x5, err := patterns.NewShared[float64](nil, 0)
	serial(t, head(1, 1, 1, "(0,)", "float64"), " No Data", x5, err)
	x6, err := patterns.NewShared[uint8](nil, 2, 2, 3)
	serial(t, head(1, 1, 1, "(2, 2, 3)", "uint8"), "  [ [[0 0 0] [0 0 0]] [[0 0 0] [0 0 0]] ]", x6, err)
	x7, err := patterns.NewShared[int16](nil)
	serial(t, head(1, 1, 1, "()", "int16"), "  [ 0 ]", x7, err)
	// Floats as Python and numpy write them: integral values with a point,
	// positional from 1e-4 to 1e16, scientific outside, nan and inf.
	vals := []float64{-0.5, 1234567.5, 1e16, 1e-5, math.NaN(), math.Inf(1), math.Inf(-1), 0.1, 3, -2}
	if err := x1.Set(vals, []int{10}, nil, 0); err != nil {
		t.Fatal(err)
	}
	serial(t, head(1, 1, 1, "(10,)", "float64"), "  [ -0.5 1234567.5 ... 3.0 -2.0 ]", x1, nil)
	if err := x1.Set(vals[2:], []int{8}, nil, 0); err != nil {
		t.Fatal(err)
	}
	serial(t, head(1, 1, 1, "(10,)", "float64"), "  [ 1e+16 1e-05 ... 3.0 -2.0 ]", x1, nil)
	if err := x1.Set(vals[4:8], []int{4}, nil, 0); err != nil {
		t.Fatal(err)
	}
	serial(t, head(1, 1, 1, "(10,)", "float64"), "  [ nan inf ... 3.0 -2.0 ]", x1, nil)
	if err := x2.Set([]int32{-7, 0, 7}, []int{3}, nil, 0); err != nil {
		t.Fatal(err)
	}
	serial(t, head(1, 1, 1, "(3,)", "int32"), "  [ -7 0 7 ]", x2, nil)
	if err := x3.Set([]float32{0.1, 1, float32(math.Inf(-1)), float32(math.NaN())}, []int{2, 2}, []int{3, 0}, 0); err != nil {
		t.Fatal(err)
	}
	serial(t, head(1, 1, 1, "(5, 2)", "float32"), "  [ [0. 0.] [0. 0.] ... [0.1 1.] [-inf nan] ]", x3, nil)
	// Complex numbers as Python writes them: 0j, (1+2j); in rows as numpy
	// does: 0.+0.j.
	c1, err := patterns.NewShared[complex128](nil, 3)
	serial(t, head(1, 1, 1, "(3,)", "complex128"), "  [ 0j 0j 0j ]", c1, err)
	if err := c1.Set([]complex128{1 + 2i, -1.5i, complex(-1, 0.5)}, []int{3}, nil, 0); err != nil {
		t.Fatal(err)
	}
	serial(t, head(1, 1, 1, "(3,)", "complex128"), "  [ (1+2j) -1.5j (-1+0.5j) ]", c1, nil)
	c2, err := patterns.NewShared[complex64](nil, 2, 2)
	serial(t, head(1, 1, 1, "(2, 2)", "complex64"), "  [ [0.+0.j 0.+0.j] [0.+0.j 0.+0.j] ]", c2, err)
	// A long row is summarized as numpy does past 1000 elements.
	big, err := patterns.NewShared[int32](nil, 2, 1001)
	serial(t, head(1, 1, 1, "(2, 1001)", "int32"), "  [ [0 0 0 ... 0 0 0] [0 0 0 ... 0 0 0] ]", big, err)
	for _, x := range []interface{ Close() error }{x1, x2, x3, x4, x5, x6, x7, c1, c2, big} {
		x.Close()
	}
	serial(t, head(1, 1, 1, "(10,)", "float64"), " No Data", x1, nil)

	// On two emulated nodes of two ranks.
	cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: 2}}
	cfg.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
		x, err := patterns.NewShared[int64](c, 6)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		var d []int64
		if c.Rank() == 3 {
			d = []int64{1, 2, 3, 4, 5, 6}
		}
		if err := x.Assign(d, []int{6}, nil); err != nil {
			t.Fatal(err)
		}
		want := head(2, 2, 4, "(6,)", "int64") + "  [ 1 2 ... 5 6 ]\n>"
		if got := x.String(); got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
}

// Close is local and idempotent; after it Data is nil and Set is
// ErrClosed on every rank, also when only one rank has closed.
func TestSharedClose(t *testing.T) {
	for _, l := range []struct {
		name string
		cfg  runtime.Config
	}{
		{"node", runtime.Config{}},
		{"nodes2", runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}},
	} {
		t.Run(l.name, func(t *testing.T) {
			const np = 4
			errs := newRankErrs(np)
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
				me := c.Rank()
				x, err := patterns.NewShared[float64](c, 3, 3)
				if err != nil {
					t.Fatal(err)
				}
				if err := x.Close(); err != nil {
					t.Fatal(err)
				}
				if err := x.Close(); err != nil {
					t.Fatalf("second Close: %v", err)
				}
				if x.Data() != nil {
					t.Errorf("Data after Close is not nil")
				}
				if _, err := x.Block([]int{0, 0}, []int{1, 1}); !errors.Is(err, runtime.ErrClosed) {
					t.Errorf("Block after Close: %v, want ErrClosed", err)
				}
				if !strings.Contains(x.String(), " No Data") {
					t.Errorf("String after Close:\n%s", x.String())
				}
				var d []float64
				if me == 0 {
					d = make([]float64, 9)
				}
				errs.put("all-closed", me, x.Set(d, []int{3, 3}, nil, 0))

				// Only one rank closed: the others do not hang.
				for _, closer := range []int{0, 1, np - 1} {
					y, err := patterns.NewShared[float64](c, 3, 3)
					if err != nil {
						t.Fatal(err)
					}
					if me == closer {
						y.Close()
					}
					errs.put(fmt.Sprintf("closed-on-%d", closer), me, y.Set(d, []int{3, 3}, nil, 0))
					if me != closer {
						// The closed rank is told by the error on the
						// others; Assign agrees the same way.
						var a []float64
						if me == (closer+1)%np {
							a = []float64{1}
						}
						err := y.Assign(a, []int{1, 1}, []int{0, 0})
						if !errors.Is(err, runtime.ErrClosed) {
							t.Errorf("Assign with rank %d closed: %v, want ErrClosed", closer, err)
						}
					} else {
						err := y.Assign(nil, nil, nil)
						if !errors.Is(err, runtime.ErrClosed) {
							t.Errorf("Assign on the closed rank: %v, want ErrClosed", err)
						}
					}
					y.Close()
				}
			})
			for name, w := range errs.check(t, "Set", runtime.ErrClosed) {
				t.Logf("%s: %s", name, w)
			}
		})
	}
}

// sharedFDs counts this process's open descriptors.
func sharedFDs(t testing.TB) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// 10,000 live arrays at np 2 (pshmem's test_max_shmem_segments, which
// stopped at 9991 with 20000 descriptors): they hold no descriptors.
func TestSharedManyObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 arrays")
	}
	const count = 10_000
	fds0 := sharedFDs(t)
	ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		xs := make([]*patterns.Shared[float64], 0, count)
		defer func() {
			for _, x := range xs {
				x.Close()
			}
		}()
		for i := range count {
			x, err := patterns.NewShared[float64](c, 5, 5)
			if err != nil {
				t.Fatalf("array %d: %v", i, err)
			}
			xs = append(xs, x)
		}
		// The last one still works.
		var d []float64
		if c.Rank() == 1 {
			d = []float64{4}
		}
		if err := xs[count-1].Set(d, []int{1, 1}, []int{4, 4}, 1); err != nil {
			t.Fatal(err)
		}
		if v := xs[count-1].At(4, 4); v != 4 {
			t.Errorf("At(4,4) = %v, want 4", v)
		}
		if err := c.Barrier(); err != nil {
			t.Fatal(err)
		}
		if c.Rank() == 0 {
			if n := sharedFDs(t); n > fds0+64 {
				t.Errorf("%d descriptors open with %d arrays alive on 2 ranks, %d before", n, count, fds0)
			}
		}
		if err := c.Barrier(); err != nil {
			t.Fatal(err)
		}
		for _, x := range xs {
			if err := x.Close(); err != nil {
				t.Fatal(err)
			}
		}
		xs = nil
	})
}

// An array of more than 2^31 elements: blocks set from rank 0 reach every
// rank, at the start, across 2^31 and at the end. Only those pages are
// touched.
func TestSharedLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("a 2 GiB array")
	}
	const n = 1<<31 + 10
	for _, l := range []struct {
		name string
		cfg  runtime.Config
	}{
		{"node", runtime.Config{}},
		{"nodes2", runtime.Config{LocalNodes: 2}},
	} {
		t.Run(l.name, func(t *testing.T) {
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
				x, err := patterns.NewShared[uint8](c, n)
				if err != nil {
					t.Fatal(err)
				}
				defer x.Close()
				if x.Len() != n || len(x.Data()) != n {
					t.Fatalf("Len %d, len(Data) %d; want %d", x.Len(), len(x.Data()), n)
				}
				block := []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
				for _, off := range []int{0, 1<<31 - 5, n - 10} {
					var d []uint8
					if c.Rank() == 0 {
						d = block
					}
					if err := x.Set(d, []int{10}, []int{off}, 0); err != nil {
						t.Fatalf("Set at %d: %v", off, err)
					}
					data := x.Data()
					if got := data[off : off+10]; !slices.Equal(got, block) {
						t.Errorf("at %d: %v, want %v", off, got, block)
					}
					if x.At(off+9) != 10 {
						t.Errorf("At(%d) = %d, want 10", off+9, x.At(off+9))
					}
				}
				for _, i := range []int{10, 1 << 30, 1<<31 - 6} {
					if v := x.At(i); v != 0 {
						t.Errorf("At(%d) = %d, want 0", i, v)
					}
				}
				// The last block overlaps the one across 2^31.
				if a, b := x.At(1<<31-1), x.At(1<<31); a != 5 || b != 1 {
					t.Errorf("At(2^31-1), At(2^31) = %d, %d; want 5, 1", a, b)
				}
				if err := x.Set(nil, []int{11}, []int{n - 10}, 0); !errors.Is(err, runtime.ErrInvalid) {
					t.Errorf("a block past the end: %v, want ErrInvalid", err)
				}
			})
		})
	}
}

// The program of TestSharedKill: rank PATTERNS_VICTIM dies by SIGKILL
// while the others wait in Set; they get ErrAborted.
func init() {
	ranktest.Register("patterns-shared-kill", func(c *runtime.Comm) error {
		victim, err := strconv.Atoi(os.Getenv("PATTERNS_VICTIM"))
		if err != nil {
			return err
		}
		x, err := patterns.NewShared[float64](c, 1000)
		if err != nil {
			return err
		}
		defer x.Close()
		from := (victim + 1) % c.Size()
		var d []float64
		if c.Rank() == from {
			d = slices.Repeat([]float64{1}, 1000)
		}
		if err := x.Set(d, []int{1000}, nil, from); err != nil {
			return err
		}
		err = c.Barrier()
		if c.Rank() == victim {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		// The victim may die before the others have left the Barrier.
		for err == nil {
			err = x.Set(d, []int{1000}, nil, from)
		}
		fmt.Printf("survivor: %v\n", err)
		if !errors.Is(err, runtime.ErrAborted) {
			return fmt.Errorf("the survivor got %v, want ErrAborted", err)
		}
		return nil
	})
}

// kill -9 of a node's first rank, or of another rank, while the others
// are in Set: the job fails with the cause, the others return ErrAborted,
// and nothing is left in /dev/shm (TestMain checks the rest).
func TestSharedKill(t *testing.T) {
	if testing.Short() {
		t.Skip("process ranks")
	}
	for _, tc := range []struct {
		name   string
		nodes  int
		victim int
	}{
		{"node-rank0", 1, 0},
		{"other", 1, 2},
		{"nodes2-second-node-rank0", 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ShmEntries()
			cfg := ranktest.SpawnConfig{Nodes: tc.nodes, Env: []string{"PATTERNS_VICTIM=" + strconv.Itoa(tc.victim)}}
			out, res := cfg.SpawnResult(t, 4, "patterns-shared-kill")
			if res.ExitCode() == 0 {
				t.Fatalf("the job succeeded with a rank killed:\n%s", out)
			}
			if strings.Count(out, "survivor: ") != 3 || !strings.Contains(out, "aborted") {
				t.Fatalf("not every survivor reported ErrAborted:\n%s", out)
			}
			if strings.Contains(out, "the survivor got") {
				t.Fatalf("wrong error:\n%s", out)
			}
			t.Logf("%s", out)
			deadline := time.Now().Add(5 * time.Second)
			for {
				var left []string
				for name := range testutil.ShmEntries() {
					if !before[name] {
						left = append(left, name)
					}
				}
				if len(left) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("left in /dev/shm: %v", left)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

package runtime_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

func TestDimsCreate(t *testing.T) {
	for _, tc := range []struct {
		n          int
		dims, want []int
	}{
		{6, []int{0, 0}, []int{3, 2}},
		{12, []int{0, 0, 0}, []int{3, 2, 2}},
		{7, []int{0, 0}, []int{7, 1}},
		{6, []int{0, 3}, []int{2, 3}},
		{16, []int{0, 0}, []int{4, 4}},
		{1, []int{0}, []int{1}},
		{8, []int{2, 4}, []int{2, 4}},
	} {
		got, err := runtime.DimsCreate(tc.n, tc.dims)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("DimsCreate(%d, %v) = %v, %v; want %v", tc.n, tc.dims, got, err, tc.want)
		}
	}
	for _, bad := range []struct {
		n    int
		dims []int
	}{{7, []int{2, 0}}, {0, []int{0}}, {6, []int{-1, 0}}, {8, []int{2, 2}}} {
		if _, err := runtime.DimsCreate(bad.n, bad.dims); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("DimsCreate(%d, %v): %v, want ErrInvalid", bad.n, bad.dims, err)
		}
	}
}

// A 2×3 grid over 7 ranks, open in dimension 0 and periodic in 1: the
// seventh rank is left out, coordinates and shifts are MPI's, a halo
// exchange needs no edge case, and Sub makes the rows.
func TestCart(t *testing.T) {
	ranktest.Run(t, 7, func(t testing.TB, c *runtime.Comm) {
		g, err := c.Cart([]int{2, 3}, []bool{false, true})
		if err != nil {
			t.Fatal(err)
		}
		if c.Rank() == 6 {
			if g != nil {
				t.Error("rank 6 is in a 2×3 grid")
			}
			return
		}
		defer g.Close()
		me := g.Rank()
		at := g.Coords(me)
		if !slices.Equal(at, []int{me / 3, me % 3}) {
			t.Errorf("rank %d at %v", me, at)
		}
		if r, _ := g.RankOf(at); r != me {
			t.Errorf("RankOf(%v) = %d, want %d", at, r, me)
		}
		// Dimension 1 wraps; dimension 0 does not.
		if r, _ := g.RankOf([]int{at[0], at[1] + 3}); r != me {
			t.Errorf("RankOf wrapped = %d, want %d", r, me)
		}
		if r, _ := g.RankOf([]int{at[0] + 2, at[1]}); r != runtime.ProcNull {
			t.Errorf("RankOf past the open edge = %d, want ProcNull", r)
		}
		src, dest, err := g.Shift(0, 1)
		if err != nil {
			t.Fatal(err)
		}
		wantSrc, wantDest := me-3, me+3
		if at[0] == 0 {
			wantSrc = runtime.ProcNull
		}
		if at[0] == 1 {
			wantDest = runtime.ProcNull
		}
		if src != wantSrc || dest != wantDest {
			t.Errorf("rank %d Shift(0,1) = %d, %d; want %d, %d", me, src, dest, wantSrc, wantDest)
		}
		// Halo exchange along the ring dimension: every rank gets its left
		// neighbour's value.
		left, right, _ := g.Shift(1, 1)
		got := []int64{-1}
		if _, err := runtime.Sendrecv(g.Comm, []int64{int64(me)}, right, 0, got, left, 0); err != nil {
			t.Fatal(err)
		}
		if want := int64(at[0]*3 + (at[1]+2)%3); got[0] != want {
			t.Errorf("rank %d got %d from its left, want %d", me, got[0], want)
		}
		row, err := g.Sub([]bool{false, true})
		if err != nil {
			t.Fatal(err)
		}
		defer row.Close()
		if row.Size() != 3 || row.Rank() != at[1] || !slices.Equal(row.Dims(), []int{3}) {
			t.Errorf("row: size %d rank %d dims %v", row.Size(), row.Rank(), row.Dims())
		}
		sum := []int64{0}
		if err := runtime.Allreduce(row.Comm, []int64{int64(me)}, sum, runtime.Sum); err != nil || sum[0] != int64(3*(3*at[0])+3) {
			t.Errorf("row sum %d, %v", sum[0], err)
		}
	})
}

func TestCartBadInput(t *testing.T) {
	errs := make([]error, 4)
	ranktest.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
		periods := []bool{false, false}
		if c.Rank() == 2 {
			periods[1] = true
		}
		_, errs[c.Rank()] = c.Cart([]int{2, 2}, periods)
		if _, err := c.Cart([]int{2, 3}, []bool{false, false}); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "need 6 ranks") {
			t.Errorf("too many grid points: %v", err)
		}
		g, err := c.Cart([]int{4}, []bool{true})
		if err != nil {
			t.Fatal(err)
		}
		g.Close()
	})
	for r, err := range errs {
		if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "different dims or periods") {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}

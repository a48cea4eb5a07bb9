package patterns_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/patterns"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// Cases a review found: shapes whose size overflows, a Set from the
// array's own Data, and node communicators that the ranks pass
// inconsistently.

func TestSharedShapeOverflow(t *testing.T) {
	for _, shape := range [][]int{{1<<62 + 1, 4}, {1 << 32, 1 << 32}, {1 << 61, 2}} {
		_, err := patterns.NewShared[float64](nil, shape...)
		if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "more bytes than") {
			t.Errorf("NewShared%v: %v, want ErrInvalid", shape, err)
		}
	}
	// One rank only: the same error everywhere.
	errs := newRankErrs(3)
	ranktest.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
		shape := []int{8, 8}
		if c.Rank() == 1 {
			shape = []int{1 << 40, 1 << 40}
		}
		_, err := patterns.NewShared[uint8](c, shape...)
		errs.put("overflow", c.Rank(), err)
	})
	errs.check(t, "NewShared", runtime.ErrInvalid)
}

func TestSharedSetFromItself(t *testing.T) {
	const n = 4096
	run := func(t testing.TB, c *runtime.Comm) {
		a, err := patterns.NewShared[int64](c, n)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		all := make([]int64, n)
		for i := range all {
			all[i] = int64(i)
		}
		if err := a.Set(all, []int{n}, nil, 0); err != nil {
			t.Fatal(err)
		}
		// Shift by one, from the array itself (overlapping).
		if err := a.Set(a.Data()[:n-1], []int{n - 1}, []int{1}, 0); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < n; i++ {
			if got := a.At(i); got != int64(i-1) {
				t.Fatalf("element %d is %d after the shift, want %d", i, got, i-1)
			}
		}
	}
	run(t, nil)
	ranktest.Run(t, 2, run)
}

func TestSharedConfigMismatch(t *testing.T) {
	t.Run("node-on-one-rank", func(t *testing.T) {
		errs := newRankErrs(2)
		ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
			var cfg patterns.SharedConfig
			if c.Rank() == 0 {
				cfg.Node = c
			}
			_, err := patterns.NewSharedWith[float64](c, cfg, 4)
			errs.put("node", c.Rank(), err)
			// Still usable: a good one follows.
			x, err := patterns.NewShared[float64](c, 4)
			if err != nil {
				t.Fatal(err)
			}
			x.Close()
		})
		for _, w := range errs.check(t, "NewShared", runtime.ErrInvalid) {
			if !strings.Contains(w, "SharedConfig.Node is given") {
				t.Errorf("the error says %q", w)
			}
		}
	})
	t.Run("node-rank-order", func(t *testing.T) {
		const np = 4
		errs := newRankErrs(np)
		cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: 2}}
		cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
			node, err := c.SplitShared()
			if err != nil {
				t.Fatal(err)
			}
			defer node.Close()
			// Node rank 1 numbers the nodes backwards.
			key := c.Rank()
			if node.Rank() == 1 {
				key = -key
			}
			nodeRank, err := c.Split(node.Rank(), key)
			if err != nil {
				t.Fatal(err)
			}
			defer nodeRank.Close()
			_, err = patterns.NewSharedWith[float64](c, patterns.SharedConfig{Node: node, NodeRank: nodeRank}, 4)
			errs.put("order", c.Rank(), err)
		})
		for _, w := range errs.check(t, "NewShared", runtime.ErrInvalid) {
			if !strings.Contains(w, "number the nodes differently") {
				t.Errorf("the error says %q", w)
			}
		}
	})
	t.Run("foreign-node", func(t *testing.T) {
		errs := newRankErrs(2)
		ranktest.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
			pair, err := c.Split(c.Rank()/2, c.Rank()) // {0,1} and {2,3}
			if err != nil {
				t.Fatal(err)
			}
			defer pair.Close()
			cross, err := c.Split(c.Rank()%2, c.Rank()) // {0,2} and {1,3}
			if err != nil {
				t.Fatal(err)
			}
			defer cross.Close()
			// The array lives on the pair; its "node" communicator holds a
			// rank of the other pair.
			_, err = patterns.NewSharedWith[float64](pair, patterns.SharedConfig{Node: cross}, 4)
			errs.put(fmt.Sprint("pair ", c.Rank()/2), pair.Rank(), err)
		})
		for name, w := range errs.check(t, "NewShared", runtime.ErrInvalid) {
			if !strings.Contains(w, "is not in") {
				t.Errorf("%s: the error says %q", name, w)
			}
		}
	})
}

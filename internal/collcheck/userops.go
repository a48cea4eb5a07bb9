package collcheck

import (
	"fmt"
	"math/rand/v2"

	"github.com/gorun-hpc/gorun/runtime"
)

// User-defined ops (runtime.NewOp): a non-commutative one, whose result
// shows any departure from rank order, and a commutative one.

// affine composes two affine maps x ↦ a·x + b on uint32, each packed as
// a<<32 | b: the result applies p first, then q. Composition is associative
// and not commutative.
func affine(p, q uint64) uint64 {
	a1, b1 := uint32(p>>32), uint32(p)
	a2, b2 := uint32(q>>32), uint32(q)
	return uint64(a2*a1)<<32 | uint64(a2*b1+b2)
}

// Affine is affine as a user op's function: acc[i] = acc[i] ∘ in[i].
func Affine(acc, in []uint64) {
	for i := range acc {
		acc[i] = affine(acc[i], in[i])
	}
}

// GenAffine draws a map with an odd a (so no product of them vanishes).
func GenAffine(r *rand.Rand) uint64 { return r.Uint64() | 1<<32 }

// mulAdd is a + b + a·b, which is (1+a)(1+b) - 1: commutative and
// associative, exactly, in wrapping int64 arithmetic.
func mulAdd(a, b int64) int64 { return a + b + a*b }

// MulAdd is mulAdd as a user op's function.
func MulAdd(acc, in []int64) {
	for i := range acc {
		acc[i] = mulAdd(acc[i], in[i])
	}
}

// UserOps creates the two user ops on c's rank (NewOp; every rank creates
// them the same way) and checks every reduction with them against the
// naive fold in rank order, for every length in lengths: Reductions,
// Reduce to every root, ReduceScatter and ReduceScatterBlock.
func UserOps(c *runtime.Comm, seed uint64, lengths []int) error {
	aff, err := runtime.NewOp("affine", Affine, false)
	if err != nil {
		return err
	}
	defer aff.Free()
	mad, err := runtime.NewOp("muladd", MulAdd, true)
	if err != nil {
		return err
	}
	defer mad.Free()
	affCase := OpCase[uint64]{aff, affine, 0}
	madCase := OpCase[int64]{mad, mulAdd, 0}
	for _, m := range lengths {
		s := seed + uint64(m)*31
		if err := Reductions(c, s, m, GenAffine, affCase); err != nil {
			return err
		}
		if err := Rooted(c, s, m, GenAffine, affCase); err != nil {
			return err
		}
		if err := Scattered(c, s, m, GenAffine, affCase); err != nil {
			return err
		}
		if err := Reductions(c, s, m, GenInt64, madCase); err != nil {
			return err
		}
		if err := Scattered(c, s, m, GenInt64, madCase); err != nil {
			return err
		}
	}
	return nil
}

// Rooted checks Reduce to every root.
func Rooted[T runtime.Elem](c *runtime.Comm, seed uint64, m int, gen func(*rand.Rand) T, oc OpCase[T]) error {
	n, r := c.Size(), c.Rank()
	in := Input(seed, r, m, gen)
	all := Naive(seed, 0, n, m, gen, oc.F)
	for root := range n {
		var recv []T
		if r == root {
			recv = make([]T, m)
		}
		if err := runtime.Reduce(c, in, recv, oc.Op, root); err != nil {
			return err
		}
		if r == root {
			if err := Equal(recv, all, oc.Tol); err != nil {
				return fmt.Errorf("Reduce %v to root %d len %d: %w", oc.Op, root, m, err)
			}
		}
	}
	return nil
}

// Scattered checks ReduceScatter with counts drawn from seed (empty blocks
// too, about m elements in all) and ReduceScatterBlock.
func Scattered[T runtime.Elem](c *runtime.Comm, seed uint64, m int, gen func(*rand.Rand) T, oc OpCase[T]) error {
	n, r := c.Size(), c.Rank()
	rng := rand.New(rand.NewPCG(seed, 2))
	counts := make([]int, n)
	total := 0
	for i := range counts {
		counts[i] = rng.IntN(2*m/n + 2)
		total += counts[i]
	}
	all := Naive(seed, 0, n, total, gen, oc.F)
	off := 0
	for i := range r {
		off += counts[i]
	}
	recv := make([]T, counts[r])
	if err := runtime.ReduceScatter(c, Input(seed, r, total, gen), recv, counts, oc.Op); err != nil {
		return err
	}
	if err := Equal(recv, all[off:off+counts[r]], oc.Tol); err != nil {
		return fmt.Errorf("ReduceScatter %v counts %v: %w", oc.Op, counts, err)
	}
	k := m / n
	all = Naive(seed+1, 0, n, n*k, gen, oc.F)
	blk := make([]T, k)
	if err := runtime.ReduceScatterBlock(c, Input(seed+1, r, n*k, gen), blk, oc.Op); err != nil {
		return err
	}
	if err := Equal(blk, all[r*k:(r+1)*k], oc.Tol); err != nil {
		return fmt.Errorf("ReduceScatterBlock %v block %d: %w", oc.Op, k, err)
	}
	return nil
}

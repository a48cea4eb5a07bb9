// Package collcheck checks every collective of package runtime against a
// naive version on seeded random input. Each rank can generate every rank's
// input, so it computes the expected result with a plain loop, in rank
// order, and compares (exactly for integers, within a tolerance for floats,
// and bit for bit across ranks for Allreduce). The same checks run on
// goroutine ranks (runtime's tests), on re-executed processes (ranktest),
// and under gorun (test/apps/collcheck).
package collcheck

import (
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"slices"

	"github.com/gorun-hpc/gorun/runtime"
)

// Lengths are the default vector lengths: empty, tiny, odd, and above the
// ring threshold for 8-byte elements (and not divisible by common rank
// counts).
var Lengths = []int{0, 1, 7, 1000, 20011}

// Input returns rank's seeded input of n elements.
func Input[T runtime.Elem](seed uint64, rank, n int, gen func(*rand.Rand) T) []T {
	rng := rand.New(rand.NewPCG(seed, uint64(rank)))
	v := make([]T, n)
	for i := range v {
		v[i] = gen(rng)
	}
	return v
}

// Generators of the element types the checks use.
func GenInt64(r *rand.Rand) int64           { return r.Int64N(2001) - 1000 }
func GenFloat64(r *rand.Rand) float64       { return r.Float64()*2 - 1 }
func GenUint8(r *rand.Rand) uint8           { return uint8(r.IntN(256)) }
func GenInt32(r *rand.Rand) int32           { return int32(r.Uint32()) }
func GenComplex128(r *rand.Rand) complex128 { return complex(r.Float64(), r.Float64()) }

// Naive folds the inputs of ranks lo..hi-1 element-wise, in rank order.
func Naive[T runtime.Elem](seed uint64, lo, hi, n int, gen func(*rand.Rand) T, f func(a, b T) T) []T {
	acc := Input(seed, lo, n, gen)
	for r := lo + 1; r < hi; r++ {
		in := Input(seed, r, n, gen)
		for i := range acc {
			acc[i] = f(acc[i], in[i])
		}
	}
	return acc
}

// Equal compares got with want: exactly, or within tol for floating point
// elements when tol > 0.
func Equal[T runtime.Elem](got, want []T, tol float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("length %d, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] == want[i] {
			continue
		}
		if tol > 0 {
			switch g := any(got[i]).(type) {
			case float64:
				if math.Abs(g-any(want[i]).(float64)) <= tol {
					continue
				}
			case complex128:
				if cmplx.Abs(g-any(want[i]).(complex128)) <= tol {
					continue
				}
			}
		}
		return fmt.Errorf("element %d = %v, want %v", i, got[i], want[i])
	}
	return nil
}

// OpCase is one reduction to check: the runtime op, the same operation on
// two elements, and the tolerance of the comparison.
type OpCase[T runtime.Elem] struct {
	Op  runtime.Op
	F   func(a, b T) T
	Tol float64
}

// Reductions checks Allreduce (out of place, in place, and bit-identical on
// every rank), Reduce to a middle root, Scan and Exscan, for one op and
// length.
func Reductions[T runtime.Elem](c *runtime.Comm, seed uint64, m int, gen func(*rand.Rand) T, oc OpCase[T]) error {
	n, r := c.Size(), c.Rank()
	in := Input(seed, r, m, gen)
	all := Naive(seed, 0, n, m, gen, oc.F)
	got := make([]T, m)
	if err := runtime.Allreduce(c, in, got, oc.Op); err != nil {
		return err
	}
	if err := Equal(got, all, oc.Tol); err != nil {
		return fmt.Errorf("Allreduce %v len %d: %w", oc.Op, m, err)
	}
	ref := append([]T(nil), got...)
	if err := runtime.Bcast(c, ref, 0); err != nil {
		return err
	}
	if err := Equal(got, ref, 0); err != nil {
		return fmt.Errorf("Allreduce %v len %d: results differ between ranks: %w", oc.Op, m, err)
	}
	inplace := append([]T(nil), in...)
	if err := runtime.Allreduce(c, inplace, inplace, oc.Op); err != nil {
		return err
	}
	if err := Equal(inplace, all, oc.Tol); err != nil {
		return fmt.Errorf("Allreduce %v in place len %d: %w", oc.Op, m, err)
	}
	root := (n - 1) / 2
	var rbuf []T
	if r == root {
		rbuf = make([]T, m)
	}
	if err := runtime.Reduce(c, in, rbuf, oc.Op, root); err != nil {
		return err
	}
	if r == root {
		if err := Equal(rbuf, all, oc.Tol); err != nil {
			return fmt.Errorf("Reduce %v len %d: %w", oc.Op, m, err)
		}
	}
	sc := make([]T, m)
	if err := runtime.Scan(c, in, sc, oc.Op); err != nil {
		return err
	}
	if err := Equal(sc, Naive(seed, 0, r+1, m, gen, oc.F), oc.Tol); err != nil {
		return fmt.Errorf("Scan %v len %d: %w", oc.Op, m, err)
	}
	// Exscan in place: rank 0's buffer stays as it was.
	ex := append([]T(nil), in...)
	if err := runtime.Exscan(c, ex, ex, oc.Op); err != nil {
		return err
	}
	want := in
	if r > 0 {
		want = Naive(seed, 0, r, m, gen, oc.F)
	}
	if err := Equal(ex, want, oc.Tol); err != nil {
		return fmt.Errorf("Exscan %v len %d: %w", oc.Op, m, err)
	}
	return nil
}

// Movement checks Bcast from every root, Gather, Allgather, Scatter,
// Alltoall and Gatherv for one length.
func Movement(c *runtime.Comm, seed uint64, m int) error {
	n, r := c.Size(), c.Rank()
	gen := GenInt64
	in := Input(seed, r, m, gen)
	everyone := make([]int64, 0, n*m)
	for q := range n {
		everyone = append(everyone, Input(seed, q, m, gen)...)
	}
	for root := range n {
		buf := make([]int64, m)
		if r == root {
			copy(buf, in)
		}
		if err := runtime.Bcast(c, buf, root); err != nil {
			return err
		}
		if err := Equal(buf, Input(seed, root, m, gen), 0); err != nil {
			return fmt.Errorf("Bcast from %d len %d: %w", root, m, err)
		}
	}
	root := n / 2
	var g []int64
	if r == root {
		g = make([]int64, n*m)
	}
	if err := runtime.Gather(c, in, g, root); err != nil {
		return err
	}
	if r == root {
		if err := Equal(g, everyone, 0); err != nil {
			return fmt.Errorf("Gather len %d: %w", m, err)
		}
	}
	ag := make([]int64, n*m)
	if err := runtime.Allgather(c, in, ag); err != nil {
		return err
	}
	if err := Equal(ag, everyone, 0); err != nil {
		return fmt.Errorf("Allgather len %d: %w", m, err)
	}
	sc := make([]int64, m)
	var sendAll []int64
	if r == root {
		sendAll = everyone
	}
	if err := runtime.Scatter(c, sendAll, sc, root); err != nil {
		return err
	}
	if err := Equal(sc, in, 0); err != nil {
		return fmt.Errorf("Scatter len %d: %w", m, err)
	}
	// Alltoall: block j of rank i's send is Input(seed+1, i*n+j).
	k := max(m/n, 1)
	send := make([]int64, 0, n*k)
	for j := range n {
		send = append(send, Input(seed+1, r*n+j, k, gen)...)
	}
	recv := make([]int64, n*k)
	if err := runtime.Alltoall(c, send, recv); err != nil {
		return err
	}
	for i := range n {
		if err := Equal(recv[i*k:(i+1)*k], Input(seed+1, i*n+r, k, gen), 0); err != nil {
			return fmt.Errorf("Alltoall block from %d len %d: %w", i, k, err)
		}
	}
	// Gatherv: rank q contributes q+m%3 elements, placed in reverse rank
	// order with a gap of one element between blocks.
	counts, displs := make([]int, n), make([]int, n)
	off := 0
	for q := n - 1; q >= 0; q-- {
		counts[q], displs[q] = q+m%3, off
		off += counts[q] + 1
	}
	var gv []int64
	if r == root {
		gv = make([]int64, off)
	}
	if err := runtime.Gatherv(c, Input(seed+2, r, counts[r], gen), gv, counts, displs, root); err != nil {
		return err
	}
	if r == root {
		for q := range n {
			if err := Equal(gv[displs[q]:displs[q]+counts[q]], Input(seed+2, q, counts[q], gen), 0); err != nil {
				return fmt.Errorf("Gatherv block %d: %w", q, err)
			}
		}
	}
	return c.Barrier()
}

// All runs Movement, Nonblocking, Varied, VariedNonblocking, Neighbors and
// the reductions on int64 (Sum, Max, Land) and float64 (Sum, Min) for every
// length in lengths, and GroupOps and Creation.
func All(c *runtime.Comm, seed uint64, lengths []int) error {
	if err := GroupOps(c, seed); err != nil {
		return err
	}
	if err := Creation(c, seed); err != nil {
		return err
	}
	for _, m := range lengths {
		s := seed + uint64(m)*31
		if err := Movement(c, s, m); err != nil {
			return err
		}
		if err := Nonblocking(c, s, m); err != nil {
			return err
		}
		if err := Varied(c, s); err != nil {
			return err
		}
		if err := Neighbors(c, s, m); err != nil {
			return err
		}
		if err := VariedNonblocking(c, s); err != nil {
			return err
		}
		for _, oc := range Int64Ops {
			if err := Reductions(c, s, m, GenInt64, oc); err != nil {
				return err
			}
		}
		for _, oc := range Float64Ops {
			if err := Reductions(c, s, m, GenFloat64, oc); err != nil {
				return err
			}
		}
	}
	return nil
}

// layout returns n random counts and displacements with gaps, and the
// total size they need.
func layout(rng *rand.Rand, n int) (counts, displs []int, size int) {
	counts, displs = make([]int, n), make([]int, n)
	for i := range n {
		counts[i] = rng.IntN(5) // 0..4
		displs[i] = size + rng.IntN(3)
		size = displs[i] + counts[i]
	}
	return counts, displs, size + rng.IntN(2)
}

func val(from, to, i int) int64 { return int64(from*10000 + to*100 + i) }

// Varied checks Allgatherv, Scatterv (from a root the seed picks) and
// Alltoallv against what every rank can compute, with counts and
// displacements drawn from seed: gaps between blocks, empty blocks.
func Varied(c *runtime.Comm, seed uint64) error { return varied(c, seed, false) }

// VariedNonblocking is Varied with Iallgatherv, Iscatterv, Ialltoallv and
// Igatherv, all in progress at once and completed in reverse order.
func VariedNonblocking(c *runtime.Comm, seed uint64) error { return varied(c, seed, true) }

func varied(c *runtime.Comm, seed uint64, nb bool) error {
	n, me := c.Size(), c.Rank()
	// Every rank draws the same layouts from the seed.
	rng := rand.New(rand.NewPCG(seed, 1))
	counts, displs, size := layout(rng, n)
	var reqs []*runtime.Request
	// call makes a call blocking, or starts it nonblocking.
	call := func(name string, blocking func() error, start func() (*runtime.Request, error)) error {
		var err error
		if !nb {
			err = blocking()
		} else {
			var rq *runtime.Request
			if rq, err = start(); err == nil {
				reqs = append(reqs, rq)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}

	// Allgatherv: rank i contributes counts[i] values val(i, 0, k).
	send := make([]int64, counts[me])
	for k := range send {
		send[k] = val(me, 0, k)
	}
	recv := make([]int64, size)
	if err := call("Allgatherv",
		func() error { return runtime.Allgatherv(c, send, recv, counts, displs) },
		func() (*runtime.Request, error) { return runtime.Iallgatherv(c, send, recv, counts, displs) }); err != nil {
		return err
	}

	// Scatterv from a root chosen by the seed.
	root := int(seed) % n
	var all []int64
	if me == root {
		all = make([]int64, size)
		for i := range n {
			for k := range counts[i] {
				all[displs[i]+k] = val(root, i, k)
			}
		}
	}
	mine := make([]int64, counts[me])
	if err := call("Scatterv",
		func() error { return runtime.Scatterv(c, all, counts, displs, mine, root) },
		func() (*runtime.Request, error) { return runtime.Iscatterv(c, all, counts, displs, mine, root) }); err != nil {
		return err
	}

	// Alltoallv: pair (i, j) moves cnt(i, j) values; everyone knows cnt.
	cnt := make([][]int, n)
	for i := range n {
		cnt[i] = make([]int, n)
		for j := range n {
			cnt[i][j] = rng.IntN(4)
		}
	}
	sc, sd := make([]int, n), make([]int, n)
	rc, rd := make([]int, n), make([]int, n)
	ssize, rsize := 0, 0
	for j := range n {
		sc[j], sd[j] = cnt[me][j], ssize
		ssize += sc[j] + 1 // a gap after each block
		rc[j], rd[j] = cnt[j][me], rsize
		rsize += rc[j]
	}
	sbuf, rbuf := make([]int64, ssize), make([]int64, rsize)
	for j := range n {
		for k := range sc[j] {
			sbuf[sd[j]+k] = val(me, j, k)
		}
	}
	if err := call("Alltoallv",
		func() error { return runtime.Alltoallv(c, sbuf, sc, sd, rbuf, rc, rd) },
		func() (*runtime.Request, error) { return runtime.Ialltoallv(c, sbuf, sc, sd, rbuf, rc, rd) }); err != nil {
		return err
	}

	// Gatherv to the last rank: rank i sends its Allgatherv block again
	// (nonblocking only; Movement checks Gatherv).
	var gv []int64
	if nb {
		if me == n-1 {
			gv = make([]int64, size)
		}
		if err := call("Gatherv", nil, func() (*runtime.Request, error) {
			return runtime.Igatherv(c, send, gv, counts, displs, n-1)
		}); err != nil {
			return err
		}
		slices.Reverse(reqs)
		if err := runtime.Waitall(reqs...); err != nil {
			return err
		}
	}

	for i := range n {
		for k := range counts[i] {
			if recv[displs[i]+k] != val(i, 0, k) {
				return fmt.Errorf("Allgatherv: block %d[%d] = %d", i, k, recv[displs[i]+k])
			}
			if gv != nil && gv[displs[i]+k] != val(i, 0, k) {
				return fmt.Errorf("Igatherv: block %d[%d] = %d", i, k, gv[displs[i]+k])
			}
		}
	}
	for k, v := range mine {
		if v != val(root, me, k) {
			return fmt.Errorf("Scatterv: [%d] = %d", k, v)
		}
	}
	for j := range n {
		for k := range rc[j] {
			if rbuf[rd[j]+k] != val(j, me, k) {
				return fmt.Errorf("Alltoallv: from %d [%d] = %d", j, k, rbuf[rd[j]+k])
			}
		}
	}
	return nil
}

func land[T int64 | int32](a, b T) T {
	if a != 0 && b != 0 {
		return 1
	}
	return 0
}

func lor[T int64 | int32](a, b T) T {
	if a != 0 || b != 0 {
		return 1
	}
	return 0
}

func lxor[T int64 | int32](a, b T) T {
	if (a != 0) != (b != 0) {
		return 1
	}
	return 0
}

// The op cases per type.
var (
	Int64Ops = []OpCase[int64]{
		{runtime.Sum, func(a, b int64) int64 { return a + b }, 0},
		{runtime.Max, func(a, b int64) int64 { return max(a, b) }, 0},
		{runtime.Land, land[int64], 0},
	}
	Float64Ops = []OpCase[float64]{
		{runtime.Sum, func(a, b float64) float64 { return a + b }, 1e-9},
		{runtime.Min, func(a, b float64) float64 { return min(a, b) }, 0},
	}
	Uint8Ops = []OpCase[uint8]{
		{runtime.Prod, func(a, b uint8) uint8 { return a * b }, 0},
		{runtime.Bor, func(a, b uint8) uint8 { return a | b }, 0},
	}
	Int32Ops = []OpCase[int32]{
		{runtime.Bxor, func(a, b int32) int32 { return a ^ b }, 0},
		{runtime.Band, func(a, b int32) int32 { return a & b }, 0},
		{runtime.Lor, lor[int32], 0},
		{runtime.Lxor, lxor[int32], 0},
		{runtime.Min, func(a, b int32) int32 { return min(a, b) }, 0},
	}
	Complex128Ops = []OpCase[complex128]{
		{runtime.Sum, func(a, b complex128) complex128 { return a + b }, 1e-9},
	}
)

// Nonblocking checks the nonblocking collectives against the naive
// versions for one length: Ibarrier, Ibcast, Iallreduce (int64 and
// float64, then bit-identical across ranks), Ireduce, Iallgather,
// Ialltoall, Igather, Iscatter, Iscan, Iexscan (in place) and
// IreduceScatterBlock, all in progress at once on
// c with a blocking Allreduce made among them, completed in reverse order
// (Waitall) for an even seed and in whatever order they finish (Waitany)
// for an odd one.
func Nonblocking(c *runtime.Comm, seed uint64, m int) error {
	n, r := c.Size(), c.Rank()
	gen := GenInt64
	in := Input(seed, r, m, gen)
	fin := Input(seed, r, m, GenFloat64)
	everyone := make([]int64, 0, n*m)
	for q := range n {
		everyone = append(everyone, Input(seed, q, m, gen)...)
	}
	root := int(seed % uint64(n))
	var reqs []*runtime.Request
	start := func(name string, rq *runtime.Request, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		reqs = append(reqs, rq)
		return nil
	}

	rq, err := c.Ibarrier()
	if err := start("Ibarrier", rq, err); err != nil {
		return err
	}
	bc := make([]int64, m)
	if r == root {
		copy(bc, in)
	}
	rq, err = runtime.Ibcast(c, bc, root)
	if err := start("Ibcast", rq, err); err != nil {
		return err
	}
	sum := make([]int64, m)
	rq, err = runtime.Iallreduce(c, in, sum, runtime.Sum)
	if err := start("Iallreduce", rq, err); err != nil {
		return err
	}
	fsum := make([]float64, m)
	rq, err = runtime.Iallreduce(c, fin, fsum, runtime.Sum)
	if err := start("Iallreduce float64", rq, err); err != nil {
		return err
	}
	var red []int64
	if r == root {
		red = make([]int64, m)
	}
	rq, err = runtime.Ireduce(c, in, red, runtime.Max, root)
	if err := start("Ireduce", rq, err); err != nil {
		return err
	}
	// A blocking collective among them, as long as they are: matched in
	// call order, it runs beside the calls in progress.
	ones := make([]int64, m+1)
	for i := range ones {
		ones[i] = 1
	}
	if err := runtime.Allreduce(c, ones, ones, runtime.Sum); err != nil {
		return err
	}
	for _, v := range ones {
		if v != int64(n) {
			return fmt.Errorf("Allreduce len %d among nonblocking calls gave %d, want %d", m+1, v, n)
		}
	}
	ag := make([]int64, n*m)
	rq, err = runtime.Iallgather(c, in, ag)
	if err := start("Iallgather", rq, err); err != nil {
		return err
	}
	k := max(m/n, 1)
	a2aSend := make([]int64, 0, n*k)
	for j := range n {
		a2aSend = append(a2aSend, Input(seed+1, r*n+j, k, gen)...)
	}
	a2aRecv := make([]int64, n*k)
	rq, err = runtime.Ialltoall(c, a2aSend, a2aRecv)
	if err := start("Ialltoall", rq, err); err != nil {
		return err
	}
	var g []int64
	if r == root {
		g = make([]int64, n*m)
	}
	rq, err = runtime.Igather(c, in, g, root)
	if err := start("Igather", rq, err); err != nil {
		return err
	}
	var scSend []int64
	if r == root {
		scSend = everyone
	}
	sc := make([]int64, m)
	rq, err = runtime.Iscatter(c, scSend, sc, root)
	if err := start("Iscatter", rq, err); err != nil {
		return err
	}

	sc2 := make([]int64, m)
	rq, err = runtime.Iscan(c, in, sc2, runtime.Sum)
	if err := start("Iscan", rq, err); err != nil {
		return err
	}
	ex := append([]int64(nil), in...) // in place
	rq, err = runtime.Iexscan(c, ex, ex, runtime.Max)
	if err := start("Iexscan", rq, err); err != nil {
		return err
	}
	// IreduceScatterBlock: block j of rank i's send is Input(seed+3, i*n+j).
	rsSend := make([]int64, 0, n*k)
	for j := range n {
		rsSend = append(rsSend, Input(seed+3, r*n+j, k, gen)...)
	}
	rsRecv := make([]int64, k)
	rq, err = runtime.IreduceScatterBlock(c, rsSend, rsRecv, runtime.Sum)
	if err := start("IreduceScatterBlock", rq, err); err != nil {
		return err
	}

	if seed%2 == 0 {
		for i, j := 0, len(reqs)-1; i < j; i, j = i+1, j-1 {
			reqs[i], reqs[j] = reqs[j], reqs[i]
		}
		if err := runtime.Waitall(reqs...); err != nil {
			return err
		}
	} else {
		for range reqs {
			i, _, err := runtime.Waitany(reqs)
			if err != nil {
				return fmt.Errorf("request %d: %w", i, err)
			}
		}
		if i, _, _ := runtime.Waitany(reqs); i != -1 {
			return fmt.Errorf("Waitany found request %d after every one completed", i)
		}
	}

	if err := Equal(bc, Input(seed, root, m, gen), 0); err != nil {
		return fmt.Errorf("Ibcast from %d len %d: %w", root, m, err)
	}
	if err := Equal(sum, Naive(seed, 0, n, m, gen, func(a, b int64) int64 { return a + b }), 0); err != nil {
		return fmt.Errorf("Iallreduce len %d: %w", m, err)
	}
	if err := Equal(fsum, Naive(seed, 0, n, m, GenFloat64, func(a, b float64) float64 { return a + b }), 1e-9); err != nil {
		return fmt.Errorf("Iallreduce float64 len %d: %w", m, err)
	}
	if r == root {
		if err := Equal(red, Naive(seed, 0, n, m, gen, func(a, b int64) int64 { return max(a, b) }), 0); err != nil {
			return fmt.Errorf("Ireduce len %d: %w", m, err)
		}
		if err := Equal(g, everyone, 0); err != nil {
			return fmt.Errorf("Igather len %d: %w", m, err)
		}
	}
	if err := Equal(ag, everyone, 0); err != nil {
		return fmt.Errorf("Iallgather len %d: %w", m, err)
	}
	for i := range n {
		if err := Equal(a2aRecv[i*k:(i+1)*k], Input(seed+1, i*n+r, k, gen), 0); err != nil {
			return fmt.Errorf("Ialltoall block from %d len %d: %w", i, k, err)
		}
	}
	if err := Equal(sc, Input(seed, r, m, gen), 0); err != nil {
		return fmt.Errorf("Iscatter len %d: %w", m, err)
	}
	if err := Equal(sc2, Naive(seed, 0, r+1, m, gen, func(a, b int64) int64 { return a + b }), 0); err != nil {
		return fmt.Errorf("Iscan len %d: %w", m, err)
	}
	wantEx := in
	if r > 0 {
		wantEx = Naive(seed, 0, r, m, gen, func(a, b int64) int64 { return max(a, b) })
	}
	if err := Equal(ex, wantEx, 0); err != nil {
		return fmt.Errorf("Iexscan len %d: %w", m, err)
	}
	wantRS := make([]int64, k)
	for i := range n {
		for e, v := range Input(seed+3, i*n+r, k, gen) {
			wantRS[e] += v
		}
	}
	if err := Equal(rsRecv, wantRS, 0); err != nil {
		return fmt.Errorf("IreduceScatterBlock len %d: %w", k, err)
	}
	// Every rank's float64 sum has the same bits.
	ref := append([]float64(nil), fsum...)
	if err := runtime.Bcast(c, ref, 0); err != nil {
		return err
	}
	if err := Equal(fsum, ref, 0); err != nil {
		return fmt.Errorf("Iallreduce float64 len %d: results differ between ranks: %w", m, err)
	}
	return nil
}

package collcheck

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/gorun-hpc/gorun/runtime"
)

// The neighbour collectives on Cartesian grids, against what every rank
// computes from its own naive copy of the grid's geometry.

// neighborsOf computes, the naive way, the neighbours of rank r in a grid
// of dims (row-major) with periods: for each dimension the rank at -1 and
// the rank at +1, wrapping or ProcNull.
func neighborsOf(r int, dims []int, periods []bool) []int {
	at := make([]int, len(dims))
	for d := len(dims) - 1; d >= 0; d-- {
		at[d], r = r%dims[d], r/dims[d]
	}
	var out []int
	for d := range dims {
		for _, step := range []int{-1, 1} {
			x := slices.Clone(at)
			x[d] += step
			if x[d] < 0 || x[d] >= dims[d] {
				if !periods[d] {
					out = append(out, runtime.ProcNull)
					continue
				}
				x[d] = (x[d] + dims[d]) % dims[d]
			}
			q := 0
			for i, v := range x {
				q = q*dims[i] + v
			}
			out = append(out, q)
		}
	}
	return out
}

// nval is element i of block j that rank s sends.
func nval(s, j, i int) int64 { return int64(s)<<40 | int64(j)<<32 | int64(i) }

// untouched marks recv elements that no neighbour fills.
const untouched = -7

// Neighbors checks NeighborAllgather(v) and NeighborAlltoall(v) on a grid
// drawn from seed (up to three dimensions, some periodic, over the first
// ranks of c; sizes 1 and 2 come often) with blocks of m elements, and of
// up to m+2 for the v forms, against what every rank can compute.
func Neighbors(c *runtime.Comm, seed uint64, m int) error {
	rng := rand.New(rand.NewPCG(seed, 4))
	nd := rng.IntN(4)
	size := 1
	if nd > 0 {
		size = 1 + rng.IntN(c.Size())
	}
	dims, err := runtime.DimsCreate(size, make([]int, nd))
	if err != nil {
		return err
	}
	periods := make([]bool, nd)
	for d := range periods {
		periods[d] = rng.IntN(2) == 0
	}
	return NeighborsGrid(c, dims, periods, seed, m)
}

// NeighborsGrid is Neighbors on the grid of dims and periods.
func NeighborsGrid(c *runtime.Comm, dims []int, periods []bool, seed uint64, m int) error {
	size := 1
	for _, d := range dims {
		size *= d
	}
	g, err := c.Cart(dims, periods)
	if err != nil {
		return err
	}
	me := c.Rank()
	if me >= size {
		if g != nil {
			return fmt.Errorf("rank %d is beyond the grid %v but got one", me, dims)
		}
		return nil
	}
	defer g.Close()
	what := fmt.Sprintf("grid %v periods %v", dims, periods)
	nb := neighborsOf(me, dims, periods)
	if got := g.Neighbors(); !slices.Equal(got, nb) {
		return fmt.Errorf("%s: Neighbors() = %v, want %v", what, got, nb)
	}
	k := len(nb)
	// want fills block i of a receive buffer from neighbour nb[i] as
	// fill(q, i) says, and leaves ProcNull's blocks untouched.
	blank := func(size int) []int64 {
		b := make([]int64, size)
		for i := range b {
			b[i] = untouched
		}
		return b
	}
	check := func(call string, got []int64, counts, displs []int, fill func(q, i, e int) int64) error {
		want := blank(len(got))
		for i, q := range nb {
			if q == runtime.ProcNull {
				continue
			}
			for e := range counts[i] {
				want[displs[i]+e] = fill(q, i, e)
			}
		}
		if err := Equal(got, want, 0); err != nil {
			return fmt.Errorf("%s %s, neighbours %v: %w", call, what, nb, err)
		}
		return nil
	}
	regular := func(m int) (counts, displs []int) {
		counts, displs = make([]int, k), make([]int, k)
		for i := range k {
			counts[i], displs[i] = m, i*m
		}
		return counts, displs
	}
	counts, displs := regular(m)

	send := make([]int64, m)
	for e := range send {
		send[e] = nval(me, 0, e)
	}
	recv := blank(k * m)
	if err := runtime.NeighborAllgather(g, send, recv); err != nil {
		return err
	}
	if err := check("NeighborAllgather", recv, counts, displs, func(q, _, e int) int64 { return nval(q, 0, e) }); err != nil {
		return err
	}

	send = make([]int64, k*m)
	for j := range k {
		for e := range m {
			send[j*m+e] = nval(me, j, e)
		}
	}
	recv = blank(k * m)
	if err := runtime.NeighborAlltoall(g, send, recv); err != nil {
		return err
	}
	// From below comes what that rank sent up (block i+1), from above
	// what it sent down (block i-1): block i^1.
	if err := check("NeighborAlltoall", recv, counts, displs, func(q, i, e int) int64 { return nval(q, i^1, e) }); err != nil {
		return err
	}

	// v forms: rank s sends cnt(s, j) elements in block j; gaps between
	// blocks.
	cnt := func(s, j int) int {
		return int((uint64(s)*7919 + uint64(j)*104729 + seed*31) % uint64(m+3))
	}
	layout := func(count func(i int) int) (counts, displs []int, size int) {
		counts, displs = make([]int, k), make([]int, k)
		for i := range k {
			counts[i] = count(i)
			displs[i] = size + i%2
			size = displs[i] + counts[i]
		}
		return counts, displs, size + 1
	}
	rcounts, rdispls, rsize := layout(func(i int) int {
		if nb[i] == runtime.ProcNull {
			return 1
		}
		return cnt(nb[i], 0)
	})
	send = make([]int64, cnt(me, 0))
	for e := range send {
		send[e] = nval(me, 0, e)
	}
	recv = blank(rsize)
	if err := runtime.NeighborAllgatherv(g, send, recv, rcounts, rdispls); err != nil {
		return err
	}
	if err := check("NeighborAllgatherv", recv, rcounts, rdispls, func(q, _, e int) int64 { return nval(q, 0, e) }); err != nil {
		return err
	}

	scounts, sdispls, ssize := layout(func(j int) int { return cnt(me, j) })
	send = make([]int64, ssize)
	for j := range k {
		for e := range scounts[j] {
			send[sdispls[j]+e] = nval(me, j, e)
		}
	}
	rcounts, rdispls, rsize = layout(func(i int) int {
		if nb[i] == runtime.ProcNull {
			return 1
		}
		return cnt(nb[i], i^1)
	})
	recv = blank(rsize)
	if err := runtime.NeighborAlltoallv(g, send, scounts, sdispls, recv, rcounts, rdispls); err != nil {
		return err
	}
	return check("NeighborAlltoallv", recv, rcounts, rdispls, func(q, i, e int) int64 { return nval(q, i^1, e) })
}

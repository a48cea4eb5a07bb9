package runtime

import (
	"fmt"
	"hash/fnv"
	"slices"
)

// A Cart is a communicator with a Cartesian grid over its ranks
// (MPI_Cart_create): rank r sits at the coordinates Coords(r), in
// row-major order (the last dimension varies fastest), and each dimension
// is periodic (a ring) or not. Shift gives a rank's neighbours, ProcNull
// past an open edge, so a halo exchange with Sendrecv needs no edge case.
//
// The neighbour collectives (NeighborAllgather, NeighborAlltoall and their
// v forms) exchange blocks with a rank's neighbours only, in the order of
// Neighbors.
//
// The embedded *Comm is the grid's communicator, for every call of the
// package; its methods may be called from any goroutine, as a Comm's. The
// grid's own methods are local and read only.
type Cart struct {
	*Comm
	dims    []int
	periods []bool
}

// DimsCreate returns dims with its zero entries filled so that the product
// of all entries is nnodes, as balanced as possible, in non-increasing
// order among the filled ones (MPI_Dims_create); nonzero entries are kept.
// Errors: ErrInvalid for a negative entry, nnodes < 1, or nnodes not
// divisible by the product of the kept entries.
func DimsCreate(nnodes int, dims []int) ([]int, error) {
	out := slices.Clone(dims)
	fixed, free := 1, 0
	for _, d := range out {
		switch {
		case d < 0:
			return nil, &OpError{Op: "DimsCreate", Comm: "-", Peer: NoPeer, Err: errInvalid(fmt.Sprintf("dims %v has a negative entry", dims))}
		case d == 0:
			free++
		default:
			fixed *= d
		}
	}
	if nnodes < 1 || nnodes%fixed != 0 {
		return nil, &OpError{Op: "DimsCreate", Comm: "-", Peer: NoPeer, Err: errInvalid(fmt.Sprintf("%d nodes do not divide into dims %v", nnodes, dims))}
	}
	if free == 0 {
		if fixed != nnodes {
			return nil, &OpError{Op: "DimsCreate", Comm: "-", Peer: NoPeer, Err: errInvalid(fmt.Sprintf("dims %v hold %d nodes, not %d", dims, fixed, nnodes))}
		}
		return out, nil
	}
	// Spread the prime factors of what is left over the free entries,
	// largest factor to the smallest entry.
	rest := nnodes / fixed
	var factors []int
	for p := 2; p*p <= rest; p++ {
		for rest%p == 0 {
			factors = append(factors, p)
			rest /= p
		}
	}
	if rest > 1 {
		factors = append(factors, rest)
	}
	got := make([]int, free)
	for i := range got {
		got[i] = 1
	}
	for i := len(factors) - 1; i >= 0; i-- {
		j := 0
		for k := range got {
			if got[k] < got[j] {
				j = k
			}
		}
		got[j] *= factors[i]
	}
	slices.SortFunc(got, func(a, b int) int { return b - a })
	k := 0
	for i, d := range out {
		if d == 0 {
			out[i] = got[k]
			k++
		}
	}
	return out, nil
}

// Cart makes a Cartesian grid of the given dimensions over the first
// prod(dims) ranks of c (MPI_Cart_create without reorder); a rank beyond
// them gets a nil *Cart. periods[i] says whether dimension i wraps around.
//
// Cart is collective over c and blocking; every rank passes the same dims
// and periods. Errors, the same on every rank: ErrInvalid for a dimension
// below 1, more grid points than ranks, periods of another length, or dims
// or periods that differ between ranks; ErrAborted, ErrClosed.
func (c *Comm) Cart(dims []int, periods []bool) (*Cart, error) {
	var local error
	n := 1
	for _, d := range dims {
		if d < 1 {
			local = errInvalid(fmt.Sprintf("dims %v has an entry below 1", dims))
			break
		}
		n *= d
	}
	switch {
	case local != nil:
	case len(periods) != len(dims):
		local = errInvalid(fmt.Sprintf("periods has %d entries for %d dimensions", len(periods), len(dims)))
	case n > c.Size():
		local = errInvalid(fmt.Sprintf("dims %v need %d ranks; the communicator has %d", dims, n, c.Size()))
	}
	if c == nil {
		if local != nil {
			return nil, (*Comm)(nil).opErr("Cart", NoPeer, local)
		}
		return &Cart{dims: slices.Clone(dims), periods: slices.Clone(periods)}, nil
	}
	h := fnv.New64a()
	fmt.Fprint(h, dims, periods)
	mine, all := []int64{int64(h.Sum64() >> 1)}, make([]int64, c.size)
	if err := c.allgatherInts(callCart, "Cart", mine, all, local); err != nil {
		return nil, c.opErr("Cart", NoPeer, err)
	}
	for r, v := range all {
		if v != all[0] {
			return nil, c.opErr("Cart", NoPeer, errInvalid(fmt.Sprintf("ranks 0 and %d passed different dims or periods", r)))
		}
	}
	color := Undefined
	if c.rank < n {
		color = 0
	}
	g, err := c.Split(color, c.rank)
	if err != nil || g == nil {
		return nil, err
	}
	g.name = c.name + ".cart"
	return &Cart{Comm: g, dims: slices.Clone(dims), periods: slices.Clone(periods)}, nil
}

// Dims returns the grid's dimensions, and Periods which of them wrap.
func (g *Cart) Dims() []int     { return slices.Clone(g.dims) }
func (g *Cart) Periods() []bool { return slices.Clone(g.periods) }

// Coords returns the coordinates of rank r of the grid (MPI_Cart_coords),
// or nil if r is not a rank of it.
func (g *Cart) Coords(r int) []int {
	if r < 0 || r >= g.Size() {
		return nil
	}
	out := make([]int, len(g.dims))
	for i := len(g.dims) - 1; i >= 0; i-- {
		out[i] = r % g.dims[i]
		r /= g.dims[i]
	}
	return out
}

// RankOf returns the rank at coords (MPI_Cart_rank): a coordinate past the
// edge of a periodic dimension wraps around; past an open one RankOf
// returns ProcNull. Errors: ErrInvalid for coords of another length.
func (g *Cart) RankOf(coords []int) (int, error) {
	if len(coords) != len(g.dims) {
		return ProcNull, g.Comm.opErr("RankOf", NoPeer, errInvalid(fmt.Sprintf("%d coordinates for %d dimensions", len(coords), len(g.dims))))
	}
	r := 0
	for i, x := range coords {
		d := g.dims[i]
		if x < 0 || x >= d {
			if !g.periods[i] {
				return ProcNull, nil
			}
			x = ((x % d) + d) % d
		}
		r = r*d + x
	}
	return r, nil
}

// Shift returns the ranks disp steps down and up dimension dim from this
// rank (MPI_Cart_shift): src = the rank at -disp, dest = the rank at +disp,
// ProcNull past an open edge. So Sendrecv(to dest, from src) moves data
// disp steps along dim. Errors: ErrInvalid for a dimension out of range.
func (g *Cart) Shift(dim, disp int) (src, dest int, err error) {
	if dim < 0 || dim >= len(g.dims) {
		return ProcNull, ProcNull, g.Comm.opErr("Shift", NoPeer, errInvalid(fmt.Sprintf("dimension %d out of range [0,%d)", dim, len(g.dims))))
	}
	at := g.Coords(g.Rank())
	move := func(d int) int {
		c := slices.Clone(at)
		c[dim] += d
		r, _ := g.RankOf(c)
		return r
	}
	return move(-disp), move(disp), nil
}

// Sub returns the sub-grid of this rank that keeps the dimensions marked
// in remain (MPI_Cart_sub): the ranks that agree on every dropped
// coordinate, ordered as in the grid. Sub is collective over the grid and
// blocking. Errors: ErrInvalid for remain of another length; those of Split.
func (g *Cart) Sub(remain []bool) (*Cart, error) {
	if len(remain) != len(g.dims) {
		return nil, g.Comm.opErr("Sub", NoPeer, errInvalid(fmt.Sprintf("remain has %d entries for %d dimensions", len(remain), len(g.dims))))
	}
	at := g.Coords(g.Rank())
	color, key := 0, 0
	var dims []int
	var periods []bool
	for i, keep := range remain {
		if keep {
			key = key*g.dims[i] + at[i]
			dims, periods = append(dims, g.dims[i]), append(periods, g.periods[i])
		} else {
			color = color*g.dims[i] + at[i]
		}
	}
	sub, err := g.Split(color, key)
	if err != nil {
		return nil, err
	}
	return &Cart{Comm: sub, dims: dims, periods: periods}, nil
}

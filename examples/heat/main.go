// Command heat solves the steady 2-D heat equation (Laplace's equation) on
// an n×m grid by Jacobi iteration: the top edge is held at 100, the left
// edge at 50, the other two at 0, and every interior point becomes the
// mean of its four neighbours until no point moves by more than -tol.
//
// The grid is cut into blocks over a Cartesian grid of ranks (DimsCreate
// and Cart, not periodic). Each rank keeps its block with a frame of ghost
// cells; before each sweep it exchanges that frame with its four
// neighbours with Sendrecv: rows directly, columns packed into a buffer.
// Shift returns ProcNull past the edge of the grid, and a Sendrecv from
// ProcNull receives nothing, so at the edge the ghost cells keep the
// boundary values they started with, without an if. The residual, the
// largest change of any point in a sweep, is combined with Allreduce(Max).
// Rank 0 gathers the blocks (Gatherv) and prints a summary.
//
// With -check, rank 0 solves the same problem serially and compares.
// Every point is computed by the same expression in the same order of
// operations in both, and the residual is a maximum, which does not depend
// on the order in which ranks combine it, so both stop after the same
// sweep and the answers must be equal bit for bit: the check uses ==,
// no tolerance.
//
//	go run ./cmd/gorun -np 4 ./examples/heat -check
//	go run ./cmd/gorun -np 6 --nodes 2 ./examples/heat -n 300 -m 200 -check
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"os"

	"github.com/gorun-hpc/gorun/runtime"
)

func main() {
	n := flag.Int("n", 64, "grid rows (interior points)")
	m := flag.Int("m", 48, "grid columns (interior points)")
	iters := flag.Int("iters", 10000, "most sweeps")
	tol := flag.Float64("tol", 1e-3, "stop once no point changes by more than this in a sweep")
	check := flag.Bool("check", false, "compare with a serial solve at rank 0")
	flag.Parse()

	world, err := runtime.Init(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	if err := run(world, *n, *m, *iters, *tol, *check); err != nil {
		log.Print(err)
		world.Abort(err) // the other ranks may be waiting in a collective
		os.Exit(1)
	}
}

// boundary is the fixed temperature of the frame point (i, j) of the
// global grid, i in [0, n+1] and j in [0, m+1]; corners are never read.
func boundary(i, j int) float64 {
	switch {
	case i == 0:
		return 100
	case j == 0:
		return 50
	}
	return 0
}

// span returns the part [lo, hi) of n points that block k of p owns.
func span(n, p, k int) (lo, hi int) { return k * n / p, (k + 1) * n / p }

// block is a rank's part of the grid: rows [r0, r0+nr) and columns
// [c0, c0+nc) of the interior, stored with a frame of ghost cells as
// (nr+2)×(nc+2) values, row-major.
type block struct {
	r0, nr, c0, nc int
}

func (b block) width() int { return b.nc + 2 }

// frame returns a block's array with its frame set to the boundary values
// where it lies on the edge of the grid (and everything else zero).
func (b block) frame(n, m int) []float64 {
	w := b.width()
	u := make([]float64, (b.nr+2)*w)
	for i := 0; i < b.nr+2; i++ {
		for j := 0; j < w; j++ {
			gi, gj := b.r0+i, b.c0+j // global frame coordinates
			if gi == 0 || gi == n+1 || gj == 0 || gj == m+1 {
				u[i*w+j] = boundary(gi, gj)
			}
		}
	}
	return u
}

// sweep sets the interior of v to one Jacobi step from u and returns the
// largest change. The parallel and the serial solve both call it, so every
// point is computed the same way in both.
func sweep(u, v []float64, nr, nc int) float64 {
	w := nc + 2
	res := 0.0
	for i := 1; i <= nr; i++ {
		for j := 1; j <= nc; j++ {
			k := i*w + j
			x := 0.25 * ((u[k-w] + u[k+w]) + (u[k-1] + u[k+1]))
			res = math.Max(res, math.Abs(x-u[k]))
			v[k] = x
		}
	}
	return res
}

func run(world *runtime.Comm, n, m, iters int, tol float64, check bool) error {
	dims, err := runtime.DimsCreate(world.Size(), []int{0, 0})
	if err != nil {
		return err
	}
	if n < dims[0] || m < dims[1] {
		return fmt.Errorf("heat: a %d×%d grid is too small for %d×%d ranks", n, m, dims[0], dims[1])
	}
	grid, err := world.Cart(dims, []bool{false, false})
	if err != nil {
		return err
	}
	// Every rank is in the grid: prod(dims) == world.Size().
	c := grid.Comm
	blockOf := func(r int) block {
		co := grid.Coords(r)
		r0, r1 := span(n, dims[0], co[0])
		c0, c1 := span(m, dims[1], co[1])
		return block{r0, r1 - r0, c0, c1 - c0}
	}
	b := blockOf(c.Rank())
	w := b.width()
	up, down, err := grid.Shift(0, 1)
	if err != nil {
		return err
	}
	left, right, err := grid.Shift(1, 1)
	if err != nil {
		return err
	}

	// u and v both carry the boundary in their frames: the sweep writes
	// only interiors, and the exchange only overwrites ghost cells that
	// face a neighbour.
	u, v := b.frame(n, m), b.frame(n, m)
	// Columns travel through buffers. The receive buffers start as this
	// rank's own ghost columns: at an open edge nothing is received
	// into them and unpacking writes the boundary back.
	sendW, sendE := make([]float64, b.nr), make([]float64, b.nr)
	recvW, recvE := make([]float64, b.nr), make([]float64, b.nr)
	for i := range b.nr {
		recvW[i], recvE[i] = u[(i+1)*w], u[(i+1)*w+b.nc+1]
	}
	row := func(a []float64, i int) []float64 { return a[i*w+1 : i*w+1+b.nc] }
	const tagDown, tagUp, tagRight, tagLeft = 1, 2, 3, 4
	exchange := func(u []float64) error {
		// My last row goes down, the row above me arrives from up; then
		// the other way.
		if _, err := runtime.Sendrecv(c, row(u, b.nr), down, tagDown, row(u, 0), up, tagDown); err != nil {
			return err
		}
		if _, err := runtime.Sendrecv(c, row(u, 1), up, tagUp, row(u, b.nr+1), down, tagUp); err != nil {
			return err
		}
		for i := range b.nr {
			sendW[i], sendE[i] = u[(i+1)*w+1], u[(i+1)*w+b.nc]
		}
		if _, err := runtime.Sendrecv(c, sendE, right, tagRight, recvW, left, tagRight); err != nil {
			return err
		}
		if _, err := runtime.Sendrecv(c, sendW, left, tagLeft, recvE, right, tagLeft); err != nil {
			return err
		}
		for i := range b.nr {
			u[(i+1)*w], u[(i+1)*w+b.nc+1] = recvW[i], recvE[i]
		}
		return nil
	}

	res := []float64{math.Inf(1)}
	sweeps := 0
	for sweeps < iters && res[0] > tol {
		if err := exchange(u); err != nil {
			return err
		}
		local := sweep(u, v, b.nr, b.nc)
		if err := runtime.Allreduce(c, []float64{local}, res, runtime.Max); err != nil {
			return err
		}
		u, v = v, u
		sweeps++
	}

	// Gather the interiors at rank 0, block by block in rank order.
	mine := make([]float64, 0, b.nr*b.nc)
	for i := 1; i <= b.nr; i++ {
		mine = append(mine, row(u, i)...)
	}
	var all []float64
	var counts, displs []int
	if c.Rank() == 0 {
		all = make([]float64, n*m)
		for r, off := 0, 0; r < c.Size(); r++ {
			rb := blockOf(r)
			counts = append(counts, rb.nr*rb.nc)
			displs = append(displs, off)
			off += rb.nr * rb.nc
		}
	}
	if err := runtime.Gatherv(c, mine, all, counts, displs, 0); err != nil {
		return err
	}
	if c.Rank() != 0 {
		return nil
	}
	// field[i*m+j] is interior point (i, j).
	field := make([]float64, n*m)
	for r := 0; r < c.Size(); r++ {
		rb := blockOf(r)
		for i := range rb.nr {
			copy(field[(rb.r0+i)*m+rb.c0:], all[displs[r]+i*rb.nc:displs[r]+(i+1)*rb.nc])
		}
	}
	mean := 0.0
	for _, x := range field {
		mean += x
	}
	mean /= float64(n * m)
	fmt.Printf("heat: %d×%d grid on %d×%d ranks: %d sweeps, residual %.3e, mean temperature %.6f\n",
		n, m, dims[0], dims[1], sweeps, res[0], mean)
	if !check {
		return nil
	}

	// The serial solve: one block that is the whole grid.
	whole := block{0, n, 0, m}
	su, sv := whole.frame(n, m), whole.frame(n, m)
	sres, ssweeps := math.Inf(1), 0
	for ssweeps < iters && sres > tol {
		sres = sweep(su, sv, n, m)
		su, sv = sv, su
		ssweeps++
	}
	if ssweeps != sweeps || sres != res[0] {
		return fmt.Errorf("heat: the serial solve took %d sweeps to residual %g, the parallel one %d to %g", ssweeps, sres, sweeps, res[0])
	}
	for i := range n {
		for j := range m {
			if s, p := su[(i+1)*(m+2)+j+1], field[i*m+j]; s != p {
				return fmt.Errorf("heat: point (%d, %d) is %v in the serial solve, %v in the parallel one", i, j, s, p)
			}
		}
	}
	fmt.Println("heat: ok (equal to the serial solve bit for bit)")
	return nil
}

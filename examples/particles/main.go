// Command particles moves particles through a periodic box cut into
// blocks, one per rank, and hands each particle to the rank whose block it
// has moved into.
//
// A particle is a struct of float64 position and velocity and an int64 id:
// a pointer-free type, so it travels as a message element as it is. The
// box is [0,1)^d, d = 1 or 2 (-dim), cut over a periodic Cartesian grid of
// ranks (DimsCreate and Cart; RankOf finds the owner of a point). Each
// step every rank moves its particles, counts how many go to each rank,
// exchanges the counts with Alltoall so that each rank knows what it will
// receive, and then the particles themselves with Alltoallv.
//
// With -check, after every step the ranks verify that no particle was lost
// or duplicated: Allreduce of the number of particles and of the sum of
// their ids, and at the end a tally of every id (each must be held exactly
// once); that each particle is held by the owner of its position; and
// MinLoc and MaxLoc of the ranks' particle counts name the least and the
// most loaded rank. Rank 0 prints "particles: ok", or the job fails.
//
//	go run ./cmd/gorun -np 4 ./examples/particles -check
//	go run ./cmd/gorun -np 3 --nodes 2 ./examples/particles -dim 1 -check
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"

	"github.com/gorun-hpc/gorun/runtime"
)

// Particle is the element type of the exchange: 40 bytes, no pointers.
type Particle struct {
	Pos, Vel [2]float64 // only the first dim entries are used
	ID       int64
}

func main() {
	dim := flag.Int("dim", 2, "dimensions of the box: 1 or 2")
	n := flag.Int("n", 1000, "particles per rank at the start")
	steps := flag.Int("steps", 100, "time steps")
	dt := flag.Float64("dt", 0.01, "time step")
	seed := flag.Uint64("seed", 1, "random seed")
	check := flag.Bool("check", false, "verify that no particle is lost or duplicated")
	flag.Parse()

	world, err := runtime.Init(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	if err := run(world, *dim, *n, *steps, *dt, *seed, *check); err != nil {
		log.Print(err)
		world.Abort(err) // the other ranks may be waiting in a collective
		os.Exit(1)
	}
}

func run(world *runtime.Comm, dim, n, steps int, dt float64, seed uint64, check bool) error {
	if dim != 1 && dim != 2 {
		return fmt.Errorf("particles: -dim %d: want 1 or 2", dim)
	}
	dims, err := runtime.DimsCreate(world.Size(), make([]int, dim))
	if err != nil {
		return err
	}
	periods := make([]bool, dim)
	for d := range periods {
		periods[d] = true
	}
	grid, err := world.Cart(dims, periods)
	if err != nil {
		return err
	}
	c := grid.Comm // every rank is in the grid
	rank, size := c.Rank(), c.Size()

	// owner returns the rank whose block holds position p.
	coords := make([]int, dim)
	owner := func(p *Particle) int {
		for d := range dim {
			coords[d] = min(int(p.Pos[d]*float64(dims[d])), dims[d]-1)
		}
		r, err := grid.RankOf(coords)
		if err != nil {
			panic(err) // coords has dim entries
		}
		return r
	}

	// Each rank starts with n particles in its own block, with ids
	// rank*n .. rank*n+n-1 and random velocities of up to 1 per axis, so a
	// particle may cross several blocks in a step.
	rng := rand.New(rand.NewPCG(seed, uint64(rank)))
	me := grid.Coords(rank)
	parts := make([]Particle, n)
	for i := range parts {
		p := &parts[i]
		p.ID = int64(rank*n + i)
		for d := range dim {
			p.Pos[d] = (float64(me[d]) + rng.Float64()) / float64(dims[d])
			p.Vel[d] = 2*rng.Float64() - 1
		}
	}
	total := int64(size) * int64(n)

	sendCounts, recvCounts := make([]int, size), make([]int, size)
	sdispls, rdispls := make([]int, size), make([]int, size)
	var dest []int
	var send []Particle
	for step := 1; step <= steps; step++ {
		// Move, wrap around the box, and count per destination.
		clear(sendCounts)
		dest = dest[:0]
		for i := range parts {
			p := &parts[i]
			for d := range dim {
				x := math.Mod(p.Pos[d]+p.Vel[d]*dt, 1)
				if x < 0 {
					x++
				}
				if x >= 1 { // a tiny negative x rounds to 1 above
					x = 0
				}
				p.Pos[d] = x
			}
			r := owner(p)
			dest = append(dest, r)
			sendCounts[r]++
		}
		// Sort into the send buffer by destination (a counting sort).
		for r, off := 0, 0; r < size; r++ {
			sdispls[r] = off
			off += sendCounts[r]
		}
		if cap(send) < len(parts) {
			send = make([]Particle, len(parts))
		}
		send = send[:len(parts)]
		next := append([]int(nil), sdispls...)
		for i, r := range dest {
			send[next[r]] = parts[i]
			next[r]++
		}
		// How many come from each rank, then the particles themselves.
		if err := runtime.Alltoall(c, sendCounts, recvCounts); err != nil {
			return err
		}
		in := 0
		for r := range size {
			rdispls[r] = in
			in += recvCounts[r]
		}
		parts = make([]Particle, in)
		if err := runtime.Alltoallv(c, send, sendCounts, sdispls, parts, recvCounts, rdispls); err != nil {
			return err
		}
		if check {
			if err := verify(c, parts, owner, total, false); err != nil {
				return fmt.Errorf("particles: step %d: %w", step, err)
			}
		}
	}

	// Load: the least and the most loaded rank, with MinLoc and MaxLoc.
	load := []runtime.Loc[int64]{{Value: int64(len(parts)), Index: rank}}
	least, most := make([]runtime.Loc[int64], 1), make([]runtime.Loc[int64], 1)
	if err := runtime.Allreduce(c, load, least, runtime.MinLoc); err != nil {
		return err
	}
	if err := runtime.Allreduce(c, load, most, runtime.MaxLoc); err != nil {
		return err
	}
	if check {
		if err := verify(c, parts, owner, total, true); err != nil {
			return fmt.Errorf("particles: at the end: %w", err)
		}
		// Every rank checks the reductions against the counts gathered.
		counts := make([]int64, size)
		if err := runtime.Allgather(c, []int64{int64(len(parts))}, counts); err != nil {
			return err
		}
		lo, hi := 0, 0
		for r, k := range counts {
			if k < counts[lo] {
				lo = r
			}
			if k > counts[hi] {
				hi = r
			}
		}
		if least[0] != (runtime.Loc[int64]{Value: counts[lo], Index: lo}) || most[0] != (runtime.Loc[int64]{Value: counts[hi], Index: hi}) {
			return fmt.Errorf("particles: MinLoc %+v and MaxLoc %+v of the counts %v", least[0], most[0], counts)
		}
	}
	if rank == 0 {
		fmt.Printf("particles: %d particles on %v ranks, %d steps; least loaded rank %d (%d), most loaded rank %d (%d)\n",
			total, dims, steps, least[0].Index, least[0].Value, most[0].Index, most[0].Value)
		if check {
			fmt.Println("particles: ok")
		}
	}
	return nil
}

// verify checks, collectively over c, that the ranks hold total particles
// with the ids 0..total-1 between them, each at the rank that owns its
// position. With tally it counts every id, which shows a particle lost and
// another duplicated even when the count and the sum of ids agree. Every
// rank returns the same error.
func verify(c *runtime.Comm, parts []Particle, owner func(*Particle) int, total int64, tally bool) error {
	misplaced, idSum := int64(0), int64(0)
	for i := range parts {
		if owner(&parts[i]) != c.Rank() {
			misplaced++
		}
		idSum += parts[i].ID
	}
	sums := make([]int64, 3)
	if err := runtime.Allreduce(c, []int64{int64(len(parts)), idSum, misplaced}, sums, runtime.Sum); err != nil {
		return err
	}
	if want := total * (total - 1) / 2; sums[0] != total || sums[1] != want {
		return fmt.Errorf("%d particles with ids summing to %d, want %d and %d", sums[0], sums[1], total, want)
	}
	if sums[2] != 0 {
		return fmt.Errorf("%d particles held by a rank that does not own their position", sums[2])
	}
	if !tally {
		return nil
	}
	seen := make([]int32, total)
	for i := range parts {
		if id := parts[i].ID; id >= 0 && id < total {
			seen[id]++
		}
	}
	all := make([]int32, total)
	if err := runtime.Allreduce(c, seen, all, runtime.Sum); err != nil {
		return err
	}
	for id, k := range all {
		if k != 1 {
			return fmt.Errorf("particle %d is held %d times", id, k)
		}
	}
	return nil
}

// Command shared is pshmem's README example in Go: one copy of a 3×5 array
// per node, set collectively from one rank, read freely by every rank.
//
//	go run ./cmd/gorun -np 4 ./examples/shared
//	go run ./cmd/gorun -np 4 --nodes 2 ./examples/shared
package main

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/gorun-hpc/gorun/patterns"
	"github.com/gorun-hpc/gorun/runtime"
)

func main() {
	comm, err := runtime.Init(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer comm.Close()

	// A copy of the data exists on every node and is initialized to zero.
	shm, err := patterns.NewShared[float64](comm, 3, 5)
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Close()
	if comm.Rank() == 0 {
		// A summary of the data, as pshmem prints it.
		fmt.Printf("String representation:\n\n%v\n\n===== Initialized Data =====\n", shm)
	}
	show(comm, shm)

	var data []float64
	var offset []int
	if comm.Rank() == 0 {
		data = []float64{0, 1, 2, 3, 4, 5} // a 2×3 block
		offset = []int{1, 1}
	}
	// Set is collective, but its arguments only matter on the sending rank.
	if err := shm.Set(data, []int{2, 3}, offset, 0); err != nil {
		log.Fatal(err)
	}
	// Assign finds the sender itself (pshmem's shm[offset] = data): the one
	// rank that passes data. Still collective.
	if err := shm.Assign(data, []int{2, 3}, offset); err != nil {
		log.Fatal(err)
	}

	// The update is now in the shared memory of every node.
	if comm.Rank() == 0 {
		fmt.Println("======= Updated Data =======")
	}
	show(comm, shm)

	// Every rank reads its node's copy directly.
	if comm.Rank() == comm.Size()-1 {
		fmt.Println("==== Read-only access ======")
		fmt.Printf("rank %d: shm[2, 3] = %v\n", comm.Rank(), shm.At(2, 3))
		fmt.Printf("rank %d: shm.Data() = \n%s\n", comm.Rank(), grid(shm))
	}
}

// show prints every rank's view in turn.
func show(comm *runtime.Comm, shm *patterns.Shared[float64]) {
	for p := range comm.Size() {
		if p == comm.Rank() {
			fmt.Printf("rank %d:\n%s\n", p, grid(shm))
		}
		if err := comm.Barrier(); err != nil {
			log.Fatal(err)
		}
	}
}

// grid formats a 2-d array as numpy prints one.
func grid(shm *patterns.Shared[float64]) string {
	shape, d := shm.Shape(), shm.Data()
	var b strings.Builder
	b.WriteString(" [")
	for i := range shape[0] {
		if i > 0 {
			b.WriteString("\n ")
		}
		b.WriteString("[")
		for j := range shape[1] {
			if j > 0 {
				b.WriteString(" ")
			}
			if v := d[i*shape[1]+j]; v == float64(int64(v)) {
				fmt.Fprintf(&b, "%g.", v) // numpy's "5."
			} else {
				fmt.Fprintf(&b, "%g", v)
			}
		}
		b.WriteString("]")
	}
	b.WriteString("]")
	return b.String()
}

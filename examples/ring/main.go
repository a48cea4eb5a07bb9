// Command ring passes a token around all ranks: rank 0 sends it to rank 1,
// each rank adds its number and passes it on, and rank 0 prints the total.
//
//	go run ./cmd/gorun -np 4 --tag-output ./examples/ring
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/gorun-hpc/gorun/runtime"
)

func main() {
	world, err := runtime.Init(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()

	rank, size := world.Rank(), world.Size()
	next, prev := (rank+1)%size, (rank-1+size)%size
	token := []int{0}
	if rank == 0 {
		token[0] = 0
		if size > 1 {
			if err := runtime.Send(world, token, next, 0); err != nil {
				log.Fatal(err)
			}
			if _, err := runtime.Recv(world, token, prev, 0); err != nil {
				log.Fatal(err)
			}
		}
		fmt.Printf("token came back as %d (sum of ranks 0..%d)\n", token[0], size-1)
		return
	}
	if _, err := runtime.Recv(world, token, prev, 0); err != nil {
		log.Fatal(err)
	}
	token[0] += rank
	if err := runtime.Send(world, token, next, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("rank %d passed the token on\n", rank)
}

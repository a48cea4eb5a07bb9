// Command pi estimates π by integrating 4/(1+x²) over [0,1]: every rank
// sums its share of the intervals, and Reduce adds the shares at rank 0.
//
//	go run ./cmd/gorun -np 4 ./examples/pi
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"

	"github.com/gorun-hpc/gorun/runtime"
)

func main() {
	n := flag.Int("n", 50_000_000, "number of intervals")
	flag.Parse()

	world, err := runtime.Init(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()

	h := 1 / float64(*n)
	local := 0.0
	for i := world.Rank(); i < *n; i += world.Size() {
		x := h * (float64(i) + 0.5)
		local += 4 / (1 + x*x)
	}
	sum := make([]float64, 1)
	if err := runtime.Reduce(world, []float64{local * h}, sum, runtime.Sum, 0); err != nil {
		log.Fatal(err)
	}
	if world.Rank() == 0 {
		fmt.Printf("pi ≈ %.12f (error %.2e) from %d ranks\n", sum[0], math.Abs(sum[0]-math.Pi), world.Size())
	}
}

// Command collcheck runs every collective of package runtime against its
// naive version (internal/collcheck) and a ring of point-to-point messages
// under gorun, and prints "rank R of N ok" on success.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/gorun-hpc/gorun/internal/collcheck"
	"github.com/gorun-hpc/gorun/runtime"
)

func main() {
	seed := flag.Uint64("seed", 1, "random seed of the inputs")
	flag.Parse()
	world, err := runtime.Init(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	err = run(world, *seed)
	if cerr := world.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: %v\n", world.Rank(), err)
		os.Exit(1)
	}
	fmt.Printf("rank %d of %d ok\n", world.Rank(), world.Size())
}

func run(c *runtime.Comm, seed uint64) error {
	n, r := c.Size(), c.Rank()
	for _, m := range []int{0, 3, 200_000} { // eager and rendezvous
		out := collcheck.Input(seed, r, m, collcheck.GenInt64)
		in := make([]int64, m)
		rq, err := runtime.Irecv(c, in, (r-1+n)%n, 1)
		if err != nil {
			return err
		}
		if err := runtime.Send(c, out, (r+1)%n, 1); err != nil {
			return err
		}
		if _, err := rq.Wait(); err != nil {
			return err
		}
		if err := collcheck.Equal(in, collcheck.Input(seed, (r-1+n)%n, m, collcheck.GenInt64), 0); err != nil {
			return fmt.Errorf("ring of %d elements: %w", m, err)
		}
	}
	return collcheck.All(c, seed, collcheck.Lengths)
}

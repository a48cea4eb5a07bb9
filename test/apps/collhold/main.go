// Command collhold runs collectives on the world and on a Dup (so every
// shared segment the runtime makes for them exists) and an Alltoall (so
// every pair of ranks has its channel: they are made on first use), prints
// "ready job=J rank=R", and then blocks in a Recv that never completes, so
// a test can look at what the job holds while it runs and kill gorun.
//
// With -late, only rank 0 makes the collective calls, after printing
// "entering job=J": it stays inside the first one, setting up its shared
// segment, while the others print "ready" at once and wait.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/gorun-hpc/gorun/runtime"
)

func main() {
	late := flag.Bool("late", false, "only rank 0 enters the collectives")
	flag.Parse()
	world, err := runtime.Init(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *late && world.Rank() == 0 {
		fmt.Printf("entering job=%s rank=0\n", os.Getenv("GORUN_JOB_ID"))
	}
	if *late && world.Rank() != 0 {
		// Stay out of the collectives.
	} else if err := run(world); err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: %v\n", world.Rank(), err)
		os.Exit(1)
	}
	fmt.Printf("ready job=%s rank=%d\n", os.Getenv("GORUN_JOB_ID"), world.Rank())
	_, err = runtime.Recv(world, make([]byte, 1), runtime.AnySource, 99)
	fmt.Fprintf(os.Stderr, "rank %d: Recv returned: %v\n", world.Rank(), err)
	os.Exit(1)
}

func run(c *runtime.Comm) error {
	d, err := c.Dup()
	if err != nil {
		return err
	}
	n := c.Size()
	if err := runtime.Alltoall(c, make([]int32, n), make([]int32, n)); err != nil {
		return err
	}
	for _, comm := range []*runtime.Comm{c, d} {
		if err := comm.Barrier(); err != nil {
			return err
		}
		v := []float64{1}
		if err := runtime.Allreduce(comm, v, v, runtime.Sum); err != nil {
			return err
		}
		if err := runtime.Bcast(comm, make([]int32, 1000), 0); err != nil {
			return err
		}
	}
	return nil
}

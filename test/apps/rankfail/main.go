// Command rankfail makes one rank fail while the others wait in a runtime
// call, to test how gorun and the runtime end a job:
//
//	rankfail -mode exit|panic|kill|abort [-rank R] [-wait recv|barrier]
//
// The other ranks block in Recv from the failing rank (or in a Barrier, which
// on one node goes through a shared segment), ignoring SIGTERM so
// that gorun's stop cannot overtake them (run gorun with a long --grace),
// and print "rank R: <error>" when that call returns.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gorun-hpc/gorun/runtime"
)

func main() {
	mode := flag.String("mode", "exit", "how the failing rank fails: exit, panic, kill or abort")
	bad := flag.Int("rank", 1, "the failing rank")
	wait := flag.String("wait", "recv", "what the other ranks wait in: recv (from the failing rank) or barrier")
	flag.Parse()
	if os.Getenv("GORUN_RANK") != fmt.Sprint(*bad) {
		signal.Ignore(syscall.SIGTERM)
	}
	world, err := runtime.Init(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer world.Close()
	// The failing rank may leave the barrier and fail while the others
	// are still in it, so the barrier's error is reported as the Recv's.
	if err := world.Barrier(); err != nil {
		fmt.Printf("rank %d: %v\n", world.Rank(), err)
		os.Exit(1)
	}
	if world.Rank() != *bad {
		if *wait == "barrier" {
			err = world.Barrier()
		} else {
			_, err = runtime.Recv(world, []int{0}, *bad, 0)
		}
		fmt.Printf("rank %d: %v\n", world.Rank(), err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "rank %d failing by %s\n", world.Rank(), *mode)
	switch *mode {
	case "exit":
		os.Exit(3)
	case "panic":
		panic("rankfail: deliberate panic")
	case "kill":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case "abort":
		world.Abort(errors.New("deliberate abort"))
		os.Exit(1)
	}
}

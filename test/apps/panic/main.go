// Command panic is a test rank: the rank given by -rank (default 0) panics;
// the others sleep until stopped.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	bad := flag.Int("rank", 0, "the rank that panics")
	flag.Parse()
	rank, _ := strconv.Atoi(os.Getenv("GORUN_RANK"))
	if rank == *bad {
		panic(fmt.Sprintf("boom from rank %d", rank))
	}
	fmt.Printf("ready pid=%d rank=%d\n", os.Getpid(), rank)
	for {
		time.Sleep(time.Hour)
	}
}

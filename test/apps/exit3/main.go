// Command exit3 is a test rank: the rank given by -rank (default 1) writes
// to stderr and exits with code 3; the others sleep until stopped.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	bad := flag.Int("rank", 1, "the rank that fails")
	flag.Parse()
	rank, _ := strconv.Atoi(os.Getenv("GORUN_RANK"))
	if rank == *bad {
		fmt.Fprintln(os.Stderr, "exit3: first stderr line")
		fmt.Fprintf(os.Stderr, "exit3: rank %d exits with code 3\n", rank)
		os.Exit(3)
	}
	fmt.Printf("ready pid=%d rank=%d\n", os.Getpid(), rank)
	for {
		time.Sleep(time.Hour)
	}
}

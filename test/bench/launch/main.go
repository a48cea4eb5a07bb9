// Command launch is the trivial job of the launch-time benchmark
// (launch.sh): Init, one Allreduce of one int, Close. Rank 0 prints the
// sum, so a run that did not wire up every rank is seen. With -hold D each
// rank waits D after the Allreduce, so its memory can be measured
// (memory.sh).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/gorun-hpc/gorun/runtime"
)

func main() {
	hold := flag.Duration("hold", 0, "wait this long after the Allreduce, before Close")
	flag.Parse()
	c, err := runtime.Init(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sum := []int64{0}
	if err := runtime.Allreduce(c, []int64{1}, sum, runtime.Sum); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if c.Rank() == 0 {
		fmt.Println("ranks", sum[0])
	}
	time.Sleep(*hold)
	if err := c.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Command launch is the trivial job of the launch-time benchmark
// (launch.sh): Init, one Allreduce of one int, Close. Rank 0 prints the
// sum, so a run that did not wire up every rank is seen.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/gorun-hpc/gorun/runtime"
)

func main() {
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
	if err := c.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

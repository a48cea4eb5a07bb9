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
	"strings"
	"time"

	"github.com/gorun-hpc/gorun/runtime"
)

func main() {
	hold := flag.Duration("hold", 0, "wait this long after the Allreduce, before Close")
	mem := flag.Bool("mem", false, "after the Allreduce, print what the ranks hold: memfd mappings and VmRSS (sum over ranks and largest)")
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
	if *mem {
		if err := report(c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	time.Sleep(*hold)
	if err := c.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// report prints at rank 0 what every rank holds after the Allreduce: its
// memfd mappings (the shared-memory rings and segments, which
// du /dev/shm does not see) and its resident set, summed over the ranks
// with the largest beside.
func report(c *runtime.Comm) error {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return err
	}
	var n, kb int64
	for _, line := range strings.Split(string(maps), "\n") {
		if !strings.Contains(line, "memfd:") {
			continue
		}
		var lo, hi uint64
		if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err == nil {
			n, kb = n+1, kb+int64(hi-lo)/1024
		}
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	var rss int64
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &rss)
		}
	}
	sum, top := make([]int64, 3), make([]int64, 1)
	if err := runtime.Reduce(c, []int64{n, kb, rss}, sum, runtime.Sum, 0); err != nil {
		return err
	}
	if err := runtime.Reduce(c, []int64{rss}, top, runtime.Max, 0); err != nil {
		return err
	}
	if c.Rank() == 0 {
		p := int64(c.Size())
		fmt.Printf("np %d: memfd mappings %.1f per rank, %.1f MiB mapped per rank (%d MiB in all, each shared segment counted by every rank that maps it); VmRSS %.1f MiB per rank (largest %.1f), %d MiB in all\n",
			p, float64(sum[0])/float64(p), float64(sum[1])/1024/float64(p), sum[1]/1024, float64(sum[2])/1024/float64(p), float64(top[0])/1024, sum[2]/1024)
	}
	return nil
}

package main

import (
	"testing"

	"github.com/gorun-hpc/gorun/test/bench/osu/osutest"
)

// TestRows also runs the check of the 1 MiB result, which exits on error.
func TestRows(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		osutest.CheckRows(t, osutest.Run(t, n, true, run), "allgather", "us", "8", "1048576")
	}
}

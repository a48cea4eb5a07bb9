package main

import (
	"testing"

	"github.com/gorun-hpc/gorun/test/bench/osu/osutest"
)

func TestRows(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		osutest.CheckRows(t, osutest.Run(t, n, true, run), "bcast", "us", "8", "1048576")
	}
}

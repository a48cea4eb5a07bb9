package main

import (
	"testing"

	"github.com/gorun-hpc/gorun/test/bench/osu/osutest"
)

func TestRows(t *testing.T) {
	lines := osutest.Run(t, 2, true, run)
	osutest.CheckRows(t, lines, "uni_bw", "GB/s", "8192", "65536", "1048576", "4194304", "16777216")
}

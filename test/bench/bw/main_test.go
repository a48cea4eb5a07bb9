package main

import (
	"testing"

	"github.com/gorun-hpc/gorun/test/bench/osu/osutest"
)

func TestRows(t *testing.T) {
	lines := osutest.Run(t, 2, true, run)
	osutest.CheckRows(t, lines, "uni_bw", "GB/s", "8192", "65536", "1048576", "4194304", "16777216")
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("1, 8,1024,67108864")
	if err != nil || len(got) != 4 || got[0] != 1 || got[1] != 8 || got[2] != 1024 || got[3] != winBytes {
		t.Errorf("parseSizes = %v, %v; want [1 8 1024 %d]", got, err, winBytes)
	}
	for _, bad := range []string{"", "0", "-8", "8,,16", "x", "67108865"} {
		if got, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) = %v, want an error", bad, got)
		}
	}
}

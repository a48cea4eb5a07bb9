package main

import (
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/test/bench/osu/osutest"
)

func TestRows(t *testing.T) {
	lines := osutest.Run(t, 2, true, run)
	osutest.CheckRows(t, lines, "pingpong_lat", "us", "0", "8", "64", "1024", "8192", "65536", "1048576", "4194304")
}

func TestOSU(t *testing.T) {
	lines := osutest.Run(t, 2, false, run)
	if len(lines) != 2+len(sizes) || lines[1] != "# Size          Latency (us)" || !strings.HasPrefix(lines[2], "0    ") {
		t.Errorf("OSU output:\n%s", strings.Join(lines, "\n"))
	}
}

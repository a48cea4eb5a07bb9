// Package osutest runs a benchmark of test/bench as goroutine ranks
// (runtime/ranktest) with a short timed loop, for the programs' tests.
package osutest

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
	"github.com/gorun-hpc/gorun/test/bench/osu"
)

// Run runs fn on n ranks with PERF_TARGET_S=0.001 and returns the lines
// rank 0 printed, in -rows mode if rows is set.
func Run(t *testing.T, n int, rows bool, fn func(b *osu.Bench)) []string {
	t.Setenv("PERF_TARGET_S", "0.001")
	var (
		mu  sync.Mutex
		out bytes.Buffer
	)
	ranktest.Run(t, n, func(t testing.TB, c *runtime.Comm) {
		var mine bytes.Buffer
		fn(osu.New(t.Name(), "Test", c, rows, &mine))
		mu.Lock()
		out.Write(mine.Bytes())
		mu.Unlock()
	})
	return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
}

// CheckRows checks that lines are bench<TAB>bytes<TAB>value<TAB>unit rows
// of bench with unit, for the sizes given, in order.
func CheckRows(t *testing.T, lines []string, bench, unit string, sizes ...string) {
	t.Helper()
	if len(lines) != len(sizes) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(sizes), strings.Join(lines, "\n"))
	}
	for i, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 4 || f[0] != bench || f[1] != sizes[i] || f[3] != unit || f[2] == "" {
			t.Errorf("line %d = %q, want %s<TAB>%s<TAB>value<TAB>%s", i, l, bench, sizes[i], unit)
		}
	}
}

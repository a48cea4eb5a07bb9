package runtime

import (
	"errors"
	"math/bits"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOversubscribedDecision(t *testing.T) {
	for _, tc := range []struct {
		name         string
		hosts, masks []string
		want         bool // for rank 0
	}{
		{"one rank per CPU", []string{"a", "a"}, []string{"3", "3"}, false},
		{"more ranks than CPUs", []string{"a", "a", "a"}, []string{"3", "3", "3"}, true},
		{"bound to a CPU each", []string{"a", "a"}, []string{"1", "2"}, false},
		{"bound to one CPU together", []string{"a", "a"}, []string{"1", "1"}, true},
		{"other hosts do not count", []string{"a", "b", "b", "b"}, []string{"1", "1", "1", "1"}, false},
		{"a CPU above 64", []string{"a", "a", "a"}, []string{"10000000000000000", "1", "2"}, false},
		{"unknown mask", []string{"a", "a", "a"}, []string{"1", "", "1"}, false},
		{"malformed mask", []string{"a", "a"}, []string{"1", "x"}, false},
	} {
		if got := oversubscribed(0, tc.hosts, tc.masks); got != tc.want {
			t.Errorf("%s: oversubscribed = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCPUMaskRoundTrip(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Skipf("sched_getaffinity: %v", err)
	}
	m := cpuMask()
	var got []uint64
	if !maskCPUs(m, &got) {
		t.Fatalf("cpuMask %q does not parse", m)
	}
	n := 0
	for _, w := range got {
		n += bits.OnesCount64(w)
	}
	if n != set.Count() {
		t.Fatalf("cpuMask %q has %d CPUs, the affinity set %d", m, n, set.Count())
	}
}

func TestYieldOverride(t *testing.T) {
	for _, tc := range []struct {
		v            string
		force, set   bool
		errorNamesIt bool
	}{{"", false, false, false}, {"0", false, true, false}, {"1", true, true, false}, {"yes", false, false, true}} {
		t.Setenv(EnvYield, tc.v)
		force, set, err := yieldOverride()
		if tc.errorNamesIt {
			if err == nil || !strings.Contains(err.Error(), EnvYield) || !errors.Is(err, ErrInvalid) {
				t.Errorf("%s=%q: error %v, want ErrInvalid naming the variable", EnvYield, tc.v, err)
			}
			continue
		}
		if err != nil || force != tc.force || set != tc.set {
			t.Errorf("%s=%q: (%v, %v, %v), want (%v, %v, nil)", EnvYield, tc.v, force, set, err, tc.force, tc.set)
		}
	}
}

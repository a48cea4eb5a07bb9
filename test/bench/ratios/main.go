// Command ratios prints the project's performance targets as a markdown
// table from a raw.tsv of ../shared/bench/run.sh: for each target row, the
// median and best (min for latency, max for bandwidth) of config -a (gorun)
// and -b (the MPI), the ratios of the medians and of the bests, the median
// of the per-repetition ratios, and whether the target is met.
//
//	go run ./test/bench/ratios [-a gorun-tcp] [-b ompi-tcp] [-set tcp|shm] raw.tsv...
//
// A target is met when the ratio of the medians meets it; the other two
// ratios show how much that depends on the machine's placement state.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// target is one performance target: a/b at most Max (latency) or at least
// Min (bandwidth).
type target struct {
	bench, bytes string
	max, min     float64
}

// targetSets are the targets of the issues: loopback TCP against Open
// MPI's TCP path, and shared memory (one node) against Open MPI's default
// (vader) path.
var targetSets = map[string][]target{
	"tcp": {
		{"pingpong_lat", "8", 1.1, 0},
		{"pingpong_lat", "1024", 1.1, 0},
		{"uni_bw", "1048576", 0, 0.9},
		{"uni_bw", "16777216", 0, 0.9},
		{"allreduce", "8", 1.2, 0},
		{"barrier", "0", 1.2, 0},
	},
	"shm": {
		{"pingpong_lat", "8", 1.5, 0},
		{"pingpong_lat", "65536", 1.3, 0},
		{"uni_bw", "1048576", 0, 0.8},
		{"uni_bw", "16777216", 0, 0.8},
		{"allreduce", "8", 1.5, 0},
		{"barrier", "0", 1.5, 0},
	},
}

// key is a config's measurement in one repetition.
type key struct{ cfg, bench, bytes, rep string }

func main() {
	a := flag.String("a", "gorun-tcp", "the config measured")
	b := flag.String("b", "ompi-tcp", "the config compared against")
	set := flag.String("set", "tcp", "the targets: tcp or shm")
	flag.Parse()
	targets, ok := targetSets[*set]
	if !ok {
		fmt.Fprintf(os.Stderr, "ratios: -set %q: want tcp or shm\n", *set)
		os.Exit(2)
	}
	vals := map[key]float64{}
	for _, path := range flag.Args() {
		if err := read(path, vals); err != nil {
			fmt.Fprintln(os.Stderr, "ratios:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("| benchmark | bytes | %s median (best) | %s median (best) | ratio of medians | ratio of bests | median per-rep ratio | target | met |\n", *a, *b)
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---|---|")
	for _, t := range targets {
		va, vb, pr := series(vals, *a, *b, t)
		if len(va) == 0 || len(vb) == 0 {
			fmt.Printf("| %s | %s | %d values | %d values | | | | | no data |\n", t.bench, t.bytes, len(va), len(vb))
			continue
		}
		best := slices.Min[[]float64]
		goal, rm := fmt.Sprintf("≤ %.1f×", t.max), median(va)/median(vb)
		met := rm <= t.max
		if t.min > 0 {
			best = slices.Max[[]float64]
			goal, met = fmt.Sprintf("≥ %.1f×", t.min), rm >= t.min
		}
		fmt.Printf("| %s | %s | %.3g (%.3g) | %.3g (%.3g) | %.2f | %.2f | %.2f | %s | %s |\n",
			t.bench, t.bytes, median(va), best(va), median(vb), best(vb), rm, best(va)/best(vb), median(pr), goal, yes(met))
	}
}

// read adds the rows of one raw.tsv (rep, config, bench, bytes, value,
// unit) to vals.
func read(path string, vals map[key]float64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "\t")
		if len(fs) != 6 || strings.HasPrefix(fs[0], "#") {
			continue
		}
		v, err := strconv.ParseFloat(fs[4], 64)
		if err != nil {
			continue
		}
		vals[key{fs[1], fs[2], fs[3], path + ":" + fs[0]}] = v
	}
	return sc.Err()
}

// series returns the values of configs a and b for t, and the ratios a/b of
// the repetitions that have both.
func series(vals map[key]float64, a, b string, t target) (va, vb, ratios []float64) {
	for k, v := range vals {
		if k.bench != t.bench || k.bytes != t.bytes {
			continue
		}
		switch k.cfg {
		case a:
			va = append(va, v)
			if w, ok := vals[key{b, k.bench, k.bytes, k.rep}]; ok && w > 0 {
				ratios = append(ratios, v/w)
			}
		case b:
			vb = append(vb, v)
		}
	}
	return va, vb, ratios
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

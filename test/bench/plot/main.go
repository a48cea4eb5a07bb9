// Command plot draws the pictures of docs/performance.md from the benchmark
// rows in docs/data: latency and bandwidth against message size (osu.tsv,
// rows of test/bench/compare.sh's raw.tsv) and launch time against ranks
// (launch.tsv, rows of test/bench/launch/launch.sh's raw.tsv), one line
// per launcher and transport, as SVG files. The same rows give the same
// bytes.
//
//	go run ./test/bench/plot -data docs/data -out docs/img
//
// test/bench/plot.sh -run measures the rows again first.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

// The series of the OSU charts: compare.sh's labels, in legend order.
var (
	osuOrder = []string{"gorun-shm", "gorun-tcp", "ompi", "ompi-tcp", "mpich", "mpich-tcp"}
	osuNames = map[string]string{
		"gorun-shm":      "gorun, shared memory",
		"gorun-tcp":      "gorun, TCP",
		"gorun-tcp-gmp1": "gorun, TCP, GOMAXPROCS=1",
		"ompi":           "Open MPI, vader",
		"ompi-tcp":       "Open MPI, TCP",
		"mpich":          "MPICH, shared memory",
		"mpich-tcp":      "MPICH, TCP",
	}
	osuStyles = map[string]style{
		"gorun-shm": {color: "#1f77b4"},
		"gorun-tcp": {color: "#1f77b4", dash: "6 4"},
		"ompi":      {color: "#ff7f0e"},
		"ompi-tcp":  {color: "#d62728", dash: "6 4"},
		"mpich":     {color: "#2ca02c"},
		"mpich-tcp": {color: "#9467bd", dash: "6 4"},
	}
	launchOrder  = []string{"gorun", "ompi", "mpich"}
	launchNames  = map[string]string{"gorun": "gorun", "ompi": "Open MPI (mpirun)", "mpich": "MPICH (mpiexec)"}
	launchStyles = map[string]style{"gorun": {color: "#1f77b4"}, "ompi": {color: "#ff7f0e"}, "mpich": {color: "#2ca02c"}}
)

// A picture is one SVG file drawn from one data file.
type picture struct {
	data, out    string
	title        string
	sel          selection
	order        []string
	names        map[string]string
	styles       map[string]style
	xlabel       string
	ylabel       string
	size         bool   // x is a message size in bytes (else a rank count)
	repCol, what string // the column counting repetitions; what the subtitle says was measured
}

var pictures = []picture{
	{
		data: "osu.tsv", out: "latency.svg", title: "Ping-pong latency, 2 ranks on one host",
		sel: selection{where: map[string]string{"bench": "pingpong_lat"}, series: "label", x: "bytes", y: "value",
			unit: "unit", scale: map[string]float64{"us": 1, "µs": 1, "ns": 1e-3, "ms": 1e3}},
		order: osuOrder, names: osuNames, styles: osuStyles, size: true,
		xlabel: "message size (bytes)", ylabel: "latency, half a round trip (µs)", repCol: "rep", what: "OSU-style ping-pong",
	},
	{
		data: "osu.tsv", out: "bandwidth.svg", title: "Unidirectional bandwidth, 2 ranks on one host",
		sel: selection{where: map[string]string{"bench": "uni_bw"}, series: "label", x: "bytes", y: "value",
			unit: "unit", scale: map[string]float64{"GB/s": 1e3, "MB/s": 1}},
		order: osuOrder, names: osuNames, styles: osuStyles, size: true,
		xlabel: "message size (bytes)", ylabel: "bandwidth (MB/s, 1 MB = 10⁶ B)", repCol: "rep", what: "windowed sends",
	},
	{
		data: "launch.tsv", out: "launch.svg", title: "Launch time of a trivial job, one host",
		sel:   selection{series: "launcher", x: "np", y: "seconds"},
		order: launchOrder, names: launchNames, styles: launchStyles,
		xlabel: "ranks", ylabel: "wall time of Init, Allreduce, Close (s)", repCol: "rep", what: "oversubscribed on 2 cores",
	},
}

func main() {
	data := flag.String("data", "docs/data", "folder of the benchmark rows (osu.tsv, launch.tsv)")
	out := flag.String("out", "docs/img", "folder to write the SVG files into")
	flag.Parse()
	if err := run(*data, *out); err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}

func run(dataDir, outDir string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	for _, pic := range pictures {
		f, err := os.Open(filepath.Join(dataDir, pic.data))
		if err != nil {
			return err
		}
		t, err := parseTSV(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", pic.data, err)
		}
		c, err := pic.chart(t)
		if err != nil {
			return fmt.Errorf("%s from %s: %w", pic.out, pic.data, err)
		}
		if err := os.WriteFile(filepath.Join(outDir, pic.out), c.svg(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// chart makes pic's chart from its table.
func (pic *picture) chart(t *table) (*chart, error) {
	ss, skipped, err := collect(t, pic.sel, pic.order)
	if err != nil {
		return nil, err
	}
	if len(ss) == 0 {
		return nil, fmt.Errorf("no rows with %v", pic.sel.where)
	}
	var xs, ys []float64
	for i := range ss {
		if n, ok := pic.names[ss[i].key]; ok {
			ss[i].name = n
		} else {
			ss[i].name = ss[i].key
		}
		for _, p := range ss[i].points {
			xs, ys = append(xs, p.x), append(ys, p.y)
		}
	}
	sub := fmt.Sprintf("%s; median of %d runs", pic.what, reps(t, pic.repCol))
	if n := reps(t, pic.repCol); n == 1 {
		sub = fmt.Sprintf("%s; one run", pic.what)
	}
	if d := t.date(); d != "" {
		sub += ", " + d
	}
	if skipped > 0 {
		sub += fmt.Sprintf("; failed runs left out: %d", skipped)
	}
	return &chart{
		title: pic.title, subtitle: sub,
		x:      log2Axis(pic.xlabel, xs, left, right, pic.size),
		y:      log10Axis(pic.ylabel, ys, bottom, top),
		series: ss, styles: pic.styles,
	}, nil
}

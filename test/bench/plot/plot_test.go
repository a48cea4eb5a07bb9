package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const osuRows = `# REPS=3 test/bench/compare.sh -n -t 0.1, 2026-12-03T07:40:00Z: rows
rep	label	bench	bytes	value	unit
1	gorun-shm	pingpong_lat	0	0.30	us
2	gorun-shm	pingpong_lat	0	0.20	us
3	gorun-shm	pingpong_lat	0	0.25	us
1	gorun-shm	pingpong_lat	8	0.5	us
2	gorun-shm	pingpong_lat	8	0.7	us
1	ompi	pingpong_lat	8	0.4	us
1	ompi	pingpong_lat	1048576	90	us
# FAILED rc=1 rep=2 [mpich] something
1	mpich	pingpong_lat	8	FAIL	us
1	gorun-shm	uni_bw	1048576	9.5	GB/s
1	zz-new	pingpong_lat	8	1	us
1	gorun-tcp	pingpong_lat	8	12	us
`

func TestParseTSV(t *testing.T) {
	tb, err := parseTSV(strings.NewReader(osuRows + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.comments) != 2 || !strings.HasPrefix(tb.comments[1], "FAILED") {
		t.Errorf("comments %q", tb.comments)
	}
	if !slices.Equal(tb.cols, []string{"rep", "label", "bench", "bytes", "value", "unit"}) {
		t.Errorf("columns %q", tb.cols)
	}
	if len(tb.rows) != 11 || tb.rows[3][4] != "0.5" {
		t.Errorf("%d rows, row 3 %q", len(tb.rows), tb.rows[3])
	}
	if d := tb.date(); d != "2026-12-03" {
		t.Errorf("date %q", d)
	}
	if _, err := tb.col("nope"); err == nil || !strings.Contains(err.Error(), `no column "nope"`) {
		t.Errorf("col(nope): %v", err)
	}
	if _, err := parseTSV(strings.NewReader("a\tb\n1\t2\t3\n")); err == nil || !strings.Contains(err.Error(), "line 2: 3 fields, the header names 2") {
		t.Errorf("a short header: %v", err)
	}
	if _, err := parseTSV(strings.NewReader("# only a comment\n")); err == nil {
		t.Error("no header: no error")
	}
}

func TestCollect(t *testing.T) {
	tb, err := parseTSV(strings.NewReader(osuRows))
	if err != nil {
		t.Fatal(err)
	}
	lat := pictures[0].sel
	ss, skipped, err := collect(tb, lat, osuOrder)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range ss {
		keys = append(keys, s.key)
	}
	// Known labels in osuOrder's order, others after them by name; mpich
	// has only a failed row.
	if want := []string{"gorun-shm", "gorun-tcp", "ompi", "zz-new"}; !slices.Equal(keys, want) {
		t.Errorf("series %q, want %q", keys, want)
	}
	if skipped != 1 {
		t.Errorf("skipped %d, want 1 (FAIL)", skipped)
	}
	// Medians: of 0.30, 0.20, 0.25 and of 0.5, 0.7.
	if want := []point{{0, 0.25}, {8, 0.6}}; !slices.Equal(ss[0].points, want) {
		t.Errorf("gorun-shm %v, want %v", ss[0].points, want)
	}
	bw, _, err := collect(tb, pictures[1].sel, osuOrder)
	if err != nil || len(bw) != 1 || bw[0].points[0] != (point{1048576, 9500}) {
		t.Errorf("bandwidth in MB/s: %v %v", bw, err)
	}
	bad := lat
	bad.scale = map[string]float64{"ms": 1}
	if _, _, err := collect(tb, bad, nil); err == nil || !strings.Contains(err.Error(), `unit "us"`) {
		t.Errorf("an unknown unit: %v", err)
	}
	bad = lat
	bad.x = "size"
	if _, _, err := collect(tb, bad, nil); err == nil || !strings.Contains(err.Error(), `no column "size"`) {
		t.Errorf("a missing column: %v", err)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestLog2Axis(t *testing.T) {
	a := log2Axis("size", []float64{0, 1, 8, 4194304}, 100, 320, true)
	// 0, then 2^0 .. 2^22: 23 steps over 220 pixels.
	if !near(a.pos(0), 100) || !near(a.pos(4194304), 320) {
		t.Errorf("ends %v %v", a.pos(0), a.pos(4194304))
	}
	step := 220.0 / 23
	for e := range 23 {
		if got := a.pos(math.Exp2(float64(e))); !near(got, 100+step*float64(e+1)) {
			t.Errorf("2^%d at %v, want %v", e, got, 100+step*float64(e+1))
		}
	}
	var labels []string
	for _, tk := range a.ticks {
		if tk.label != "" {
			labels = append(labels, tk.label)
		}
	}
	want := []string{"0", "1", "4", "16", "64", "256", "1K", "4K", "16K", "64K", "256K", "1M", "4M"}
	if !slices.Equal(labels, want) {
		t.Errorf("labels %q, want %q", labels, want)
	}
	if n := len(a.ticks); n != 24 {
		t.Errorf("%d ticks, want 24 (0 and 23 powers of 2)", n)
	}

	r := log2Axis("ranks", []float64{16, 64, 128}, 0, 300, false)
	if !near(r.pos(16), 0) || !near(r.pos(128), 300) || !near(r.pos(32), 100) {
		t.Errorf("ranks: 16 at %v, 32 at %v, 128 at %v", r.pos(16), r.pos(32), r.pos(128))
	}
	labels = labels[:0]
	for _, tk := range r.ticks {
		labels = append(labels, tk.label)
	}
	if want := []string{"16", "32", "64", "128"}; !slices.Equal(labels, want) {
		t.Errorf("rank labels %q, want %q", labels, want)
	}
}

func TestLog10Axis(t *testing.T) {
	a := log10Axis("µs", []float64{0.18, 3, 1500}, 400, 100) // downwards, as y
	// Decades 0.1 .. 10000: 5 of 60 pixels each.
	for e := -1; e <= 4; e++ {
		if got, want := a.pos(math.Pow(10, float64(e))), 400-60*float64(e+1); !near(got, want) {
			t.Errorf("1e%d at %v, want %v", e, got, want)
		}
	}
	var labels []string
	for _, tk := range a.ticks {
		if tk.label != "" {
			labels = append(labels, tk.label)
		}
	}
	if want := []string{"0.1", "1", "10", "100", "1000", "10000"}; !slices.Equal(labels, want) {
		t.Errorf("labels %q, want %q", labels, want)
	}
	// Two decades or fewer: 2 and 5 labelled too.
	b := log10Axis("s", []float64{0.5, 9}, 0, 1)
	labels = labels[:0]
	for _, tk := range b.ticks {
		labels = append(labels, tk.label)
	}
	if want := []string{"0.1", "0.2", "0.5", "1", "2", "5", "10"}; !slices.Equal(labels, want) {
		t.Errorf("labels %q, want %q", labels, want)
	}
}

// The pictures of a data folder: well-formed XML, one path per series with
// the series' name, and the same bytes from the same rows.
func TestRun(t *testing.T) {
	data := t.TempDir()
	launch := "# HOSTS=0 REPS=1 launch.sh 16 64 128, 2026-12-03T08:00:00Z\nnp\tlauncher\trep\tseconds\n" +
		"16\tgorun\t1\t0.52\n16\tmpich\t1\t1.2\n16\tompi\t1\t1.9\n64\tgorun\t1\t3\n64\tompi\t1\tFAIL\n128\tgorun\t1\t60\n"
	for name, rows := range map[string]string{"osu.tsv": osuRows, "launch.tsv": launch} {
		if err := os.WriteFile(filepath.Join(data, name), []byte(rows), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out1, out2 := t.TempDir(), filepath.Join(t.TempDir(), "img")
	for _, out := range []string{out1, out2} {
		if err := run(data, out); err != nil {
			t.Fatal(err)
		}
	}
	for file, names := range map[string][]string{
		"latency.svg":   {"gorun, shared memory", "gorun, TCP", "Open MPI, vader", "zz-new"},
		"bandwidth.svg": {"gorun, shared memory"},
		"launch.svg":    {"gorun", "Open MPI (mpirun)", "MPICH (mpiexec)"},
	} {
		b1, err := os.ReadFile(filepath.Join(out1, file))
		if err != nil {
			t.Fatal(err)
		}
		b2, err := os.ReadFile(filepath.Join(out2, file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Errorf("%s: two runs on the same rows differ", file)
		}
		paths, err := svgPaths(b1)
		if err != nil {
			t.Errorf("%s: not well-formed: %v", file, err)
			continue
		}
		if !slices.Equal(paths, names) {
			t.Errorf("%s: paths %q, want one per series %q", file, paths, names)
		}
	}
	if err := run(t.TempDir(), t.TempDir()); err == nil {
		t.Error("no data files: no error")
	}
}

// svgPaths decodes an SVG document and returns the titles of its path
// elements, in order.
func svgPaths(b []byte) ([]string, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var titles []string
	inPath, inTitle, root := false, false, ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
			}
			if e.Name.Local == "path" {
				inPath = true
				titles = append(titles, "")
			}
			inTitle = inPath && e.Name.Local == "title"
		case xml.EndElement:
			if e.Name.Local == "path" {
				inPath = false
			}
			inTitle = false
		case xml.CharData:
			if inTitle {
				titles[len(titles)-1] += string(e)
			}
		}
	}
	if root != "svg" {
		return nil, io.ErrUnexpectedEOF
	}
	return titles, nil
}

package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// A table is a TSV file of benchmark rows: '#' lines are comments (the
// command and date that produced the rows, notes of failed runs), the
// first other line names the columns, and every row has one field per
// column.
type table struct {
	comments []string
	cols     []string
	rows     [][]string
}

// parseTSV reads a table. Blank lines are skipped.
func parseTSV(r io.Reader) (*table, error) {
	t := &table{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
		case strings.HasPrefix(line, "#"):
			t.comments = append(t.comments, strings.TrimSpace(strings.TrimPrefix(line, "#")))
		case t.cols == nil:
			t.cols = strings.Split(line, "\t")
		default:
			f := strings.Split(line, "\t")
			if len(f) != len(t.cols) {
				return nil, fmt.Errorf("line %d: %d fields, the header names %d", n, len(f), len(t.cols))
			}
			t.rows = append(t.rows, f)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if t.cols == nil {
		return nil, fmt.Errorf("no header line")
	}
	return t, nil
}

// col returns the index of the column named name.
func (t *table) col(name string) (int, error) {
	if i := slices.Index(t.cols, name); i >= 0 {
		return i, nil
	}
	return 0, fmt.Errorf("no column %q (columns: %s)", name, strings.Join(t.cols, ", "))
}

// date returns the first date (YYYY-MM-DD) in t's comments, or "".
func (t *table) date() string {
	for _, c := range t.comments {
		for _, w := range strings.FieldsFunc(c, func(r rune) bool { return r == ' ' || r == ',' || r == 'T' || r == ':' }) {
			if len(w) == 10 && w[4] == '-' && w[7] == '-' && strings.Trim(w, "0123456789-") == "" {
				return w
			}
		}
	}
	return ""
}

type point struct{ x, y float64 }

// A series is one line of a chart: its points in increasing x.
type series struct {
	key    string // the label in the data
	name   string // the legend's
	points []point
}

// selection says which rows of a table make a chart, and how.
type selection struct {
	where  map[string]string // column = value, all must hold
	series string            // the column naming the series
	x      string            // the column of x values
	y      string            // the column of y values
	unit   string            // the column of y's unit, converted by scale; "" for none
	scale  map[string]float64
}

// collect groups the selected rows into series, one point per x: the median
// of the rows' y values. Rows whose x or y is not a number (a failed run's
// "FAIL") are skipped; skipped counts them. The series come in the order
// of order (keys not in it last, by name).
func collect(t *table, s selection, order []string) (out []series, skipped int, err error) {
	idx := func(name string) int {
		if err != nil {
			return 0
		}
		var i int
		i, err = t.col(name)
		return i
	}
	ks, xs, ys := idx(s.series), idx(s.x), idx(s.y)
	us := -1
	if s.unit != "" {
		us = idx(s.unit)
	}
	where := map[int]string{}
	for c, v := range s.where {
		where[idx(c)] = v
	}
	if err != nil {
		return nil, 0, err
	}
	vals := map[string]map[float64][]float64{}
rows:
	for _, r := range t.rows {
		for c, v := range where {
			if r[c] != v {
				continue rows
			}
		}
		x, errx := strconv.ParseFloat(r[xs], 64)
		y, erry := strconv.ParseFloat(r[ys], 64)
		if errx != nil || erry != nil {
			skipped++
			continue
		}
		if us >= 0 {
			f, ok := s.scale[r[us]]
			if !ok {
				return nil, 0, fmt.Errorf("unit %q of %s: not one of %v", r[us], s.y, keys(s.scale))
			}
			y *= f
		}
		if vals[r[ks]] == nil {
			vals[r[ks]] = map[float64][]float64{}
		}
		vals[r[ks]][x] = append(vals[r[ks]][x], y)
	}
	for key, byX := range vals {
		sr := series{key: key}
		for x, v := range byX {
			sr.points = append(sr.points, point{x, median(v)})
		}
		slices.SortFunc(sr.points, func(a, b point) int { return cmp.Compare(a.x, b.x) })
		out = append(out, sr)
	}
	rank := func(k string) int {
		if i := slices.Index(order, k); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortFunc(out, func(a, b series) int {
		return cmp.Or(cmp.Compare(rank(a.key), rank(b.key)), strings.Compare(a.key, b.key))
	})
	return out, skipped, nil
}

// median of v (not empty); v is sorted in place.
func median(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// reps is how many distinct values column col takes in t.
func reps(t *table, col string) int {
	i, err := t.col(col)
	if err != nil {
		return 0
	}
	seen := map[string]bool{}
	for _, r := range t.rows {
		seen[r[i]] = true
	}
	return len(seen)
}

func keys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

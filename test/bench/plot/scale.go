package main

import (
	"math"
	"strconv"
)

// A tick is a labelled (or, with an empty label, unlabelled) value on an
// axis.
type tick struct {
	v     float64
	label string
}

// An axis maps data values onto pixels [p0, p1] and says where its ticks
// go.
type axis struct {
	label  string
	p0, p1 float64
	lo, hi float64 // the domain, in the transformed unit (log2 or log10)
	log    func(float64) float64
	zero   bool // log2 only: 0 is drawn one step left of the smallest power of 2
	ticks  []tick
}

// pos is the pixel of v.
func (a *axis) pos(v float64) float64 {
	t := a.lo
	if v > 0 || !a.zero {
		t = a.log(v)
	}
	return a.p0 + (t-a.lo)/(a.hi-a.lo)*(a.p1-a.p0)
}

// log2Axis is an axis for sizes or rank counts between the smallest
// positive and the largest of vs, on a log2 scale from power of 2 to
// power of 2. When vs has a 0, it is drawn at the left edge, labelled "0",
// one power of 2 left of the smallest positive value. Labels go on every
// step-th power of 2 (1, 4, 16, ... with step 2), at most about 12.
func log2Axis(label string, vs []float64, p0, p1 float64, size bool) *axis {
	lo, hi := math.Inf(1), math.Inf(-1)
	zero := false
	for _, v := range vs {
		if v <= 0 {
			zero = true
			continue
		}
		lo, hi = min(lo, math.Floor(math.Log2(v))), max(hi, math.Ceil(math.Log2(v)))
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	if hi == lo {
		hi++
	}
	a := &axis{label: label, p0: p0, p1: p1, lo: lo, hi: hi, log: math.Log2}
	if zero {
		a.zero, a.lo = true, lo-1
		a.ticks = append(a.ticks, tick{0, "0"})
	}
	step := int(math.Ceil((hi - lo + 1) / 12))
	for e := int(lo); e <= int(hi); e++ {
		t := tick{v: math.Exp2(float64(e))}
		if (e-int(lo))%step == 0 {
			t.label = countLabel(t.v, size)
		}
		a.ticks = append(a.ticks, t)
	}
	return a
}

// countLabel writes a power of 2: bytes with K and M (1024-based), rank
// counts as they are.
func countLabel(v float64, size bool) string {
	n := int64(v)
	switch {
	case size && n >= 1<<20:
		return strconv.FormatInt(n>>20, 10) + "M"
	case size && n >= 1<<10:
		return strconv.FormatInt(n>>10, 10) + "K"
	}
	return strconv.FormatInt(n, 10)
}

// log10Axis is an axis for positive values on a log10 scale, from the
// decade below the smallest of vs to the decade above the largest, with
// ticks at 1, 2 and 5 of every decade, labelled at 1 (and at 2 and 5 when
// the axis spans at most two decades).
func log10Axis(label string, vs []float64, p0, p1 float64) *axis {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		if v > 0 {
			lo, hi = min(lo, math.Floor(math.Log10(v))), max(hi, math.Ceil(math.Log10(v)))
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	if hi == lo {
		hi++
	}
	a := &axis{label: label, p0: p0, p1: p1, lo: lo, hi: hi, log: math.Log10}
	for e := int(lo); e <= int(hi); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, float64(e))
			if math.Log10(v) > hi+1e-9 {
				break
			}
			t := tick{v: v}
			if m == 1 || hi-lo <= 2 {
				t.label = numLabel(v)
			}
			a.ticks = append(a.ticks, t)
		}
	}
	return a
}

// numLabel writes v with no more digits than it needs: 0.01, 0.5, 20, 10000.
func numLabel(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}

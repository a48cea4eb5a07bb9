package patterns

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// String describes the array in pshmem's layout (its repr, with "<Shared"
// for "<MPIShared"): the nodes and ranks that hold it, its shape and
// element type, and its first and last rows (elements, for one
// dimension), or "No Data":
//
//	<Shared
//	  replicated on 2 nodes, each with 2 processes (4 total)
//	  shape = (10,), dtype = float64
//	  [ 0.0 0.0 ... 0.0 0.0 ]
//	>
//
// Elements are written as Python writes numbers and numpy arrays (0.0 and
// 0j for one dimension, [0. 0.] and [0.+0.j] for rows, nan, inf, 1e+16),
// each row on one line and without numpy's padding to a common width.
func (s *Shared[T]) String() string {
	var b strings.Builder
	procs := 1
	if s.comm != nil {
		procs = s.comm.Size()
	}
	fmt.Fprintf(&b, "<Shared\n  replicated on %d nodes, each with %d processes (%d total)\n", s.nodes, s.nodeProcs, procs)
	fmt.Fprintf(&b, "  shape = %s, dtype = %s\n", tuple(s.shape), elemName[T]())
	s.mu.RLock() // against a Close on another goroutine unmapping it
	defer s.mu.RUnlock()
	d := s.ro
	switch {
	case d == nil:
		b.WriteString(" No Data\n")
	case len(s.shape) == 0:
		b.WriteString("  [ " + scalar(d[0]) + " ]\n")
	default:
		row := func(i int) string {
			if len(s.shape) == 1 {
				return scalar(d[i])
			}
			return nested(d[i*s.strides[0]:(i+1)*s.strides[0]], s.shape[1:])
		}
		b.WriteString("  [ ")
		if n := s.shape[0]; n <= 4 {
			for i := range n {
				b.WriteString(row(i) + " ")
			}
		} else {
			b.WriteString(row(0) + " " + row(1) + " ... " + row(n-2) + " " + row(n-1) + " ")
		}
		b.WriteString("]\n")
	}
	b.WriteString(">")
	return b.String()
}

// tuple writes a shape as Python does: (3, 5), (10,), ().
func tuple(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.Itoa(d)
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// summarize is the number of elements past which a row is written in
// part, and edge how many are kept at each end of a dimension then (numpy's
// threshold and edgeitems).
const (
	summarize = 1000
	edge      = 3
)

// nested writes a row-major block of the given shape on one line, as
// numpy writes an array's elements, but without padding to a common
// width: [[0. 1.] [2. 3.]]. A block of more than 1000 elements shows the
// first and last three of each longer dimension around "...", as numpy
// does.
func nested[T any](d []T, shape []int) string {
	var b strings.Builder
	writeNested(&b, d, shape, len(d) > summarize)
	return b.String()
}

// writeNested writes nested's text into b; part summarizes.
func writeNested[T any](b *strings.Builder, d []T, shape []int, part bool) {
	n := shape[0]
	step := 1
	if len(shape) > 1 {
		step = len(d) / max(n, 1)
	}
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		if part && n > 2*edge && i == edge {
			b.WriteString("...")
			i = n - edge - 1
			continue
		}
		if len(shape) == 1 {
			b.WriteString(element(d[i]))
		} else {
			writeNested(b, d[i*step:(i+1)*step], shape[1:], part)
		}
	}
	b.WriteByte(']')
}

// element writes an element of an array as numpy does: a float with an
// integral value as "3.", a complex number as "1.+2.j", nan and inf in
// lower case.
func element(v any) string {
	switch r := reflect.ValueOf(v); r.Kind() {
	case reflect.Float32, reflect.Float64:
		return arrayFloat(r.Float(), r.Type().Bits())
	case reflect.Complex64, reflect.Complex128:
		c, bits := r.Complex(), r.Type().Bits()/2
		return arrayFloat(real(c), bits) + sign(imag(c)) + arrayFloat(math.Abs(imag(c)), bits) + "j"
	}
	return fmt.Sprint(v)
}

func arrayFloat(f float64, bits int) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e16 {
		return strconv.FormatFloat(f, 'f', 0, 64) + "."
	}
	return pyFloat(f, bits, false)
}

// scalar writes one element as Python writes a number (numpy's scalars
// follow it): a float with an integral value as "3.0", positional from
// 1e-4 to 1e16 and scientific outside ("1e+16"), nan and inf in lower
// case; a complex number as "(1+2j)", or "2j" when the real part is +0.
func scalar(v any) string {
	switch r := reflect.ValueOf(v); r.Kind() {
	case reflect.Float32, reflect.Float64:
		return pyFloat(r.Float(), r.Type().Bits(), true)
	case reflect.Complex64, reflect.Complex128:
		c, bits := r.Complex(), r.Type().Bits()/2
		im := pyFloat(math.Abs(imag(c)), bits, false) + "j"
		if real(c) == 0 && !math.Signbit(real(c)) {
			if math.Signbit(imag(c)) {
				return "-" + im
			}
			return im
		}
		return "(" + pyFloat(real(c), bits, false) + sign(imag(c)) + im + ")"
	}
	return fmt.Sprint(v)
}

// pyFloat writes f as Python's repr does, in the shortest form that reads
// back as a float of the given bits; dot adds ".0" to an integral value
// (a float's repr does, a complex number's parts do not).
func pyFloat(f float64, bits int, dot bool) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	if a := math.Abs(f); a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(f, 'e', -1, bits)
	}
	s := strconv.FormatFloat(f, 'f', -1, bits)
	if dot && !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// sign is the sign Python writes before a complex number's imaginary part.
func sign(f float64) string {
	if math.Signbit(f) && !math.IsNaN(f) {
		return "-"
	}
	return "+"
}

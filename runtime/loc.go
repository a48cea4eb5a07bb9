package runtime

import (
	"reflect"
)

// Loc is a value and an index, the element of MinLoc and MaxLoc reductions
// (MPI's MPI_DOUBLE_INT and kin, with the index a Go int): each rank puts
// its value and, typically, its rank or the position the value came from
// in Index, and the reduction finds the least (greatest) value and where it
// is. V is an integer or floating-point type; with another V, MinLoc and
// MaxLoc are ErrInvalid.
//
// Any struct type with the same two fields in this order (Value of such a
// type, Index int), named or not, is reduced the same way.
type Loc[V Elem] struct {
	Value V
	Index int
}

// MinLoc and MaxLoc reduce Loc pairs: the pair with the least (greatest)
// Value; among equal values the one with the lower Index, as in MPI. For
// floats, comparison is "<" (">"), so a NaN is kept only where it comes
// first. They apply to Loc elements only, and Loc elements take no other
// op: either misuse is ErrInvalid naming the op and the type.
const (
	MinLoc Op = Lxor + 1 + iota
	MaxLoc
)

// locValue reports whether t is a Loc pair (a struct of Value and Index
// int, in this order) and the kind of its Value.
func locValue(t reflect.Type) (reflect.Kind, bool) {
	if t.Kind() != reflect.Struct || t.NumField() != 2 {
		return 0, false
	}
	v, i := t.Field(0), t.Field(1)
	if v.Name != "Value" || i.Name != "Index" || i.Type.Kind() != reflect.Int {
		return 0, false
	}
	return v.Type.Kind(), true
}

type ordered interface {
	integer | float
}

// locKernel returns the MinLoc or MaxLoc kernel for T, a Loc pair whose
// Value has kind v.
func locKernel[T any](op Op, v reflect.Kind) (func(dst, src []T), error) {
	switch v {
	case reflect.Int8:
		return via[Loc[int8], T](locOf[int8](op))
	case reflect.Int16:
		return via[Loc[int16], T](locOf[int16](op))
	case reflect.Int32:
		return via[Loc[int32], T](locOf[int32](op))
	case reflect.Int64:
		return via[Loc[int64], T](locOf[int64](op))
	case reflect.Int:
		return via[Loc[int], T](locOf[int](op))
	case reflect.Uint8:
		return via[Loc[uint8], T](locOf[uint8](op))
	case reflect.Uint16:
		return via[Loc[uint16], T](locOf[uint16](op))
	case reflect.Uint32:
		return via[Loc[uint32], T](locOf[uint32](op))
	case reflect.Uint64:
		return via[Loc[uint64], T](locOf[uint64](op))
	case reflect.Uint:
		return via[Loc[uint], T](locOf[uint](op))
	case reflect.Uintptr:
		return via[Loc[uintptr], T](locOf[uintptr](op))
	case reflect.Float32:
		return via[Loc[float32], T](locOf[float32](op))
	case reflect.Float64:
		return via[Loc[float64], T](locOf[float64](op))
	}
	return via[Loc[int], T](nil, false)
}

func locOf[V ordered](op Op) (func(dst, src []Loc[V]), bool) {
	switch op {
	case MinLoc:
		return func(d, s []Loc[V]) {
			for i := range d {
				if s[i].Value < d[i].Value || s[i].Value == d[i].Value && s[i].Index < d[i].Index {
					d[i] = s[i]
				}
			}
		}, true
	case MaxLoc:
		return func(d, s []Loc[V]) {
			for i := range d {
				if s[i].Value > d[i].Value || s[i].Value == d[i].Value && s[i].Index < d[i].Index {
					d[i] = s[i]
				}
			}
		}, true
	}
	return nil, false
}

// boolKernel reduces bool elements with the logical ops.
func boolKernel(op Op) (func(dst, src []bool), bool) {
	switch op {
	case Land:
		return func(d, s []bool) {
			for i := range d {
				d[i] = d[i] && s[i]
			}
		}, true
	case Lor:
		return func(d, s []bool) {
			for i := range d {
				d[i] = d[i] || s[i]
			}
		}, true
	case Lxor:
		return func(d, s []bool) {
			for i := range d {
				d[i] = d[i] != s[i]
			}
		}, true
	}
	return nil, false
}

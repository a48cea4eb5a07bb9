package runtime

import (
	"fmt"
	"reflect"
	"sync"
)

// Op is a reduction operation of Reduce, Allreduce, Scan, Exscan and
// ReduceScatter: one of the built-in ops below, all commutative and
// associative (up to floating-point rounding), or a user op from NewOp.
type Op uint8

// The reduction operations. Sum and Prod apply to every number type; Min
// and Max to integers and floats; Land, Lor, Lxor (logical: nonzero is
// true, the result is 0 or 1) to integers and bool; Band, Bor and Bxor
// (bitwise) to integers; MinLoc and MaxLoc to Loc pairs only.
// Other element types (structs, arrays) take no op: a reduction of them is
// ErrInvalid naming the op and the type.
const (
	Sum Op = iota + 1
	Prod
	Min
	Max
	Land
	Lor
	Band
	Bor
	Bxor
	// Replace and NoOp are for one-sided accumulates (package rma):
	// Replace stores the origin's value, NoOp leaves the target's (an
	// atomic read, with GetAccumulate). Collectives refuse them.
	Replace
	NoOp
	// Lxor is logical exclusive or, a reduction like Lor (after NoOp so
	// that the values above stay as they were).
	Lxor
)

var opNames = [...]string{Sum: "Sum", Prod: "Prod", Min: "Min", Max: "Max", Land: "Land", Lor: "Lor", Band: "Band", Bor: "Bor", Bxor: "Bxor", Replace: "Replace", NoOp: "NoOp", Lxor: "Lxor", MinLoc: "MinLoc", MaxLoc: "MaxLoc"}

func (o Op) String() string {
	if o >= Sum && o <= MaxLoc {
		return opNames[o]
	}
	if u := userOpOf(o); u != nil {
		return u.name
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~int | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uint | ~uintptr
}

type float interface{ ~float32 | ~float64 }

type complexNum interface{ ~complex64 | ~complex128 }

// kernel returns the function that folds src into dst element-wise with op,
// or an ErrInvalid error if op is not defined for T. The check depends only
// on T and op, so every rank of a collective gets the same answer.
func kernel[T Elem](op Op) (func(dst, src []T), error) {
	switch kindOf[T]() {
	case reflect.Int8:
		return via[int8, T](intKernel[int8](op))
	case reflect.Int16:
		return via[int16, T](intKernel[int16](op))
	case reflect.Int32:
		return via[int32, T](intKernel[int32](op))
	case reflect.Int64:
		return via[int64, T](intKernel[int64](op))
	case reflect.Int:
		return via[int, T](intKernel[int](op))
	case reflect.Uint8:
		return via[uint8, T](intKernel[uint8](op))
	case reflect.Uint16:
		return via[uint16, T](intKernel[uint16](op))
	case reflect.Uint32:
		return via[uint32, T](intKernel[uint32](op))
	case reflect.Uint64:
		return via[uint64, T](intKernel[uint64](op))
	case reflect.Uint:
		return via[uint, T](intKernel[uint](op))
	case reflect.Uintptr:
		return via[uintptr, T](intKernel[uintptr](op))
	case reflect.Float32:
		return via[float32, T](floatKernel[float32](op))
	case reflect.Float64:
		return via[float64, T](floatKernel[float64](op))
	case reflect.Complex64:
		return via[complex64, T](complexKernel[complex64](op))
	case reflect.Complex128:
		return via[complex128, T](complexKernel[complex128](op))
	case reflect.Bool:
		return via[bool, T](boolKernel(op))
	case reflect.Struct:
		if v, ok := locValue(reflect.TypeFor[T]()); ok {
			return locKernel[T](op, v)
		}
	}
	return nil, fmt.Errorf("this Op is not defined for %s", reflect.TypeFor[T]())
}

// via adapts a kernel on the base type B to T, a type of the same kind.
func via[B, T any](f func(dst, src []B), ok bool) (func(dst, src []T), error) {
	if !ok {
		return nil, fmt.Errorf("this Op is not defined for %s", reflect.TypeFor[T]())
	}
	return func(dst, src []T) { f(reinterpret[B](dst), reinterpret[B](src)) }, nil
}

func intKernel[B integer](op Op) (func(dst, src []B), bool) {
	switch op {
	case Sum:
		return func(d, s []B) {
			for i := range d {
				d[i] += s[i]
			}
		}, true
	case Prod:
		return func(d, s []B) {
			for i := range d {
				d[i] *= s[i]
			}
		}, true
	case Min:
		return func(d, s []B) {
			for i := range d {
				d[i] = min(d[i], s[i])
			}
		}, true
	case Max:
		return func(d, s []B) {
			for i := range d {
				d[i] = max(d[i], s[i])
			}
		}, true
	case Land:
		return func(d, s []B) {
			for i := range d {
				d[i] = boolTo[B](d[i] != 0 && s[i] != 0)
			}
		}, true
	case Lor:
		return func(d, s []B) {
			for i := range d {
				d[i] = boolTo[B](d[i] != 0 || s[i] != 0)
			}
		}, true
	case Lxor:
		return func(d, s []B) {
			for i := range d {
				d[i] = boolTo[B]((d[i] != 0) != (s[i] != 0))
			}
		}, true
	case Band:
		return func(d, s []B) {
			for i := range d {
				d[i] &= s[i]
			}
		}, true
	case Bor:
		return func(d, s []B) {
			for i := range d {
				d[i] |= s[i]
			}
		}, true
	case Bxor:
		return func(d, s []B) {
			for i := range d {
				d[i] ^= s[i]
			}
		}, true
	}
	return nil, false
}

func boolTo[B integer](b bool) B {
	if b {
		return 1
	}
	return 0
}

func floatKernel[B float](op Op) (func(dst, src []B), bool) {
	switch op {
	case Sum:
		return func(d, s []B) {
			for i := range d {
				d[i] += s[i]
			}
		}, true
	case Prod:
		return func(d, s []B) {
			for i := range d {
				d[i] *= s[i]
			}
		}, true
	case Min:
		// Not the min builtin: it propagates NaN, C's fmin-style "<" does
		// not, and MPI implementations use "<".
		return func(d, s []B) {
			for i := range d {
				if s[i] < d[i] {
					d[i] = s[i]
				}
			}
		}, true
	case Max:
		return func(d, s []B) {
			for i := range d {
				if s[i] > d[i] {
					d[i] = s[i]
				}
			}
		}, true
	}
	return nil, false
}

func complexKernel[B complexNum](op Op) (func(dst, src []B), bool) {
	switch op {
	case Sum:
		return func(d, s []B) {
			for i := range d {
				d[i] += s[i]
			}
		}, true
	case Prod:
		return func(d, s []B) {
			for i := range d {
				d[i] *= s[i]
			}
		}, true
	}
	return nil, false
}

// checkOp returns the kernel for op on T, or an argument error naming both.
func checkOp[T Elem](op Op) (func(dst, src []T), error) {
	if op >= firstUserOp {
		return userKernel[T](op)
	}
	if op == Replace || op == NoOp {
		return nil, errInvalid(fmt.Sprintf("op %v is for one-sided accumulates, not collectives", op))
	}
	if (op < Sum || op > Bxor) && op != Lxor && op != MinLoc && op != MaxLoc {
		return nil, errInvalid(fmt.Sprintf("op %v is not a reduction operation", op))
	}
	key := kernelKey{reflect.TypeFor[T](), op}
	if f, ok := kernels.Load(key); ok {
		return f.(func(dst, src []T)), nil
	}
	if _, err := elemOf[T](); err != nil {
		return nil, err
	}
	f, err := kernel[T](op)
	if err != nil {
		return nil, errInvalid(fmt.Sprintf("op %v is not defined for %s", op, key.t))
	}
	kernels.Store(key, f)
	return f, nil
}

// commKernel is checkOp with a one-entry cache on c (nil allowed): a loop
// of reductions of one type and op skips even the sync.Map lookup (user
// ops skip both caches: a freed handle may name another op). Only
// collectives use it, and those run one at a time on c.
//
// The kernel folds src into dst as dst = dst op src, with dst holding the
// lower ranks' contributions; an algorithm that combines in another order
// must not use it directly for an op that is op.ordered() (see foldLower).
func commKernel[T Elem](c *Comm, op Op) (func(dst, src []T), error) {
	if c == nil || op >= firstUserOp {
		return checkOp[T](op)
	}
	key := kernelKey{reflect.TypeFor[T](), op}
	if c.kernel.key == key {
		return c.kernel.f.(func(dst, src []T)), nil
	}
	f, err := checkOp[T](op)
	if err == nil {
		c.kernel.key, c.kernel.f = key, f
	}
	return f, err
}

// foldLower sets acc = in op acc, where in holds the contributions of
// lower ranks than acc's; in is overwritten. For an op that commutes that
// is f(acc, in); otherwise f(in, acc) and a copy back.
func foldLower[T Elem](f func(dst, src []T), ordered bool, acc, in []T) {
	if !ordered {
		f(acc, in)
		return
	}
	f(in, acc)
	copy(acc, in)
}

// kernels caches the kernel of every (element type, op) used so far, so
// a small reduction does not allocate its kernel on every call.
var kernels sync.Map // kernelKey → func(dst, src []T)

type kernelKey struct {
	t  reflect.Type
	op Op
}

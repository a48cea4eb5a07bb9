package rma

import (
	"bytes"
	"fmt"
	"reflect"
	goruntime "runtime"
	"sync/atomic"
	"unsafe"

	"github.com/gorun-hpc/gorun/runtime"
)

// Accumulates are atomic per target.
//
// An accumulate, get-accumulate, fetch-and-op or compare-and-swap is
// applied to a target's memory under the target's accumulate lock, a
// spinlock word in its control block, whether the origin applies it itself
// (a target on its node) or the target's receive path applies it for a
// remote origin: both run apply, so two such operations never interleave
// on any element, whatever path each came by, and the elements are then
// combined with plain typed loops at memory speed. Puts and gets are plain
// copies without the lock: a put or get that meets an update of the same
// element in one epoch is a conflict, and its result undefined, as in MPI.

// elemKind is what the accumulates need to know of an element type.
type elemKind struct {
	size int
	kind reflect.Kind // of the underlying type
}

// kindOf returns the elemKind of T.
func kindOf[T runtime.Number]() elemKind {
	var z T
	k := reflect.TypeFor[T]().Kind()
	switch k {
	case reflect.Int:
		k = reflect.Int64
	case reflect.Uint, reflect.Uintptr:
		k = reflect.Uint64
	}
	if unsafe.Sizeof(z) == 4 && k == reflect.Int64 {
		k = reflect.Int32 // int on 32-bit platforms
	}
	return elemKind{int(unsafe.Sizeof(z)), k}
}

func (k elemKind) integer() bool {
	switch k.kind {
	case reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	}
	return true
}

func (k elemKind) String() string { return k.kind.String() }

// checkOp reports an argument error if op cannot accumulate elements of
// kind k.
func (k elemKind) checkOp(op runtime.Op) error {
	switch op {
	case runtime.Sum, runtime.Prod, runtime.Replace, runtime.NoOp:
		return nil
	case runtime.Min, runtime.Max:
		if k.kind != reflect.Complex64 && k.kind != reflect.Complex128 {
			return nil
		}
	case runtime.Land, runtime.Lor, runtime.Band, runtime.Bor, runtime.Bxor:
		if k.integer() {
			return nil
		}
	}
	return fmt.Errorf("op %v cannot accumulate %s elements", op, k)
}

// spinLock takes the spinlock word *l.
func spinLock(l *uint32) {
	// acquire (seq-cst CAS): everything the last holder did happens
	// before what this holder does.
	for i := 1; !atomic.CompareAndSwapUint32(l, 0, 1); i++ {
		if i%64 == 0 {
			goruntime.Gosched() // the holder may have been descheduled
		}
	}
}

// spinUnlock releases *l (a release store).
func spinUnlock(l *uint32) { atomic.StoreUint32(l, 0) }

// apply combines the origin's elements src with op into mem (count
// elements of kind k), keeping the old elements in old if it is not nil;
// with cas, src holds one new element and one to compare, and mem's
// element is replaced only if it equals the second bit for bit. Callers
// hold the target's accumulate lock.
func (k elemKind) apply(mem []byte, count int, op runtime.Op, src, old []byte, cas bool) {
	n := count * k.size
	if old != nil {
		copy(old, mem[:n])
	}
	switch {
	case cas:
		if bytes.Equal(mem[:k.size], src[k.size:2*k.size]) {
			copy(mem[:k.size], src[:k.size])
		}
		return
	case op == runtime.NoOp:
		return
	case op == runtime.Replace:
		copy(mem[:n], src[:n])
		return
	}
	switch k.kind {
	case reflect.Float64:
		arith(op, view[float64](mem, count), view[float64](src, count))
	case reflect.Float32:
		arith(op, view[float32](mem, count), view[float32](src, count))
	case reflect.Int64:
		ints(op, view[int64](mem, count), view[int64](src, count))
	case reflect.Uint64:
		ints(op, view[uint64](mem, count), view[uint64](src, count))
	case reflect.Int32:
		ints(op, view[int32](mem, count), view[int32](src, count))
	case reflect.Uint32:
		ints(op, view[uint32](mem, count), view[uint32](src, count))
	case reflect.Int16:
		ints(op, view[int16](mem, count), view[int16](src, count))
	case reflect.Uint16:
		ints(op, view[uint16](mem, count), view[uint16](src, count))
	case reflect.Int8:
		ints(op, view[int8](mem, count), view[int8](src, count))
	case reflect.Uint8:
		ints(op, view[uint8](mem, count), view[uint8](src, count))
	case reflect.Complex64:
		sumProd(op, view[complex64](mem, count), view[complex64](src, count))
	case reflect.Complex128:
		sumProd(op, view[complex128](mem, count), view[complex128](src, count))
	default:
		panic("rma: accumulate of " + k.String())
	}
}

// view is b as count elements of E; b is aligned for E (window memory,
// and Go's allocations of the origin's data).
func view[E runtime.Number](b []byte, count int) []E {
	if count == 0 {
		return nil
	}
	return unsafe.Slice((*E)(unsafe.Pointer(unsafe.SliceData(b))), count)
}

type ordered interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

// arith folds s into d with Sum, Prod, Min or Max. Min and Max compare
// with "<", as the runtime's reductions and MPI implementations do (a NaN
// does not propagate).
func arith[E ordered](op runtime.Op, d, s []E) {
	switch op {
	case runtime.Sum, runtime.Prod:
		sumProd(op, d, s)
	case runtime.Min:
		for i := range d {
			if s[i] < d[i] {
				d[i] = s[i]
			}
		}
	case runtime.Max:
		for i := range d {
			if s[i] > d[i] {
				d[i] = s[i]
			}
		}
	}
}

// ints folds s into d with any op defined for integers.
func ints[E integer](op runtime.Op, d, s []E) {
	switch op {
	case runtime.Land:
		for i := range d {
			d[i] = truth[E](d[i] != 0 && s[i] != 0)
		}
	case runtime.Lor:
		for i := range d {
			d[i] = truth[E](d[i] != 0 || s[i] != 0)
		}
	case runtime.Band:
		for i := range d {
			d[i] &= s[i]
		}
	case runtime.Bor:
		for i := range d {
			d[i] |= s[i]
		}
	case runtime.Bxor:
		for i := range d {
			d[i] ^= s[i]
		}
	default:
		arith(op, d, s)
	}
}

func truth[E integer](b bool) E {
	if b {
		return 1
	}
	return 0
}

// sumProd folds s into d with Sum or Prod, the ops every numeric
// element has.
func sumProd[E ordered | complex64 | complex128](op runtime.Op, d, s []E) {
	switch op {
	case runtime.Sum:
		for i := range d {
			d[i] += s[i]
		}
	case runtime.Prod:
		for i := range d {
			d[i] *= s[i]
		}
	}
}

// The lock word's atomics, all seq-cst: a lock's release happens before
// its next acquisition, on either path.
func loadWord(p *uint64) uint64           { return atomic.LoadUint64(p) }
func casWord(p *uint64, o, n uint64) bool { return atomic.CompareAndSwapUint64(p, o, n) }
func addWord(p *uint64, d uint64) uint64  { return atomic.AddUint64(p, d) }
func orWord(p *uint64, m uint64) uint64   { return atomic.OrUint64(p, m) }

// andWord clears the bits not in m and returns the old value.
func andWord(p *uint64, m uint64) uint64 { return atomic.AndUint64(p, m) }

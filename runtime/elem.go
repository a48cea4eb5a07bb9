package runtime

import (
	"reflect"
	"unsafe"
)

// Elem is the set of element types messages and collectives carry: fixed-size
// numbers without pointers, so a slice of them is its bytes. byte is uint8.
//
// Data crosses the wire in the sender's memory layout; every rank of a job
// must have the same byte order and word size (Init checks GOARCH).
type Elem interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~int |
		~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uint | ~uintptr |
		~float32 | ~float64 | ~complex64 | ~complex128
}

// sizeOf returns the size in bytes of one T.
func sizeOf[T Elem]() int {
	var z T
	return int(unsafe.Sizeof(z))
}

// asBytes returns the memory of s as bytes. It is the one place the runtime
// turns a typed slice into bytes; Elem guarantees no pointers are exposed.
func asBytes[T Elem](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*sizeOf[T]())
}

// reinterpret views s as a slice of B, a type with the same size and kind
// as T (for example a named ~float64 type as float64). Callers pass only
// pairs that kindOf proved identical in layout.
func reinterpret[B, T Elem](s []T) []B {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*B)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// kindOf returns the underlying kind of T, which selects the reduction
// kernels.
func kindOf[T Elem]() reflect.Kind {
	return reflect.TypeFor[T]().Kind()
}

// scratch returns n elements of c's scratch space, for the temporary data
// of a collective. Collectives on one communicator never run at once (each
// takes the next sequence number, see begin), so one buffer, grown as
// needed and kept, serves them all and a small reduction allocates
// nothing. The buffer is []uint64, so it is aligned for every Elem.
func scratch[T Elem](c *Comm, n int) []T {
	if n == 0 {
		return nil
	}
	words := (n*sizeOf[T]() + 7) / 8
	if len(c.scratch) < words {
		c.scratch = make([]uint64, max(words, 2*len(c.scratch)))
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(c.scratch))), n)
}

// fromBytes views b, whose length is a multiple of T's size and whose start
// is aligned for T (callers pass 64-byte aligned shared memory), as []T.
func fromBytes[T Elem](b []byte) []T {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/sizeOf[T]())
}

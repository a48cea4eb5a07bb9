package shm

import (
	"os"
	"unsafe"
)

// Elem is the set of types a [View] can hold: fixed-size numbers without
// pointers, whose bytes mean the same in every process of the node.
type Elem interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~int |
		~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uint | ~uintptr |
		~float32 | ~float64 | ~complex64 | ~complex128
}

// View returns the n elements of type T that start off bytes into the
// segment, as a slice aliasing the mapping. It fails with an error matching
// [ErrInvalid] if off or n is negative, if the range does not fit in the
// segment, or if off is not aligned for T (8 bytes for 8-byte types on every
// platform, as [sync/atomic] needs), and with an error matching
// [os.ErrClosed] after [Segment.Close].
// A view of 0 elements is nil.
//
// The slice is valid until Close, like [Segment.Bytes]. Other processes see
// writes through it; use [sync/atomic] for words that several processes
// read and write concurrently (see the package doc).
func View[T Elem](s *Segment, off int64, n int) ([]T, error) {
	var zero T
	size, align := int64(unsafe.Sizeof(zero)), int64(unsafe.Alignof(zero))
	if size == 8 {
		align = 8 // as sync/atomic needs on 32-bit platforms, where Alignof is 4
	}
	b := s.Bytes()
	switch {
	case b == nil:
		return nil, errorf([]error{os.ErrClosed}, "view of a closed segment")
	case off < 0 || n < 0 || off > int64(len(b)):
		return nil, invalidf("view of %d elements at offset %d is outside the segment of %d bytes", n, off, len(b))
	case int64(n) > (int64(len(b))-off)/size: // no overflow: off <= len(b)
		return nil, invalidf("view of %d %d-byte elements at offset %d exceeds the segment of %d bytes", n, size, off, len(b))
	case (int64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))+off)%align != 0:
		return nil, invalidf("offset %d is not %d-byte aligned", off, align)
	case n == 0:
		return nil, nil
	}
	// The one place where bytes become typed memory: the checks above keep
	// the slice inside the mapping and aligned for T, and Elem admits no
	// pointers, so the garbage collector has nothing to trace in it.
	return unsafe.Slice((*T)(unsafe.Pointer(&b[off])), n), nil
}

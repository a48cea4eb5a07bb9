//go:build linux

package shm

import (
	"errors"
	"math"
	"os"
	"testing"
)

func TestView(t *testing.T) {
	s := create(t, 1<<16, Options{})
	u, err := View[uint64](s, 8, 4)
	if err != nil {
		t.Fatal(err)
	}
	u[0] = 0x0807060504030201
	if b := s.Bytes(); b[8] != 1 || b[15] != 8 {
		t.Fatalf("view does not alias the mapping: % x", b[8:16])
	}
	f, err := View[float64](s, 1<<16-8*1024, 1024) // up to the last byte
	if err != nil || len(f) != 1024 {
		t.Fatalf("view to the end: %d, %v", len(f), err)
	}
	type count int32 // named types are fine
	if _, err := View[count](s, 4, 3); err != nil {
		t.Fatal(err)
	}
	if v, err := View[complex128](s, 1<<16, 0); v != nil || err != nil {
		t.Fatalf("empty view at the end: %v, %v", v, err)
	}
}

func TestViewRejects(t *testing.T) {
	const size = 1 << 16
	s := create(t, size, Options{})
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"negative offset", viewErr[uint8](s, -1, 1)},
		{"negative count", viewErr[uint8](s, 0, -1)},
		{"offset past end", viewErr[uint8](s, size+1, 0)},
		{"count past end", viewErr[uint8](s, 1, size)},
		{"last element past end", viewErr[uint64](s, size-8, 2)},
		{"count overflows", viewErr[uint64](s, 0, math.MaxInt)},
		{"offset overflows", viewErr[uint8](s, math.MaxInt64, 1)},
		{"misaligned uint64", viewErr[uint64](s, 4, 1)},
		{"misaligned uint32", viewErr[uint32](s, 2, 1)},
		{"misaligned complex128", viewErr[complex128](s, 2, 1)},
		{"misaligned int64", viewErr[int64](s, 12, 1)},
		{"misaligned empty view", viewErr[uint16](s, 1, 0)},
	} {
		if !errors.Is(tc.err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, tc.err)
		}
	}
	s.Close()
	if err := viewErr[uint8](s, 0, 1); !errors.Is(err, os.ErrClosed) {
		t.Errorf("view of a closed segment: %v, want os.ErrClosed", err)
	}
	if err := viewErr[uint8](nil, 0, 1); !errors.Is(err, os.ErrClosed) {
		t.Errorf("view of a nil segment: %v, want os.ErrClosed", err)
	}
}

func viewErr[T Elem](s *Segment, off int64, n int) error {
	_, err := View[T](s, off, n)
	return err
}

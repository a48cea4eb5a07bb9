package patterns

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	"github.com/gorun-hpc/gorun/runtime"
)

// SingleWrite runs f on rank alone, under the controller's write lock, and
// returns its result on every rank (mpilock's single_write with its
// Fence: the writer's guard passes, the others' raises, and collect
// broadcasts the shared object). The other ranks wait for the writer; f
// runs nowhere else.
//
// SingleWrite is collective over the controller's communicator and
// blocking. The writer may call it inside Read or Write; the others may
// not (they would hold the lock the writer waits for), which is
// ErrInvalid on every rank. Every rank returns the same value: a result
// of a fixed-size type without pointers travels as its bytes; any other
// is encoded with encoding/gob, so its type must be one gob can carry,
// and what gob drops (unexported fields) is dropped on the writer too.
// Errors: f's error on the writer, and on the other ranks an error with
// its words that matches the same runtime sentinel; a panic in f (or in
// the trace hook) releases the lock and is an error naming the writer and
// the panic on every rank; ErrInvalid, the same on every rank, for a rank
// out of range or different between ranks, or a result gob cannot encode;
// ErrClosed; ErrAborted.
func SingleWrite[V any](c *WindowController, rank int, f func() (V, error)) (V, error) {
	v, err := singleWrite(c, rank, f)
	return v, opErr("SingleWrite", c.comm, err)
}

// The header of a SingleWrite's result: a status, the error's kind and the
// payload's length, then the first bytes of the payload inline, so a small
// result costs one Bcast.
const (
	swStatus = iota
	swKind
	swLen
	swInline // the inline bytes start here
	swWords  = swInline + 5
)

// Statuses of a SingleWrite.
const (
	swOK     = iota
	swErr    // the payload is the error's text
	swPanic  // the payload is the panic's text
	swEncode // the result could not be encoded: the payload says why
)

func singleWrite[V any](c *WindowController, rank int, f func() (V, error)) (v V, err error) {
	var bad error
	switch {
	case c.closed:
		bad = errClosed("the controller")
	case rank < 0 || rank >= c.comm.Size():
		bad = errInvalid("rank %d is out of range [0,%d)", rank, c.comm.Size())
	case c.comm.Rank() != rank && (c.readDepth > 0 || c.writeDepth > 0):
		bad = errInvalid("SingleWrite inside Read or Write on rank %d, which is not the writer", c.comm.Rank())
	}
	if err := check(c.comm, bad, intField("the writing rank", rank)); err != nil {
		return v, err
	}
	hdr := make([]int64, swWords)
	var payload []byte
	if c.comm.Rank() == rank {
		var ferr error
		hdr[swStatus], hdr[swKind], payload, ferr = runWriter(c, f)
		hdr[swLen] = int64(len(payload))
		copy(asBytes(hdr[swInline:]), payload)
		if err := bcastResult(c.comm, rank, hdr, payload); err != nil {
			return v, err
		}
		if ferr != nil {
			return v, ferr // f's own error, for errors.As on the writer
		}
	} else if payload, err = recvResult(c.comm, rank, hdr); err != nil {
		return v, err
	}
	return result[V](hdr, payload)
}

// runWriter runs f under the write lock and returns the status, error kind
// and payload of its result, and the error of f or the lock.
func runWriter[V any](c *WindowController, f func() (V, error)) (status, kind int64, payload []byte, ferr error) {
	var v V
	var perr any
	werr := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				perr = p
			}
		}()
		return c.write("SingleWrite", func() (err error) {
			v, err = f()
			return err
		})
	}()
	switch {
	case perr != nil:
		return swPanic, 0, fmt.Appendf(nil, "rank %d panicked in SingleWrite: %v", c.comm.Rank(), perr), nil
	case werr != nil:
		inner := werr
		var oe *OpError
		if errors.As(werr, &oe) {
			inner = oe.Err // the others add their own
		}
		return swErr, kindOf(werr), []byte(inner.Error()), werr
	}
	p, err := encode(v)
	if err != nil {
		return swEncode, 0, []byte(err.Error()), nil
	}
	return swOK, 0, p, nil
}

// result is what every rank returns for a SingleWrite's header and
// payload, the writer included.
func result[V any](hdr []int64, payload []byte) (V, error) {
	var v V
	switch hdr[swStatus] {
	case swOK:
		return decode[V](payload)
	case swErr:
		return v, &remote{msg: string(payload), kind: hdr[swKind]}
	case swEncode:
		return v, errInvalid("%s", payload)
	}
	return v, errors.New(string(payload))
}

// bcastResult sends the header, with the payload's start inline, and the
// rest of the payload if it does not fit.
func bcastResult(comm *runtime.Comm, root int, hdr []int64, payload []byte) error {
	if comm.Size() == 1 {
		return nil
	}
	if err := runtime.Bcast(comm, hdr, root); err != nil {
		return err
	}
	if len(payload) > inlineBytes {
		return runtime.Bcast(comm, payload[inlineBytes:], root)
	}
	return nil
}

// recvResult is bcastResult's other side: it fills hdr and returns the
// payload.
func recvResult(comm *runtime.Comm, root int, hdr []int64) ([]byte, error) {
	if err := runtime.Bcast(comm, hdr, root); err != nil {
		return nil, err
	}
	n := int(hdr[swLen])
	payload := make([]byte, n)
	copy(payload, asBytes(hdr[swInline:]))
	if n > inlineBytes {
		if err := runtime.Bcast(comm, payload[inlineBytes:], root); err != nil {
			return nil, err
		}
	}
	return payload, nil
}

const inlineBytes = 8 * (swWords - swInline)

func asBytes(w []int64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), 8*len(w))
}

// encode is v's bytes: its memory for a type without pointers, gob
// otherwise.
func encode[V any](v V) ([]byte, error) {
	t := reflect.TypeFor[V]()
	if plain(t) {
		return append([]byte(nil), memOf(&v)...), nil
	}
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(&v); err != nil {
		return nil, fmt.Errorf("cannot send the result of type %v: %v", t, err)
	}
	return b.Bytes(), nil
}

func decode[V any](p []byte) (V, error) {
	var v V
	if plain(reflect.TypeFor[V]()) {
		if copy(memOf(&v), p) != len(p) || len(p) != int(unsafe.Sizeof(v)) {
			return v, fmt.Errorf("a result of %d bytes for a %T", len(p), v)
		}
		return v, nil
	}
	err := gob.NewDecoder(bytes.NewReader(p)).Decode(&v)
	return v, err
}

// memOf is the memory of *v; plain(V) must hold. Both ranks run the same
// binary, so the layout is the same.
func memOf[V any](v *V) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

// plainTypes caches plain's answers.
var plainTypes sync.Map // reflect.Type -> bool

// plain reports whether t holds no pointers: numbers, bools, and arrays
// and structs of them.
func plain(t reflect.Type) bool {
	if t == nil {
		return false
	}
	if v, ok := plainTypes.Load(t); ok {
		return v.(bool)
	}
	p := pointerFree(t)
	plainTypes.Store(t, p)
	return p
}

func pointerFree(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return true
	case reflect.Array:
		return pointerFree(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !pointerFree(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

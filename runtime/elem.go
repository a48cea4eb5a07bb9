package runtime

import (
	"fmt"
	"hash/fnv"
	"reflect"
	"strings"
	"sync"
	"unsafe"
)

// Elem is the constraint of the element types that messages and collectives
// carry: any fixed-size type without pointers, so that a slice of them is
// its bytes — the numbers, bool, and arrays and structs of them (a
// struct of three float64 and an int32, a [4]int16, a Loc[float64]).
//
// Go cannot say "without pointers" in a constraint (comparable keeps out
// slices, maps and funcs at compile time), so every call checks its
// element type at run time, once per type: a type that holds a pointer
// (a string, a pointer, an interface, a channel, at any depth) or has size
// 0 makes the call return ErrInvalid naming the type and where the pointer
// is, for example "element type main.Particle holds a pointer (field Name
// string)"; a collective returns it like any argument error (see Collectives
// with bad arguments in the package doc).
//
// Data crosses the wire in the sender's memory layout, padding included;
// every rank of a job must have the same byte order and word size (Init
// checks GOARCH). Each point-to-point message carries a code of its element
// type, which the receive checks (see Element types in the package doc).
type Elem interface {
	comparable
}

// Number is the constraint of the fixed-size number types (the element
// types before Elem took any pointer-free type): the types of one-sided
// accumulates (package rma) and node-shared arrays (package patterns).
type Number interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~int |
		~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uint | ~uintptr |
		~float32 | ~float64 | ~complex64 | ~complex128
}

// sizeOf returns the size in bytes of one T.
func sizeOf[T any]() int {
	var z T
	return int(unsafe.Sizeof(z))
}

// asBytes returns the memory of s as bytes. It is the one place the runtime
// turns a typed slice into bytes; every public call checks T with elemOf
// (no pointers) before its data reaches here.
func asBytes[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*sizeOf[T]())
}

// overlaps reports whether a and b share memory.
func overlaps(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa, pb := uintptr(unsafe.Pointer(unsafe.SliceData(a))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}

// reinterpret views s as a slice of B, a type with the same size and layout
// as T (for example a named ~float64 type as float64). Callers pass only
// pairs that kindOf proved identical in layout.
func reinterpret[B, T any](s []T) []B {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*B)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// kindOf returns the underlying kind of T, which selects the reduction
// kernels.
func kindOf[T any]() reflect.Kind {
	return reflect.TypeFor[T]().Kind()
}

// scratch returns n elements of c's scratch space, for the temporary data
// of a collective. Collectives on one communicator never run at once (each
// takes the next sequence number, see begin), so one buffer, grown as
// needed and kept, serves them all and a small reduction allocates
// nothing. The buffer is []uint64, so it is aligned for every Elem.
func scratch[T any](c *Comm, n int) []T {
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
func fromBytes[T any](b []byte) []T {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/sizeOf[T]())
}

// Element types and their codes.
//
// Every point-to-point frame carries the code of its element type in the
// header's call word (wire.Header.Call, unused by point-to-point before). A
// type is described by its layout, not its name, so the same layout under
// two names, in two programs, has one code:
//
//   - A type whose bytes are n consecutive values of one number kind (or
//     bool) without padding — the kind itself, an array of it, a struct of
//     such fields — has the code of that kind: its reflect.Kind, 1 to 16.
//     So [3]float64, struct{ X, Y, Z float64 } and float64 match, as MPI's
//     type signatures do, and a receive checks that a message is a whole
//     number of its elements.
//   - Any other type has codeLayout in bits 0–4 and, in bits 5–31, 27 bits
//     of an FNV-1a hash of its canonical layout (size, and every field's
//     offset and layout, runs of one kind merged), see layoutOf.
//
// Codes never sent: 0 (no type) and, as a receive's expected word, a
// number kind with codeWhole set (an aggregate that needs the whole-number
// check, see elemType.word).
const (
	codeLayout = 31
	codeWhole  = 1 << 31
)

// elemType is what the runtime knows of one element type, computed once.
type elemType struct {
	t    reflect.Type
	size int
	code uint32
	// word is what a receive of this type expects in a frame's call word:
	// code, or code|codeWhole for an aggregate of one number kind (whose
	// messages must be checked to be a whole number of elements).
	word uint32
	raw  bool   // uint8 elements: a receive takes any message
	desc string // layout, for errors: "struct { float64 at 0; int32 at 8 } (16 bytes)"
	err  error  // an errInvalid if the type cannot be an element type
}

// basicTypes are the predeclared number types and bool, by kind: the fast
// path of elemOf.
var basicTypes = func() (b [reflect.Complex128 + 1]*elemType) {
	for _, t := range []reflect.Type{
		reflect.TypeFor[bool](), reflect.TypeFor[int](), reflect.TypeFor[int8](), reflect.TypeFor[int16](),
		reflect.TypeFor[int32](), reflect.TypeFor[int64](), reflect.TypeFor[uint](), reflect.TypeFor[uint8](),
		reflect.TypeFor[uint16](), reflect.TypeFor[uint32](), reflect.TypeFor[uint64](), reflect.TypeFor[uintptr](),
		reflect.TypeFor[float32](), reflect.TypeFor[float64](), reflect.TypeFor[complex64](), reflect.TypeFor[complex128](),
	} {
		b[t.Kind()] = newElemType(t)
	}
	return b
}()

// elemTypes caches elemType for every other type used so far.
var elemTypes sync.Map // reflect.Type → *elemType

// elemOf returns what the runtime knows of T, or the ErrInvalid error of a
// type that cannot be an element type (a pointer inside, size 0). The
// predeclared numbers cost a kind switch; other types one map lookup after
// their first use.
func elemOf[T any]() (*elemType, error) {
	t := reflect.TypeFor[T]()
	if k := t.Kind(); k <= reflect.Complex128 {
		if e := basicTypes[k]; e != nil && e.t == t {
			return e, nil
		}
	}
	return elemOfType(t)
}

func elemOfType(t reflect.Type) (*elemType, error) {
	if e, ok := elemTypes.Load(t); ok {
		e := e.(*elemType)
		return e, e.err
	}
	e, _ := elemTypes.LoadOrStore(t, newElemType(t))
	return e.(*elemType), e.(*elemType).err
}

func newElemType(t reflect.Type) *elemType {
	e := &elemType{t: t, size: int(t.Size())}
	if where := pointerIn(t); where != "" {
		e.err = errInvalid(fmt.Sprintf("element type %v holds a pointer (%s)", t, where))
		return e
	}
	if e.size == 0 {
		e.err = errInvalid(fmt.Sprintf("element type %v has size 0", t))
		return e
	}
	l := layoutOf(t)
	if l.kind != 0 {
		e.code = uint32(l.kind)
		e.word = e.code
		if l.n > 1 {
			e.word |= codeWhole
			e.desc = fmt.Sprintf("%d×%v", l.n, l.kind)
		}
		e.raw = l.kind == reflect.Uint8 && l.n == 1
		return e
	}
	e.desc = l.String()
	h := fnv.New32a()
	h.Write([]byte(e.desc))
	e.code = h.Sum32()<<5 | codeLayout
	e.word = e.code
	return e
}

// name is how errors name the type: its Go name, and its layout when that
// says more.
func (e *elemType) name() string {
	if e.desc == "" {
		if e.t.Name() == e.t.Kind().String() && e.t.PkgPath() == "" {
			return e.t.String()
		}
		return fmt.Sprintf("%v (%v)", e.t, e.t.Kind())
	}
	return fmt.Sprintf("%v (%s)", e.t, e.desc)
}

// codeName describes the type of a sent code, as far as the code tells.
func codeName(code uint32) string {
	switch {
	case code >= uint32(reflect.Bool) && code <= uint32(reflect.Complex128):
		return reflect.Kind(code).String()
	case code&codeLayout == codeLayout:
		return fmt.Sprintf("a composite type of another layout (code %#08x)", code)
	}
	return fmt.Sprintf("an unknown type (code %#x)", code)
}

// check reports whether a message of n bytes whose frame carried the code
// sent may be received into elements of e (the caller has seen that sent
// differs from e.word): a receive of bytes takes anything; an aggregate
// of one kind takes a whole number of its elements of that kind. src names
// the sender.
func (e *elemType) check(sent uint32, n, src int) error {
	switch {
	case e.raw:
		return nil
	case sent == e.word&^codeWhole && e.word&codeWhole != 0:
		if n%e.size == 0 {
			return nil
		}
		return errInvalid(fmt.Sprintf("rank %d sent %d bytes of %v, not a whole number of %s (%d bytes each)", src, n, reflect.Kind(sent), e.name(), e.size))
	}
	return errInvalid(fmt.Sprintf("type mismatch: rank %d sent %s, the receive takes %s (receive into []byte to take any message)", src, codeName(sent), e.name()))
}

// pointerIn returns where t holds a pointer ("field Name string",
// "element of []int"), or "" if it holds none.
func pointerIn(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return ""
	case reflect.Array:
		if w := pointerIn(t.Elem()); w != "" {
			if strings.HasPrefix(w, "field ") || strings.HasPrefix(w, "element ") {
				return "element of " + t.String() + ": " + w
			}
			return "element " + t.Elem().String()
		}
		return ""
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if w := pointerIn(f.Type); w != "" {
				if strings.HasPrefix(w, "field ") {
					return "field " + f.Name + "." + strings.TrimPrefix(w, "field ")
				}
				if strings.HasPrefix(w, "element") {
					return "field " + f.Name + ", " + w
				}
				return "field " + f.Name + " " + f.Type.String()
			}
		}
		return ""
	}
	return t.String()
}

// layout is a type's canonical layout: n consecutive values of one kind
// (kind != 0), or a record of fields at offsets, or an array of a record.
type layout struct {
	kind   reflect.Kind // a run of n values of this kind, no padding
	n      int
	size   int
	fields []field // a record (kind == 0, len > 0)
	arr    *layout // an array of len n of this record (kind == 0, fields == nil)
}

type field struct {
	off int
	l   layout
}

// layoutOf computes t's canonical layout: nested structs are flattened
// into their fields at absolute offsets, neighbouring runs of one kind
// merge, arrays of runs are runs, and a record that is one run covering
// its size is that run. So a layout depends on kinds, sizes and offsets,
// never on names, and an array of a million structs costs what one does.
func layoutOf(t reflect.Type) layout {
	switch t.Kind() {
	case reflect.Array:
		el := layoutOf(t.Elem())
		if t.Len() == 0 {
			return layout{size: 0}
		}
		if el.kind != 0 {
			return layout{kind: el.kind, n: el.n * t.Len(), size: int(t.Size())}
		}
		if t.Len() == 1 {
			return el
		}
		return layout{n: t.Len(), size: int(t.Size()), arr: &el}
	case reflect.Struct:
		var fs []field
		for i := range t.NumField() {
			f := t.Field(i)
			fl := layoutOf(f.Type)
			if fl.size == 0 {
				continue
			}
			if fl.kind == 0 && fl.fields != nil {
				for _, sub := range fl.fields {
					fs = appendField(fs, field{off: int(f.Offset) + sub.off, l: sub.l})
				}
				continue
			}
			fs = appendField(fs, field{off: int(f.Offset), l: fl})
		}
		if len(fs) == 1 && fs[0].off == 0 && fs[0].l.size == int(t.Size()) {
			return fs[0].l
		}
		return layout{size: int(t.Size()), fields: fs}
	}
	return layout{kind: t.Kind(), n: 1, size: int(t.Size())}
}

// appendField appends f to fs, merging it into the last field when both are
// runs of one kind and f starts where the last one ends.
func appendField(fs []field, f field) []field {
	if n := len(fs); n > 0 {
		last := &fs[n-1]
		if last.l.kind != 0 && last.l.kind == f.l.kind && last.off+last.l.size == f.off {
			last.l.n += f.l.n
			last.l.size += f.l.size
			return fs
		}
	}
	return append(fs, f)
}

func (l layout) String() string {
	switch {
	case l.kind != 0 && l.n == 1:
		return l.kind.String()
	case l.kind != 0:
		return fmt.Sprintf("%d×%v", l.n, l.kind)
	case l.arr != nil:
		return fmt.Sprintf("%d×%v", l.n, *l.arr)
	}
	var b strings.Builder
	b.WriteString("{")
	for i, f := range l.fields {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%v at %d", f.l, f.off)
	}
	fmt.Fprintf(&b, "} (%d bytes)", l.size)
	return b.String()
}

// elemFirst returns T's element type error if it has one, else err: the
// first argument check of the collectives that take no op (those that do
// check T with their kernel, checkOp).
func elemFirst[T any](err error) error {
	if _, e := elemOf[T](); e != nil {
		return e
	}
	return err
}

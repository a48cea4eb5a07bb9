package runtime

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

type (
	vec3     struct{ X, Y, Z float64 }
	particle struct {
		Pos   [3]float64
		ID    int32
		Alive bool
		Kind  [3]int8
	}
	// particleTwin has particle's layout under other names.
	particleTwin struct {
		Where [3]float64
		N     int32
		On    bool
		K     [3]int8
	}
	// particlePad differs from particle only by where its padding is.
	particlePad struct {
		Pos   [3]float64
		Alive bool
		ID    int32
		Kind  [3]int8
	}
	nested  struct{ A, B vec3 }
	named   struct{ Name string }
	deep    struct{ In struct{ P *int } }
	arrPtr  struct{ L [2][]int }
	bigArr  [1 << 20]particle
	celsius float64
)

func codeOf[T any](t *testing.T) *elemType {
	t.Helper()
	e, err := elemOf[T]()
	if err != nil {
		t.Fatalf("elemOf[%v]: %v", reflect.TypeFor[T](), err)
	}
	return e
}

// Codes depend on layout only: kinds, sizes, offsets.
func TestElemCodes(t *testing.T) {
	f64 := codeOf[float64](t).code
	for name, e := range map[string]*elemType{
		"celsius": codeOf[celsius](t), "[3]float64": codeOf[[3]float64](t), "vec3": codeOf[vec3](t),
		"nested": codeOf[nested](t), "[2]vec3": codeOf[[2]vec3](t),
	} {
		if e.code != f64 {
			t.Errorf("%s: code %#x, want float64's %#x", name, e.code, f64)
		}
	}
	if w := codeOf[vec3](t).word; w != f64|codeWhole {
		t.Errorf("vec3 expects word %#x, want %#x (whole-number check)", w, f64|codeWhole)
	}
	if w := codeOf[celsius](t).word; w != f64 {
		t.Errorf("celsius expects word %#x, want %#x", w, f64)
	}
	p, tw, pad := codeOf[particle](t), codeOf[particleTwin](t), codeOf[particlePad](t)
	if p.code != tw.code || p.code&codeLayout != codeLayout {
		t.Errorf("particle %#x and its twin %#x: want one composite code", p.code, tw.code)
	}
	if p.code == pad.code {
		t.Errorf("particle and particlePad share code %#x", p.code)
	}
	if codeOf[[2]particle](t).code == p.code || codeOf[bigArr](t).code == codeOf[[2]particle](t).code {
		t.Error("arrays of a record of other lengths share a code")
	}
	seen := map[uint32]reflect.Kind{}
	for k, e := range basicTypes {
		if e == nil {
			continue
		}
		if e.code != uint32(k) {
			t.Errorf("%v: code %d", e.t, e.code)
		}
		seen[e.code] = reflect.Kind(k)
	}
	if len(seen) != 16 || !codeOf[uint8](t).raw || !codeOf[[1]uint8](t).raw || codeOf[[4]uint8](t).raw || codeOf[int8](t).raw {
		t.Errorf("basic codes %v; raw only for byte elements", seen)
	}
	if !strings.Contains(pad.desc, "bool at 24; int32 at 28") {
		t.Errorf("particlePad layout %q", pad.desc)
	}
}

// Types with pointers or of size 0 are ErrInvalid naming the type and the
// pointer, and the error is cached with the type.
func TestElemInvalid(t *testing.T) {
	for _, c := range []struct {
		err  func() error
		want string
	}{
		{func() error { _, err := elemOf[named](); return err }, "element type runtime.named holds a pointer (field Name string)"},
		{func() error { _, err := elemOf[deep](); return err }, "runtime.deep holds a pointer (field In.P *int)"},
		{func() error { _, err := elemOf[arrPtr](); return err }, "runtime.arrPtr holds a pointer (field L, element []int)"},
		{func() error { _, err := elemOf[[4]*int](); return err }, "[4]*int holds a pointer (element *int)"},
		{func() error { _, err := elemOf[[2]named](); return err }, "holds a pointer (element of [2]runtime.named: field Name string)"},
		{func() error { _, err := elemOf[string](); return err }, "element type string holds a pointer (string)"},
		{func() error { _, err := elemOf[struct{}](); return err }, "element type struct {} has size 0"},
		{func() error { _, err := elemOf[any](); return err }, "interface {} holds a pointer"},
		{func() error { _, err := checkOp[named](Sum); return err }, "runtime.named holds a pointer"},
	} {
		err := c.err()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want ErrInvalid with %q", err, c.want)
		}
	}
}

func TestElemCheck(t *testing.T) {
	v := codeOf[vec3](t)
	if err := v.check(uint32(reflect.Float64), 48, 2); err != nil {
		t.Errorf("two vec3 as 6 float64: %v", err)
	}
	if err := v.check(uint32(reflect.Float64), 40, 2); err == nil || !strings.Contains(err.Error(), "rank 2 sent 40 bytes of float64, not a whole number of runtime.vec3 (3×float64) (24 bytes each)") {
		t.Errorf("5 float64 into vec3: %v", err)
	}
	if err := v.check(uint32(reflect.Float32), 48, 2); err == nil || !strings.Contains(err.Error(), "rank 2 sent float32, the receive takes runtime.vec3") {
		t.Errorf("float32 into vec3: %v", err)
	}
	if err := codeOf[celsius](t).check(codeOf[particle](t).code, 32, 0); err == nil ||
		!strings.Contains(err.Error(), "sent a composite type of another layout") || !strings.Contains(err.Error(), "runtime.celsius (float64)") {
		t.Errorf("particle into celsius: %v", err)
	}
	if err := codeOf[byte](t).check(codeOf[particle](t).code, 33, 0); err != nil {
		t.Errorf("anything into bytes: %v", err)
	}
}

// The common case costs one kind check and no allocation.
func TestElemOfAllocs(t *testing.T) {
	codeOf[particle](t)
	if n := testing.AllocsPerRun(100, func() {
		_, _ = elemOf[float64]()
		_, _ = elemOf[particle]()
		_, _ = elemOf[celsius]()
	}); n != 0 {
		t.Errorf("elemOf allocates %v times", n)
	}
}

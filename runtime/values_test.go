package runtime_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
)

// rec is a value with strings, slices, a map, a pointer and an interface.
type rec struct {
	Name string
	Xs   []float64
	M    map[string][]int
	Next *rec
	Any  any
}

// mk is the value that rank from sends to rank to in step seq: some of
// them nil, none holding an empty slice or map (gob may turn those into
// nil).
func mk(from, to, seq int) *rec {
	if (from+to+seq)%4 == 3 {
		return nil
	}
	r := &rec{Name: fmt.Sprintf("%d→%d #%d", from, to, seq), Xs: []float64{float64(from), float64(to) / 3}}
	if seq%2 == 0 {
		r.M = map[string][]int{"from": {from}, "to": {to, to}}
	}
	if from%2 == 1 {
		r.Next = &rec{Name: "next", Any: int64(seq)}
	} else {
		r.Any = "s"
	}
	return r
}

// mkMap is a map value, nil for some.
func mkMap(from, seq int) map[string]int {
	if (from+seq)%3 == 2 {
		return nil
	}
	return map[string]int{"rank": from, "seq": seq}
}

func equal[T any](got, want T) error {
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("got %#v, want %#v", got, want)
	}
	return nil
}

// checkValues runs every value call with values of several types, nil
// among them, from every root, then their errors.
func checkValues(c *runtime.Comm) error {
	n, me := c.Size(), c.Rank()
	next, prev := (me+1)%n, (me-1+n)%n
	// Point to point around a ring, specific and wildcard receives.
	for seq := range 4 {
		if err := runtime.SendValue(c, mk(me, next, seq), next, seq); err != nil {
			return err
		}
		if err := runtime.SendValue(c, mkMap(me, seq), next, 10+seq); err != nil {
			return err
		}
		src := prev
		if seq%2 == 1 {
			src = runtime.AnySource
		}
		v, st, err := runtime.RecvValue[*rec](c, src, seq)
		if err != nil {
			return err
		}
		if st.Source != prev || st.Tag != seq || st.Count != 1 || st.Bytes == 0 {
			return fmt.Errorf("RecvValue status %+v", st)
		}
		if err := equal(v, mk(prev, me, seq)); err != nil {
			return fmt.Errorf("RecvValue: %w", err)
		}
		m, _, err := runtime.RecvValue[map[string]int](c, prev, 10+seq)
		if err != nil {
			return err
		}
		if err := equal(m, mkMap(prev, seq)); err != nil {
			return fmt.Errorf("RecvValue of a map: %w", err)
		}
		// Sendrecv around the ring, and with ProcNull.
		words, st, err := runtime.SendrecvValue[[]string, []string](c, []string{"from", fmt.Sprint(me), fmt.Sprint(seq)}, next, 20, prev, 20)
		if err != nil || st.Source != prev {
			return fmt.Errorf("SendrecvValue: %+v %v", st, err)
		}
		if err := equal(words, []string{"from", fmt.Sprint(prev), fmt.Sprint(seq)}); err != nil {
			return fmt.Errorf("SendrecvValue: %w", err)
		}
		z, st, err := runtime.SendrecvValue[int, *rec](c, 1, runtime.ProcNull, 0, runtime.ProcNull, 0)
		if err != nil || z != nil || st.Source != runtime.ProcNull {
			return fmt.Errorf("SendrecvValue with ProcNull: %v %+v %v", z, st, err)
		}
	}
	// A value that does not decode into the receiver's type: ErrInvalid
	// naming it, and the message is gone (the next one is received).
	if err := runtime.SendValue(c, 42, next, 30); err != nil {
		return err
	}
	if err := runtime.SendValue(c, "after", next, 30); err != nil {
		return err
	}
	if _, _, err := runtime.RecvValue[string](c, prev, 30); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "into string") {
		return fmt.Errorf("an int received as a string: %v, want ErrInvalid naming string", err)
	}
	if s, _, err := runtime.RecvValue[string](c, prev, 30); err != nil || s != "after" {
		return fmt.Errorf("the value after a bad one: %q %v", s, err)
	}
	if err := runtime.SendValue(c, make(chan int), next, 31); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "chan int") {
		return fmt.Errorf("SendValue of a channel: %v, want ErrInvalid naming chan int", err)
	}
	if err := runtime.SendValue(c, 1, n, 0); !errors.Is(err, runtime.ErrInvalid) {
		return fmt.Errorf("SendValue to rank %d: %v, want ErrInvalid", n, err)
	}
	if err := valueCollectives(c); err != nil {
		return err
	}
	return valueErrors(c)
}

// valueCollectives runs every value collective from every root.
func valueCollectives(c *runtime.Comm) error {
	n, me := c.Size(), c.Rank()
	concat := func(a, b string) string { return a + "," + b }
	var order []string
	for i := range n {
		order = append(order, fmt.Sprint(i))
	}
	for root := range n {
		v, err := runtime.BcastValue(c, mk(root, -1, root), root)
		if err != nil {
			return err
		}
		if err := equal(v, mk(root, -1, root)); err != nil {
			return fmt.Errorf("BcastValue from %d: %w", root, err)
		}
		m, err := runtime.BcastValue(c, mkMap(root, 2), root)
		if err != nil {
			return err
		}
		if err := equal(m, mkMap(root, 2)); err != nil {
			return fmt.Errorf("BcastValue of a map from %d: %w", root, err)
		}
		all, err := runtime.GatherValue(c, mk(me, root, 1), root)
		if err != nil {
			return err
		}
		var want []*rec
		if me == root {
			for i := range n {
				want = append(want, mk(i, root, 1))
			}
		}
		if err := equal(all, want); err != nil {
			return fmt.Errorf("GatherValue to %d: %w", root, err)
		}
		var vs []map[string]int
		if me == root {
			for i := range n {
				vs = append(vs, mkMap(i, root))
			}
		}
		got, err := runtime.ScatterValue(c, vs, root)
		if err != nil {
			return err
		}
		if err := equal(got, mkMap(me, root)); err != nil {
			return fmt.Errorf("ScatterValue from %d: %w", root, err)
		}
		s, err := runtime.ReduceValue(c, fmt.Sprint(me), concat, root)
		if err != nil {
			return err
		}
		wantS := ""
		if me == root {
			wantS = strings.Join(order, ",")
		}
		if s != wantS {
			return fmt.Errorf("ReduceValue to %d: %q, want %q", root, s, wantS)
		}
	}
	all, err := runtime.AllgatherValue(c, mk(me, 0, 2))
	if err != nil {
		return err
	}
	var want []*rec
	for i := range n {
		want = append(want, mk(i, 0, 2))
	}
	if err := equal(all, want); err != nil {
		return fmt.Errorf("AllgatherValue: %w", err)
	}
	var vs []*rec
	for j := range n {
		vs = append(vs, mk(me, j, 3))
	}
	got, err := runtime.AlltoallValue(c, vs)
	if err != nil {
		return err
	}
	want = want[:0]
	for i := range n {
		want = append(want, mk(i, me, 3))
	}
	if err := equal(got, want); err != nil {
		return fmt.Errorf("AlltoallValue: %w", err)
	}
	s, err := runtime.AllreduceValue(c, fmt.Sprint(me), concat)
	if err != nil || s != strings.Join(order, ",") {
		return fmt.Errorf("AllreduceValue: %q %v", s, err)
	}
	// Merging maps; f changes its first argument.
	merged, err := runtime.AllreduceValue(c, map[int]int{me: me * me}, func(a, b map[int]int) map[int]int {
		for k, v := range b {
			a[k] = v
		}
		return a
	})
	if err != nil || len(merged) != n || merged[n-1] != (n-1)*(n-1) {
		return fmt.Errorf("AllreduceValue of maps: %v %v", merged, err)
	}
	return nil
}

// sameError checks that err wraps ErrInvalid, names rank bad and contains
// what, and that every rank got the same error.
func sameError(c *runtime.Comm, call string, err error, bad int, what string) error {
	var oe *runtime.OpError
	msg := fmt.Sprint(err)
	if errors.As(err, &oe) {
		msg = oe.Err.Error()
		if oe.Op != call {
			return fmt.Errorf("%s: error of op %q: %v", call, oe.Op, err)
		}
	}
	if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(msg, fmt.Sprintf("rank %d", bad)) || !strings.Contains(msg, what) {
		return fmt.Errorf("%s: %v, want ErrInvalid naming rank %d and %q", call, err, bad, what)
	}
	all, err := runtime.AllgatherValue(c, msg)
	if err != nil {
		return err
	}
	for i, m := range all {
		if m != msg {
			return fmt.Errorf("%s: rank %d got %q, rank %d %q", call, i, m, c.Rank(), msg)
		}
	}
	return nil
}

// valueErrors: errors that every rank can know are the same on every rank,
// and the communicator works on.
func valueErrors(c *runtime.Comm) error {
	n, me := c.Size(), c.Rank()
	bad := n - 1
	x := 1
	good := []*int{&x}
	v := good
	if me == bad {
		v = []*int{nil} // gob cannot encode a nil element
	}
	_, err := runtime.BcastValue(c, v, bad)
	if err := sameError(c, "BcastValue", err, bad, "[]*int"); err != nil {
		return err
	}
	_, err = runtime.GatherValue(c, v, 0)
	if err := sameError(c, "GatherValue", err, bad, "[]*int"); err != nil {
		return err
	}
	_, err = runtime.AllgatherValue(c, v)
	if err := sameError(c, "AllgatherValue", err, bad, "[]*int"); err != nil {
		return err
	}
	_, err = runtime.ReduceValue(c, v, func(a, b []*int) []*int { return a }, 0)
	if err := sameError(c, "ReduceValue", err, bad, "[]*int"); err != nil {
		return err
	}
	_, err = runtime.AllreduceValue(c, good, func(a, b []*int) []*int { return []*int{nil} })
	if n > 1 {
		if err := sameError(c, "AllreduceValue", err, 0, "[]*int"); err != nil {
			return err
		}
	} else if err != nil { // with one rank f is never called
		return err
	}
	var f func(a, b int) int
	if me != bad {
		f = func(a, b int) int { return a + b }
	}
	_, err = runtime.AllreduceValue(c, 1, f)
	if err := sameError(c, "AllreduceValue", err, bad, "f is nil"); err != nil {
		return err
	}
	vs := make([][]*int, n)
	for i := range vs {
		vs[i] = good
	}
	if me == bad {
		vs[0] = []*int{nil}
	}
	_, err = runtime.AlltoallValue(c, vs)
	if err := sameError(c, "AlltoallValue", err, bad, "[]*int"); err != nil {
		return err
	}
	_, err = runtime.AlltoallValue(c, vs[:n-1+min(me, 1)]) // rank 0 passes one value too few
	if err := sameError(c, "AlltoallValue", err, 0, "vs has"); err != nil {
		return err
	}
	_, err = runtime.ScatterValue(c, vs, bad)
	if err := sameError(c, "ScatterValue", err, bad, "[]*int"); err != nil {
		return err
	}
	_, err = runtime.ScatterValue(c, vs[:n-1], 0)
	if err := sameError(c, "ScatterValue", err, 0, "vs has"); err != nil {
		return err
	}
	root := 0
	if me == bad {
		root = n // out of range
	}
	_, err = runtime.GatherValue(c, 1, root)
	if err := sameError(c, "GatherValue", err, bad, "root"); err != nil {
		return err
	}
	if n > 1 {
		_, err = runtime.ReduceValue(c, 1, func(a, b int) int { return a + b }, me%2)
		if err := sameError(c, "ReduceValue", err, 1, "different roots"); err != nil {
			return err
		}
	}
	// Still usable.
	sum, err := runtime.AllreduceValue(c, me, func(a, b int) int { return a + b })
	if err != nil || sum != n*(n-1)/2 {
		return fmt.Errorf("AllreduceValue after errors: %d %v", sum, err)
	}
	return c.Barrier()
}

// On the serial communicator every value collective is the round trip
// through the encoding; point-to-point is ErrInvalid.
func TestValuesSerial(t *testing.T) {
	var c *runtime.Comm
	v := mk(1, 0, 0)
	check := func(call string, got any, err error, want any) {
		t.Helper()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s on nil: %#v %v, want %#v", call, got, err, want)
		}
	}
	b, err := runtime.BcastValue(c, v, 0)
	check("BcastValue", b, err, v)
	if b == v {
		t.Error("BcastValue on nil returned v itself, want a copy")
	}
	g, err := runtime.GatherValue(c, v, 0)
	check("GatherValue", g, err, []*rec{v})
	g, err = runtime.AllgatherValue(c, v)
	check("AllgatherValue", g, err, []*rec{v})
	g, err = runtime.AlltoallValue(c, []*rec{v})
	check("AlltoallValue", g, err, []*rec{v})
	s, err := runtime.ScatterValue(c, []*rec{v}, 0)
	check("ScatterValue", s, err, v)
	r, err := runtime.ReduceValue(c, 3, func(a, b int) int { return a + b }, 0)
	check("ReduceValue", r, err, 3)
	r, err = runtime.AllreduceValue(c, 3, func(a, b int) int { return a + b })
	check("AllreduceValue", r, err, 3)
	if _, err := runtime.BcastValue(c, 1, 1); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("BcastValue on nil from root 1: %v", err)
	}
	if err := runtime.SendValue(c, 1, 0, 0); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("SendValue on nil: %v", err)
	}
	if _, _, err := runtime.RecvValue[int](c, 0, 0); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("RecvValue on nil: %v", err)
	}
}

func TestValues(t *testing.T) { runChecks(t, []int{1, 2, 3, 4, 5}, checkValues) }

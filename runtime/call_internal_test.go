package runtime

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestCallWord(t *testing.T) {
	for _, tc := range []struct {
		id   callID
		want string
	}{
		{plainCall(callBarrier), "Barrier"},
		{rootedCall(callBcast, 3, 10, 8), "Bcast(root 3)"},
		{countedCall(callAllreduce, Max, 4, 8), "Allreduce(Max, count 4)"},
		{rootedCall(callGatherv, 0, -1, 8), "Gatherv(root 0)"},
		{countedCall(callAlltoall, 0, 0, 4), "Alltoall(count 0)"},
		{callID{kind: callBarrier, root: -1, count: -1, nb: true}, "Ibarrier"},
		{callID{kind: callBcast, root: 3, count: 10, esize: 8, nb: true}, "Ibcast(root 3)"},
		{callID{kind: callAllreduce, op: Max, root: -1, count: 4, esize: 8, nb: true}, "Iallreduce(Max, count 4)"},
		{callID{kind: callReduceScatter, op: Sum, root: -1, count: -1, nb: true}, "IreduceScatter(Sum)"},
	} {
		if got := wordString(tc.id.word()); got != tc.want {
			t.Errorf("wordString(%v.word()) = %q, want %q", tc.id, got, tc.want)
		}
	}
	// Words differ where identities differ in kind, blocking or not, op,
	// root or count (below 2^17, where nonblocking words are exact), and
	// name the same kind exactly when the kinds are the same.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		a := randomCall(rng)
		b := a
		switch rng.IntN(5) {
		case 0:
			b.kind = randomKind(rng)
		case 1:
			b.op = Op(rng.IntN(10))
		case 2:
			if b.kind.rooted() {
				b.root = rng.IntN(1 << 17)
			}
		case 3:
			if !b.kind.rooted() && b.count >= 0 {
				b.count = rng.IntN(1 << 17)
			}
		case 4:
			b.nb = !b.nb
		}
		if (a.word() == b.word()) != (a.kind == b.kind && a.nb == b.nb && a.op == b.op && a.root == b.root && a.count == b.count) {
			t.Fatalf("%v and %v: words %#x and %#x", a, b, a.word(), b.word())
		}
		if sameKind(a.word(), b.word()) != (a.kind == b.kind && a.nb == b.nb) {
			t.Fatalf("%v and %v: sameKind of words %#x and %#x is wrong", a, b, a.word(), b.word())
		}
		if d := decodeWord(b.word()); d.kind != b.kind || d.nb != b.nb || d.op != b.op {
			t.Fatalf("%v decodes as %v", b, d)
		}
	}
}

// randomKind is a kind a call can have (callNonblocking is only a mark
// in words).
func randomKind(rng *rand.Rand) collKind {
	for {
		if k := collKind(1 + rng.IntN(int(numKinds)-1)); k != callNonblocking {
			return k
		}
	}
}

func randomCall(rng *rand.Rand) callID {
	k := randomKind(rng)
	var id callID
	if k.rooted() {
		id = rootedCall(k, rng.IntN(1<<17), rng.IntN(1<<17), 8)
	} else {
		id = countedCall(k, Op(rng.IntN(10)), rng.IntN(1<<17), 8)
	}
	id.nb = rng.IntN(2) == 0
	return id
}

func TestArgErrorMerge(t *testing.T) {
	errs := []*argError{{rank: 3, msg: "c"}, {rank: 1, msg: "a"}, {rank: 2, msg: "b"}}
	for range 20 {
		rand.Shuffle(len(errs), func(i, j int) { errs[i], errs[j] = errs[j], errs[i] })
		var got *argError
		for _, e := range errs {
			got = got.first(e)
		}
		if got.rank != 1 {
			t.Fatalf("merged %v to rank %d, want the lowest rank", errs, got.rank)
		}
	}
	e := decodeArgError((&argError{rank: 7, msg: "recv has 3 elements"}).encode())
	if e.rank != 7 || e.msg != "recv has 3 elements" || !errors.Is(e, ErrInvalid) || !strings.Contains(e.Error(), "rank 7: recv has 3") {
		t.Fatalf("round trip: %#v %v", e, e)
	}
	if d := differs(rootedCall(callBcast, 0, 4, 8), 0, rootedCall(callBcast, 1, 4, 8), 2); !strings.Contains(d, "different roots: rank 0 called Bcast(root 0, count 4, 8-byte elements), rank 2 called Bcast(root 1") {
		t.Fatalf("differs: %s", d)
	}
}

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
	} {
		if got := wordString(tc.id.word()); got != tc.want {
			t.Errorf("wordString(%v.word()) = %q, want %q", tc.id, got, tc.want)
		}
	}
	// Words differ where identities differ in kind, op, root or count.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		a := randomCall(rng)
		b := a
		switch rng.IntN(4) {
		case 0:
			b.kind = collKind(1 + rng.IntN(int(numKinds)-1))
		case 1:
			b.op = Op(rng.IntN(10))
		case 2:
			if b.kind.rooted() {
				b.root = rng.IntN(1 << 20)
			}
		case 3:
			if !b.kind.rooted() && b.count >= 0 {
				b.count = rng.IntN(1 << 20)
			}
		}
		if (a.word() == b.word()) != (a.kind == b.kind && a.op == b.op && a.root == b.root && a.count == b.count) {
			t.Fatalf("%v and %v: words %#x and %#x", a, b, a.word(), b.word())
		}
	}
}

func randomCall(rng *rand.Rand) callID {
	k := collKind(1 + rng.IntN(int(numKinds)-1))
	if k.rooted() {
		return rootedCall(k, rng.IntN(1<<20), rng.IntN(1<<20), 8)
	}
	return countedCall(k, Op(rng.IntN(10)), rng.IntN(1<<20), 8)
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

package collcheck

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/gorun-hpc/gorun/runtime"
)

// Groups and the communicators made from them, against a naive model: a
// group is a list of ranks of c, drawn from the seed (the same on every
// rank), and every group call is computed on lists.

// ranksOf returns the processes of g as ranks of c (through
// TranslateRanks to c's group, which the checks compare with the model
// first for c's group itself).
func ranksOf(g *runtime.Group, base *runtime.Group) ([]int, error) {
	idx := make([]int, g.Size())
	for i := range idx {
		idx[i] = i
	}
	return runtime.TranslateRanks(g, idx, base)
}

// checkGroup compares g with the model want (ranks of c), including the
// calling rank's rank in it.
func checkGroup(what string, g, base *runtime.Group, want []int, me int) error {
	got, err := ranksOf(g, base)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s = %v, want %v", what, got, want)
	}
	wantRank := slices.Index(want, me)
	if wantRank < 0 {
		wantRank = runtime.Undefined
	}
	if g.Rank() != wantRank {
		return fmt.Errorf("%s: Rank() = %d, want %d", what, g.Rank(), wantRank)
	}
	return nil
}

// pick returns k distinct random ranks of [0,n), in random order.
func pick(rng *rand.Rand, n, k int) []int {
	return rng.Perm(n)[:k]
}

func naiveUnion(a, b []int) []int {
	out := slices.Clone(a)
	for _, p := range b {
		if !slices.Contains(a, p) {
			out = append(out, p)
		}
	}
	return out
}

func naiveFilter(a, b []int, keep bool) []int {
	out := []int{}
	for _, p := range a {
		if slices.Contains(b, p) == keep {
			out = append(out, p)
		}
	}
	return out
}

func naiveCompare(a, b []int) runtime.Comparison {
	switch {
	case slices.Equal(a, b):
		return runtime.Ident
	case len(a) == len(b) && len(naiveFilter(a, b, true)) == len(a):
		return runtime.Similar
	}
	return runtime.Unequal
}

// wantInvalid checks that err is an ErrInvalid that names op and says
// what.
func wantInvalid(err error, op, what string) error {
	if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), op) || !strings.Contains(err.Error(), what) {
		return fmt.Errorf("%s: error %v, want ErrInvalid naming %s and saying %q", op, err, op, what)
	}
	return nil
}

// GroupOps checks the local group calls on groups of c drawn from seed.
func GroupOps(c *runtime.Comm, seed uint64) error {
	n, me := c.Size(), c.Rank()
	rng := rand.New(rand.NewPCG(seed, 2))
	base := c.Group()
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	if err := checkGroup("Group()", base, base, all, me); err != nil {
		return err
	}
	for round := range 16 {
		a := pick(rng, n, rng.IntN(n+1))
		ga, err := base.Incl(a)
		if err != nil {
			return err
		}
		if err := checkGroup(fmt.Sprintf("round %d: Incl(%v)", round, a), ga, base, a, me); err != nil {
			return err
		}
		ex := pick(rng, n, rng.IntN(n+1))
		gx, err := base.Excl(ex)
		if err != nil {
			return err
		}
		x := naiveFilter(all, ex, false)
		if err := checkGroup(fmt.Sprintf("round %d: Excl(%v)", round, ex), gx, base, x, me); err != nil {
			return err
		}
		// b: a random order of a random subset, through Excl then Incl.
		perm := rng.Perm(len(x))
		gb, err := gx.Incl(perm)
		if err != nil {
			return err
		}
		b := make([]int, len(perm))
		for i, j := range perm {
			b[i] = x[j]
		}
		for _, tc := range []struct {
			name string
			got  *runtime.Group
			want []int
		}{
			{"Union", runtime.Union(ga, gb), naiveUnion(a, b)},
			{"Intersection", runtime.Intersection(ga, gb), naiveFilter(a, b, true)},
			{"Difference", runtime.Difference(ga, gb), naiveFilter(a, b, false)},
			{"Union with empty", runtime.Union(nil, gb), b},
			{"Difference of itself", runtime.Difference(gb, gb), []int{}},
		} {
			if err := checkGroup(fmt.Sprintf("round %d: %s(%v, %v)", round, tc.name, a, b), tc.got, base, tc.want, me); err != nil {
				return err
			}
		}
		if got, want := runtime.Compare(ga, gb), naiveCompare(a, b); got != want {
			return fmt.Errorf("round %d: Compare(%v, %v) = %v, want %v", round, a, b, got, want)
		}
		// a reversed is Similar to a (or Ident, for fewer than two).
		rev := make([]int, len(a))
		for i := range rev {
			rev[i] = len(a) - 1 - i
		}
		gr, err := ga.Incl(rev)
		if err != nil {
			return err
		}
		ar := slices.Clone(a)
		slices.Reverse(ar)
		if got, want := runtime.Compare(ga, gr), naiveCompare(a, ar); got != want {
			return fmt.Errorf("round %d: Compare(%v, reversed) = %v, want %v", round, a, got, want)
		}
		// TranslateRanks of random ranks of a, ProcNull among them.
		var rs, want []int
		for range rng.IntN(2 * (len(a) + 1)) {
			if len(a) == 0 || rng.IntN(5) == 0 {
				rs, want = append(rs, runtime.ProcNull), append(want, runtime.ProcNull)
				continue
			}
			r := rng.IntN(len(a))
			w := slices.Index(b, a[r])
			if w < 0 {
				w = runtime.Undefined
			}
			rs, want = append(rs, r), append(want, w)
		}
		got, err := runtime.TranslateRanks(ga, rs, gb)
		if err != nil || !slices.Equal(got, want) {
			return fmt.Errorf("round %d: TranslateRanks(%v, %v, %v) = %v, %v; want %v", round, a, rs, b, got, err, want)
		}
	}
	// Bad arguments, on the calling rank: the call and the argument named.
	for _, bad := range []struct {
		op, says string
		call     func() error
	}{
		{"Incl", "ranks[0] and ranks[1]", func() error { _, err := base.Incl([]int{0, 0}); return err }},
		{"Incl", fmt.Sprintf("ranks[1] = %d is out of range", n), func() error { _, err := base.Incl([]int{0, n}); return err }},
		{"Excl", "ranks[0] = -1 is out of range", func() error { _, err := base.Excl([]int{-1}); return err }},
		{"Excl", "ranks[0] and ranks[1]", func() error { _, err := base.Excl([]int{n - 1, n - 1}); return err }},
		{"TranslateRanks", fmt.Sprintf("ranks[1] = %d is out of range", n), func() error {
			_, err := runtime.TranslateRanks(base, []int{0, n}, base)
			return err
		}},
	} {
		if err := wantInvalid(bad.call(), bad.op, bad.says); err != nil {
			return err
		}
	}
	return nil
}

// checkComm checks a communicator made of the group want (ranks of c): its
// size, this rank's rank, its ranks' world ranks, and an Allgather over it
// of every member's rank in c.
func checkComm(what string, c, s *runtime.Comm, want []int) error {
	me := slices.Index(want, c.Rank())
	if me < 0 {
		if s != nil {
			return fmt.Errorf("%s: rank %d is not in %v but got a communicator", what, c.Rank(), want)
		}
		return nil
	}
	if s == nil {
		return fmt.Errorf("%s: rank %d is in %v but got no communicator", what, c.Rank(), want)
	}
	if s.Size() != len(want) || s.Rank() != me {
		return fmt.Errorf("%s: size %d rank %d, want %d and %d", what, s.Size(), s.Rank(), len(want), me)
	}
	for i, r := range want {
		if s.WorldRank(i) != c.WorldRank(r) {
			return fmt.Errorf("%s: rank %d is world rank %d, want %d", what, i, s.WorldRank(i), c.WorldRank(r))
		}
	}
	got := make([]int64, len(want))
	if err := runtime.Allgather(s, []int64{int64(c.Rank())}, got); err != nil {
		return fmt.Errorf("%s: Allgather: %w", what, err)
	}
	for i, r := range want {
		if got[i] != int64(r) {
			return fmt.Errorf("%s: Allgather gave %v, want %v", what, got, want)
		}
	}
	return nil
}

// partition draws disjoint groups of c's ranks, each in a random order,
// and leaves some ranks out; part[r] is the index of rank r's group, or -1.
func partition(rng *rand.Rand, n int) (groups [][]int, part []int) {
	k := 1 + rng.IntN(3)
	part = make([]int, n)
	groups = make([][]int, k)
	for _, r := range rng.Perm(n) {
		i := rng.IntN(k+1) - 1 // -1: in no group
		part[r] = i
		if i >= 0 {
			groups[i] = append(groups[i], r)
		}
	}
	return groups, part
}

// Creation checks Create with one group and with disjoint groups, and
// CreateGroup by disjoint groups at the same time, then that the new
// communicators, c and a later Split of c keep their messages apart.
func Creation(c *runtime.Comm, seed uint64) error {
	n, me := c.Size(), c.Rank()
	rng := rand.New(rand.NewPCG(seed, 3))
	base := c.Group()
	incl := func(rs []int) *runtime.Group {
		g, err := base.Incl(rs)
		if err != nil {
			panic(err) // the model's ranks are valid
		}
		return g
	}
	var made []*runtime.Comm
	var models [][]int
	defer func() {
		for _, s := range made {
			s.Close()
		}
	}()
	keep := func(s *runtime.Comm, want []int) {
		if s != nil {
			made, models = append(made, s), append(models, want)
		}
	}

	// One group everywhere.
	a := pick(rng, n, rng.IntN(n+1))
	s, err := c.Create(incl(a))
	if err != nil {
		return fmt.Errorf("Create(%v): %w", a, err)
	}
	if err := checkComm(fmt.Sprintf("Create(%v)", a), c, s, a); err != nil {
		return err
	}
	keep(s, a)

	// Disjoint groups, each rank passing its own; a rank in none passes
	// nil or some group it is not in.
	groups, part := partition(rng, n)
	mine := []int{}
	var g *runtime.Group
	other := rng.IntN(len(groups) + 1) // drawn everywhere: rng stays the same on every rank
	if part[me] >= 0 {
		mine = groups[part[me]]
		g = incl(mine)
	} else if other < len(groups) {
		g = incl(groups[other])
	}
	s, err = c.Create(g)
	if err != nil {
		return fmt.Errorf("Create of disjoint groups %v: %w", groups, err)
	}
	if err := checkComm(fmt.Sprintf("Create of disjoint groups %v", groups), c, s, mine); err != nil {
		return err
	}
	keep(s, mine)

	// CreateGroup by disjoint groups at the same time, with the same tag;
	// the other ranks make no call. Twice, with no call on c between: in
	// the second, some members have made a communicator more than others
	// (and may still be making it), so they must agree on a context id.
	for range 2 {
		groups, part = partition(rng, n)
		if part[me] < 0 {
			continue
		}
		mine = groups[part[me]]
		s, err := c.CreateGroup(incl(mine), 7)
		if err != nil {
			return fmt.Errorf("CreateGroup of %v: %w", mine, err)
		}
		if err := checkComm(fmt.Sprintf("CreateGroup of %v (groups %v)", mine, groups), c, s, mine); err != nil {
			return err
		}
		keep(s, mine)
	}

	// A Split of c after all that, and a round of Allgather on every
	// communicator this rank has, newest first: messages of one never
	// reach another.
	half, err := c.Split(me%2, -me)
	if err != nil {
		return err
	}
	var hm []int
	for r := n - 1; r >= 0; r-- {
		if r%2 == me%2 {
			hm = append(hm, r)
		}
	}
	keep(half, hm)
	for i := len(made) - 1; i >= 0; i-- {
		if err := checkComm(fmt.Sprintf("again, communicator of %v", models[i]), c, made[i], models[i]); err != nil {
			return err
		}
	}
	return c.Barrier()
}

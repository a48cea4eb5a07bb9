package runtime

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

// A Group is an ordered set of processes (MPI_Group): the ranks of a
// communicator, or a selection of them made with Incl, Excl, Union,
// Intersection and Difference. Rank i of a group is its i-th process; a
// group's ranks need not be those of any communicator until Create or
// CreateGroup makes one of it.
//
// Groups are values of the calling rank only: every call on them is local
// and none changes a group, so a Group may be shared between goroutines.
// A nil *Group is the empty group (MPI_GROUP_EMPTY).
type Group struct {
	procs []int // the world rank of each rank of the group
	rank  int   // the caller's rank in the group, or Undefined
	me    int   // the caller's world rank, -1 if unknown (a group built from empty ones)
}

// Comparison is the result of Compare.
type Comparison int

const (
	Ident   Comparison = iota // the same processes in the same order (MPI_IDENT)
	Similar                   // the same processes in another order (MPI_SIMILAR)
	Unequal                   // other processes (MPI_UNEQUAL)
)

func (r Comparison) String() string {
	switch r {
	case Ident:
		return "Ident"
	case Similar:
		return "Similar"
	case Unequal:
		return "Unequal"
	}
	return "Comparison(" + strconv.Itoa(int(r)) + ")"
}

// newGroup makes the group of the processes procs (world ranks, owned by
// the group) for the caller of world rank me.
func newGroup(procs []int, me int) *Group {
	g := &Group{procs: procs, rank: Undefined, me: me}
	for i, p := range procs {
		if p == me {
			g.rank = i
			break
		}
	}
	return g
}

// Group returns the group of c's ranks, in c's order (MPI_Comm_group): rank
// i of the group is rank i of c. On the nil communicator it is the group of
// the one serial rank. Group is local.
func (c *Comm) Group() *Group {
	if c == nil {
		return newGroup([]int{0}, 0)
	}
	return newGroup(append([]int(nil), c.group...), c.w.rank)
}

// Size returns the number of processes in g (MPI_Group_size).
func (g *Group) Size() int {
	if g == nil {
		return 0
	}
	return len(g.procs)
}

// Rank returns the calling rank's rank in g, or Undefined if it is not in
// g (MPI_Group_rank).
func (g *Group) Rank() int {
	if g == nil {
		return Undefined
	}
	return g.rank
}

// String lists the group's processes by their world ranks (the first 16).
func (g *Group) String() string {
	var b strings.Builder
	b.WriteString("group[")
	for i, p := range g.list() {
		if i == 16 {
			fmt.Fprintf(&b, " ... (%d processes)", g.Size())
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(p))
	}
	b.WriteByte(']')
	return b.String()
}

// list returns g's processes (none for the nil group).
func (g *Group) list() []int {
	if g == nil {
		return nil
	}
	return g.procs
}

// caller is the world rank of whoever made g, or -1 for the nil group.
func (g *Group) caller() int {
	if g == nil {
		return -1
	}
	return g.me
}

// callerOf returns the caller's world rank known to a or b.
func callerOf(a, b *Group) int {
	if me := a.caller(); me >= 0 {
		return me
	}
	return b.caller()
}

// groupErr is an argument error of the local group call op, made by
// world rank me (-1 if unknown: calls on empty groups only).
func groupErr(op string, me int, msg string) error {
	return &OpError{Op: op, Comm: "world", Rank: me, Peer: NoPeer, Err: errInvalid(msg)}
}

// checkRanks checks that ranks are distinct ranks of g, for call op's
// argument named arg.
func (g *Group) checkRanks(op, arg string, ranks []int) error {
	seen := make(map[int]int, len(ranks))
	for i, r := range ranks {
		if r < 0 || r >= g.Size() {
			return groupErr(op, g.caller(), fmt.Sprintf("%s[%d] = %d is out of range [0,%d)", arg, i, r, g.Size()))
		}
		if j, dup := seen[r]; dup {
			return groupErr(op, g.caller(), fmt.Sprintf("%s[%d] and %s[%d] are both rank %d", arg, j, arg, i, r))
		}
		seen[r] = i
	}
	return nil
}

// Incl returns the group of the ranks of g listed in ranks, in that order:
// rank i of the new group is rank ranks[i] of g (MPI_Group_incl). Errors:
// ErrInvalid for a rank out of range or listed twice.
func (g *Group) Incl(ranks []int) (*Group, error) {
	if err := g.checkRanks("Incl", "ranks", ranks); err != nil {
		return nil, err
	}
	procs := make([]int, len(ranks))
	for i, r := range ranks {
		procs[i] = g.procs[r]
	}
	return newGroup(procs, g.caller()), nil
}

// Excl returns the group of the ranks of g not listed in ranks, in their
// order in g (MPI_Group_excl). Errors: ErrInvalid for a rank out of range
// or listed twice.
func (g *Group) Excl(ranks []int) (*Group, error) {
	if err := g.checkRanks("Excl", "ranks", ranks); err != nil {
		return nil, err
	}
	drop := make([]bool, g.Size())
	for _, r := range ranks {
		drop[r] = true
	}
	procs := make([]int, 0, g.Size()-len(ranks))
	for i, p := range g.procs {
		if !drop[i] {
			procs = append(procs, p)
		}
	}
	return newGroup(procs, g.caller()), nil
}

// index maps each process of g to its rank in g.
func (g *Group) index() map[int]int {
	m := make(map[int]int, g.Size())
	for i, p := range g.list() {
		m[p] = i
	}
	return m
}

// Union returns the processes of a, in a's order, then those of b that are
// not in a, in b's order (MPI_Group_union).
func Union(a, b *Group) *Group {
	in := a.index()
	procs := append(make([]int, 0, a.Size()+b.Size()), a.list()...)
	for _, p := range b.list() {
		if _, ok := in[p]; !ok {
			procs = append(procs, p)
		}
	}
	return newGroup(procs, callerOf(a, b))
}

// Intersection returns the processes of a that are also in b, in a's
// order (MPI_Group_intersection).
func Intersection(a, b *Group) *Group { return a.filter(b, true, callerOf(a, b)) }

// Difference returns the processes of a that are not in b, in a's order
// (MPI_Group_difference).
func Difference(a, b *Group) *Group { return a.filter(b, false, callerOf(a, b)) }

// filter returns the processes of a that are (keep) or are not (!keep) in
// b, in a's order.
func (a *Group) filter(b *Group, keep bool, me int) *Group {
	in := b.index()
	var procs []int
	for _, p := range a.list() {
		if _, ok := in[p]; ok == keep {
			procs = append(procs, p)
		}
	}
	return newGroup(procs, me)
}

// TranslateRanks returns the rank in b of each process that ranks names in
// a, Undefined where that process is not in b; ProcNull stays ProcNull
// (MPI_Group_translate_ranks). Errors: ErrInvalid for a rank out of range
// of a.
func TranslateRanks(a *Group, ranks []int, b *Group) ([]int, error) {
	in := b.index()
	out := make([]int, len(ranks))
	for i, r := range ranks {
		switch {
		case r == ProcNull:
			out[i] = ProcNull
		case r < 0 || r >= a.Size():
			return nil, groupErr("TranslateRanks", callerOf(a, b), fmt.Sprintf("ranks[%d] = %d is out of range [0,%d) of the first group", i, r, a.Size()))
		default:
			if j, ok := in[a.procs[r]]; ok {
				out[i] = j
			} else {
				out[i] = Undefined
			}
		}
	}
	return out, nil
}

// Compare says whether a and b hold the same processes in the same order
// (Ident), the same processes in another order (Similar), or not the same
// processes (Unequal) (MPI_Group_compare).
func Compare(a, b *Group) Comparison {
	if a.Size() != b.Size() {
		return Unequal
	}
	if slices.Equal(a.list(), b.list()) {
		return Ident
	}
	in := b.index()
	for _, p := range a.list() {
		if _, ok := in[p]; !ok {
			return Unequal
		}
	}
	return Similar
}

// hash identifies g's processes and their order, for ranks to compare
// their groups without sending them (63 bits, so never negative).
func (g *Group) hash() int64 {
	h := fnv.New64a()
	fmt.Fprint(h, g.list())
	return int64(h.Sum64() >> 1)
}

// ranksIn returns the rank in c of each process of g, or an argument error
// if one of them is not in c.
func (g *Group) ranksIn(c *Comm) ([]int, error) {
	at := make(map[int]int, c.size)
	for r, p := range c.group {
		at[p] = r
	}
	out := make([]int, g.Size())
	for i := range out {
		r, ok := at[g.procs[i]]
		if !ok {
			return nil, errInvalid(fmt.Sprintf("rank %d of the group (world rank %d) is not a rank of %s", i, g.procs[i], c.name))
		}
		out[i] = r
	}
	return out, nil
}

package runtime

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sync/atomic"
)

// A Comm is a communicator: an ordered group of ranks and a private message
// space. Its methods manage it; the data-moving calls (Send, Recv, Bcast,
// Allreduce, ...) are package functions that take it first, because Go
// methods cannot have type parameters.
//
// A nil *Comm is the serial communicator: rank 0 of 1. Collectives on it
// copy their input to their output, Barrier returns at once, Dup and Split
// return nil, Close does nothing, and point-to-point calls return ErrInvalid
// (there is no one to talk to). Libraries can therefore take a *Comm and
// accept nil the way pshmem accepts comm=None.
//
// Concurrency: any goroutine may call point-to-point functions on a Comm at
// any time, concurrently with others. Collective calls on one Comm must be
// made by every rank in the same order and not concurrently with another
// collective on the same Comm (as in MPI); use Dup to give each goroutine
// its own communicator. One exception across communicators: the calls that
// make one (Dup, Split, SplitShared, Cart, Sub, Create, CreateGroup, and
// the first Barrier, Bcast or Allreduce of a communicator that spans
// nodes, which makes two) must not run at the same time on one rank, since
// they draw context ids from one counter per rank.
// A nonblocking collective (Ibarrier, Ibcast, ...) takes its place in
// that order when it is called, and may still be in progress while later
// collectives are made.
//
// Failure is sticky and shared: when a peer dies, a connection breaks, a
// rank calls Abort or the watchdog fires, every pending and later call on
// every communicator of the world returns an error wrapping ErrAborted and
// the first cause. Close of the world communicator makes later calls return
// ErrClosed.
type Comm struct {
	w     *world
	name  string
	ctx   uint32 // point-to-point context; ctx+1 carries the collectives
	rank  int
	size  int
	group []int // world rank of each rank of this communicator

	// seq numbers the collective calls on c; every rank calls collectives
	// in the same order, so equal seq means the same call everywhere. log
	// records them for stalled peers (verify.go).
	seq     uint32
	log     *callLog
	scratch []uint64 // collectives' temporary space (elem.go), used by one call at a time
	kernel  struct { // the last reduction kernel used on c (commKernel)
		key kernelKey
		f   any
	}
	closing atomic.Bool // Close has started
	closed  atomic.Bool // calls return ErrClosed
	world   bool

	// hierPlan caches whether Barrier, Bcast and Allreduce are node-aware
	// on c, and hier the node and leaders communicators they use, built
	// on the first such call and closed by Close (hier.go).
	hierPlan uint8
	hier     *hier

	// ncState says whether Barrier and Allreduce go through a segment
	// shared by c's ranks (nodecoll.go), and nc is that segment, set up on
	// the first such call.
	ncState uint8
	nc      *nodeColl

	// nbc holds this rank's nonblocking collectives in progress on c
	// (nbc.go).
	nbc nbcOps
}

// ncState values.
const (
	ncUnknown uint8 = iota
	ncNone
	ncReady
)

// Undefined is the color that leaves a rank out of every group in Split,
// and the rank of a process that is not in a group (Group.Rank,
// TranslateRanks). It is MPI_UNDEFINED's value.
const Undefined = -32766

// Rank returns the calling rank's number in c, from 0 to Size()-1.
func (c *Comm) Rank() int {
	if c == nil {
		return 0
	}
	return c.rank
}

// Size returns the number of ranks in c.
func (c *Comm) Size() int {
	if c == nil {
		return 1
	}
	return c.size
}

// Name returns c's name for messages: "world", "world.dup", ...
func (c *Comm) Name() string {
	if c == nil {
		return "serial"
	}
	return c.name
}

// WorldRank returns the world rank of rank r of c, or -1 if r is out of
// range.
func (c *Comm) WorldRank(r int) int {
	if c == nil {
		if r == 0 {
			return 0
		}
		return -1
	}
	if r < 0 || r >= c.size {
		return -1
	}
	return c.group[r]
}

// Node returns the node of rank r of c, or -1 if r is out of range. Nodes
// are numbered from 0 in the order of their lowest world rank, the same on
// every rank and for every communicator, so ranks r and q share memory
// (SplitShared would group them) exactly when Node(r) == Node(q). Under
// gorun --nodes, emulated nodes count as nodes. Node is local.
func (c *Comm) Node(r int) int {
	if c == nil {
		if r == 0 {
			return 0
		}
		return -1
	}
	if r < 0 || r >= c.size {
		return -1
	}
	return c.w.nodeIdx[c.group[r]]
}

// NodeName returns the name of the host rank r of c runs on, as that rank
// reported it (MPI_Get_processor_name, for any rank), or "" if r is out of
// range. Emulated nodes (gorun --nodes) share their host's name; use Node
// to tell nodes apart. NodeName is local.
func (c *Comm) NodeName(r int) string {
	if r < 0 || r >= c.Size() {
		return ""
	}
	if c == nil || c.w.hosts == nil || c.w.hosts[c.group[r]] == "" {
		h, _ := os.Hostname()
		return h
	}
	return c.w.hosts[c.group[r]]
}

func (c *Comm) usable() error {
	if c.closed.Load() {
		return ErrClosed
	}
	return c.w.err()
}

// Dup returns a new communicator with the same ranks in the same order and
// a message space of its own (MPI_Comm_dup).
//
// Dup is collective over c and blocking. Errors: ErrAborted, ErrClosed.
func (c *Comm) Dup() (*Comm, error) {
	if c == nil {
		return nil, nil
	}
	d, err := c.split(0, c.rank, c.name+".dup", nil)
	return d, c.opErr("Dup", NoPeer, err)
}

// Split partitions c into one communicator per color (≥ 0): the ranks that
// pass the same color form a group, ordered by key and then by their rank in
// c (MPI_Comm_split). A rank that passes Undefined gets a nil *Comm — which
// is the serial communicator, so check the color before using it.
//
// Split is collective over c and blocking. Errors: ErrInvalid, returned by
// every rank, for a negative color other than Undefined on any rank;
// ErrAborted, ErrClosed.
func (c *Comm) Split(color, key int) (*Comm, error) {
	if c == nil {
		return nil, nil
	}
	var local error
	if color < 0 && color != Undefined {
		local = errInvalid(fmt.Sprintf("color %d is negative and not Undefined", color))
	}
	s, err := c.split(color, key, fmt.Sprintf("%s.split(%d)", c.name, color), local)
	return s, c.opErr("Split", NoPeer, err)
}

// SplitShared returns the communicator of the ranks of c that share this
// rank's node, so they can share memory (MPI_Comm_split_type with
// MPI_COMM_TYPE_SHARED), ordered by their rank in c. Under gorun --nodes K,
// the emulated nodes count as nodes.
//
// SplitShared is collective over c and blocking. Errors as Split.
func (c *Comm) SplitShared() (*Comm, error) {
	if c == nil {
		return nil, nil
	}
	me := c.w.nodes[c.group[c.rank]]
	color := 0
	for r := range c.size {
		if c.w.nodes[c.group[r]] == me {
			color = r
			break
		}
	}
	s, err := c.split(color, c.rank, c.name+".shared", nil)
	return s, c.opErr("SplitShared", NoPeer, err)
}

// split is the collective core of Dup, Split and SplitShared: it gathers
// every rank's (color, key, next free context) and builds this rank's group.
// An argument error local of this rank is returned by every rank.
func (c *Comm) split(color, key int, name string, local error) (*Comm, error) {
	all := make([]int64, 3*c.size)
	if err := c.allgatherInts(callSplit, "Split", []int64{int64(color), int64(key), int64(c.w.peekCtx())}, all, local); err != nil {
		return nil, err
	}
	var next int64
	type member struct{ key, rank int }
	var members []member
	for r := range c.size {
		next = max(next, all[3*r+2])
		if int(all[3*r]) == color && color != Undefined {
			members = append(members, member{int(all[3*r+1]), r})
		}
	}
	// Every rank reserves the same context pair, above anything any of them
	// uses, so the new communicators' messages cannot meet older ones.
	ctx := c.w.allocCtx(uint32(next))
	if color == Undefined {
		return nil, nil
	}
	slices.SortStableFunc(members, func(a, b member) int {
		if a.key != b.key {
			return a.key - b.key
		}
		return a.rank - b.rank
	})
	rank := slices.IndexFunc(members, func(m member) bool { return m.rank == c.rank })
	n := c.w.newComm(name, ctx, rank, len(members))
	for i, m := range members {
		n.group[i] = c.group[m.rank]
	}
	return n, nil
}

// allgatherInts is Allgather of int64s for the runtime's own bookkeeping
// (Split, the node structure), as call kind: every rank gets every rank's
// mine, or every rank gets the argument error of the lowest rank that had
// one (local is this rank's).
func (c *Comm) allgatherInts(kind collKind, name string, mine, all []int64, local error) error {
	var k coll
	if err := c.enter(&k, name, countedCall(kind, 0, len(mine), 8), local); err != nil {
		return err
	}
	return k.end(allgather(&k, mine, all))
}

// Context ids. Every communicator has a pair of context ids (ctx for
// point-to-point, ctx+1 for collectives), the same on all its ranks, and a
// rank never uses an id twice: its next free id (world.nextCtx) only
// grows. A new communicator takes the largest next free id among the
// ranks that agree on it — every rank of the parent for Dup, Split, Cart
// and Create, only the members for CreateGroup — so the id is fresh on
// each of its ranks. That is all matching needs: a message on context x
// goes from a member of a communicator with id x to another member, and
// the receiver has exactly one communicator with id x, the same one.
// Communicators on disjoint ranks may share an id (the colors of one
// Split, two groups' CreateGroup at the same time) and never meet; a
// later collective on the parent agrees on an id above everything its
// ranks used, CreateGroup's ids included.

// Create returns the communicator of the processes of g, in g's order, to
// the ranks of c that are in g, and nil to the others (MPI_Comm_create; a
// nil *Comm is the serial communicator, so check g.Rank() before using
// it). g's processes must be ranks of c.
//
// Create is collective over c: every rank calls it. Usually every rank
// passes the same group. As in MPI, ranks may pass different groups if
// every process of each group passed that same group (the same processes
// in the same order): the groups are then disjoint and Create makes one
// communicator of each, in one call. A rank in none passes nil, the empty
// group.
//
// Create is blocking. Errors, the same ErrInvalid on every rank: a group
// with a process that is not in c on any rank, or a rank of some rank's
// group that passed another group (in particular, ranks that pass
// overlapping different groups); ErrAborted, ErrClosed. On the nil
// communicator Create returns nil: the serial communicator if g holds the
// serial rank, else no communicator.
func (c *Comm) Create(g *Group) (*Comm, error) {
	if c == nil {
		return nil, (*Comm)(nil).opErr("Create", NoPeer, serialGroupErr(g))
	}
	at, local := g.ranksIn(c)
	mine := []int64{g.hash(), int64(c.w.peekCtx())}
	all := make([]int64, 2*c.size)
	if err := c.allgatherInts(callCreate, "Create", mine, all, local); err != nil {
		return nil, c.opErr("Create", NoPeer, err)
	}
	var next int64
	same := true
	for r := range c.size {
		next = max(next, all[2*r+1])
		same = same && all[2*r] == all[0]
	}
	ctx := c.w.allocCtx(uint32(next))
	if !same {
		// Every rank checks that the members of its group passed it too,
		// and a second round tells every rank of the lowest rank whose
		// check failed (only that rank knows).
		var bad error
		for _, r := range at {
			if all[2*r] != mine[0] {
				bad = errInvalid(fmt.Sprintf("rank %d of %s is in this rank's group %v but passed another group", r, c.name, g))
				break
			}
		}
		if err := c.allgatherInts(callCreate, "Create", nil, nil, bad); err != nil {
			return nil, c.opErr("Create", NoPeer, err)
		}
	}
	if g.Rank() == Undefined {
		return nil, nil
	}
	n := c.w.newComm(c.name+".create", ctx, g.Rank(), g.Size())
	copy(n.group, g.procs)
	return n, nil
}

// serialGroupErr checks g for Create and CreateGroup on the nil
// communicator, whose one process is world rank 0.
func serialGroupErr(g *Group) error {
	for i, p := range g.list() {
		if p != 0 {
			return errInvalid(fmt.Sprintf("rank %d of the group (world rank %d) is not a rank of the serial communicator", i, p))
		}
	}
	return nil
}

// CreateGroup returns the communicator of the processes of g, in g's
// order (MPI_Comm_create_group), like Create, but it is collective over g
// only: the ranks of c in g call it, with the same g and tag, and the other
// ranks of c do not, and may meanwhile do anything but a collective call
// on c. tag keeps apart the messages CreateGroup exchanges for different
// groups on c; it is in [0, math.MaxInt32). (MPI uses it for calls made at
// the same time by different threads of a process; here, as for every call
// that makes a communicator, a rank makes one at a time: see Comm.)
//
// The members agree on the new communicator's context id without the
// rest of c: the largest of their next free ids, which none of them has
// used, and which any later collective of c that makes a communicator
// passes (it takes the largest over all of c's ranks). Two disjoint groups
// may get the same id; their communicators share no rank, so their
// messages never meet. To agree, the members run ceil(log2 |g|) rounds of
// a dissemination pattern over themselves ordered by rank in c, each
// combining what it heard so far — the largest next free id, the least
// and the greatest hash of the members' groups — so every member ends with
// the same values. These messages go on c's collective context with a
// negative tag made from tag: they never match a collective of c (whose
// tags are its call numbers) or a message of the user's, and those of two
// disjoint groups never meet.
//
// CreateGroup is blocking. Errors: ErrInvalid, on the calling rank only,
// for a tag out of range, a group with a process not in c, or a caller not
// in g; ErrInvalid on every member when members passed the same processes
// in different orders. Members that pass different tags, or groups of
// different processes, wait for calls that do not come (as a collective
// some rank never calls); ErrAborted, ErrClosed. On the nil communicator
// CreateGroup of the serial rank's group returns nil, the serial
// communicator.
func (c *Comm) CreateGroup(g *Group, tag int) (*Comm, error) {
	const op = "CreateGroup"
	if c == nil {
		err := serialGroupErr(g)
		if err == nil && g.Size() == 0 {
			err = errInvalid("the calling rank is not in the group")
		}
		return nil, (*Comm)(nil).opErr(op, NoPeer, err)
	}
	if err := c.usable(); err != nil {
		return nil, c.opErr(op, NoPeer, err)
	}
	if tag < 0 || tag >= math.MaxInt32 {
		return nil, c.opErr(op, NoPeer, errInvalid(fmt.Sprintf("tag %d out of range [0,%d)", tag, math.MaxInt32)))
	}
	at, err := g.ranksIn(c)
	if err != nil {
		return nil, c.opErr(op, NoPeer, err)
	}
	if g.Rank() == Undefined {
		return nil, c.opErr(op, NoPeer, errInvalid(fmt.Sprintf("the calling rank is not in the group %v", g)))
	}
	members := slices.Sorted(slices.Values(at))
	m, me := len(members), slices.Index(members, c.rank)
	h := g.hash()
	// The largest next free context id; the least hash and the lowest
	// rank that passed it; the greatest hash and the lowest rank that
	// passed it.
	v := [5]int64{int64(c.w.peekCtx()), h, int64(c.rank), h, int64(c.rank)}
	var in [5]int64
	wtag := -2 - tag // below AnyTag (-1), so a receive never takes it for a wildcard
	for d := 1; d < m; d <<= 1 {
		to, from := members[(me+d)%m], members[(me-d+m)%m]
		if err := c.exchange(op, wtag, v[:], to, in[:], from); err != nil {
			return nil, c.opErr(op, NoPeer, err)
		}
		v[0] = max(v[0], in[0])
		if in[1] < v[1] || in[1] == v[1] && in[2] < v[2] {
			v[1], v[2] = in[1], in[2]
		}
		if in[3] > v[3] || in[3] == v[3] && in[4] < v[4] {
			v[3], v[4] = in[3], in[4]
		}
	}
	if v[1] != v[3] {
		return nil, c.opErr(op, NoPeer, errInvalid(fmt.Sprintf("ranks %d and %d of %s passed different groups", min(v[2], v[4]), max(v[2], v[4]), c.name)))
	}
	n := c.w.newComm(c.name+".group", c.w.allocCtx(uint32(v[0])), g.Rank(), g.Size())
	copy(n.group, g.procs)
	return n, nil
}

// exchange sends out to rank to and receives in from rank from on c's
// collective context with tag, outside any collective call of c (no call
// word, so the stall checks of verify.go leave it alone).
func (c *Comm) exchange(op string, tag int, out []int64, to int, in []int64, from int) error {
	rr, err := c.irecv(c.ctx+1, asBytes(in), from, tag, 0, false, nil, op, false)
	if err != nil {
		return err
	}
	sr, err := c.isend(c.ctx+1, asBytes(out), to, int32(tag), 0, 0, op)
	if err != nil {
		return err
	}
	st, err := rr.Wait()
	if err == nil && st.Bytes != 8*len(in) {
		err = fmt.Errorf("rank %d sent %d bytes where %d were expected", from, st.Bytes, 8*len(in))
	}
	if _, serr := sr.Wait(); err == nil {
		err = serr
	}
	return err
}

// Abort makes the whole job fail with cause: every pending and later call
// of every rank returns an error wrapping ErrAborted that names this rank
// and cause, and gorun stops the job and exits non-zero (MPI_Abort). It does
// not block and is not collective. On the nil communicator it does nothing.
func (c *Comm) Abort(cause error) {
	if c == nil {
		return
	}
	if cause == nil {
		cause = errors.New("no cause given")
	}
	c.w.abort(fmt.Errorf("rank %d of %s called Abort: %w", c.rank, c.name, cause))
}

// Close releases c. For the world communicator returned by Init it is
// MPI_Finalize: collective and blocking (a barrier, so no rank leaves while
// others still talk to it), then every connection is closed in order and
// later calls return ErrClosed; it first waits for this rank's nonblocking
// collectives in progress, on every communicator. For other communicators
// it is local: later calls on c return ErrClosed, and so do receives and
// probes on c that are still waiting (a goroutine blocked in Recv on c
// returns) and c's nonblocking collectives in progress (when Close
// returns, their buffers are the caller's again); a send already started
// completes when its receiver takes it. Close is idempotent; on a failed
// world it still releases everything and returns the failure.
//
// Deferred directly (defer world.Close()) in a goroutine that panics, Close
// does not wait for the others, who may be waiting for this rank: it
// aborts the world with the panic as the cause, releases everything and
// lets the panic continue.
func (c *Comm) Close() error {
	if p := recover(); p != nil {
		if c != nil && c.world {
			c.w.abort(fmt.Errorf("rank %d panicked: %v", c.rank, p))
			c.closing.Store(true)
			c.closed.Store(true)
			c.closeHier()
			_ = c.w.close()
		}
		panic(p)
	}
	if c == nil || c.closing.Swap(true) {
		return nil
	}
	if !c.world {
		c.log.closed.Store(true)
		c.closed.Store(true)
		c.w.cancel(c)
		c.stopNB()
		c.closeHier()
		return nil
	}
	// This rank's nonblocking collectives finish first, on every
	// communicator (nbc.go).
	c.w.nbcLive.Wait()
	var err error
	if c.w.err() == nil {
		// The peers learn first that nothing but this barrier will come
		// from this rank (closing.go), and a peer that waits for this rank
		// in a collective on another communicator learns it too
		// (verify.go).
		c.w.closeLogs()
		c.w.refuseUnmatched()
		c.w.announceClose()
		err = barrier(c, "Close", callClose)
		if err != nil && !errors.Is(err, ErrAborted) {
			// Another rank made another call here: it will never come to
			// this Close, and this rank's peers will leave.
			c.w.abort(fmt.Errorf("rank %d of %s: Close: %w", c.rank, c.name, err))
			err = c.w.err()
		}
	}
	c.log.closed.Store(true)
	c.closed.Store(true)
	c.closeHier()
	if e := c.w.close(); err == nil {
		err = e
	}
	if err == nil {
		if f := c.w.failureErr(); f != nil {
			err = f
		}
	}
	return c.opErr("Close", NoPeer, err)
}

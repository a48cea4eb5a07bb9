package rma_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/gorun-hpc/gorun/internal/testutil"
	"github.com/gorun-hpc/gorun/rma"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// The conformance suite: every case runs on the direct path (one node),
// the message path (every rank its own emulated node), a mix over the real
// transports (two emulated nodes, shared-memory rings and TCP), and on
// processes (one node, two nodes over TCP). Where MPICH's test/mpi/rma or
// mpi4py's RMA tests check a rule, the case says which.

func TestMain(m *testing.M) { testutil.Main(m) }

// A suiteCase runs on every rank; it returns what went wrong.
type suiteCase struct {
	name string
	run  func(c *runtime.Comm) error
}

var suite = []suiteCase{
	{"put-get", putGet},
	{"accumulate-race", accumulateRace},
	{"fetch-and-op-counter", fetchAndOpCounter},
	{"cas-spinlock", casSpinlock},
	{"lock-exclusive", lockExclusive},
	{"lock-shared-get", lockSharedGet},
	{"pscw-ring", pscwRing},
	{"fence-mixed", fenceMixed},
	{"types", allTypes},
	{"get-accumulate", getAccumulate},
	{"strong-progress", strongProgress},
	{"create-window", createWindow},
	{"errors", rmaErrors},
	{"accumulate-order", accumulateOrder},
	{"pscw-star", pscwStar},
	{"shared-query", sharedQuery},
}

// paths are the goroutine-rank configurations of the suite.
var paths = []struct {
	name string
	cfg  runtime.Config
}{
	{"direct", runtime.Config{}},
	{"messages", runtime.Config{LocalNodes: 4}},
	{"tcp", runtime.Config{LocalNodes: 4, Transports: []string{"self", "tcp"}}},
	{"mixed", runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}},
}

func TestSuite(t *testing.T) {
	for _, p := range paths {
		if raceEnabled {
			// Synchronize with messages, which the race detector sees;
			// window memory stays shared (and unchecked) on one node.
			if p.name == "mixed" || p.name == "tcp" {
				continue
			}
			p.cfg.Transports = []string{"self"}
		}
		for _, sc := range suite {
			t.Run(p.name+"/"+sc.name, func(t *testing.T) {
				cfg := ranktest.Config{Runtime: p.cfg}
				cfg.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
					if err := sc.run(c); err != nil {
						t.Fatal(err)
					}
				})
			})
		}
	}
}

func init() {
	ranktest.Register("rma-suite", func(c *runtime.Comm) error {
		for _, sc := range suite {
			if err := sc.run(c); err != nil {
				return fmt.Errorf("%s: %w", sc.name, err)
			}
		}
		return nil
	})
}

func TestSuiteProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("process ranks")
	}
	for _, tc := range []struct {
		name string
		cfg  ranktest.SpawnConfig
	}{
		{"node", ranktest.SpawnConfig{}},
		{"nodes2", ranktest.SpawnConfig{Nodes: 2}},
		{"tcp-nodes4", ranktest.SpawnConfig{Nodes: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.cfg.Spawn(t, 4, "rma-suite") })
	}
}

// putGet: each rank puts a pattern into every rank's window at many
// displacements and sizes, fences, and gets it back (MPICH putfence1,
// getfence1).
func putGet(c *runtime.Comm) error {
	const n = 4096
	w, err := rma.Allocate[int64](c, n)
	if err != nil {
		return err
	}
	defer w.Close()
	me, size := c.Rank(), c.Size()
	rng := rand.New(rand.NewPCG(uint64(me), 7))
	for round := range 8 {
		if err := w.Fence(0); err != nil {
			return err
		}
		// Rank me owns the slice [me*n/size, (me+1)*n/size) of every window.
		lo, hi := me*n/size, (me+1)*n/size
		disp := lo + rng.IntN(hi-lo)
		cnt := 1 + rng.IntN(hi-disp)
		src := make([]int64, cnt)
		for i := range src {
			src[i] = int64(round*1_000_000 + me*10_000 + disp + i)
		}
		for t := range size {
			if err := w.Put(src, t, disp); err != nil {
				return err
			}
		}
		if err := w.Fence(0); err != nil {
			return err
		}
		for t := range size {
			got := make([]int64, cnt)
			if err := w.Get(got, t, disp); err != nil {
				return err
			}
			if err := w.Fence(0); err != nil {
				return err
			}
			if !slices.Equal(got, src) {
				return fmt.Errorf("round %d: got %v from rank %d at %d, put %v", round, got[:min(4, cnt)], t, disp, src[:min(4, cnt)])
			}
		}
	}
	return w.Fence(rma.NoSucceed)
}

// accumulateRace: every rank adds into one counter on every rank, many
// times, under a shared LockAll: the sums are exact (MPICH accfence,
// mpi4py testAccumulate).
func accumulateRace(c *runtime.Comm) error {
	w, err := rma.Allocate[int64](c, 2)
	if err != nil {
		return err
	}
	defer w.Close()
	const k = 500
	if err := w.LockAll(); err != nil {
		return err
	}
	for i := range k {
		for t := range c.Size() {
			if err := w.Accumulate([]int64{1, int64(i)}, t, 0, runtime.Sum); err != nil {
				return err
			}
		}
	}
	if err := w.UnlockAll(); err != nil {
		return err
	}
	if err := c.Barrier(); err != nil { // every rank's epochs are over
		return err
	}
	want := []int64{int64(k * c.Size()), int64(c.Size() * k * (k - 1) / 2)}
	if err := w.Fence(0); err != nil {
		return err
	}
	if got := w.Local(); !slices.Equal(got, want) {
		return fmt.Errorf("counters %v, want %v", got, want)
	}
	return w.Fence(rma.NoSucceed)
}

// fetchAndOpCounter: every rank takes k tickets from a counter on rank 0;
// the tickets are 0..size*k-1, each once (MPICH fetch_and_op tests).
func fetchAndOpCounter(c *runtime.Comm) error {
	w, err := rma.Allocate[int32](c, 1)
	if err != nil {
		return err
	}
	defer w.Close()
	const k = 200
	mine := make([]int32, 0, k)
	if err := w.Lock(0, rma.Shared); err != nil {
		return err
	}
	for range k {
		v, err := w.FetchAndOp(1, 0, 0, runtime.Sum)
		if err != nil {
			return err
		}
		mine = append(mine, v)
	}
	if err := w.Unlock(0); err != nil {
		return err
	}
	all := make([]int32, k*c.Size())
	if err := runtime.Allgather(c, mine, all); err != nil {
		return err
	}
	slices.Sort(all)
	for i, v := range all {
		if v != int32(i) {
			return fmt.Errorf("ticket %d handed out as %d (tickets %v...)", i, v, all[:min(10, len(all))])
		}
	}
	return nil
}

// casSpinlock: a spinlock word on rank 0 taken with CompareAndSwap guards
// a counter updated with Get and Put: no update is lost (MPICH
// compare_and_swap).
func casSpinlock(c *runtime.Comm) error {
	w, err := rma.Allocate[int64](c, 2)
	if err != nil {
		return err
	}
	defer w.Close()
	const k = 50
	if err := w.LockAll(); err != nil {
		return err
	}
	me := int64(c.Rank() + 1)
	for range k {
		for {
			old, err := w.CompareAndSwap(me, 0, 0, 0)
			if err != nil {
				return err
			}
			if old == 0 {
				break
			}
		}
		v := []int64{0}
		if err := w.Get(v, 0, 1); err != nil {
			return err
		}
		if err := w.Flush(0); err != nil {
			return err
		}
		v[0]++
		if err := w.Put(v, 0, 1); err != nil {
			return err
		}
		if err := w.Flush(0); err != nil {
			return err
		}
		if old, err := w.CompareAndSwap(0, me, 0, 0); err != nil || old != me {
			return fmt.Errorf("releasing the spinlock: held by %d (%v)", old, err)
		}
	}
	if err := w.UnlockAll(); err != nil {
		return err
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	if c.Rank() == 0 {
		if got := w.Local()[1]; got != int64(k*c.Size()) {
			return fmt.Errorf("counter %d, want %d", got, k*c.Size())
		}
	}
	return c.Barrier()
}

// lockExclusive: inside an exclusive epoch on rank 0 nobody else is: a
// holders word incremented on entry must have been 0 (MPICH lockcontention).
func lockExclusive(c *runtime.Comm) error {
	w, err := rma.Allocate[int64](c, 2)
	if err != nil {
		return err
	}
	defer w.Close()
	for i := range 30 {
		if err := w.Lock(0, rma.Exclusive); err != nil {
			return err
		}
		holders, err := w.FetchAndOp(1, 0, 0, runtime.Sum)
		if err != nil {
			return err
		}
		if holders != 0 {
			return fmt.Errorf("round %d: %d other holders of an exclusive lock", i, holders)
		}
		if err := w.Accumulate([]int64{1}, 0, 1, runtime.Sum); err != nil {
			return err
		}
		if _, err := w.FetchAndOp(-1, 0, 0, runtime.Sum); err != nil {
			return err
		}
		if err := w.Unlock(0); err != nil {
			return err
		}
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	if c.Rank() == 0 {
		if got := w.Local()[1]; got != int64(30*c.Size()) {
			return fmt.Errorf("%d exclusive epochs counted, want %d", got, 30*c.Size())
		}
	}
	return c.Barrier()
}

// lockSharedGet: shared epochs read what an exclusive epoch wrote; a rank's
// own stores become visible to Gets after a Barrier (MPICH lockall_dt).
func lockSharedGet(c *runtime.Comm) error {
	w, err := rma.Allocate[float64](c, 8)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Lock(c.Rank(), rma.Exclusive); err != nil {
		return err
	}
	for i := range w.Local() {
		w.Local()[i] = float64(c.Rank()*100 + i)
	}
	if err := w.Unlock(c.Rank()); err != nil {
		return err
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	for t := range c.Size() {
		if err := w.Lock(t, rma.Shared); err != nil {
			return err
		}
		got := make([]float64, 8)
		if err := w.Get(got, t, 0); err != nil {
			return err
		}
		if err := w.Unlock(t); err != nil {
			return err
		}
		for i, v := range got {
			if v != float64(t*100+i) {
				return fmt.Errorf("rank %d element %d = %v", t, i, v)
			}
		}
	}
	return c.Barrier()
}

// pscwRing: each rank exposes its window to its left neighbour and writes
// into its right neighbour's (MPICH test3, wintest).
func pscwRing(c *runtime.Comm) error {
	w, err := rma.Allocate[int32](c, 4)
	if err != nil {
		return err
	}
	defer w.Close()
	n, me := c.Size(), c.Rank()
	left, right := (me-1+n)%n, (me+1)%n
	for round := range 5 {
		if err := w.Post([]int{left}); err != nil {
			return err
		}
		if err := w.Start([]int{right}); err != nil {
			return err
		}
		v := []int32{int32(round), int32(me), 7, 8}
		if err := w.Put(v, right, 0); err != nil {
			return err
		}
		if err := w.Accumulate([]int32{1}, right, 3, runtime.Sum); err != nil {
			return err
		}
		if err := w.Complete(); err != nil {
			return err
		}
		if err := w.Wait(); err != nil {
			return err
		}
		if got := w.Local(); !slices.Equal(got, []int32{int32(round), int32(left), 7, 9}) {
			return fmt.Errorf("round %d: window %v after the left neighbour's epoch", round, got)
		}
	}
	return c.Barrier()
}

// fenceMixed: puts, accumulates and gets to every rank in one fence epoch
// on disjoint elements.
func fenceMixed(c *runtime.Comm) error {
	n := c.Size()
	w, err := rma.Allocate[int64](c, 3*n)
	if err != nil {
		return err
	}
	defer w.Close()
	me := c.Rank()
	for i := range w.Local() {
		w.Local()[i] = int64(1000*me + i)
	}
	if err := w.Fence(rma.NoPrecede); err != nil {
		return err
	}
	gets := make([][]int64, n)
	for t := range n {
		if err := w.Put([]int64{int64(me)}, t, me); err != nil {
			return err
		}
		if err := w.Accumulate([]int64{int64(me + 1)}, t, n, runtime.Max); err != nil {
			return err
		}
		gets[t] = make([]int64, 1)
		if err := w.Get(gets[t], t, 2*n+me); err != nil {
			return err
		}
	}
	if err := w.Fence(rma.NoSucceed); err != nil {
		return err
	}
	for t := range n {
		if gets[t][0] != int64(1000*t+2*n+me) {
			return fmt.Errorf("got %d from rank %d", gets[t][0], t)
		}
	}
	loc := w.Local()
	for r := range n {
		if loc[r] != int64(r) {
			return fmt.Errorf("element %d = %d after rank %d's put", r, loc[r], r)
		}
	}
	if loc[n] != max(int64(1000*me+n), int64(n)) {
		return fmt.Errorf("max accumulate gave %d", loc[n])
	}
	return nil
}

// allTypes: accumulates and compare-and-swap on 1-, 2-, 4-, 8- and 16-byte
// elements, racing from every rank.
func allTypes(c *runtime.Comm) error {
	if err := typeRace[int8](c, 3); err != nil {
		return fmt.Errorf("int8: %w", err)
	}
	if err := typeRace[uint16](c, 5); err != nil {
		return fmt.Errorf("uint16: %w", err)
	}
	if err := typeRace[float32](c, 1); err != nil {
		return fmt.Errorf("float32: %w", err)
	}
	if err := typeRace[complex64](c, 1); err != nil {
		return fmt.Errorf("complex64: %w", err)
	}
	if err := typeRace[complex128](c, 1); err != nil {
		return fmt.Errorf("complex128: %w", err)
	}
	return nil
}

// typeRace has every rank add one to every element of rank 0's window k
// times, through a window of T with odd lengths, so that neighbours of
// small elements share a word.
func typeRace[T runtime.Number](c *runtime.Comm, n int) error {
	w, err := rma.Allocate[T](c, n)
	if err != nil {
		return err
	}
	defer w.Close()
	const k = 40
	ones := make([]T, n)
	for i := range ones {
		ones[i] = 1
	}
	if err := w.Lock(0, rma.Shared); err != nil {
		return err
	}
	for range k {
		if err := w.Accumulate(ones, 0, 0, runtime.Sum); err != nil {
			return err
		}
	}
	if err := w.Unlock(0); err != nil {
		return err
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	if c.Rank() == 0 {
		var want T
		for range k * c.Size() {
			want += ones[0]
		}
		for i, v := range w.Local() {
			if v != want {
				return fmt.Errorf("element %d = %v, want %v", i, v, want)
			}
		}
	}
	return c.Barrier()
}

// getAccumulate: Replace returns the old value; NoOp reads atomically.
func getAccumulate(c *runtime.Comm) error {
	w, err := rma.Allocate[uint64](c, 4)
	if err != nil {
		return err
	}
	defer w.Close()
	t := (c.Rank() + 1) % c.Size()
	if err := w.Lock(t, rma.Exclusive); err != nil {
		return err
	}
	old := make([]uint64, 4)
	if err := w.GetAccumulate([]uint64{5, 6, 7, 8}, old, t, 0, runtime.Replace); err != nil {
		return err
	}
	if err := w.Flush(t); err != nil {
		return err
	}
	read := make([]uint64, 4)
	if err := w.GetAccumulate(nil, read, t, 0, runtime.NoOp); err != nil {
		return err
	}
	r, err := w.Rget(make([]uint64, 2), t, 1)
	if err != nil {
		return err
	}
	if err := r.Wait(); err != nil {
		return err
	}
	if err := w.Unlock(t); err != nil {
		return err
	}
	if !slices.Equal(old, []uint64{0, 0, 0, 0}) || !slices.Equal(read, []uint64{5, 6, 7, 8}) {
		return fmt.Errorf("old %v, read %v", old, read)
	}
	return c.Barrier()
}

// strongProgress: rank 0 spins in a loop that calls nothing of the
// library, waiting for a flag that the others set with Put after their own
// operations; everything completes meanwhile.
func strongProgress(c *runtime.Comm) error {
	w, err := rma.Allocate[int64](c, 1+c.Size())
	if err != nil {
		return err
	}
	defer w.Close()
	if err := c.Barrier(); err != nil {
		return err
	}
	if c.Rank() == 0 {
		// The flag counts the origins done.
		flag := (*int64)(unsafe.Pointer(&w.Local()[0]))
		for spins := 0; atomic.LoadInt64(flag) < int64(c.Size()-1); spins++ {
			if spins > 1<<34 {
				return errors.New("the origins never finished")
			}
		}
		for r := 1; r < c.Size(); r++ {
			if got := w.Local()[r]; got != int64(10*r) {
				return fmt.Errorf("rank %d's slot = %d", r, got)
			}
		}
		return c.Barrier()
	}
	for range 20 {
		if err := w.Lock(0, rma.Exclusive); err != nil {
			return err
		}
		if err := w.Accumulate([]int64{1}, 0, c.Rank(), runtime.Sum); err != nil {
			return err
		}
		got := []int64{0}
		if err := w.Get(got, 0, c.Rank()); err != nil {
			return err
		}
		if err := w.Unlock(0); err != nil {
			return err
		}
	}
	if err := w.Lock(0, rma.Shared); err != nil {
		return err
	}
	if err := w.Accumulate([]int64{int64(10*c.Rank() - 20)}, 0, c.Rank(), runtime.Sum); err != nil {
		return err
	}
	if err := w.Accumulate([]int64{1}, 0, 0, runtime.Sum); err != nil {
		return err
	}
	if err := w.Unlock(0); err != nil {
		return err
	}
	return c.Barrier()
}

// createWindow: a window over the caller's slice, served by messages on
// every path.
func createWindow(c *runtime.Comm) error {
	buf := make([]int64, 8)
	w, err := rma.Create(c, buf)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := w.Shared(c.Rank()); !errors.Is(err, runtime.ErrInvalid) {
		return fmt.Errorf("Shared on a Create window: %v", err)
	}
	if err := w.Fence(0); err != nil {
		return err
	}
	t := (c.Rank() + 1) % c.Size()
	if err := w.Put([]int64{int64(c.Rank())}, t, 0); err != nil {
		return err
	}
	if err := w.Accumulate([]int64{1}, 0, 1, runtime.Sum); err != nil {
		return err
	}
	if err := w.Fence(rma.NoSucceed); err != nil {
		return err
	}
	if buf[0] != int64((c.Rank()-1+c.Size())%c.Size()) {
		return fmt.Errorf("buf[0] = %d", buf[0])
	}
	if c.Rank() == 0 && buf[1] != int64(c.Size()) {
		return fmt.Errorf("buf[1] = %d", buf[1])
	}
	return nil
}

// rmaErrors: out of range, outside an epoch, bad op, after Close.
func rmaErrors(c *runtime.Comm) error {
	w, err := rma.Allocate[float64](c, 4)
	if err != nil {
		return err
	}
	checks := []struct {
		what string
		err  error
	}{
		{"put outside an epoch", w.Put([]float64{1}, 0, 0)},
	}
	if err := w.Lock(0, rma.Shared); err != nil {
		return err
	}
	checks = append(checks,
		struct {
			what string
			err  error
		}{"put beyond the window", w.Put([]float64{1, 2}, 0, 3)},
		struct {
			what string
			err  error
		}{"target out of range", w.Put([]float64{1}, c.Size(), 0)},
		struct {
			what string
			err  error
		}{"Band on floats", w.Accumulate([]float64{1}, 0, 0, runtime.Band)},
		struct {
			what string
			err  error
		}{"second Lock", w.Lock(0, rma.Exclusive)},
	)
	if err := w.Unlock(0); err != nil {
		return err
	}
	for _, ch := range checks {
		var oe *rma.OpError
		if !errors.Is(ch.err, runtime.ErrInvalid) || !errors.As(ch.err, &oe) || oe.Rank != c.Rank() {
			return fmt.Errorf("%s: %v, want ErrInvalid naming the rank", ch.what, ch.err)
		}
	}
	// Negative sizes are the same error everywhere.
	n := 4
	if c.Rank() == c.Size()-1 {
		n = -1
	}
	if _, err := rma.Allocate[int32](c, n); !errors.Is(err, runtime.ErrInvalid) {
		return fmt.Errorf("Allocate with a negative size on one rank: %v", err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := w.Fence(0); !errors.Is(err, runtime.ErrClosed) {
		return fmt.Errorf("Fence after Close: %v", err)
	}
	return nil
}

// accumulateOrder: one origin's accumulates to one target are applied in
// the order issued: Replace with 1, 2, ... leaves the last (MPI's default
// accumulate_ordering, rar,raw,war,waw).
func accumulateOrder(c *runtime.Comm) error {
	w, err := rma.Allocate[int64](c, c.Size())
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.LockAll(); err != nil {
		return err
	}
	for t := range c.Size() {
		for i := range int64(300) {
			if err := w.Accumulate([]int64{i}, t, c.Rank(), runtime.Replace); err != nil {
				return err
			}
		}
		got := []int64{-1}
		if err := w.GetAccumulate(nil, got, t, c.Rank(), runtime.NoOp); err != nil {
			return err
		}
		if err := w.Flush(t); err != nil {
			return err
		}
		if got[0] != 299 {
			return fmt.Errorf("rank %d's slot on rank %d = %d after replacing with 0..299", c.Rank(), t, got[0])
		}
	}
	return w.UnlockAll()
}

// pscwStar: rank 0 exposes its window to every other rank at once; each
// adds into it (MPICH test2, post/start with groups of several).
func pscwStar(c *runtime.Comm) error {
	w, err := rma.Allocate[int64](c, 2)
	if err != nil {
		return err
	}
	defer w.Close()
	var others []int
	for r := 1; r < c.Size(); r++ {
		others = append(others, r)
	}
	for round := range 3 {
		if c.Rank() == 0 {
			if err := w.Post(others); err != nil {
				return err
			}
			if err := w.Wait(); err != nil {
				return err
			}
			want := int64((round + 1) * (c.Size() - 1) * c.Size() / 2)
			if got := w.Local()[0]; got != want {
				return fmt.Errorf("round %d: sum %d, want %d", round, got, want)
			}
			continue
		}
		if err := w.Start([]int{0}); err != nil {
			return err
		}
		if err := w.Accumulate([]int64{int64(c.Rank())}, 0, 0, runtime.Sum); err != nil {
			return err
		}
		if err := w.Complete(); err != nil {
			return err
		}
	}
	return c.Barrier()
}

// sharedQuery: AllocateShared on a one-node communicator: every rank's part
// is a slice of one segment, contiguous, and stores through it are seen by
// Get (MPICH win_shared, mpi4py testSharedQuery).
func sharedQuery(c *runtime.Comm) error {
	node, err := c.SplitShared()
	if err != nil {
		return err
	}
	defer node.Close()
	if node.Size() < c.Size() {
		if _, err := rma.AllocateShared[int32](c, 4); !errors.Is(err, runtime.ErrInvalid) {
			return fmt.Errorf("AllocateShared across nodes: %v, want ErrInvalid", err)
		}
	}
	w, err := rma.AllocateShared[int32](node, 4+node.Rank())
	if err != nil {
		return err
	}
	defer w.Close()
	mine, err := w.Shared(node.Rank())
	if err != nil {
		return err
	}
	for i := range mine {
		mine[i] = int32(100*node.Rank() + i)
	}
	if err := w.Fence(0); err != nil {
		return err
	}
	for r := range node.Size() {
		p, err := w.Shared(r)
		if err != nil {
			return err
		}
		if len(p) != 4+r {
			return fmt.Errorf("rank %d's part has %d elements", r, len(p))
		}
		if r > 0 {
			prev, _ := w.Shared(r - 1)
			if unsafe.Add(unsafe.Pointer(&prev[len(prev)-1]), 4) != unsafe.Pointer(&p[0]) {
				return fmt.Errorf("rank %d's part does not follow rank %d's", r, r-1)
			}
		}
		got := make([]int32, len(p))
		if err := w.Get(got, r, 0); err != nil {
			return err
		}
		if err := w.Fence(0); err != nil {
			return err
		}
		for i, v := range got {
			if v != int32(100*r+i) || p[i] != v {
				return fmt.Errorf("rank %d element %d: got %d, shared %d", r, i, v, p[i])
			}
		}
	}
	return w.Fence(rma.NoSucceed)
}

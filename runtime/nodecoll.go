package runtime

import (
	"fmt"
	goruntime "runtime"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/internal/bootstrap"
	"github.com/gorun-hpc/gorun/shm"
)

// Barrier, small Bcast and small Allreduce through one shared segment, on a
// communicator whose ranks all run on one node.
//
// Messages cost each rank a send, a match and a poll per round. When every
// rank of c shares a node, the ranks instead map one segment, created on
// c's first such call. Each rank owns two 64-byte lines, one for the calls
// of each parity: the call's generation (the number of calls the rank has
// entered), its element count, and up to 48 bytes of its data, so a
// Barrier or a small Allreduce costs one cache-line transfer per peer.
// Data up to 256 bytes goes into a slot per rank and parity beside. A call
// writes data and count, then stores the generation (release), and waits
// until every other rank's line of that parity shows it. Allreduce folds
// the ranks' data in rank order, so every rank computes the same bits. A
// line or slot is written again two calls later, when every rank has
// entered the call in between and so finished reading it.
//
//	offset                 size   what
//	64·(2r+p)              8      generation of rank r's last call of parity p
//	64·(2r+p) + 8          8      its element count (Allreduce), or 0
//	64·(2r+p) + 16         48     its data, when at most 48 bytes
//	128·n + 256·(2r+p)     256    its data, when 49 to 256 bytes
//	640·n                  8      sleepers: ranks that may sleep on bell
//	640·n + 64             4      bell: futex word, bumped by every arrival
//
// A waiting rank polls, then sleeps on the bell futex; an arriving rank
// rings it when the sleepers word says someone may sleep (the Dekker
// argument of docs/shmring.md, on seq-cst atomics).
type nodeColl struct {
	seg   *shm.Segment
	words []uint64 // the segment as words
	bell  *uint32
	n, me int
	gen   uint64 // calls entered by this rank
}

const (
	ncLine     = 64
	ncInline   = ncLine - 16 // data bytes that fit in a rank's line
	ncSlot     = 256         // largest Allreduce payload in bytes that takes this path
	ncMaxRanks = 64
)

func ncSize(n int) int64 { return int64(ncOffSleepers(n) + 2*ncLine) }

func ncOffSleepers(n int) int { return 2*ncLine*n + 2*ncSlot*n }

// nodeColl returns c's shared-memory collective state, setting it up on the
// first call (collective), or nil when c does not qualify or setting up
// failed somewhere (then every rank of c keeps using messages).
func (c *Comm) nodeColl() *nodeColl {
	switch c.ncState {
	case ncReady:
		return c.nc
	case ncNone:
		return nil
	}
	c.ncState = ncNone
	w := c.w
	if w.jobID == "" || !w.shmOK || c.size < 2 || c.size > ncMaxRanks {
		return nil
	}
	for _, wr := range c.group {
		if w.nodes[wr] != w.nodes[c.group[0]] {
			return nil
		}
	}
	nc, err := c.setupNodeColl()
	if err != nil {
		w.log.Debug("runtime: shared-memory collectives unavailable; using messages", "comm", c.name, "err", err)
		return nil
	}
	c.nc, c.ncState = nc, ncReady
	return nc
}

// setupNodeColl maps c's segment on every rank: rank 0 creates it, the others
// open it, all agree that everyone succeeded, and rank 0 removes the name.
// It uses messages only, so every rank returns the same outcome.
func (c *Comm) setupNodeColl() (*nodeColl, error) {
	name := fmt.Sprintf("%scoll-%d-%d", bootstrap.ShmPrefix(c.w.jobID), c.ctx, c.group[0])
	var seg *shm.Segment
	var err error
	if c.rank == 0 {
		seg, err = shm.Create(ncSize(c.size), shm.Options{Name: name})
	}
	// Rank 0's outcome first, so no rank opens a name that will not exist.
	ok := []int32{1}
	if err != nil {
		ok[0] = 0
	}
	if berr := Bcast(c, ok, 0); berr != nil {
		return nil, berr
	}
	if ok[0] == 0 {
		return nil, fmt.Errorf("rank 0 could not create the segment (%v)", err)
	}
	if c.rank != 0 {
		seg, err = shm.Open(name, shm.Options{})
		if err == nil && seg.Size() < ncSize(c.size) {
			seg.Close()
			seg, err = nil, fmt.Errorf("segment %s has %d bytes, want %d", name, seg.Size(), ncSize(c.size))
		}
	}
	mine := []int32{1}
	if err != nil {
		mine[0] = 0
	}
	all := []int32{0}
	if aerr := allreduceMsg(c, mine, all, Min); aerr != nil || all[0] == 0 {
		if seg != nil {
			if c.rank == 0 {
				seg.Unlink()
			}
			seg.Close()
		}
		if aerr != nil {
			return nil, aerr
		}
		return nil, fmt.Errorf("a rank could not open the segment (this one: %v)", err)
	}
	// Everyone has it mapped: the name can go.
	if c.rank == 0 {
		if err := seg.Unlink(); err != nil {
			c.w.log.Debug("runtime: unlinking a collective segment", "name", name, "err", err)
		}
	}
	words, err := shm.View[uint64](seg, 0, int(ncSize(c.size)/8))
	if err != nil {
		seg.Close()
		return nil, err
	}
	bells, err := shm.View[uint32](seg, int64(ncOffSleepers(c.size)+ncLine), 1)
	if err != nil {
		seg.Close()
		return nil, err
	}
	// The mapping is all we need; the descriptor would count against the
	// process's limit for every communicator.
	if err := seg.CloseFD(); err != nil {
		c.w.log.Debug("runtime: closing a collective segment's descriptor", "err", err)
	}
	nc := &nodeColl{seg: seg, words: words, bell: &bells[0], n: c.size, me: c.rank}
	// Unmapped once c is unreachable, not by Close: a goroutine that is
	// still in a collective on c (after a panic elsewhere, say) must not
	// find the memory gone.
	goruntime.AddCleanup(c, func(s *shm.Segment) { s.Close() }, seg)
	return nc, nil
}

// line returns the index in words of rank r's line for generation g.
func (nc *nodeColl) line(r int, g uint64) int { return (2*r + int(g%2)) * ncLine / 8 }

// data returns the n bytes of rank r's data for generation g.
func (nc *nodeColl) data(r int, g uint64, n int) []byte {
	off := (2*r+int(g%2))*ncLine + 16
	if n > ncInline {
		off = 2*ncLine*nc.n + (2*r+int(g%2))*ncSlot
	}
	return nc.seg.Bytes()[off : off+n : off+n]
}

func (nc *nodeColl) genWord(r int, g uint64) *uint64   { return &nc.words[nc.line(r, g)] }
func (nc *nodeColl) countWord(r int, g uint64) *uint64 { return &nc.words[nc.line(r, g)+1] }
func (nc *nodeColl) sleepers() *uint64                 { return &nc.words[ncOffSleepers(nc.n)/8] }

// arrive publishes this rank's entry into a new call with count elements
// whose bytes data are copied into its slot, then waits for every rank to
// enter the same call. It returns the call's generation.
func (nc *nodeColl) arrive(c *Comm, data []byte, count int) (uint64, error) {
	nc.gen++
	g := nc.gen
	copy(nc.data(nc.me, g, len(data)), data)
	atomic.StoreUint64(nc.countWord(nc.me, g), uint64(count))
	// release (seq-cst): data and count above happen-before the loads of
	// the ranks that see this generation.
	atomic.StoreUint64(nc.genWord(nc.me, g), g)
	// Dekker with a sleeping rank: we store gen then load sleepers; it
	// increments sleepers then loads every gen.
	if atomic.LoadUint64(nc.sleepers()) != 0 {
		atomic.AddUint32(nc.bell, 1)
		shm.Wake(nc.bell, ncMaxRanks)
	}
	return g, nc.await(c, g)
}

// all reports whether every rank entered generation g.
func (nc *nodeColl) all(g uint64) bool {
	for r := range nc.n {
		// acquire: pairs with that rank's release store of its gen.
		if atomic.LoadUint64(nc.genWord(r, g)) < g {
			return false
		}
	}
	return true
}

// await waits until every rank entered generation g: polling for
// pollBudget, then sleeping on the bell, in slices of at most 100 ms so
// that a failed world (a rank died) or the watchdog ends the wait.
func (nc *nodeColl) await(c *Comm, g uint64) error {
	w := c.w
	var start time.Time
	for i := 1; ; i++ {
		if nc.all(g) {
			return nil
		}
		if i%64 != 0 {
			continue
		}
		if err := w.err(); err != nil {
			return err
		}
		if start.IsZero() {
			start = time.Now()
		}
		waited := time.Since(start)
		if w.timeout > 0 && waited > w.timeout {
			w.abort(fmt.Errorf("watchdog: collective on %s rank %d waited longer than %v", c.name, c.rank, w.timeout))
			return w.err()
		}
		if waited < pollBudget {
			if i%512 == 0 {
				goruntime.Gosched()
			}
			continue
		}
		atomic.AddUint64(nc.sleepers(), 1)
		v := atomic.LoadUint32(nc.bell)
		if !nc.all(g) {
			shm.Wait(nc.bell, v, 100*time.Millisecond)
		}
		atomic.AddUint64(nc.sleepers(), ^uint64(0))
	}
}

// counts checks that every rank passed the same number of elements to call
// g; every rank reads the same words, so all return the same error.
func (nc *nodeColl) counts(g uint64) error {
	first := atomic.LoadUint64(nc.countWord(0, g))
	for r := 1; r < nc.n; r++ {
		if atomic.LoadUint64(nc.countWord(r, g)) != first {
			all := make([]uint64, nc.n)
			for q := range all {
				all[q] = atomic.LoadUint64(nc.countWord(q, g))
			}
			return errInvalid(fmt.Sprintf("the ranks passed different counts (elements by rank: %v)", all))
		}
	}
	return nil
}

// allreduceNode is Allreduce through c's segment: acc holds this rank's
// input and gets the result, folded in rank order. Every Allreduce on c
// arrives here, whatever its size, so that all ranks agree on the counts
// (a mismatch is the same error everywhere, not a hang); a payload larger
// than a slot then goes on with messages, and the caller sees that acc
// still needs reducing from done == false.
func allreduceNode[T Elem](c *Comm, nc *nodeColl, acc []T, f func(dst, src []T)) (done bool, err error) {
	var data []byte
	if len(acc)*sizeOf[T]() <= ncSlot {
		data = asBytes(acc)
	}
	g, err := nc.arrive(c, data, len(acc))
	if err != nil {
		return true, err
	}
	if err := nc.counts(g); err != nil {
		return true, err
	}
	if data == nil {
		return false, nil
	}
	n := len(data)
	copy(acc, fromBytes[T](nc.data(0, g, n)))
	for r := 1; r < nc.n; r++ {
		f(acc, fromBytes[T](nc.data(r, g, n)))
	}
	return true, nil
}

// bcastNode is Bcast through c's segment: the root's b (count elements)
// reaches every rank. Like allreduceNode, every Bcast on c arrives here so
// the ranks agree on the counts; a payload larger than a slot then goes on
// with messages (done == false).
func bcastNode(c *Comm, nc *nodeColl, b []byte, count, root int) (done bool, err error) {
	small := len(b) <= ncSlot
	var data []byte
	if small && c.rank == root {
		data = b
	}
	g, err := nc.arrive(c, data, count)
	if err != nil {
		return true, err
	}
	if err := nc.counts(g); err != nil {
		return true, err
	}
	if !small {
		return false, nil
	}
	if c.rank != root {
		copy(b, nc.data(root, g, len(b)))
	}
	return true, nil
}

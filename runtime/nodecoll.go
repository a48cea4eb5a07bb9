package runtime

import (
	"encoding/binary"
	"fmt"
	"os"
	goruntime "runtime"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/internal/bootstrap"
	"github.com/gorun-hpc/gorun/internal/shmsync"
	"github.com/gorun-hpc/gorun/shm"
)

// Collectives through one shared segment, on a communicator whose ranks all
// run on one node.
//
// Every collective call on such a communicator starts with an arrival in
// the segment. Each rank owns two 64-byte lines, one for the calls of each
// parity: the call's generation (the number of calls the rank has entered),
// its element count, its call descriptor (call word, element size, and a
// flag for an argument error of this rank), and up to 40 bytes of its data.
// A call writes data, count and descriptor, then stores the generation
// (release), and waits until every other rank's line of that parity shows
// it; then every rank compares every rank's descriptor and count with its
// own, so a rank that made another call, passed another root, op or count,
// or saw an error in its own arguments (whose text it leaves in its slot)
// makes every rank return the same ErrInvalid before any data moves.
//
// Barrier is the arrival alone. Bcast and Allreduce of up to 256 bytes, and
// Allgather and Alltoall of up to 256 bytes per rank, put their data in the
// line or a slot per rank and parity beside, so they too cost one arrival;
// Allreduce folds the ranks' data in rank order, so every rank computes the
// same bits. Larger ones of these four go on through the large-call segment
// (nodebig.go); the other calls go on with messages once the arrival has
// shown that every rank agrees. A line or
// slot is written again two calls later, when every rank has entered the
// call in between and so finished reading it.
//
//	offset                 size   what
//	64·(2r+p)              8      generation of rank r's last call of parity p
//	64·(2r+p) + 8          8      its element count, or ^0 where counts may differ
//	64·(2r+p) + 16         8      its descriptor: call word | element size<<32 | error<<40 | seq<<41 | user op identity<<48
//	64·(2r+p) + 24         40     its data, when at most 40 bytes
//	128·n + 256·(2r+p)     256    its data (41 to 256 bytes), or its error text
//	640·n                  8      sleepers: ranks that may sleep on bell
//	640·n + 64             4      bell: futex word, bumped by every arrival
//
// A waiting rank polls, then sleeps on the bell (internal/shmsync); an
// arriving rank rings it.
type nodeColl struct {
	seg   *shm.Segment
	words []uint64 // the segment as words
	bell  shmsync.Bell
	n, me int
	gen   uint64 // calls entered by this rank

	// The segment of large Bcasts and Allreduces (nodebig.go), set up by
	// the first; bigState is an ncState value.
	nb       *nodeBig
	bigState uint8
}

const (
	ncLine     = 64
	ncHead     = 24              // generation, count, descriptor
	ncInline   = ncLine - ncHead // data bytes that fit in a rank's line
	ncSlot     = 256             // largest Bcast or Allreduce payload in bytes that takes this path
	ncMaxRanks = 64
	ncErrFlag  = 1 << 40 // in a descriptor: the rank's arguments are wrong; the slot holds why
	// In a descriptor from this bit up: 16 bits of a user op's identity
	// (Op.identBits), beyond the 2 in the call word.
	ncIdentShift = 48
	ncSeqShift   = 41 // in a descriptor: the call's sequence number, modulo 2^7 (see disagreement)
	ncSeqMask    = 0x7f
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
	if !w.shmOK || c.size < 2 || c.size > ncMaxRanks {
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

// setupNodeColl maps c's segment on every rank. It uses messages only, so
// every rank returns the same outcome.
func (c *Comm) setupNodeColl() (*nodeColl, error) {
	seg, err := c.shareSegment(ncSize(c.size), false)
	if err != nil {
		return nil, err
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
	nc := &nodeColl{seg: seg, words: words, n: c.size, me: c.rank}
	nc.bell = shmsync.NewBell(nc.sleepers(), &bells[0])
	// Unmapped once c is unreachable, not by Close: a goroutine that is
	// still in a collective on c (after a panic elsewhere, say) must not
	// find the memory gone.
	goruntime.AddCleanup(c, func(s *shm.Segment) { s.Close() }, seg)
	return nc, nil
}

// openPeer is shm.OpenPeer; tests replace it to take the fallback.
var openPeer = shm.OpenPeer

// namedShares counts the segments this process shared through a name.
var namedShares atomic.Int64

// shareSegment gives every rank of c, all on one node, a mapping of one
// new zeroed segment of size bytes (collective, over messages; every rank
// returns the same outcome). Rank 0 creates it anonymous (a memfd) and the
// others open it through /proc/<pid>/fd, so no name exists at any time and
// the memory is gone with the last rank that maps it, whatever kills the
// job. Where /proc is closed to that, it falls back to a job-tagged name
// that rank 0 removes as soon as every rank has mapped it (and that gorun
// sweeps if the job dies before). The descriptor is closed: the mapping is
// all the ranks keep.
func (c *Comm) shareSegment(size int64, readOnly bool) (*shm.Segment, error) {
	var seg *shm.Segment
	var err error
	info := []int64{0, int64(os.Getpid()), -1, 0, 0} // ok, pid, fd, device, inode
	if c.rank == 0 {
		if seg, err = shm.Create(size, shm.Options{}); err == nil {
			var dev, ino uint64
			if dev, ino, err = seg.FileID(); err == nil {
				info = []int64{1, int64(os.Getpid()), int64(seg.FD()), int64(dev), int64(ino)}
			}
		}
	}
	if berr := c.setupBcast(info); berr != nil {
		if seg != nil {
			seg.Close()
		}
		return nil, berr
	}
	if info[0] == 0 {
		if seg != nil {
			seg.Close()
		}
		return nil, fmt.Errorf("rank 0 could not create the segment (%v)", err)
	}
	if c.rank != 0 {
		seg, err = openPeer(int(info[1]), int(info[2]), size)
		if err == nil {
			// The same pid in another pid namespace would be another
			// process: make sure this is rank 0's segment.
			dev, ino, ferr := seg.FileID()
			if ferr != nil || int64(dev) != info[3] || int64(ino) != info[4] {
				seg.Close()
				seg, err = nil, fmt.Errorf("/proc/%d/fd/%d is not rank 0's segment (%v)", info[1], info[2], ferr)
			}
		}
	}
	if err == nil && readOnly {
		_, err = seg.ReadOnly() // a failure is agreed on below
	}
	if ok, aerr := c.allOK(err); aerr != nil || !ok {
		if seg != nil {
			seg.Close()
		}
		if aerr != nil {
			return nil, aerr
		}
		if c.w.jobID == "" {
			return nil, fmt.Errorf("a rank could not open the segment through /proc (this one: %v)", err)
		}
		return c.shareNamed(size, readOnly)
	}
	if err := seg.CloseFD(); err != nil {
		c.w.log.Debug("runtime: closing a shared segment's descriptor", "err", err)
	}
	return seg, nil
}

// shareNamed is shareSegment through a job-tagged name.
func (c *Comm) shareNamed(size int64, readOnly bool) (*shm.Segment, error) {
	name := fmt.Sprintf("%scoll-%d-%d", bootstrap.ShmPrefix(c.w.jobID), c.ctx, c.group[0])
	var seg *shm.Segment
	var err error
	if c.rank == 0 {
		seg, err = shm.Create(size, shm.Options{Name: name})
	}
	// Rank 0's outcome first, so no rank opens a name that will not exist.
	if ok, aerr := c.rootOK(err); aerr != nil || !ok {
		if aerr != nil {
			return nil, aerr
		}
		return nil, fmt.Errorf("rank 0 could not create the segment %s (%v)", name, err)
	}
	if c.rank != 0 {
		seg, err = shm.Open(name, shm.Options{})
		if err == nil && seg.Size() < size {
			seg.Close()
			seg, err = nil, fmt.Errorf("segment %s has %d bytes, want %d", name, seg.Size(), size)
		}
	}
	if err == nil && readOnly {
		_, err = seg.ReadOnly()
	}
	ok, aerr := c.allOK(err)
	if c.rank == 0 {
		// Everyone has it mapped, or given up: the name can go.
		if err := seg.Unlink(); err != nil {
			c.w.log.Debug("runtime: unlinking a shared segment", "name", name, "err", err)
		}
	}
	if aerr != nil || !ok {
		if seg != nil {
			seg.Close()
		}
		if aerr != nil {
			return nil, aerr
		}
		return nil, fmt.Errorf("a rank could not open the segment %s (this one: %v)", name, err)
	}
	if err := seg.CloseFD(); err != nil {
		c.w.log.Debug("runtime: closing a shared segment's descriptor", "err", err)
	}
	namedShares.Add(1)
	return seg, nil
}

// allOK reports whether err is nil on every rank of c (collective, a
// runtime set-up step over messages).
func (c *Comm) allOK(err error) (bool, error) {
	v := []int32{1}
	if err != nil {
		v[0] = 0
	}
	f, _ := commKernel[int32](c, Min)
	var k coll
	if err := c.begin(&k, "Setup", countedCall(callSetup, Min, 1, 4)); err != nil {
		return false, err
	}
	if err := k.end(rdAllreduce(&k, v, f, false)); err != nil {
		return false, err
	}
	return v[0] == 1, nil
}

// rootOK reports to every rank of c whether err is nil on rank 0.
func (c *Comm) rootOK(err error) (bool, error) {
	v := []int64{1}
	if err != nil {
		v[0] = 0
	}
	if berr := c.setupBcast(v); berr != nil {
		return false, berr
	}
	return v[0] == 1, nil
}

// setupBcast broadcasts v from rank 0 of c (collective, a runtime set-up
// step over messages).
func (c *Comm) setupBcast(v []int64) error {
	var k coll
	if err := c.begin(&k, "Setup", countedCall(callSetup, 0, len(v), 8)); err != nil {
		return err
	}
	k.strict = true
	return k.end(k.bcast(asBytes(v), 0))
}

// line returns the index in words of rank r's line for generation g.
func (nc *nodeColl) line(r int, g uint64) int { return (2*r + int(g%2)) * ncLine / 8 }

// data returns the n bytes of rank r's data for generation g.
func (nc *nodeColl) data(r int, g uint64, n int) []byte {
	off := (2*r+int(g%2))*ncLine + ncHead
	if n > ncInline {
		off = nc.slotOff(r, g)
	}
	return nc.seg.Bytes()[off : off+n : off+n]
}

func (nc *nodeColl) slotOff(r int, g uint64) int { return 2*ncLine*nc.n + (2*r+int(g%2))*ncSlot }

func (nc *nodeColl) genWord(r int, g uint64) *uint64   { return &nc.words[nc.line(r, g)] }
func (nc *nodeColl) countWord(r int, g uint64) *uint64 { return &nc.words[nc.line(r, g)+1] }
func (nc *nodeColl) descWord(r int, g uint64) *uint64  { return &nc.words[nc.line(r, g)+2] }
func (nc *nodeColl) sleepers() *uint64                 { return &nc.words[ncOffSleepers(nc.n)/8] }

// arrive publishes this rank's entry into call k (its identity, its
// argument error local or else data, of at most ncSlot bytes), waits for
// every rank to enter the same call, and checks that all agree. It returns
// the call's generation.
func (nc *nodeColl) arrive(k *coll, data []byte, local error) (uint64, error) {
	nc.gen++
	g := nc.gen
	desc := uint64(k.word) | uint64(uint8(k.id.esize))<<32 | uint64(k.seq&ncSeqMask)<<ncSeqShift | k.id.op.identBits()<<ncIdentShift
	if local != nil {
		desc |= ncErrFlag
		// An argError passed on from a call on a larger communicator (a
		// step of a node-aware call, hier.go) keeps the rank it names.
		ae, ok := local.(*argError)
		if !ok {
			ae = newArgError(nc.me, local)
		}
		slot := nc.seg.Bytes()[nc.slotOff(nc.me, g):][:ncSlot]
		binary.LittleEndian.PutUint32(slot[2:], uint32(int32(ae.rank)))
		n := copy(slot[6:], ae.msg)
		binary.LittleEndian.PutUint16(slot, uint16(n))
	} else {
		copy(nc.data(nc.me, g, len(data)), data)
	}
	// Plain stores: no rank reads this line before it sees the
	// generation stored below, and none writes it again before every rank
	// has finished reading it (two calls later).
	*nc.countWord(nc.me, g) = uint64(k.id.count)
	*nc.descWord(nc.me, g) = desc
	// release (seq-cst): data, count and descriptor above happen-before
	// the loads of the ranks that see this generation.
	atomic.StoreUint64(nc.genWord(nc.me, g), g)
	nc.bell.Ring() // after the store of gen (shmsync.Bell)
	if err := nc.await(k, g); err != nil {
		return g, err
	}
	if desc&ncErrFlag != 0 {
		return g, nc.disagreement(k, g)
	}
	count := uint64(k.id.count)
	for r := range nc.n {
		// Plain loads: the acquire load of r's generation in await
		// ordered them after r's stores.
		if *nc.descWord(r, g) != desc || *nc.countWord(r, g) != count {
			return g, nc.disagreement(k, g)
		}
	}
	return g, nil
}

// disagreement is the error of call g in which the ranks' lines differ:
// the argument error of the lowest rank that had one, else the difference
// between rank 0's call and the first rank's that differs. Every rank reads
// the same lines, so every rank returns the same error.
//
// Ranks whose calls at generation g have different sequence numbers are out
// of step: a call that one rank made nonblocking (which never arrives here,
// nbc.go) another made blocking. That aborts the world: the ranks no longer
// agree on which call is which.
func (nc *nodeColl) disagreement(k *coll, g uint64) error {
	mine := atomic.LoadUint64(nc.descWord(nc.me, g)) >> ncSeqShift & ncSeqMask
	for r := range nc.n {
		if seq := atomic.LoadUint64(nc.descWord(r, g)) >> ncSeqShift & ncSeqMask; seq != mine {
			return k.abort(&mismatchError{comm: k.c.name, seq: k.seq, msg: fmt.Sprintf(
				"the ranks made different calls: rank %d made collective call %d as %v where rank %d made call %d as %v (nonblocking on one, blocking on the other?)",
				nc.me, mine, nc.callAt(nc.me, g), r, seq, nc.callAt(r, g))})
		}
	}
	for r := range nc.n {
		if atomic.LoadUint64(nc.descWord(r, g))&ncErrFlag != 0 {
			slot := nc.seg.Bytes()[nc.slotOff(r, g):][:ncSlot]
			n := min(int(binary.LittleEndian.Uint16(slot)), ncSlot-6)
			return &argError{rank: int(int32(binary.LittleEndian.Uint32(slot[2:]))), msg: string(slot[6 : 6+n])}
		}
	}
	first := nc.callAt(0, g)
	for r := 1; r < nc.n; r++ {
		if d := differs(first, 0, nc.callAt(r, g), r); d != "" {
			return &mismatchError{comm: k.c.name, seq: k.seq, msg: d}
		}
	}
	for r := 1; r < nc.n; r++ {
		if atomic.LoadUint64(nc.descWord(r, g))>>ncIdentShift != atomic.LoadUint64(nc.descWord(0, g))>>ncIdentShift {
			return &mismatchError{comm: k.c.name, seq: k.seq, msg: fmt.Sprintf(
				"the ranks passed different ops: rank 0 and rank %d passed different user ops to %v", r, first)}
		}
	}
	return &mismatchError{comm: k.c.name, seq: k.seq, msg: "the ranks' calls differ"}
}

// callAt decodes rank r's call identity for generation g.
func (nc *nodeColl) callAt(r int, g uint64) callID {
	desc := atomic.LoadUint64(nc.descWord(r, g))
	id := decodeWord(uint32(desc))
	id.count = int(atomic.LoadUint64(nc.countWord(r, g)))
	id.esize = int(uint8(desc >> 32))
	return id
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

// await waits until every rank entered generation g of call k: polling
// as w.wait says, then sleeping on the bell, in slices of at most 100 ms so
// that a failed world (a rank died), a peer gone with Close or the
// watchdog ends the wait. Every stallAfter it asks the ranks still missing
// whether they closed c (verify.go).
func (nc *nodeColl) await(k *coll, g uint64) error {
	c := k.c
	w := c.w
	var checked time.Duration // of waiting, when this rank last checked with the missing ranks
	return nc.bell.Await(func() bool { return nc.all(g) }, w.wait, 100*time.Millisecond, func(waited time.Duration) error {
		if err := w.err(); err != nil {
			return err
		}
		if w.goneN.Load() != 0 && c.ctx+1 != worldCollCtx {
			if err := nc.goneErr(k, g); err != nil {
				return err
			}
		}
		if err := k.watchdog(waited); err != nil {
			return err
		}
		if waited > checked+stallAfter {
			checked = waited
			for r := range nc.n {
				if atomic.LoadUint64(nc.genWord(r, g)) < g {
					w.sendCheck(c, r, k.tag, k.word, true)
				}
			}
		}
		return nil
	})
}

// watchdog aborts the world when a wait of call k on shared memory has
// lasted longer than the world's Config.Timeout, and returns its error.
func (k *coll) watchdog(waited time.Duration) error {
	w := k.c.w
	if w.timeout > 0 && waited > w.timeout {
		w.abort(fmt.Errorf("watchdog: collective on %s rank %d waited longer than %v", k.c.name, k.c.rank, w.timeout))
		return w.err()
	}
	return nil
}

// goneErr aborts the world if a rank that has not entered generation g of
// call k has entered Close of its world: it never will (unless c is the
// world, where its Close barrier is still to come).
func (nc *nodeColl) goneErr(k *coll, g uint64) error {
	c := k.c
	for r := range nc.n {
		if atomic.LoadUint64(nc.genWord(r, g)) < g && c.w.gone[c.group[r]].Load() {
			return k.abort(&peerClosedError{rank: r, comm: c.name})
		}
	}
	return nil
}

// allreduceNode is Allreduce through c's segment of send into acc (which
// may be send itself): acc gets the result, folded in rank order. Every
// Allreduce on c arrives here, whatever its size; a payload larger than a
// slot then goes through the large-call segment (nodebig.go), or, where
// that could not be set up, on with messages: then acc holds a copy of send
// and the caller sees that it still needs reducing from done == false.
func allreduceNode[T Elem](k *coll, nc *nodeColl, send, acc []T, f func(dst, src []T), local error) (done bool, err error) {
	var data []byte
	if len(send)*sizeOf[T]() <= ncSlot {
		data = asBytes(send)
	}
	g, err := nc.arrive(k, data, local)
	if err != nil {
		return true, err
	}
	if data == nil {
		// An element larger than a chunk (every rank agrees on its size
		// at the arrival) goes on with messages.
		if sizeOf[T]() <= nbChunk {
			if nb := nc.big(k.c); nb != nil {
				return true, allreduceBig(k, nb, send, acc, f)
			}
		}
		copy(acc, send)
		return false, nil
	}
	n := len(data)
	copy(acc, fromBytes[T](nc.data(0, g, n)))
	for r := 1; r < nc.n; r++ {
		f(acc, fromBytes[T](nc.data(r, g, n)))
	}
	return true, nil
}

// arriveMoving is the arrival of a call that moves size bytes: data (this
// rank's part, nil if it brings none) travels in the arrival when size fits
// a slot (small). Past a slot it returns the large-call segment, or nil
// where that could not be set up (the call then goes on with messages).
func (nc *nodeColl) arriveMoving(k *coll, data []byte, size int, local error) (g uint64, small bool, nb *nodeBig, err error) {
	small = size <= ncSlot
	if !small {
		data = nil
	}
	g, err = nc.arrive(k, data, local)
	if err == nil && !small {
		nb = nc.big(k.c)
	}
	return g, small, nb, err
}

// bcastNode is Bcast through c's segment: the root's b reaches every rank.
// Like allreduceNode, every Bcast on c arrives here; a payload larger than a
// slot then goes through the large-call segment, or on with messages
// (done == false).
func bcastNode(k *coll, nc *nodeColl, b []byte, root int, local error) (done bool, err error) {
	var data []byte
	if k.c.rank == root {
		data = b
	}
	g, small, nb, err := nc.arriveMoving(k, data, len(b), local)
	switch {
	case err != nil:
		return true, err
	case nb != nil:
		return true, bcastBig(k, nb, b, root)
	case !small:
		return false, nil
	}
	if k.c.rank != root {
		copy(b, nc.data(root, g, len(b)))
	}
	return true, nil
}

// allgatherNode is Allgather through c's segment: send of every rank lands
// in recv, in rank order. Every Allgather on c arrives here; a block of up
// to a slot travels in the arrival, a larger one through the large-call
// segment (nodebig.go), or, where that could not be set up, on with
// messages (done == false).
func allgatherNode(k *coll, nc *nodeColl, send, recv []byte, local error) (done bool, err error) {
	m := len(send)
	return allgathervNode(k, nc, send, func(int) int { return m }, func(r int) []byte { return recv[r*m : (r+1)*m] }, local)
}

// alltoallNode is Alltoall through c's segment: block j of send (of len(send)/n
// bytes) reaches block me of rank j's recv. Like allgatherNode, every
// Alltoall on c arrives here; a send of up to a slot travels whole in the
// arrival, a larger one through the large-call segment, or on with messages
// (done == false).
func alltoallNode(k *coll, nc *nodeColl, send, recv []byte, local error) (done bool, err error) {
	g, small, nb, err := nc.arriveMoving(k, send, len(send), local)
	switch {
	case err != nil:
		return true, err
	case nb != nil:
		return true, alltoallBig(k, nb, send, recv)
	case !small:
		return false, nil
	}
	b, me := len(send)/nc.n, nc.me
	for r := range nc.n {
		copy(recv[r*b:(r+1)*b], nc.data(r, g, len(send))[me*b:])
	}
	return true, nil
}

package shmring

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/gorun-hpc/gorun/shm"
)

// Layout of one ring segment (created by the receiving rank, one per
// sending peer). Every control word sits on its own 64-byte line so the
// producer's and the consumer's stores never share a cache line.
//
//	offset  size  word       written by
//	0       8     tail       producer (bytes published, monotonic)
//	64      8     head       consumer (bytes consumed, monotonic)
//	72      8     fastHead   consumer (fast frames consumed, monotonic)
//	128     4     rxSleep    consumer (how many of its goroutines may sleep on doorbell)
//	132     4     doorbell   producer / liveness (futex word of the consumer)
//	192     4     txWait     producer (1 while it may sleep on space)
//	196     4     space      consumer / liveness (futex word of the producer)
//	4096    4096  fast box   producer (64 slots of 64 bytes, fastbox.go)
//	8192    size  data       producer (byte ring, index & (size-1))
const (
	offTail     = 0
	offHead     = 64
	offFastHead = 72
	offRxSleep  = 128
	offDoorbell = 132
	offTxWait   = 192
	offSpace    = 196
	dataOff     = fastOff + fastSlots*slotSize
)

// ring is one mapped ring segment. It holds no Go pointers in shared
// memory: the pointers below are process-local addresses into the mapping.
type ring struct {
	seg       *shm.Segment
	tail      *uint64
	head      *uint64
	fastHead  *uint64
	rxSleep   *uint32
	doorbell  *uint32
	txWait    *uint32
	space     *uint32
	data      []byte
	slots     []byte   // the fast box
	slotWords []uint64 // the fast box as words, for the seq of each slot
	size      uint64
	mask      uint64
}

func validRingSize(n int) bool {
	return n >= 4096 && n <= 1<<30 && n&(n-1) == 0
}

// newRing maps the control words and data of seg, whose data part is size
// bytes.
func newRing(seg *shm.Segment, size int) (*ring, error) {
	if !validRingSize(size) || seg.Size() < int64(dataOff+size) {
		return nil, fmt.Errorf("ring of %d bytes does not fit a segment of %d bytes", size, seg.Size())
	}
	u64, err := shm.View[uint64](seg, 0, dataOff/8)
	if err != nil {
		return nil, err
	}
	u32, err := shm.View[uint32](seg, 0, dataOff/4)
	if err != nil {
		return nil, err
	}
	return &ring{
		seg:       seg,
		tail:      &u64[offTail/8],
		head:      &u64[offHead/8],
		fastHead:  &u64[offFastHead/8],
		rxSleep:   &u32[offRxSleep/4],
		doorbell:  &u32[offDoorbell/4],
		txWait:    &u32[offTxWait/4],
		space:     &u32[offSpace/4],
		data:      seg.Bytes()[dataOff : dataOff+size : dataOff+size],
		slots:     seg.Bytes()[fastOff:dataOff:dataOff],
		slotWords: u64[fastOff/8 : dataOff/8 : dataOff/8],
		size:      uint64(size),
		mask:      uint64(size - 1),
	}, nil
}

// kickConsumer wakes the ring's consumer if it sleeps or is about to. Used
// by the producer after publishing and by the liveness goroutine.
func (r *ring) kickConsumer() {
	// seq-cst increment: a consumer that loaded the old doorbell value
	// before this Add sees a mismatch in futex_wait and does not sleep.
	atomic.AddUint32(r.doorbell, 1)
	// All sleepers: the receive goroutine and a polling caller that
	// waits mid-frame may both sleep on the doorbell.
	shm.Wake(r.doorbell, math.MaxInt32)
}

// kickProducer wakes the ring's producer if it waits for space.
func (r *ring) kickProducer() {
	// seq-cst increment, same argument as kickConsumer for the space word.
	atomic.AddUint32(r.space, 1)
	shm.Wake(r.space, 1)
}

func (r *ring) close() {
	if r != nil && r.seg != nil {
		r.seg.Close()
	}
}

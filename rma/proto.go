package rma

import (
	"github.com/gorun-hpc/gorun/internal/wire"
	"github.com/gorun-hpc/gorun/runtime"
)

// The message path: active messages of a window (internal/am), on the
// window's own communicator, so one ordered channel per pair of ranks
// carries every operation of one origin to one target in the order it was
// issued.
//
//	field    use
//	Tag      message type | op<<8
//	Flags    flagLockExcl or flagLockShared: the first operation of a lock
//	         epoch carries the lock request; flagUnlock: release it after
//	         this message; flagAck: answer once this message is applied
//	Arg0     displacement, in elements
//	Arg1     the origin's reply id, for a message that is answered
//	Call     element count
//	payload  the origin's data (put, accumulate), or the reply's data
//
// The target's receive path applies each message as it arrives, in order.
// A message that asks for a lock the target cannot grant yet waits at the
// target with everything after it from that origin until the lock is
// granted (target.go). So lock, put and unlock cost one round trip: the
// origin holds a small put back until the Unlock, and sends it with the
// lock request, the unlock and a request for an answer on one message;
// the answer to the last message of an epoch confirms all of it.
const (
	msgPut      = iota + 1 // write payload at Arg0
	msgGet                 // answer Call elements from Arg0
	msgAcc                 // accumulate payload at Arg0 with op
	msgGetAcc              // accumulate and answer the old elements (fetch-and-op, NoOp: atomic read)
	msgCas                 // compare-and-swap one element: payload = new, compare; answer the old
	msgFlush               // answer once everything before has been applied
	msgUnlock              // release the lock of this epoch; answer if flagAck
	msgReply               // (target → origin) the answer to Arg1, payload the data
	msgRetry               // (to the target) a lock of its memory was released directly: grant the waiting requests
	msgPost                // (target → origin) an exposure epoch for the origin opened (PSCW)
	msgComplete            // (origin → target) the origin's access epoch closed; everything before it is applied
)

const (
	flagLockExcl   = 1 << 0
	flagLockShared = 1 << 1
	flagAck        = 1 << 2 // answer (Arg1) once this message and all before it are applied
	flagUnlock     = 1 << 3 // release the epoch's lock after this message
)

func header(msg int, op runtime.Op, disp, count int, id uint64) wire.Header {
	return wire.Header{Tag: int32(msg | int(op)<<8), Arg0: uint64(disp), Arg1: id, Call: uint32(count)}
}

func msgOf(h wire.Header) (msg int, op runtime.Op) {
	return int(h.Tag & 0xff), runtime.Op(h.Tag >> 8 & 0xff)
}

// The lock word of a rank's memory (ctl.lock).
const (
	lockExcl   uint64 = 1 << 63 // held exclusively
	lockQueued uint64 = 1 << 62 // remote requests wait at the target (target.go)
	lockShared uint64 = 1<<32 - 1
)

// lockMode is a lock an origin holds or wants on a target.
type lockMode uint8

const (
	lockNone lockMode = iota
	lockModeShared
	lockModeExcl
)

func (m lockMode) flag() uint8 {
	switch m {
	case lockModeExcl:
		return flagLockExcl
	case lockModeShared:
		return flagLockShared
	}
	return 0
}

// tryLock takes lock word *p in mode m if it is free for it, with one
// compare-and-swap (seq-cst: everything the last holder did to the memory
// happens before what this holder does).
func tryLock(p *uint64, m lockMode) bool {
	v := loadWord(p)
	if m == lockModeExcl {
		return v&(lockExcl|lockShared) == 0 && casWord(p, v, v|lockExcl)
	}
	return v&lockExcl == 0 && v&lockShared != lockShared && casWord(p, v, v+1)
}

// unlockWord releases mode m of lock word *p and reports whether remote
// requests wait for it (lockQueued).
func unlockWord(p *uint64, m lockMode) (queued bool) {
	var v uint64
	if m == lockModeExcl {
		v = andWord(p, ^lockExcl) &^ lockExcl
	} else {
		v = addWord(p, ^uint64(0))
	}
	return v&lockQueued != 0
}

package shmring

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// The fast box: small frames in single cache lines.
//
// A frame through the byte ring costs the consumer at least two cache-line
// transfers, one for the tail and one for the bytes. A frame whose payload
// is at most fastMax bytes (empty and 8-byte messages, clear-to-send and
// request-to-send frames, barrier tokens) goes instead into one 64-byte slot
// of the fast box, with the word that publishes it in the same line:
//
//	slot i, at fastOff + 64*i:
//	0   8   seq      frame number + 1, stored last (release)
//	8   40  header   wire.Header
//	48  16  payload  up to fastMax bytes
//
// Every frame of a channel, whichever way it goes, has a frame number, one
// more than the frame before. Ring frames carry theirs in an 8-byte prefix
// before the header. The consumer handles frame number next: it is in the
// fast slot it reads next if that slot's seq says next+1, else it is the
// frame at the ring's head. (The producer stores a slot's seq before the
// tail of any later ring frame, so a consumer that sees a later ring frame
// also sees the slot.) A seq only ever holds frame numbers, which never
// repeat, so a slot left from an earlier lap is never taken for a new one.
//
// The producer reuses slot i once the consumer's fastHead (fast frames
// consumed, a word on the consumer's head line) is past it. It loads
// fastHead only when its cached copy says the box is full, and if the box
// really is full the frame goes through the ring instead: the fast box
// never makes a Send wait.
const (
	fastOff   = 4096
	fastSlots = 64
	slotSize  = 64
	slotHdr   = 8 + wire.HeaderSize
	fastMax   = slotSize - slotHdr
	// ringPrefix is the frame number before each ring frame's header.
	ringPrefix = 8
)

var errOrder = errors.New("frame out of order")

// seqWord returns the publishing word of slot i.
func (r *ring) seqWord(i uint64) *uint64 { return &r.slotWords[(i%fastSlots)*(slotSize/8)] }

// slot returns the header and payload bytes of slot i.
func (r *ring) slot(i uint64) []byte {
	off := (i % fastSlots) * slotSize
	return r.slots[off+8 : off+slotSize : off+slotSize]
}

// putFastLocked publishes frame number f (h and its payload of at most
// fastMax bytes) in the next fast slot, and reports false, having written
// nothing, if every slot is still in use. Callers hold wmu.
func (e *endpoint) putFastLocked(f uint64, h wire.Header, payload []byte) bool {
	r := e.out
	if e.fastN-e.fastFree >= fastSlots {
		// acquire: pairs with the consumer's release store of fastHead,
		// made after it finished reading the slots below it.
		e.fastFree = atomic.LoadUint64(r.fastHead)
		if e.fastN-e.fastFree >= fastSlots {
			return false
		}
	}
	// Build the slot on the stack and copy it in one go: the consumer polls
	// this line, and every store that finds the line taken back costs
	// another transfer.
	var tmp [slotSize - 8]byte
	h.Encode(tmp[:wire.HeaderSize])
	copy(tmp[wire.HeaderSize:], payload)
	copy(r.slot(e.fastN), tmp[:])
	// release (seq-cst) store: the slot's bytes above happen-before the
	// consumer's acquire load that sees this seq.
	atomic.StoreUint64(r.seqWord(e.fastN), f+1)
	e.fastN++
	// Dekker with the consumer, as in publishLocked.
	if atomic.LoadUint32(r.rxSleep) != 0 {
		r.kickConsumer()
	}
	return true
}

// fastReady reports whether the next frame is in the fast box.
func (rd *reader) fastReady() bool {
	// acquire: pairs with the producer's release store of seq.
	return atomic.LoadUint64(rd.r.seqWord(rd.fastN)) == rd.next+1
}

// ready reports whether a frame, or the start of one, can be read.
func (rd *reader) ready() bool {
	// The tail first: a ring frame seen through it makes every earlier
	// fast slot visible to the fastReady that follows (see above).
	a := rd.avail()
	return rd.fastReady() || a > 0
}

// fastFrame hands the frame in the next fast slot to the handler. The
// caller holds the token and has seen fastReady.
func (e *endpoint) fastFrame() error {
	rd := &e.rd
	b := rd.r.slot(rd.fastN)
	h, err := wire.Decode(b[:wire.HeaderSize])
	if err != nil {
		return err
	}
	if int(h.Len) > fastMax {
		return fmt.Errorf("fast slot holds a payload of %d bytes", h.Len)
	}
	rd.next++
	bye, err := transport.Goodbye(h, &e.peerBye)
	if err != nil {
		return err
	}
	if !bye {
		e.fbody = b[wire.HeaderSize : wire.HeaderSize+int(h.Len)]
		herr := e.h.HandleFrame(e.peer, h, &e.fbody)
		e.fbody = nil
		if herr != nil {
			return fmt.Errorf("%w: %w", errHandlerFail, herr)
		}
	}
	rd.fastN++
	// release (seq-cst) store: our reads of the slot happen-before the
	// producer's acquire load that lets it reuse the slot.
	atomic.StoreUint64(rd.r.fastHead, rd.fastN)
	return nil
}

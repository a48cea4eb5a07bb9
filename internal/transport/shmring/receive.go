package shmring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
	"github.com/gorun-hpc/gorun/shm"
)

// The receiving side of a channel: the receive goroutine, frame decoding
// and the reader of the inbound ring.

func (e *endpoint) receive() {
	defer e.t.life.WG.Done()
	defer close(e.done)
	err := e.receiveLoop()
	e.rd.publishHead()
	switch {
	case err == nil:
		// Orderly end: the peer said goodbye and closed. Answer with ours
		// (unless our Close already did) so its Close returns at once.
		e.wmu.Lock()
		if !e.closing.Load() {
			e.sendByeLocked()
		}
		e.byeSent = true
		e.wmu.Unlock()
		e.conn.Close()
	case e.closing.Load() || e.t.life.Killed.Load():
		e.conn.Close()
	default:
		lost := err
		if !errors.Is(err, transport.ErrPeerLost) {
			lost = fmt.Errorf("shmring: rank %d <- rank %d: receive: %w: %w", e.self, e.peer, transport.ErrPeerLost, err)
		}
		e.lost.Store(&lostErr{lost})
		e.conn.Close()
		e.kick(false, true)
		e.h.PeerLost(e.peer, lost)
	}
	<-e.watchDone
	e.wmu.Lock()
	e.recvEnded = true
	rel := e.closing.Load() && e.lost.Load() != nil
	e.wmu.Unlock()
	if rel {
		e.release()
	}
}

// receiveLoop alternates with polling callers (see poll.go): it takes the
// token when frames are readable and no caller polls, handles them, and
// gives the token back. It returns holding the token, so no caller reads
// the ring after the receive goroutine ended.
func (e *endpoint) receiveLoop() error {
	for {
		if err := e.turn(); err != nil {
			if err == io.EOF {
				if e.peerBye.Load() {
					return nil
				}
				return errNoBye
			}
			return err
		}
		for e.rd.ready() {
			if err := e.frame(); err != nil {
				return err
			}
		}
		// release: hands the reader state (rd) to the next holder, who
		// acquires it with its CompareAndSwap.
		e.tok.Store(0)
	}
}

// frame reads one frame and hands it to the handler. The caller holds the
// token and has seen at least one byte readable.
func (e *endpoint) frame() error {
	rd, b := &e.rd, &e.body
	a := rd.avail() // before fastReady: see ready
	if rd.fastReady() {
		return e.fastFrame()
	}
	if a == 0 {
		return nil
	}
	var hb [ringPrefix + wire.HeaderSize]byte
	if err := rd.read(hb[:]); err != nil {
		if err == io.EOF {
			err = errTruncated // some of it was readable
		}
		return err
	}
	if f := binary.LittleEndian.Uint64(hb[:ringPrefix]); f != rd.next {
		return fmt.Errorf("%w: frame %d where %d was due", errOrder, f, rd.next)
	}
	rd.next++
	h, err := wire.Decode(hb[ringPrefix:])
	if err != nil {
		return err
	}
	if bye, err := transport.Goodbye(h, &e.peerBye); bye || err != nil {
		return err
	}
	b.Start(int(h.Len))
	if herr := e.h.HandleFrame(e.peer, h, b); herr != nil {
		if err := b.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%w: %w", errHandlerFail, herr)
	}
	if err := b.Finish(); err != nil {
		if err == io.EOF {
			err = errTruncated
		}
		return err
	}
	rd.publishHead()
	return nil
}

// reader consumes the inbound ring; used by whoever holds the endpoint's
// token (the receive goroutine or a polling caller, see poll.go).
type reader struct {
	e       *endpoint
	r       *ring
	next    uint64 // the frame number due next (fastbox.go)
	fastN   uint64 // fast frames consumed
	head    uint64 // our head, published or not
	pubHead uint64 // the head last stored into r.head
	tail    uint64 // the producer's tail, as last loaded
}

// avail returns the bytes readable now, loading the tail if needed.
func (rd *reader) avail() uint64 {
	if rd.tail == rd.head {
		// acquire: pairs with the producer's release store of tail; the
		// bytes below it are in data for us to read.
		rd.tail = atomic.LoadUint64(rd.r.tail)
	}
	return rd.tail - rd.head
}

// publishHead frees what we consumed and wakes a producer waiting for it.
func (rd *reader) publishHead() {
	if rd.head == rd.pubHead {
		return
	}
	rd.pubHead = rd.head
	r := rd.r
	// release (seq-cst) store: our reads of the bytes below head
	// happen-before the producer's acquire load that lets it overwrite.
	atomic.StoreUint64(r.head, rd.head)
	// Dekker with the producer: we store head then load txWait; it stores
	// txWait then loads head.
	if atomic.LoadUint32(r.txWait) != 0 {
		r.kickProducer()
	}
}

// wait waits until some bytes are readable. It returns io.EOF when the
// peer is gone and the ring is drained.
func (rd *reader) wait() error {
	e := rd.e
	rd.publishHead()
	var start time.Time
	for {
		if e.t.life.Killed.Load() {
			return errKilled // Transport.Close: deliver nothing more
		}
		if rd.avail() > 0 {
			return nil
		}
		if e.gone.Load() {
			return rd.lastLook(rd.hasBytes)
		}
		if e.spin != nil && !e.closing.Load() && e.spin() {
			if start.IsZero() {
				start = time.Now()
			}
			if time.Since(start) < spinBudget {
				runtime.Gosched()
				continue
			}
		}
		rd.doze(rd.hasBytes, nil)
		start = time.Time{}
	}
}

// hasBytes reports whether ring bytes are readable.
func (rd *reader) hasBytes() bool { return rd.avail() > 0 }

// lastLook is the reader's last look once the peer is gone: everything it
// wrote before it closed the socket is published. io.EOF means nothing is
// left that ready would take.
func (rd *reader) lastLook(ready func() bool) error {
	rd.tail = atomic.LoadUint64(rd.r.tail) // acquire
	if ready() {
		return nil
	}
	return io.EOF
}

// doze is the consumer's side of the sleep protocol (see publishLocked):
// it counts itself in rxSleep, looks once more with ready, and unless that
// finds something or the peer is gone, runs before and sleeps on the
// doorbell for at most rxSleep. It reports what the last look found.
func (rd *reader) doze(ready func() bool, before func()) bool {
	r := rd.r
	// Dekker with the producer: increment rxSleep (seq-cst; a count, since
	// the receive goroutine and a caller holding the token mid-frame may
	// both sleep), then load doorbell and tail.
	atomic.AddUint32(r.rxSleep, 1)
	defer atomic.AddUint32(r.rxSleep, ^uint32(0))
	v := atomic.LoadUint32(r.doorbell)
	rd.tail = atomic.LoadUint64(r.tail) // acquire
	if ready() {
		return true
	}
	if before != nil {
		before()
	}
	if !rd.e.gone.Load() {
		shm.Wait(r.doorbell, v, rxSleep)
	}
	return false
}

// read fills dst from the ring, waiting as needed. An end of the channel
// before the first byte is io.EOF; after it, errTruncated.
func (rd *reader) read(dst []byte) error { return rd.consume(len(dst), dst) }

// discard skips n bytes of the ring, with read's errors.
func (rd *reader) discard(n int) error { return rd.consume(n, nil) }

// consume takes the next n bytes of the ring, copying them into dst unless
// dst is nil.
func (rd *reader) consume(n int, dst []byte) error {
	first := true
	for n > 0 {
		a := rd.avail()
		if a == 0 {
			if err := rd.wait(); err != nil {
				if err == io.EOF && !first {
					return errTruncated
				}
				return err
			}
			continue
		}
		first = false
		off := rd.head & rd.r.mask
		k := min(uint64(n), a, rd.r.size-off, rd.r.size/pieces)
		if dst != nil {
			copy(dst[:k], rd.r.data[off:off+k])
			dst = dst[k:]
		}
		rd.head += k
		n -= int(k)
		if n > 0 {
			rd.publishHead() // the producer refills this piece meanwhile (pieces)
		}
	}
	return nil
}

// ReadFull and Discard make the reader the transport.Stream of the
// connection's StreamBody.
func (rd *reader) ReadFull(dst []byte) error { return rd.read(dst) }

// Discard implements transport.Stream.
func (rd *reader) Discard(n int) error { return rd.discard(n) }

// payloadErr is the error Body methods return when the ring fails under
// them (the peer died mid-frame); the same error then ends the receive
// loop.
func (e *endpoint) payloadErr(err error) error {
	if err == io.EOF {
		err = errTruncated
	}
	return fmt.Errorf("shmring: rank %d <- rank %d: reading payload: %w: %w", e.self, e.peer, transport.ErrPeerLost, err)
}

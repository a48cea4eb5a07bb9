package shmring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
	"github.com/gorun-hpc/gorun/shm"
)

const (
	// lingerTimeout bounds how long Close waits for the peer's goodbye,
	// and how long a goodbye waits for ring space.
	lingerTimeout = 10 * time.Second

	// spinBudget bounds one spell of polling while Config.Spin says so.
	// It exceeds the futex wake latency measured in docs/shm.md (5–9 µs)
	// several times, so a busy pair does not convoy into sleeping.
	spinBudget = 50 * time.Microsecond

	// rxSleep and txSleep bound one futex sleep; after each the sleeper
	// re-checks the liveness flags, so a lost wake-up costs at most this.
	rxSleep = 100 * time.Millisecond
	txSleep = 20 * time.Millisecond
)

var (
	errNoBye       = errors.New("channel closed without goodbye")
	errTruncated   = errors.New("channel closed mid-frame")
	errHandlerFail = errors.New("handler failed")
	errLinger      = errors.New("timed out waiting for ring space")
	errKilled      = errors.New("transport closed")
)

type lostErr struct{ err error }

// endpoint is the transport.Endpoint of one channel, owner of its receive
// goroutine and of its liveness goroutine (watch).
type endpoint struct {
	t          *Transport
	self, peer int
	conn       *net.UnixConn
	h          transport.Handler
	in, out    *ring
	spin       func() bool

	// wmu serializes producers on out; the fields below it are guarded by
	// it, and out is unmapped only under it.
	wmu       sync.Mutex
	hdr       [ringPrefix + wire.HeaderSize]byte
	nextFrame uint64 // the frame number of our next frame (fastbox.go)
	fastN     uint64 // fast frames written
	fastFree  uint64 // the consumer's fastHead, as last loaded
	ptail     uint64 // our tail, published or not
	pubTail   uint64 // the tail last stored into out.tail
	phead     uint64 // the consumer's head, as last loaded
	byeSent   bool
	wbroken   bool // a Send was cut off after publishing part of its frame
	recvEnded bool // the receive goroutine has finished with in
	released  bool

	// mapMu keeps the rings mapped while another goroutine (Close, kill,
	// the liveness goroutine) wakes a sleeper on them; release holds it
	// exclusively while unmapping.
	mapMu    sync.RWMutex
	unmapped bool // guarded by mapMu

	closing atomic.Bool // local Close or kill began
	peerBye atomic.Bool // the peer's goodbye arrived
	gone    atomic.Bool // the liveness socket ended (EOF or error)
	lost    atomic.Pointer[lostErr]

	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed when the receive goroutine ended
	watchDone chan struct{} // closed when the liveness goroutine ended

	// tok is held by the one goroutine reading the inbound ring: the
	// receive goroutine or a polling caller (poll.go). It guards rd, body
	// and pollErr.
	tok     atomic.Uint32
	pollErr error               // a frame a caller read broke the channel
	failed  atomic.Bool         // pollErr is set: report it, however busy the callers
	fbody   transport.BytesBody // the payload of the fast frame being handled
	nap     transport.Nap       // the receive goroutine's naps (poll.go)

	rd   reader
	body transport.StreamBody
}

func newEndpoint(t *Transport, ch *channel, h transport.Handler) *endpoint {
	e := &endpoint{
		t: t, self: t.cfg.Self, peer: ch.rank, conn: ch.conn, h: h,
		in: ch.in, out: ch.out, spin: t.cfg.Spin,
		done: make(chan struct{}), watchDone: make(chan struct{}),
	}
	e.rd.e, e.rd.r = e, ch.in
	e.body = transport.StreamBody{Stream: &e.rd, Wrap: e.payloadErr}
	e.nap.Init()
	return e
}

// ---- sending ----

// Send implements transport.Endpoint. It copies the header and payload into
// the peer's ring and publishes them with one atomic store of the tail (per
// ring-full of data for payloads larger than the free space). It blocks
// while the ring is full. After Close it fails with an error wrapping
// transport.ErrClosed; after the peer died, with one wrapping
// transport.ErrPeerLost; after the peer's goodbye, with one wrapping
// ErrPeerClosed.
func (e *endpoint) Send(h wire.Header, payload []byte) error {
	if len(payload) > wire.MaxPayload {
		return fmt.Errorf("shmring: rank %d -> rank %d: send: payload of %d bytes exceeds %d",
			e.self, e.peer, len(payload), wire.MaxPayload)
	}
	h.Len = uint32(len(payload))
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if err := e.sendStateLocked(); err != nil {
		return err
	}
	if len(payload) <= fastMax && e.putFastLocked(e.nextFrame, h, payload) {
		e.nextFrame++
		return nil
	}
	binary.LittleEndian.PutUint64(e.hdr[:ringPrefix], e.nextFrame)
	h.Encode(e.hdr[ringPrefix:])
	start := e.ptail
	err := e.putLocked(e.hdr[:], time.Time{})
	if err == nil {
		err = e.putLocked(payload, time.Time{})
	}
	if err != nil {
		if e.pubTail == start {
			e.ptail = start // nothing of the frame is visible: forget it
		} else {
			e.wbroken = true
		}
		return err
	}
	e.nextFrame++
	e.publishLocked()
	return nil
}

// TrySend implements transport.TrySender: Send if the write lock is free
// and the fast box or the ring has room for the whole frame.
func (e *endpoint) TrySend(h wire.Header, payload []byte) (bool, error) {
	if len(payload) > wire.MaxPayload {
		return false, fmt.Errorf("shmring: rank %d -> rank %d: send: payload of %d bytes exceeds %d",
			e.self, e.peer, len(payload), wire.MaxPayload)
	}
	h.Len = uint32(len(payload))
	if !e.wmu.TryLock() {
		return false, nil
	}
	defer e.wmu.Unlock()
	if err := e.sendStateLocked(); err != nil {
		return false, err
	}
	if len(payload) <= fastMax && e.putFastLocked(e.nextFrame, h, payload) {
		e.nextFrame++
		return true, nil
	}
	r := e.out
	need := uint64(len(e.hdr) + len(payload))
	if r.size-(e.ptail-e.phead) < need {
		// acquire: as in putLocked.
		e.phead = atomic.LoadUint64(r.head)
		if r.size-(e.ptail-e.phead) < need {
			return false, nil
		}
	}
	binary.LittleEndian.PutUint64(e.hdr[:ringPrefix], e.nextFrame)
	h.Encode(e.hdr[ringPrefix:])
	// Room for all of it: putLocked will not wait.
	if err := e.putLocked(e.hdr[:], time.Time{}); err != nil {
		return false, err
	}
	if err := e.putLocked(payload, time.Time{}); err != nil {
		return false, err
	}
	e.nextFrame++
	e.publishLocked()
	return true, nil
}

// sendStateLocked says why nothing may be sent, or nil.
func (e *endpoint) sendStateLocked() error {
	switch {
	case e.closing.Load():
		return fmt.Errorf("shmring: rank %d -> rank %d: send: %w", e.self, e.peer, transport.ErrClosed)
	case e.lost.Load() != nil:
		return e.lost.Load().err
	case e.peerBye.Load() || e.byeSent:
		return fmt.Errorf("shmring: rank %d -> rank %d: send: %w", e.self, e.peer, ErrPeerClosed)
	case e.wbroken:
		return fmt.Errorf("shmring: rank %d -> rank %d: send: stream broken by an aborted send: %w", e.self, e.peer, transport.ErrPeerLost)
	}
	return nil
}

// putLocked copies p into the ring at ptail, waiting for space as needed.
// A zero deadline means a Send (aborted by Close); otherwise it is a
// goodbye, which ignores closing but gives up at the deadline.
func (e *endpoint) putLocked(p []byte, deadline time.Time) error {
	r := e.out
	for len(p) > 0 {
		used := e.ptail - e.phead
		if used == r.size {
			// acquire: pairs with the consumer's release store of head,
			// made after it finished reading the bytes below head; from
			// here on we may overwrite them.
			e.phead = atomic.LoadUint64(r.head)
			used = e.ptail - e.phead
			if used == r.size {
				e.publishLocked() // let the consumer drain what we wrote
				if err := e.waitSpaceLocked(deadline); err != nil {
					return err
				}
				continue
			}
		}
		off := e.ptail & r.mask
		n := min(uint64(len(p)), r.size-used, r.size-off, r.size/pieces)
		copy(r.data[off:off+n], p[:n])
		e.ptail += n
		p = p[n:]
		if len(p) > 0 {
			// A large frame goes out piece by piece, each visible at
			// once, so the consumer copies one piece out while we copy
			// the next in.
			e.publishLocked()
		}
	}
	return nil
}

// pieces is how many pieces a ring holds when a frame larger than a piece
// passes through it: the producer publishes its tail, and the consumer its
// head, after each piece (rather than when the ring is full or empty), so
// the two copies overlap.
const pieces = 4

// publishLocked makes every byte up to ptail visible to the consumer and
// wakes it if it sleeps.
func (e *endpoint) publishLocked() {
	if e.ptail == e.pubTail {
		return
	}
	e.pubTail = e.ptail
	r := e.out
	// release (seq-cst) store: the plain copies into data above
	// happen-before the consumer's acquire load that observes this tail.
	atomic.StoreUint64(r.tail, e.ptail)
	// Dekker with the consumer: we store tail then load rxSleep; it stores
	// rxSleep then loads tail. Seq-cst order means at least one of us sees
	// the other's store, so either it sees the data or we see it asleep.
	if atomic.LoadUint32(r.rxSleep) != 0 {
		r.kickConsumer()
	}
}

// waitSpaceLocked waits until the ring has free space.
func (e *endpoint) waitSpaceLocked(deadline time.Time) error {
	r := e.out
	var start time.Time
	for {
		if deadline.IsZero() {
			if err := e.sendStateLocked(); err != nil {
				return err
			}
			if e.gone.Load() {
				// The peer will never free space again.
				if e.peerBye.Load() {
					return fmt.Errorf("shmring: rank %d -> rank %d: send: %w", e.self, e.peer, ErrPeerClosed)
				}
				return fmt.Errorf("shmring: rank %d -> rank %d: send: %w: %w", e.self, e.peer, transport.ErrPeerLost, errNoBye)
			}
		} else {
			if e.lost.Load() != nil || e.gone.Load() {
				return fmt.Errorf("shmring: rank %d -> rank %d: %w: %w", e.self, e.peer, transport.ErrPeerLost, errNoBye)
			}
			if time.Now().After(deadline) {
				return errLinger
			}
		}
		// acquire: see putLocked.
		e.phead = atomic.LoadUint64(r.head)
		if e.ptail-e.phead < r.size {
			return nil
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
		// Dekker with the consumer's head store: we store txWait then
		// load head; it stores head then loads txWait.
		atomic.StoreUint32(r.txWait, 1)
		v := atomic.LoadUint32(r.space)
		e.phead = atomic.LoadUint64(r.head)
		if e.ptail-e.phead < r.size {
			atomic.StoreUint32(r.txWait, 0)
			return nil
		}
		shm.Wait(r.space, v, txSleep)
		atomic.StoreUint32(r.txWait, 0)
		start = time.Time{}
	}
}

// sendByeLocked writes our goodbye and shuts our side of the socket, so the
// peer reads the goodbye and then EOF.
func (e *endpoint) sendByeLocked() error {
	if e.byeSent || e.wbroken || e.lost.Load() != nil || e.released {
		return nil
	}
	e.byeSent = true
	var b [ringPrefix + wire.HeaderSize]byte
	binary.LittleEndian.PutUint64(b[:ringPrefix], e.nextFrame)
	h := wire.Header{Kind: wire.KindBye}
	h.Encode(b[ringPrefix:])
	if err := e.putLocked(b[:], time.Now().Add(lingerTimeout)); err != nil {
		if e.ptail != e.pubTail {
			e.ptail = e.pubTail
		}
		return fmt.Errorf("shmring: rank %d -> rank %d: close: sending goodbye: %w", e.self, e.peer, err)
	}
	e.nextFrame++
	e.publishLocked()
	return e.conn.CloseWrite()
}

// ---- closing ----

// Close implements transport.Endpoint: it sends a goodbye after the frames
// of the Sends that have returned, then waits (at most lingerTimeout) for
// the peer to answer with its own goodbye or to go away, meanwhile still
// handing arriving frames to the handler, and releases the channel. A Send
// blocked at that moment returns an error wrapping transport.ErrClosed.
// It is safe to call more than once, concurrently with Send, and from
// PeerLost; it must not be called from HandleFrame for the same peer.
func (e *endpoint) Close() error {
	e.closeOnce.Do(func() { e.closeErr = e.close() })
	return e.closeErr
}

func (e *endpoint) close() error {
	e.closing.Store(true)
	e.nap.Kick() // a napping receive goroutine reads the goodbye now
	if !e.wmu.TryLock() {
		// A Send holds the lock, perhaps waiting for space: wake it so it
		// sees closing and returns.
		e.kick(false, true)
		e.wmu.Lock()
	}
	var err error
	switch {
	case e.released:
	case e.wbroken:
		err = fmt.Errorf("shmring: rank %d -> rank %d: close: goodbye not sent: a send was aborted mid-frame", e.self, e.peer)
	case e.t.life.Killed.Load():
	default:
		err = e.sendByeLocked()
	}
	e.wmu.Unlock()
	if err != nil {
		e.conn.Close()
	}
	if e.lost.Load() != nil {
		// The receive goroutine reports or reported the loss, perhaps
		// through a PeerLost that called this Close: do not wait for it.
		e.conn.Close()
		e.wmu.Lock()
		ended := e.recvEnded
		e.wmu.Unlock()
		if ended {
			e.release()
		}
		return err
	}
	timer := time.NewTimer(lingerTimeout)
	select {
	case <-e.done:
	case <-timer.C:
		e.conn.Close()
		<-e.done
	}
	timer.Stop()
	e.conn.Close()
	e.release()
	return err
}

// kill cuts the channel without a goodbye (Transport.Close).
func (e *endpoint) kill() {
	e.closing.Store(true)
	e.conn.Close()
	e.kick(true, true)
}

// kick wakes the receive goroutine (in) and a Send waiting for space (out),
// unless the rings are unmapped already.
func (e *endpoint) kick(in, out bool) {
	e.mapMu.RLock()
	defer e.mapMu.RUnlock()
	if e.unmapped {
		return
	}
	if in {
		e.nap.Kick() // the receive goroutine's nap (poll.go)
		e.in.kickConsumer()
	}
	if out {
		e.out.kickProducer()
	}
}

// release unmaps both rings. Callers make sure the receive and liveness
// goroutines are done; a Send sees closing under wmu and touches nothing.
func (e *endpoint) release() {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if e.released {
		return
	}
	e.released = true
	e.mapMu.Lock()
	e.unmapped = true
	e.in.close()
	e.out.close()
	e.mapMu.Unlock()
}

// ---- liveness ----

// watch is the liveness goroutine: it reads the socket, on which the peer
// never writes after setup, until EOF or an error, then marks the peer gone
// and wakes whoever waits on either ring.
func (e *endpoint) watch() {
	defer e.t.life.WG.Done()
	defer close(e.watchDone)
	var b [1]byte
	for {
		n, err := e.conn.Read(b[:])
		if err != nil || n > 0 {
			break
		}
	}
	// The peer's ring writes happen-before its close; the kernel's EOF
	// delivery orders them before this store for our receive goroutine,
	// which drains the ring after it sees gone.
	e.gone.Store(true)
	e.kick(true, true)
}

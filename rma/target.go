package rma

import (
	"fmt"
	"sync"

	"github.com/gorun-hpc/gorun/internal/am"
	"github.com/gorun-hpc/gorun/internal/wire"
	"github.com/gorun-hpc/gorun/runtime"
)

// The target side: what the receive path does with a window's messages.
// It runs on the transport's receive goroutine of the origin's channel (or
// a polling caller), one message of an origin at a time and in order, and
// different origins' messages at once; it never blocks: answers go out
// with SendAsync, and a lock that cannot be granted yet is queued.

// lockManager is the lock of this rank's window memory as remote origins
// see it. Origins on this node take the same lock word directly
// (origin.go); remote ones ask with their first message of an epoch. A
// request that cannot be granted waits in a FIFO queue, and the messages
// its origin sends after it wait with it; the queue is tried again
// whenever the lock is released: by a remote unlock here, by this rank's
// own unlock, or by a same-node origin's unlock, which sends msgRetry when
// the word says requests are queued (lockQueued).
type lockManager struct {
	w        *winBase
	lock     *uint64
	mu       sync.Mutex
	queue    []lockReq    // waiting requests, oldest first
	held     []lockMode   // the lock each origin holds through messages
	waiting  []bool       // the origin's messages wait behind a queued request
	deferred [][]deferred // those messages, in order
}

type lockReq struct {
	from int
	mode lockMode
}

type deferred struct {
	h    wire.Header
	data []byte
}

func (m *lockManager) init(w *winBase) {
	m.w = w
	m.lock = w.ctls[w.rank].lock
	m.held = make([]lockMode, w.size)
	m.waiting = make([]bool, w.size)
	m.deferred = make([][]deferred, w.size)
}

// handle is the window's am.Handler.
func (w *winBase) handle(from int, h wire.Header, body am.Body) error {
	if from < 0 || from >= w.size {
		return fmt.Errorf("rma: message from rank %d of a window of %d", from, w.size)
	}
	switch msg, _ := msgOf(h); msg {
	case msgReply:
		return w.onReply(h, body)
	case msgRetry:
		w.mgr.retry()
		return nil
	case msgPost:
		w.pscw.signal(func(s *pscwState) { s.posts[from]++ })
		return nil
	}
	m := &w.mgr
	mode := lockModeOf(h.Flags)
	m.mu.Lock()
	if m.waiting[from] {
		err := m.defer1(from, h, body)
		m.mu.Unlock()
		return err
	}
	if mode != lockNone {
		if !tryLock(m.lock, mode) {
			m.queue = append(m.queue, lockReq{from, mode})
			m.waiting[from] = true
			err := m.defer1(from, h, body)
			// Then the flag, then try again: a release that came between
			// the failed try and the flag saw no flag and sent no retry.
			orWord(m.lock, lockQueued)
			m.mu.Unlock()
			if err != nil {
				return err
			}
			m.retry()
			return nil
		}
		m.held[from] = mode
	}
	m.mu.Unlock()
	return w.apply(from, h, body)
}

// defer1 keeps a message of origin from, which waits behind its lock
// request, with its lock flags cleared once its request is queued.
// Callers hold m.mu.
func (m *lockManager) defer1(from int, h wire.Header, body am.Body) error {
	var data []byte
	if n := body.Len(); n > 0 {
		data = make([]byte, n)
		if err := body.ReadInto(data); err != nil {
			return err
		}
	}
	m.deferred[from] = append(m.deferred[from], deferred{h, data})
	return nil
}

// retry grants the queued requests that the lock now allows, oldest
// first, and applies what their origins sent after them.
func (m *lockManager) retry() {
	for {
		m.mu.Lock()
		if len(m.queue) == 0 {
			andWord(m.lock, ^lockQueued)
			m.mu.Unlock()
			return
		}
		head := m.queue[0]
		if !tryLock(m.lock, head.mode) {
			m.mu.Unlock()
			return
		}
		m.queue = m.queue[1:]
		m.held[head.from] = head.mode
		m.mu.Unlock()
		m.replay(head.from)
	}
}

// replay applies the messages that waited behind origin o's lock request,
// in order, until they are all done or one asks for a lock again that
// cannot be granted.
func (m *lockManager) replay(o int) {
	for {
		m.mu.Lock()
		if len(m.deferred[o]) == 0 {
			m.waiting[o] = false
			m.mu.Unlock()
			return
		}
		d := m.deferred[o][0]
		if d.h.Flags&(flagLockExcl|flagLockShared) != 0 && m.held[o] == lockNone {
			mode := lockModeOf(d.h.Flags)
			if !tryLock(m.lock, mode) {
				m.queue = append(m.queue, lockReq{o, mode})
				orWord(m.lock, lockQueued)
				m.mu.Unlock()
				return
			}
			m.held[o] = mode
		}
		m.deferred[o] = m.deferred[o][1:]
		m.mu.Unlock()
		if err := m.w.apply(o, d.h, bytesBody(d.data)); err != nil {
			// A message that breaks the protocol: the job cannot trust
			// this window any more.
			m.w.port.Abort(err)
			return
		}
	}
}

// release is origin o's unlock, applied here: the lock goes, the waiting
// requests get their turn, and same-node waiters are woken.
func (m *lockManager) release(o int) {
	m.mu.Lock()
	mode := m.held[o]
	m.held[o] = lockNone
	m.mu.Unlock()
	if mode == lockNone {
		return
	}
	unlockWord(m.lock, mode)
	m.w.ctls[m.w.rank].bell.Ring()
	m.retry()
}

func lockModeOf(flags uint8) lockMode {
	switch {
	case flags&flagLockExcl != 0:
		return lockModeExcl
	case flags&flagLockShared != 0:
		return lockModeShared
	}
	return lockNone
}

// apply carries out one message of origin from on this rank's memory.
func (w *winBase) apply(from int, h wire.Header, body am.Body) error {
	msg, op := msgOf(h)
	es := w.kind.size
	off, n := int(h.Arg0)*es, int(h.Call)*es
	bounds := func() error {
		if int(h.Arg0) < 0 || int(h.Call) < 0 || int(h.Arg0)+int(h.Call) > w.sizes[w.rank] {
			return fmt.Errorf("rma: message %d from rank %d for elements [%d,%d) of %d", msg, from, h.Arg0, int(h.Arg0)+int(h.Call), w.sizes[w.rank])
		}
		return nil
	}
	switch msg {
	case msgPut:
		if err := bounds(); err != nil {
			return err
		}
		if body.Len() != n {
			return fmt.Errorf("rma: put of %d bytes for %d elements from rank %d", body.Len(), h.Call, from)
		}
		if err := body.ReadInto(w.mem[off : off+n]); err != nil {
			return err
		}
		w.settle(from, h)
		return nil
	case msgGet:
		if err := bounds(); err != nil {
			return err
		}
		data := make([]byte, n)
		copy(data, w.mem[off:off+n])
		w.port.SendAsync(from, header(msgReply, 0, 0, 0, h.Arg1), data)
		return nil
	case msgAcc, msgGetAcc, msgCas:
		if err := bounds(); err != nil {
			return err
		}
		src, err := body.Bytes()
		if err != nil {
			return err
		}
		if err := w.kind.checkOp(op); err != nil && msg != msgCas {
			return fmt.Errorf("rma: from rank %d: %w", from, err)
		}
		ok := len(src) == n
		switch {
		case msg == msgCas:
			ok = len(src) == 2*es && h.Call == 1
		case msg == msgGetAcc && op == runtime.NoOp:
			ok = len(src) == 0 || len(src) == n
		}
		if !ok {
			return fmt.Errorf("rma: message %d from rank %d with %d bytes for %d elements", msg, from, len(src), h.Call)
		}
		var old []byte
		if msg != msgAcc {
			old = make([]byte, n)
		}
		w.updateMem(w.rank, off, int(h.Call), op, src, old, msg == msgCas)
		if msg != msgAcc {
			w.port.SendAsync(from, header(msgReply, 0, 0, 0, h.Arg1), old)
			return nil
		}
		w.settle(from, h)
		return nil
	case msgFlush:
		w.port.SendAsync(from, header(msgReply, 0, 0, 0, h.Arg1), nil)
		return nil
	case msgUnlock:
		w.mgr.release(from)
		if h.Flags&flagAck != 0 {
			w.port.SendAsync(from, header(msgReply, 0, 0, 0, h.Arg1), nil)
		}
		return nil
	case msgComplete:
		w.pscw.signal(func(s *pscwState) { s.completes++ })
		return nil
	}
	return fmt.Errorf("rma: unknown message %d from rank %d", msg, from)
}

// settle does what a put's or accumulate's flags ask once it is applied:
// release the lock (flagUnlock), then answer (flagAck).
func (w *winBase) settle(from int, h wire.Header) {
	if h.Flags&flagUnlock != 0 {
		w.mgr.release(from)
	}
	if h.Flags&flagAck != 0 {
		w.port.SendAsync(from, header(msgReply, 0, 0, 0, h.Arg1), nil)
	}
}

// updateMem applies op to count elements of rank r's memory from byte
// offset off, with the origin's elements src (or, with cas, one new element
// and one to compare), keeping the old elements in old if it is not nil,
// under r's accumulate lock (atomic.go). Rank r's memory is this rank's
// own, or a same-node rank's it maps.
func (w *winBase) updateMem(r, off, count int, op runtime.Op, src, old []byte, cas bool) {
	mem := w.direct[r]
	if r == w.rank {
		mem = w.mem
	}
	l := w.ctls[r].acc
	spinLock(l)
	w.kind.apply(mem[off:], count, op, src, old, cas)
	spinUnlock(l)
}

// bytesBody is an am.Body over bytes already read.
type bytesBody []byte

func (b bytesBody) Len() int { return len(b) }
func (b bytesBody) ReadInto(dst []byte) error {
	if len(dst) != len(b) {
		return fmt.Errorf("rma: ReadInto %d bytes from %d", len(dst), len(b))
	}
	copy(dst, b)
	return nil
}
func (b bytesBody) Bytes() ([]byte, error) { return b, nil }

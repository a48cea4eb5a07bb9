// Package inproc is the in-process transport: frames between ranks that live
// in the same process, either a rank talking to itself (MPI's self path) or
// the goroutine ranks of the test harness.
//
// A Link is one direction: frames sent on it are copied into a queue and
// delivered to the receiving Handler by the link's own goroutine, in order.
// Copying at Send keeps the Endpoint contract (the payload may be reused as
// soon as Send returns) and the delivery goroutine keeps the Handler contract
// (called from a transport goroutine, never from the sender's).
package inproc

import (
	"fmt"
	"sync"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

type frame struct {
	h       wire.Header
	payload []byte
}

// Link is a one-way in-process endpoint from rank From to a Handler.
type Link struct {
	from int
	to   transport.Handler

	mu      sync.Mutex
	queue   []frame
	closed  bool  // no more Sends
	broken  error // set by Break: report PeerLost after draining
	wake    chan struct{}
	stopped chan struct{}
}

// NewLink returns a link that delivers frames to h as coming from rank from,
// and starts its delivery goroutine. Close or Break ends it.
func NewLink(from int, h transport.Handler) *Link {
	l := &Link{from: from, to: h, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go l.deliver()
	return l
}

// Pair connects ranks a and b in both directions and returns the endpoint a
// sends on (to b) and the one b sends on (to a).
func Pair(a int, ha transport.Handler, b int, hb transport.Handler) (ab, ba *Link) {
	return NewLink(a, hb), NewLink(b, ha)
}

// Send implements transport.Endpoint.
func (l *Link) Send(h wire.Header, payload []byte) error {
	if len(payload) > wire.MaxPayload {
		return fmt.Errorf("inproc: payload of %d bytes exceeds %d", len(payload), wire.MaxPayload)
	}
	h.Len = uint32(len(payload))
	var p []byte
	if len(payload) > 0 {
		p = make([]byte, len(payload))
		copy(p, payload)
	}
	l.mu.Lock()
	if l.closed {
		err := l.broken
		l.mu.Unlock()
		if err != nil {
			return err
		}
		return transport.ErrClosed
	}
	l.queue = append(l.queue, frame{h, p})
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// TrySend implements transport.TrySender: a Send never waits here.
func (l *Link) TrySend(h wire.Header, payload []byte) (bool, error) {
	if err := l.Send(h, payload); err != nil {
		return false, err
	}
	return true, nil
}

// Close implements transport.Endpoint: frames already sent are delivered,
// then the delivery goroutine ends. Close waits for it.
func (l *Link) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.stopped
	return nil
}

// Break simulates the death of the sending side: queued frames are dropped,
// later Sends fail, and the receiver's Handler gets PeerLost(from, err).
func (l *Link) Break(err error) {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		l.broken = fmt.Errorf("%w: %v", transport.ErrPeerLost, err)
		l.queue = nil
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.stopped
}

func (l *Link) deliver() {
	defer close(l.stopped)
	for {
		l.mu.Lock()
		q := l.queue
		l.queue = nil
		closed, broken := l.closed, l.broken
		l.mu.Unlock()
		for i, f := range q {
			if err := l.to.HandleFrame(l.from, f.h, transport.BytesBody(f.payload)); err != nil {
				l.mu.Lock()
				l.closed = true
				l.broken = fmt.Errorf("%w: %v", transport.ErrPeerLost, err)
				l.mu.Unlock()
				l.to.PeerLost(l.from, fmt.Errorf("inproc: handling frame from %d: %w", l.from, err))
				return
			}
			q[i] = frame{}
		}
		if len(q) == 0 {
			if broken != nil {
				l.to.PeerLost(l.from, broken)
				return
			}
			if closed {
				return
			}
			<-l.wake
		}
	}
}

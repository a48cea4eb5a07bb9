package runtime

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/internal/am"
	"github.com/gorun-hpc/gorun/internal/shmsync"
	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// Active messages for the layers above (internal/am): a service opened on
// a communicator gets the KindAM frames whose Context is the
// communicator's point-to-point context, from HandleFrame on the receive
// path. Package rma opens one per window, on a Dup of the window's
// communicator that nothing else uses.

func init() { am.Open = openPort }

// services maps a context to its handler. It is replaced, never changed,
// so the receive path reads it with one atomic load.
type services = map[uint32]am.Handler

// port is an am.Port on communicator c.
type port struct {
	c      *Comm
	h      am.Handler
	closed atomic.Bool
	// serving is read-held while the handler runs and write-held by
	// Close, so Close returns only when no handler call is in flight: the
	// service may free what its handler touches (a window's mapping) as
	// soon as Close returns.
	serving sync.RWMutex
	done    bool // under serving
}

func openPort(comm any, h am.Handler) (am.Port, error) {
	c, ok := comm.(*Comm)
	if !ok || c == nil {
		return nil, am.ErrNotRuntime
	}
	if err := c.usable(); err != nil {
		return nil, err
	}
	w := c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.services.Load()
	if _, dup := (*old)[c.ctx]; dup {
		return nil, fmt.Errorf("am: a service is open on %s already", c.name)
	}
	next := make(services, len(*old)+1)
	for k, v := range *old {
		next[k] = v
	}
	p := &port{c: c, h: h}
	next[c.ctx] = p.serve
	w.services.Store(&next)
	return p, nil
}

// serve runs the handler unless the port has closed.
func (p *port) serve(from int, h wire.Header, body am.Body) error {
	p.serving.RLock()
	defer p.serving.RUnlock()
	if p.done {
		return nil // as a frame after Close: nobody waits for it
	}
	return p.h(from, h, body)
}

func (p *port) Rank() int { return p.c.rank }
func (p *port) Size() int { return p.c.size }

func (p *port) header(h wire.Header) wire.Header {
	h.Kind, h.Context, h.Src = wire.KindAM, p.c.ctx, int32(p.c.rank)
	return h
}

func (p *port) Send(to int, h wire.Header, payload []byte) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if err := p.c.w.err(); err != nil {
		return err
	}
	return p.c.w.send(p.c.group[to], p.header(h), payload)
}

func (p *port) SendAsync(to int, h wire.Header, payload []byte) {
	if p.closed.Load() {
		return
	}
	p.c.w.sendAsync(p.c.group[to], p.header(h), payload)
}

func (p *port) Await(done func() bool, wake <-chan struct{}) error {
	return p.c.w.await(done, wake)
}

func (p *port) WaitPolicy() shmsync.Policy { return p.c.w.wait }

func (p *port) Err() error {
	if !p.c.w.broken.Load() {
		return nil
	}
	return p.c.w.failureErr()
}

func (p *port) Failed() <-chan struct{} { return p.c.w.failed }

func (p *port) Abort(cause error) {
	p.c.w.abort(fmt.Errorf("rank %d of %s: %w", p.c.rank, p.c.name, cause))
}

func (p *port) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	w := p.c.w
	w.mu.Lock()
	old := w.services.Load()
	next := make(services, len(*old))
	for k, v := range *old {
		if k != p.c.ctx {
			next[k] = v
		}
	}
	w.services.Store(&next)
	w.closedServices[p.c.ctx] = true
	w.mu.Unlock()
	// Wait out a handler call that looked the service up before it went.
	p.serving.Lock()
	p.done = true
	p.serving.Unlock()
	return nil
}

// amSpin is how long the TCP receive goroutines poll after an active
// message: a few round trips of a one-sided epoch.
const amSpin = 100 * time.Microsecond

// onAM hands an active message to its service.
func (w *world) onAM(from int, h wire.Header, body transport.Body) error {
	// The next message of a one-sided epoch usually follows within a few
	// microseconds (a flush after a put): poll for it rather than park.
	w.spinFor(amSpin)
	if hd := (*w.services.Load())[h.Context]; hd != nil {
		return hd(int(h.Src), h, body)
	}
	w.mu.Lock()
	gone := w.closedServices[h.Context] || w.failure != nil
	w.mu.Unlock()
	if gone {
		// A message nobody waits for (an unanswered unlock) that arrived
		// after its service closed here.
		return nil
	}
	return fmt.Errorf("active message for no open service (context %d) from world rank %d", h.Context, from)
}

// await blocks until done reports true (signalled on wake) or the world
// fails: the wait of am.Port, polling first like Request.Wait.
func (w *world) await(done func() bool, wake <-chan struct{}) error {
	if done() {
		return nil
	}
	w.waiting()
	if w.pollUntil(done, nil) {
		return nil
	}
	select {
	case <-wake:
		return nil
	case <-w.failed:
		if done() {
			return nil
		}
		return w.failureErr()
	}
}

package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Life is the bookkeeping a stream transport shares between Connect, the
// goroutines it starts and Close, for endpoints of type E. The zero value
// is ready to use.
type Life[E any] struct {
	Killed atomic.Bool    // Close ran: connections were cut without goodbye
	WG     sync.WaitGroup // Connect calls and receive goroutines

	mu        sync.Mutex
	closed    bool
	connected bool               // Begin was called
	cancel    context.CancelFunc // ends a running Connect
	eps       []E
}

// Begin starts a Connect of the transport called name at rank self with
// peer addresses addrs and handler h. It fails if h is nil, self is
// outside the world, Close has run (wrapping errClosed) or Connect was
// called before. Otherwise it returns a context that Close cancels; the
// caller must call WG.Done and cancel when Connect returns.
func (l *Life[E]) Begin(ctx context.Context, name string, self int, addrs []string, h Handler, errClosed error) (context.Context, context.CancelFunc, error) {
	if h == nil {
		return nil, nil, fmt.Errorf("%s: rank %d: connect: nil handler", name, self)
	}
	if self >= len(addrs) {
		return nil, nil, fmt.Errorf("%s: rank %d: connect: rank outside a world of %d", name, self, len(addrs))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, nil, fmt.Errorf("%s: rank %d: connect: %w", name, self, errClosed)
	case l.connected:
		return nil, nil, fmt.Errorf("%s: rank %d: connect: called twice", name, self)
	}
	l.connected = true
	ctx, cancel := context.WithCancel(ctx)
	l.cancel = cancel
	l.WG.Add(1)
	return ctx, cancel, nil
}

// Closed reports whether Close has run.
func (l *Life[E]) Closed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Adopt calls start under the lock that Close takes, unless Close has run
// (then it reports closed). start starts the endpoints' goroutines and
// returns the endpoints, which Close will kill.
func (l *Life[E]) Adopt(start func() ([]E, error)) (closed bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return true, nil
	}
	eps, err := start()
	if err != nil {
		return false, err
	}
	l.eps = append(l.eps, eps...)
	return false, nil
}

// Shutdown is the body of the transport's Close: it sets Killed, ends a
// running Connect, closes ln, calls kill for every adopted endpoint and
// waits for WG. It returns the endpoints, and ln's error unless ln was
// already closed. Called again, it only waits for WG and returns nothing.
func (l *Life[E]) Shutdown(ln io.Closer, kill func(E)) ([]E, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.WG.Wait()
		return nil, nil
	}
	l.closed = true
	l.Killed.Store(true)
	if l.cancel != nil {
		l.cancel()
	}
	eps := l.eps
	l.mu.Unlock()
	err := ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	for _, e := range eps {
		kill(e)
	}
	l.WG.Wait()
	return eps, err
}

package tcp

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sockets outside the netpoller.
//
// Go's netpoller registers every socket it owns with its epoll instance,
// edge-triggered, for good. Whenever a P is idle, one of the process's
// threads waits in that epoll (for timers, or for any goroutine parked on
// a socket), and every segment that arrives on any registered socket wakes
// it, even when no goroutine waits for that socket. For a rank whose
// callers read their sockets themselves (poll.go), that is one futile
// thread wake-up per message, taken from the core the peer rank runs on:
// at the default of two Ps per rank, loopback ping-pong went from 6.5 to
// 13 µs per message with it (docs/performance.md).
//
// So once a connection is authenticated, its descriptor leaves the
// netpoller: the endpoint keeps a duplicate (sock) and closes the
// net.TCPConn, which takes the original out of Go's epoll. A sock is
// read with non-blocking read(2) as before. A receive goroutine that must
// wait for data arms the sock, one shot, in the transport's own epoll
// (waker), whose one goroutine hands the readiness on; while callers
// poll, nothing is armed and nothing wakes. A writer that finds the socket
// full waits in poll(2), in slices, so that Close and deadlines take
// effect.

// sockWait bounds one poll(2) of a writer waiting for room, so that it
// notices Close and its deadline.
const sockWait = 10 * time.Millisecond

// sock is one connected socket descriptor that Go's netpoller does not
// know. It implements syscall.RawConn for the reader. Its methods are
// safe for concurrent use; Read (waiting for data) is used by one
// goroutine at a time, the connection's receive goroutine.
type sock struct {
	fd int
	id uint32 // key in w.socks; 0 for none
	w  *waker

	// state counts the calls using fd (in units of 2) and has bit 0 set
	// once Close began. fd is closed when both hold: closed, no users.
	state atomic.Int64

	wdl    atomic.Int64  // write deadline, Unix nanoseconds; 0: none
	rready chan struct{} // 1-buffered: the socket became readable, or Close
}

// newSock takes conn's descriptor out of the netpoller: it keeps a
// duplicate, registered (unarmed) with w, and closes conn.
func newSock(conn *net.TCPConn, w *waker) (*sock, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(f uintptr) {
		fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	// The duplicate shares the file status flags: it stays O_NONBLOCK.
	s := &sock{fd: fd, w: w, rready: make(chan struct{}, 1)}
	if err := w.add(s); err != nil {
		unix.Close(fd)
		return nil, err
	}
	conn.Close() // removes the original from Go's epoll; the socket lives on in fd
	return s, nil
}

// acquire counts a user of fd; it fails once Close began.
func (s *sock) acquire() bool {
	for {
		v := s.state.Load() // acquire (seq-cst)
		if v&1 != 0 {
			return false
		}
		if s.state.CompareAndSwap(v, v+2) { // seq-cst
			return true
		}
	}
}

// release uncounts a user; the last one after Close closes fd.
func (s *sock) release() {
	if s.state.Add(-2) == 1 { // seq-cst: closed and no users left
		s.destroy()
	}
}

// Close makes every later use fail with net.ErrClosed, wakes a waiting
// Read, and closes the descriptor once the calls in progress return
// (writers within sockWait). The peer sees the connection end as it would
// after net.Conn.Close. Safe to call more than once.
func (s *sock) Close() error {
	old := s.state.Or(1) // seq-cst
	if old&1 != 0 {
		return nil
	}
	s.wake()
	if old == 0 {
		s.destroy()
	}
	return nil
}

func (s *sock) destroy() {
	s.w.remove(s)
	unix.Close(s.fd)
}

func (s *sock) closed() bool { return s.state.Load()&1 != 0 } // seq-cst

func (s *sock) wake() {
	select {
	case s.rready <- struct{}{}:
	default:
	}
}

// Control implements syscall.RawConn.
func (s *sock) Control(f func(fd uintptr)) error {
	if !s.acquire() {
		return net.ErrClosed
	}
	defer s.release()
	f(uintptr(s.fd))
	return nil
}

// Read implements syscall.RawConn: f is called until it returns true;
// between calls that return false the goroutine waits until the socket is
// readable (armed in the waker) or Close.
func (s *sock) Read(f func(fd uintptr) bool) error {
	if !s.acquire() {
		return net.ErrClosed
	}
	defer s.release()
	for !f(uintptr(s.fd)) {
		if s.closed() {
			return net.ErrClosed
		}
		if err := s.w.arm(s); err != nil {
			return err
		}
		<-s.rready
		if s.closed() {
			return net.ErrClosed
		}
	}
	return nil
}

// Write implements syscall.RawConn: f is called until it returns true;
// between calls that return false the goroutine waits in poll(2) until
// the socket has room, Close, or the write deadline.
func (s *sock) Write(f func(fd uintptr) bool) error {
	if !s.acquire() {
		return net.ErrClosed
	}
	defer s.release()
	pfd := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLOUT}}
	for !f(uintptr(s.fd)) {
		wait := sockWait
		if d := s.wdl.Load(); d != 0 {
			left := time.Until(time.Unix(0, d))
			if left <= 0 {
				return os.ErrDeadlineExceeded
			}
			wait = min(wait, left)
		}
		if s.closed() {
			return net.ErrClosed
		}
		if _, err := unix.Poll(pfd, int(wait.Milliseconds())+1); err != nil && err != unix.EINTR {
			return os.NewSyscallError("poll", err)
		}
	}
	return nil
}

// SetWriteDeadline bounds the writes in progress and later ones; the zero
// time removes the bound.
func (s *sock) SetWriteDeadline(t time.Time) {
	var d int64
	if !t.IsZero() {
		d = max(t.UnixNano(), 1)
	}
	s.wdl.Store(d) // seq-cst: a writer sees it within sockWait
}

// writev writes all of iov (which it consumes), waiting for room as
// needed, and returns how many bytes went out.
func (s *sock) writev(iov [][]byte) (int, error) {
	total := 0
	var werr error
	err := s.Write(func(fd uintptr) bool {
		for len(iov) > 0 {
			n, err := unix.Writev(int(fd), iov)
			if n > 0 {
				total += n
				iov = consume(iov, n)
			}
			switch err {
			case nil:
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				werr = os.NewSyscallError("writev", err)
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return total, err
}

// consume drops the first n bytes of iov.
func consume(iov [][]byte, n int) [][]byte {
	for len(iov) > 0 && n >= len(iov[0]) {
		n -= len(iov[0])
		iov[0] = nil
		iov = iov[1:]
	}
	if len(iov) > 0 {
		iov[0] = iov[0][n:]
	}
	return iov
}

// CloseWrite shuts the sending side: the peer reads EOF after the bytes
// sent.
func (s *sock) CloseWrite() error {
	if !s.acquire() {
		return net.ErrClosed
	}
	defer s.release()
	return os.NewSyscallError("shutdown", unix.Shutdown(s.fd, unix.SHUT_WR))
}

// waker is a transport's own epoll instance, holding every sock, and the
// goroutine that waits on it: it wakes the receive goroutine of a sock
// that was armed and became readable (or hung up). Each arming is one
// shot (EPOLLONESHOT), so a socket that callers read meanwhile wakes
// nobody more than once. The goroutine waits for the epoll descriptor
// itself in Go's netpoller (it is readable while an armed sock is ready),
// so no thread and no P is held waiting, and an epoll with nothing armed
// wakes nothing. It starts with the first sock and ends at stop.
type waker struct {
	mu      sync.Mutex
	ep      *os.File // the epoll descriptor, in the netpoller; nil until started
	epfd    int
	socks   map[uint32]*sock
	next    uint32
	stopped bool
	done    chan struct{}
}

func (w *waker) start() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return os.NewSyscallError("fcntl", err)
	}
	ep := os.NewFile(uintptr(epfd), "tcp-epoll") // non-blocking: goes to the netpoller
	rc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return err
	}
	w.ep, w.epfd = ep, epfd
	w.socks = make(map[uint32]*sock)
	w.done = make(chan struct{})
	go w.loop(rc)
	return nil
}

// add registers s, unarmed (it reports only a hang-up or error, once,
// until armed).
func (w *waker) add(s *sock) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return ErrTransportClosed
	}
	if w.ep == nil {
		if err := w.start(); err != nil {
			return err
		}
	}
	w.next++
	s.id = w.next
	ev := unix.EpollEvent{Events: unix.EPOLLONESHOT, Fd: int32(s.id)}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	w.socks[s.id] = s
	return nil
}

// arm asks for one wake-up of s's Read when the socket becomes readable
// (at once if it is).
func (w *waker) arm(s *sock) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return net.ErrClosed
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(s.id)}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, s.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// remove unregisters s before its descriptor is closed.
func (w *waker) remove(s *sock) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.socks, s.id)
	if !w.stopped {
		unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
	}
}

func (w *waker) loop(rc syscall.RawConn) {
	defer close(w.done)
	var evs [32]unix.EpollEvent
	// Made once: a closure passed to the RawConn is allocated.
	drain := func(fd uintptr) bool {
		n, err := unix.EpollWait(int(fd), evs[:], 0)
		if err != nil || n == 0 {
			return err == unix.EINTR // empty: wait in the netpoller
		}
		w.mu.Lock()
		for _, ev := range evs[:n] {
			if s := w.socks[uint32(ev.Fd)]; s != nil {
				s.wake()
			}
		}
		w.mu.Unlock()
		return true
	}
	for {
		if err := rc.Read(drain); err != nil {
			return // stop closed the epoll descriptor
		}
	}
}

// stop ends the goroutine and releases the epoll instance. Socks still
// open are closed by their owners; their descriptors leave the closed
// epoll with them.
func (w *waker) stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	ep := w.ep
	w.mu.Unlock()
	if ep == nil {
		return
	}
	ep.Close() // wakes loop's Read with an error; the descriptor closes after it
	<-w.done
}

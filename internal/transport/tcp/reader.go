package tcp

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorun-hpc/gorun/internal/wire"
	"golang.org/x/sys/unix"
)

const (
	// bufSize is the per-connection receive buffer. Small frames are read
	// many at a time into it; it is also the largest payload Body.Bytes
	// serves without a second buffer. It is per peer, so it is kept modest
	// (a 1000-rank job holds 1000 of them).
	bufSize = 64 << 10

	// directMin is the payload remainder from which ReadInto reads straight
	// into the caller's memory instead of through the buffer. Below it, one
	// buffered read that may also bring the next headers is cheaper than an
	// extra syscall per frame; above it the copy costs more than the call.
	directMin = 16 << 10

	// spinBudget bounds one spell of polling the socket while Config.Spin
	// says to. A reply that is a few network hops away arrives well within
	// it; past it the peer is evidently busy, and parking
	// (a few microseconds more on wake-up) is cheaper than a burnt core.
	spinBudget = 50 * time.Microsecond
)

// reader is a buffered reader over one socket. Unlike bufio over net.Conn it
// reads with non-blocking syscalls inside RawConn.Read, so it can poll the
// socket for a while (spin) before parking the goroutine,
// and it can read large payloads straight into the caller's memory.
//
// It is used by whoever holds the endpoint's token (poll.go): the receive
// goroutine, which waits in sock.Read, or a caller inside Poll
// (byCaller), which must not wait there: that is the receive goroutine's
// (one waiter per sock), so a caller reads through RawConn.Control and
// waits for the rest of a frame with poll(2).
type reader struct {
	rc     syscall.RawConn
	spin   func() bool  // nil: never spin
	stop   *atomic.Bool // set when the connection is closing: stop spinning now
	killed *atomic.Bool // set when the connection was cut: a caller stops waiting

	byCaller bool // a caller in Poll reads (RawConn.Control, poll(2))
	try      bool // byCaller: return with nothing rather than wait
	pfd      [1]unix.PollFd

	buf  []byte
	r, w int   // buf[r:w] holds bytes read but not consumed
	err  error // sticky: once the stream failed, it stays failed

	// readFn's argument and results; kept in the struct so the callback
	// passed to RawConn.Read is allocated once, not per read.
	dst    []byte
	n      int
	rerr   error
	readFn func(uintptr) bool
	ctlFn  func(uintptr)
	spinFn func(uintptr) bool // spinAgain
	waitFn func(uintptr) bool // callerAgain
	start  time.Time          // readFD: when the socket was first found empty
}

func (rd *reader) init(rc syscall.RawConn, spin func() bool, stop, killed *atomic.Bool) {
	rd.rc, rd.spin, rd.stop, rd.killed = rc, spin, stop, killed
	rd.buf = make([]byte, bufSize)
	rd.readFn = rd.poll
	rd.ctlFn = rd.callerRead
	rd.spinFn, rd.waitFn = rd.spinAgain, rd.callerAgain
}

func (rd *reader) buffered() int { return rd.w - rd.r }

// readSome reads at least one byte into p (len(p) > 0), waiting as needed.
// It returns io.EOF at the end of the stream.
func (rd *reader) readSome(p []byte) (int, error) {
	if rd.err != nil {
		return 0, rd.err
	}
	rd.dst, rd.n, rd.rerr = p, 0, nil
	var err error
	if rd.byCaller {
		err = rd.rc.Control(rd.ctlFn)
	} else {
		err = rd.rc.Read(rd.readFn)
	}
	rd.dst = nil
	if err == nil {
		err = rd.rerr
	}
	if err != nil {
		rd.err = err
		return 0, err
	}
	return rd.n, nil
}

// readFD reads into rd.dst until it gets bytes or an error (true), or
// again, called when the socket is empty, says to give up (false). Go
// keeps its sockets O_NONBLOCK, and so does sock, so unix.Read never
// blocks here. (A raw
// syscall, skipping the scheduler's entersyscall, was measured: spinning
// between two processes got about 4x slower with it, so it is not used.)
func (rd *reader) readFD(fd uintptr, again func(fd uintptr) bool) bool {
	rd.start = time.Time{}
	for {
		n, err := unix.Read(int(fd), rd.dst)
		switch err {
		case nil:
			if n == 0 {
				rd.rerr = io.EOF
			}
			rd.n = n
			return true
		case unix.EINTR:
		case unix.EAGAIN:
			if !again(fd) {
				return false
			}
		default:
			rd.rerr = os.NewSyscallError("read", err)
			return true
		}
	}
}

// poll is the RawConn.Read callback of the receive goroutine: true when it
// read something or failed for good, false to have the runtime park until
// the socket is readable.
func (rd *reader) poll(fd uintptr) bool { return rd.readFD(fd, rd.spinFn) }

// spinAgain says whether the receive goroutine polls an empty socket
// again: while Config.Spin says so, for up to spinBudget.
func (rd *reader) spinAgain(uintptr) bool {
	if rd.spin == nil || rd.stop.Load() || !rd.spin() {
		return false
	}
	if rd.start.IsZero() {
		rd.start = time.Now()
	} else if time.Since(rd.start) > spinBudget {
		return false
	}
	// Yield the P between polls: a goroutine the handler just woke (the
	// application waiting for this message) runs at once instead of
	// after the budget. Measured faster even with nothing else to run.
	runtime.Gosched()
	return true
}

// callerWait bounds one poll(2) of a caller waiting for the rest of a
// frame, so that it notices a cut connection (killed).
const callerWait = 10 // ms

// callerRead is the RawConn.Control callback of a caller's read: like
// poll, but it never parks in sock.Read. In try mode it returns with
// nothing when the socket is empty; otherwise (the rest of a frame whose
// start was read, so on its way) it yields for up to spinBudget, then waits
// in poll(2).
func (rd *reader) callerRead(fd uintptr) { rd.readFD(fd, rd.waitFn) }

// callerAgain is callerRead's answer to an empty socket.
func (rd *reader) callerAgain(fd uintptr) bool {
	if rd.try {
		return false
	}
	if rd.killed.Load() {
		rd.rerr = net.ErrClosed
		return false
	}
	if rd.start.IsZero() {
		rd.start = time.Now()
	}
	if time.Since(rd.start) < spinBudget {
		runtime.Gosched()
		return true
	}
	rd.pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	if _, err := unix.Poll(rd.pfd[:], callerWait); err != nil && err != unix.EINTR {
		rd.rerr = os.NewSyscallError("poll", err)
		return false
	}
	return true
}

// room makes space for n <= len(buf) more bytes after what is buffered,
// moving it to the front if need be.
func (rd *reader) room(n int) {
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
	} else if rd.r+n > len(rd.buf) {
		rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.r = 0
	}
}

// tryFill reads what the socket has now into buf without waiting (a caller
// at a frame boundary), after making room for a header. It reports whether
// it read anything.
func (rd *reader) tryFill() (bool, error) {
	rd.room(wire.HeaderSize)
	rd.try = true
	n, err := rd.readSome(rd.buf[rd.w:])
	rd.try = false
	rd.w += n
	return n > 0, err
}

// fill reads more bytes into the free tail of buf. The caller makes sure
// there is room.
func (rd *reader) fill() error {
	n, err := rd.readSome(rd.buf[rd.w:])
	rd.w += n
	return err
}

// ensure makes n <= len(buf) bytes available contiguously at buf[r:].
func (rd *reader) ensure(n int) error {
	if rd.buffered() >= n {
		return nil
	}
	rd.room(n)
	for rd.buffered() < n {
		if err := rd.fill(); err != nil {
			return err
		}
	}
	return nil
}

// readFull fills dst from the stream: first what is buffered, then large
// remainders straight from the socket into dst.
func (rd *reader) readFull(dst []byte) error {
	k := copy(dst, rd.buf[rd.r:rd.w])
	rd.r += k
	dst = dst[k:]
	for len(dst) > 0 {
		if len(dst) >= directMin {
			n, err := rd.readSome(dst)
			if err != nil {
				return err
			}
			dst = dst[n:]
			continue
		}
		rd.r, rd.w = 0, 0
		if err := rd.fill(); err != nil {
			return err
		}
		k := copy(dst, rd.buf[rd.r:rd.w])
		rd.r += k
		dst = dst[k:]
	}
	return nil
}

// discard drops n bytes of the stream.
func (rd *reader) discard(n int) error {
	for n > 0 {
		if rd.r == rd.w {
			rd.r, rd.w = 0, 0
			if err := rd.fill(); err != nil {
				return err
			}
		}
		k := min(n, rd.buffered())
		rd.r += k
		n -= k
	}
	return nil
}

// ReadFull, Discard and Lend make the reader the transport.Stream (and
// Lender) of the connection's StreamBody.
func (rd *reader) ReadFull(dst []byte) error { return rd.readFull(dst) }

// Discard implements transport.Stream.
func (rd *reader) Discard(n int) error { return rd.discard(n) }

// Lend implements transport.Lender: a payload that fits the buffer is
// returned in place.
func (rd *reader) Lend(n int) ([]byte, bool, error) {
	if n > len(rd.buf) {
		return nil, false, nil
	}
	if err := rd.ensure(n); err != nil {
		return nil, false, err
	}
	p := rd.buf[rd.r : rd.r+n : rd.r+n]
	rd.r += n
	return p, true, nil
}

//go:build linux

package shm

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the helper processes of the cross-process
// tests, as os/exec's tests do: a child started by spawn runs
// helpers[$GORUN_SHM_TEST_HELPER] with a Unix socket on descriptor 3.
const (
	helperEnv = "GORUN_SHM_TEST_HELPER"
	prefixEnv = "GORUN_SHM_TEST_PREFIX"
)

// helpers are the child programs. Each returns the child's failure, if any.
var helpers = map[string]func(conn *net.UnixConn) error{}

// prefix tags every named segment of this test run, like a job tag.
var prefix = fmt.Sprintf("shmtest-%d-", os.Getpid())

// deadline bounds every wait in the tests; hitting it is a failure.
const deadline = 60 * time.Second

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		os.Exit(runHelper(name))
	}
	// Start the network poller before counting descriptors: it keeps an
	// epoll descriptor and an eventfd for the life of the process.
	if a, b, err := socketpair(); err == nil {
		a.Close()
		b.Close()
	}
	before := openFDs()
	code := m.Run()
	if left, _ := filepath.Glob(filepath.Join(DefaultDir, prefix+"*")); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "leak: segments left in %s: %v\n", DefaultDir, left)
		code = 1
	}
	if after := openFDs(); len(after) != len(before) {
		fmt.Fprintf(os.Stderr, "leak: %d descriptors open at start, %d at end: %v\n", len(before), len(after), after)
		code = 1
	}
	os.Exit(code)
}

func runHelper(name string) int {
	if p := os.Getenv(prefixEnv); p != "" {
		prefix = p
	}
	fn := helpers[name]
	if fn == nil {
		fmt.Fprintf(os.Stderr, "no helper %q\n", name)
		return 2
	}
	c, err := net.FileConn(os.NewFile(3, "helper-socket"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	conn := c.(*net.UnixConn)
	conn.SetDeadline(time.Now().Add(deadline))
	if err := fn(conn); err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", name, err)
		return 1
	}
	return 0
}

// openFDs lists this process's descriptors and what they refer to, except
// profiles that the testing package leaves open.
func openFDs() []string {
	var profiles []string
	for _, name := range []string{"cpuprofile", "memprofile", "blockprofile", "mutexprofile", "trace", "coverprofile"} {
		if f := flag.Lookup("test." + name); f != nil && f.Value.String() != "" {
			profiles = append(profiles, filepath.Base(f.Value.String()))
		}
	}
	entries, _ := os.ReadDir("/proc/self/fd")
	var fds []string
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || slices.Contains(profiles, filepath.Base(target)) {
			continue // err: the descriptor of the directory being read
		}
		fds = append(fds, e.Name()+"->"+target)
	}
	return fds
}

func socketpair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fds[0]), "parent-socket")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	return c.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "child-socket"), nil
}

// child is a helper process and the parent's end of its socket.
type child struct {
	cmd    *exec.Cmd
	conn   *net.UnixConn
	stderr bytes.Buffer
	exited chan struct{} // closed when cmd.Wait returns
	err    error         // from cmd.Wait
}

// spawn starts helper name as a child process. The child is killed and
// reaped at the end of the test if it is still running.
func spawn(tb testing.TB, name string) *child {
	tb.Helper()
	conn, peer, err := socketpair()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	c := &child{conn: conn, exited: make(chan struct{})}
	c.cmd = exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), helperEnv+"="+name, prefixEnv+"="+prefix)
	c.cmd.ExtraFiles = []*os.File{peer}
	c.cmd.Stderr = &c.stderr
	err = c.cmd.Start()
	peer.Close()
	if err != nil {
		cancel()
		conn.Close()
		tb.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		cancel()
		close(c.exited)
	}()
	conn.SetDeadline(time.Now().Add(deadline))
	tb.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.exited
		conn.Close()
	})
	return c
}

// wait waits for the child to exit and fails the test if it failed.
func (c *child) wait(tb testing.TB) {
	tb.Helper()
	<-c.exited
	if c.err != nil {
		tb.Fatalf("child: %v\n%s", c.err, c.stderr.String())
	}
}

// kill sends SIGKILL and waits for the child to die.
func (c *child) kill(tb testing.TB) {
	tb.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		tb.Fatal(err)
	}
	<-c.exited
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		tb.Fatalf("child ended with %v, not SIGKILL\n%s", c.err, c.stderr.String())
	}
}

// sendSegment passes s to the child with its size as meta.
func (c *child) sendSegment(tb testing.TB, s *Segment) {
	tb.Helper()
	if err := SendFD(c.conn, s.FD(), binary.LittleEndian.AppendUint64(nil, uint64(s.Size()))); err != nil {
		tb.Fatal(err)
	}
}

// recvSegment is the child's side of sendSegment.
func recvSegment(conn *net.UnixConn) (*Segment, error) {
	var meta [8]byte
	fd, _, err := RecvFD(conn, meta[:])
	if err != nil {
		return nil, err
	}
	return FromFD(fd, int64(binary.LittleEndian.Uint64(meta[:])))
}

// awaitWord blocks until *w == want, with the test deadline.
func awaitWord(w *uint32, want uint32) error {
	end := time.Now().Add(deadline)
	for {
		v := atomic.LoadUint32(w) // seq-cst: pairs with the peer's store
		if v == want {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("word is %d, want %d after %v", v, want, deadline)
		}
		if err := Wait(w, v, time.Second); err != nil && err != ErrTimeout {
			return err
		}
	}
}

// setWord stores v and wakes every waiter.
func setWord(w *uint32, v uint32) error {
	atomic.StoreUint32(w, v) // seq-cst: publishes all earlier writes
	_, err := Wake(w, math.MaxInt32)
	return err
}

// segmentsLeft lists this run's named segments in DefaultDir matching p.
func segmentsLeft(tb testing.TB, p string) []string {
	tb.Helper()
	entries, err := os.ReadDir(DefaultDir)
	if err != nil {
		tb.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), p) {
			left = append(left, e.Name())
		}
	}
	return left
}

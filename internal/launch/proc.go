package launch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// proc is one rank's process and its plumbing.
type proc struct {
	rank int
	cpu  int // the CPU the rank is bound to, or -1
	host string
	cmd  *exec.Cmd
	tail *tail

	outs    []*os.File     // our read ends of its stdout and stderr
	outDone sync.WaitGroup // the forwarders of outs
	stdin   *os.File       // our write end of its stdin pipe, if we copy
	inDone  chan struct{}  // closed when the stdin copier ends; nil if none

	// mu orders signals against reaping: a signal is sent to the process
	// group only while the leader is unreaped (alive or a zombie), so the
	// group id cannot have been recycled.
	mu     sync.Mutex
	pid    int
	reaped bool
	exit   RankExit // valid once reaped
}

// start launches p.cmd from a goroutine that keeps its OS thread locked
// until the rank is reaped: Pdeathsig fires when the thread that forked
// the child exits, not the process (golang/go#27505), so the thread must
// outlive the rank. On success the goroutine later sends p.rank on exited.
func (p *proc) start(exited chan<- int) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		restore := func() {}
		if p.cpu >= 0 {
			r, err := bindThread(p.cpu)
			if err != nil {
				started <- fmt.Errorf("binding rank %d to CPU %d: %w", p.rank, p.cpu, err)
				return
			}
			restore = r
		}
		err := p.cmd.Start()
		restore()
		if err != nil {
			started <- err
			return
		}
		p.mu.Lock()
		p.pid = p.cmd.Process.Pid
		p.mu.Unlock()
		started <- nil
		p.wait()
		exited <- p.rank
	}()
	return <-started
}

// wait blocks until the rank exits, kills what it left in its process
// group, and reaps it.
func (p *proc) wait() {
	// Wait without reaping first, so the group id stays reserved by the
	// zombie leader while we kill the group.
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	syscall.Kill(-p.pid, syscall.SIGKILL)
	p.cmd.Wait()
	p.reaped = true
	p.exit = RankExit{Rank: p.rank, PID: p.pid, Code: -1}
	if st := p.cmd.ProcessState; st != nil {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.exit.Signal = ws.Signal()
		} else {
			p.exit.Code = st.ExitCode()
		}
	}
}

// signal sends sig to the rank's process group; it is a no-op once the
// rank is reaped. It reports whether the signal was sent.
func (p *proc) signal(sig syscall.Signal) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid == 0 || p.reaped {
		return false
	}
	return syscall.Kill(-p.pid, sig) == nil
}

// plumb creates the rank's output pipes (and stdin pipe, when in is to be
// copied) and sets them on p.cmd. The child's ends are returned so the
// caller closes them after Start.
func (p *proc) plumb(in io.Reader) (childEnds []*os.File, err error) {
	defer func() {
		if err != nil {
			for _, f := range append(childEnds, p.outs...) {
				f.Close()
			}
			childEnds, p.outs = nil, nil
		}
	}()
	for i := range 2 {
		r, w, err := os.Pipe()
		if err != nil {
			return childEnds, fmt.Errorf("launch: rank %d output pipe: %w", p.rank, err)
		}
		p.outs = append(p.outs, r)
		childEnds = append(childEnds, w)
		if i == 0 {
			p.cmd.Stdout = w
		} else {
			p.cmd.Stderr = w
		}
	}
	switch f, ok := in.(*os.File); {
	case in == nil:
	case ok && !isTerminal(f):
		p.cmd.Stdin = f
	default:
		r, w, err := os.Pipe()
		if err != nil {
			return childEnds, fmt.Errorf("launch: rank %d stdin pipe: %w", p.rank, err)
		}
		childEnds = append(childEnds, r)
		p.cmd.Stdin = r
		p.stdin = w
	}
	return childEnds, nil
}

// forward starts the goroutines that copy the rank's output and stdin.
func (p *proc) forward(out *output, in io.Reader, tag bool) {
	label := fmt.Appendf(nil, "[%d] ", p.rank)
	var prefix []byte
	if tag {
		prefix = label
	}
	p.outDone.Add(2)
	go func() { defer p.outDone.Done(); out.forward(p.outs[0], out.stdout, prefix, label, nil) }()
	go func() { defer p.outDone.Done(); out.forward(p.outs[1], out.stderr, prefix, label, p.tail) }()
	if p.stdin != nil {
		p.inDone = make(chan struct{})
		go func() {
			defer close(p.inDone)
			// EPIPE once the rank exits or stops reading is expected.
			io.Copy(p.stdin, in)
			p.stdin.Close()
		}()
	}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return fmt.Sprintf("signal %d", int(sig))
}

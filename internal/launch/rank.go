package launch

import (
	"fmt"
	"io"
	"os/exec"
	goruntime "runtime"
	"syscall"
	"time"
)

// A rankProc is a started rank, wherever it runs: all the supervisor needs
// of it. A rank started here (proc, a child process of gorun) is one
// implementation; a rank started by an agent on another host is another.
// Its methods may be called from any goroutine.
type rankProc interface {
	// Host is the host the rank runs on, for reports.
	Host() string
	// Signal sends sig to the rank's process group unless the rank has
	// been reaped, and reports whether it was sent.
	Signal(sig syscall.Signal) bool
	// Exit is how the rank ended; valid once its starter has sent the
	// rank's number on the exited channel.
	Exit() RankExit
	// StderrTail returns the rank's last lines of stderr.
	StderrTail() []string
	// Blocked says where its main goroutine waited in its last goroutine
	// dump (after a timeout's SIGQUIT), or "".
	Blocked() string
	// OutputDone is closed when the rank's stdout and stderr have been
	// forwarded to their end.
	OutputDone() <-chan struct{}
	// CutOutput makes the forwarders return at once, for a rank whose
	// output stays open after it exited (a descendant holds it).
	CutOutput()
	// CloseStdin stops feeding the rank's stdin. The channel it returns
	// is closed when the copier has returned; nil if there is none.
	CloseStdin() <-chan struct{}
}

// A rankSpec is what a starter needs to start one rank.
type rankSpec struct {
	rank      int
	host      string // from Job.RankHosts, or ""
	localSize int    // ranks on its host (or emulated node), for GOMAXPROCS
	path      string
	args      []string
	env       []string
	// stdin feeds the rank's standard input (rank 0's Job.Stdin), or nil.
	stdin io.Reader
	out   *output // where its output goes
	tag   bool    // prefix its lines with "[rank] "
	dir   string  // working directory, or ""
}

// A starter starts ranks: here (localStarter), or on other hosts through
// their agents. start returns once the rank runs; when it has exited and
// been reaped (its Exit valid), the starter sends its rank on exited.
type starter interface {
	start(spec rankSpec, exited chan<- int) (rankProc, error)
}

// localStarter starts ranks as child processes of gorun, on this host,
// sized (GOMAXPROCS) and bound for this host's CPUs.
type localStarter struct {
	host string
	cpus []int // the CPU of each rank (Job.BindTo), or nil
}

func (l localStarter) start(spec rankSpec, exited chan<- int) (rankProc, error) {
	cmd := exec.Command(spec.path, spec.args...)
	cmd.Env = goMaxProcs(spec.env, goruntime.NumCPU(), spec.localSize)
	cmd.Dir = spec.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cpu := -1
	if l.cpus != nil {
		cpu = l.cpus[spec.rank]
	}
	p := &proc{rank: spec.rank, cpu: cpu, cmd: cmd, tail: newTail(tailLines), host: l.host}
	childEnds, err := p.plumb(spec.stdin)
	if err != nil {
		return nil, err
	}
	err = p.start(exited)
	for _, f := range childEnds {
		f.Close()
	}
	if err != nil {
		for _, f := range p.outs {
			f.Close()
		}
		if p.stdin != nil {
			p.stdin.Close()
		}
		return nil, fmt.Errorf("launch: starting rank %d: %w", spec.rank, err)
	}
	p.forward(spec.out, spec.stdin, spec.tag)
	return p, nil
}

// The rankProc methods of a local rank.

func (p *proc) Host() string                   { return p.host }
func (p *proc) Signal(sig syscall.Signal) bool { return p.signal(sig) }
func (p *proc) StderrTail() []string           { return p.tail.get() }
func (p *proc) Blocked() string                { return p.tail.blocked() }

// pidNow is the rank's pid, known once it started.
func (p *proc) pidNow() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

func (p *proc) Exit() RankExit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

func (p *proc) OutputDone() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		p.outDone.Wait()
		close(done)
	}()
	return done
}

func (p *proc) CutOutput() {
	for _, f := range p.outs {
		f.Close() // unblocks the forwarder's Read
	}
}

func (p *proc) CloseStdin() <-chan struct{} {
	if p.stdin != nil {
		p.stdin.Close() // a copier blocked in Write returns
	}
	return p.inDone
}

// waitAll reports whether every channel in chs was closed before deadline
// (nil channels count as closed).
func waitAll(chs []<-chan struct{}, deadline time.Time) bool {
	for _, ch := range chs {
		if ch != nil && !waitUntil(ch, deadline) {
			return false
		}
	}
	return true
}

// hostStarters starts the ranks of this host here and the others' through
// their hosts' agents.
type hostStarters struct {
	local  localStarter
	remote *agents
}

func (h hostStarters) start(spec rankSpec, exited chan<- int) (rankProc, error) {
	if ac := h.remote.byHost[spec.host]; ac != nil {
		return ac.start(spec)
	}
	return h.local.start(spec, exited)
}

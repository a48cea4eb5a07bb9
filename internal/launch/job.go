package launch

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"
)

// StdinRank values other than a rank.
const (
	StdinNone = -1 // no rank reads Stdin
	StdinAll  = -2 // every rank reads a copy of Stdin
)

// DefaultGrace is the time between SIGTERM (or SIGQUIT on timeout) and
// SIGKILL when Job.Grace is zero.
const DefaultGrace = 3 * time.Second

// tailLines is how many stderr lines per rank are kept for the failure
// report.
const tailLines = 20

// A Job describes one run of a program as NP ranks on the local host. The
// zero value of every optional field is its default. Run does not modify
// the Job.
type Job struct {
	Path string   // the program; looked up in PATH if it has no slash
	Args []string // its arguments, without the program name

	// NP is the number of ranks; required, at least 1.
	NP int

	// Nodes emulates that many nodes on this host (gorun --nodes K): the
	// ranks are split block-wise into Nodes groups, the first NP%Nodes
	// groups one rank larger, each group with its own GORUN_NODE identity
	// and local ranks. Ranks on different emulated nodes cannot share
	// memory. Zero means 1.
	Nodes int

	// RankHosts, if set, names the host of every rank (gorun --host,
	// --hostfile, a Slurm allocation), NP names in rank order. With the
	// local start (the only one today) every rank runs here and each
	// named host is an emulated node of that name: its ranks share memory,
	// the others' do not. It replaces Nodes.
	RankHosts []string

	// Launcher says how the ranks of RankHosts that are not this host
	// start: "ssh" (or "") through an agent on each such host, started
	// with LauncherExec; "local" runs every rank here, each named host an
	// emulated node.
	Launcher string

	// LauncherExec starts an agent: a command to which the host and the
	// remote command are appended ("" is "ssh"; "ssh -p 2222" works), or a
	// template with {host} and {cmd} (Hydra's -launcher-exec).
	LauncherExec string

	// RemoteGorun is the path of gorun on the other hosts; "" means this
	// gorun's own path.
	RemoteGorun string

	// Env holds extra KEY=VALUE entries for every rank, applied over the
	// environment of the current process. GORUN_* identity variables are
	// always set by Run and cannot be overridden; GORUN_BIND and
	// GORUN_TRANSPORTS can.
	Env []string

	// Transports sets GORUN_TRANSPORTS for every rank (for example
	// "self,tcp"); "" leaves it as inherited, usually unset.
	Transports string

	// BindTo places the ranks on CPUs, as mpirun --bind-to does: "core"
	// binds rank r (and every thread it starts) to the r-th CPU gorun may
	// use, round-robin; "none" or "" leaves the ranks to the scheduler.
	// (Binding is not the default: measured at np=2 it neither helps nor
	// hurts overall, and jobs that run side by side, as go test runs
	// packages, would all pile onto the first CPUs.)
	BindTo string

	// TagOutput prefixes every forwarded line with "[rank] ".
	TagOutput bool

	// Stdin is delivered to rank 0 only; the other ranks read /dev/null.
	// nil means rank 0 reads /dev/null too. An *os.File other than a
	// terminal is handed to rank 0 directly. Anything else (and a
	// terminal, which a rank in its own process group could not read) is
	// copied through a pipe by a goroutine; if Stdin blocks forever in
	// Read, that goroutine outlives Run until the Read returns.
	Stdin io.Reader

	// StdinRank is the rank that reads Stdin (mpirun --stdin RANK);
	// StdinAll gives every rank a copy, StdinNone none. The zero value is
	// rank 0.
	StdinRank int

	// Dir is the ranks' working directory (--wdir); "" is gorun's, or the
	// agent's on another host.
	Dir string

	// OutputDir, if set, sends each rank's output to files instead of
	// Stdout and Stderr (--output-filename): OutputDir/1/rank.R/stdout
	// and .../stderr, as Open MPI lays them out, on the host of gorun.
	OutputDir string

	// Stdout and Stderr receive the ranks' output, whole lines at a time;
	// nil means os.Stdout and os.Stderr. gorun's own messages go to Stderr
	// with a "gorun: " prefix. Writes to one destination never interleave
	// within a line; Stdout and Stderr are treated as one destination when
	// they are the same writer or the same file.
	Stdout, Stderr io.Writer

	// Timeout ends the job after that long: every rank gets SIGQUIT (a Go
	// program prints all goroutine stacks and exits), then SIGKILL after
	// Grace. Zero means no timeout.
	Timeout time.Duration

	// Grace is the time between SIGTERM (or SIGQUIT) and SIGKILL. Zero
	// means DefaultGrace.
	Grace time.Duration

	// Signals, if not nil, delivers signals to forward to the job, as
	// received by the caller's signal.Notify. SIGINT and SIGTERM stop the
	// job like a cancelled ctx (SIGTERM to every rank, SIGKILL after
	// Grace); a second one kills every rank at once. Any other signal is
	// sent to every running rank as is.
	Signals <-chan os.Signal

	// Logger receives debug and progress records; nil means discard.
	Logger *slog.Logger

	// starter, if set, starts the ranks instead of the local start (for
	// tests of the supervisor; agents on other hosts later).
	starter func(host string, cpus []int) starter
}

// remoteHosts returns the hosts of RankHosts that need an agent, in order
// of first rank.
func (j *Job) remoteHosts() []string {
	if j.Launcher == "local" {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, h := range j.RankHosts {
		if !seen[h] && !IsLocalHost(h) {
			out = append(out, h)
		}
		seen[h] = true
	}
	return out
}

// IsLocalHost reports whether name is this host.
func IsLocalHost(name string) bool {
	switch name {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	me, err := os.Hostname()
	if err != nil {
		return false
	}
	// Slurm and hostfiles often give the short name of a host whose
	// hostname is fully qualified, or the other way round.
	short := func(h string) string { h, _, _ = strings.Cut(h, "."); return h }
	return name == me || short(name) == short(me) && (!strings.Contains(name, ".") || !strings.Contains(me, "."))
}

func (j *Job) validate() error {
	switch {
	case j.Path == "":
		return errors.New("launch: Job.Path is empty")
	case j.NP < 1:
		return fmt.Errorf("launch: Job.NP = %d, want at least 1", j.NP)
	case j.Nodes < 0 || j.Nodes > j.NP:
		return fmt.Errorf("launch: Job.Nodes = %d, want 0..NP (%d)", j.Nodes, j.NP)
	case j.Timeout < 0:
		return fmt.Errorf("launch: Job.Timeout = %v is negative", j.Timeout)
	case j.Grace < 0:
		return fmt.Errorf("launch: Job.Grace = %v is negative", j.Grace)
	case len(j.RankHosts) > 0 && len(j.RankHosts) != j.NP:
		return fmt.Errorf("launch: Job.RankHosts names %d hosts for %d ranks", len(j.RankHosts), j.NP)
	case len(j.RankHosts) > 0 && j.Nodes > 1:
		return errors.New("launch: Job.RankHosts and Job.Nodes are both set")
	case j.StdinRank < StdinAll || j.StdinRank >= j.NP:
		return fmt.Errorf("launch: Job.StdinRank %d is not a rank of %d, StdinNone or StdinAll", j.StdinRank, j.NP)
	case j.Launcher != "" && j.Launcher != "ssh" && j.Launcher != "local":
		return fmt.Errorf("launch: Job.Launcher %q is not ssh or local", j.Launcher)
	}
	for r, h := range j.RankHosts {
		if h == "" || strings.ContainsAny(h, " \t\n") {
			return fmt.Errorf("launch: Job.RankHosts[%d] = %q is not a host name", r, h)
		}
	}
	for _, kv := range j.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("launch: Job.Env entry %q is not KEY=VALUE", kv)
		}
	}
	switch j.BindTo {
	case "", "core", "none":
	default:
		return fmt.Errorf("launch: Job.BindTo %q is not core or none", j.BindTo)
	}
	if j.Transports != "" {
		for name := range strings.SplitSeq(j.Transports, ",") {
			if strings.TrimSpace(name) == "" {
				return fmt.Errorf("launch: Job.Transports %q has an empty name", j.Transports)
			}
		}
	}
	return nil
}

// RankExit is how one rank ended.
type RankExit struct {
	Rank       int
	PID        int
	Code       int            // exit code; -1 if killed by a signal
	Signal     syscall.Signal // the signal that killed it; 0 if it exited
	LastStderr []string       // its last stderr lines (at most 20), oldest first
}

// Failed reports whether the rank exited non-zero or was killed.
func (e *RankExit) Failed() bool { return e.Code != 0 || e.Signal != 0 }

// String describes the ending, e.g. "exited with code 3" or "was killed by
// signal SIGKILL".
func (e *RankExit) String() string {
	if e.Signal != 0 {
		return "was killed by signal " + signalName(e.Signal)
	}
	return fmt.Sprintf("exited with code %d", e.Code)
}

// Result is the outcome of a job that started. At most one of Failed,
// TimedOut and Interrupted is set: whichever happened first decided how
// the job was stopped, and what the other ranks did afterwards is not a
// failure of their own.
type Result struct {
	Exits       []RankExit // by rank
	Failed      *RankExit  // the first failing rank (an element of Exits), nil if none
	TimedOut    bool       // Job.Timeout expired first
	Interrupted bool       // ctx was cancelled or SIGINT/SIGTERM arrived first
	Cause       string     // the abort message, if a rank called Abort

	intrSig syscall.Signal // the signal that interrupted, 0 for ctx
}

// ExitCode is gorun's exit status for the job:
//
//   - 0 when every rank exited 0 (a rank that exits 0 without closing its
//     coordinator connection is not a failure by itself);
//   - otherwise, when a rank failed first: its exit code, or 128+signal if
//     it was killed by a signal, or 1 if it called Abort and then exited 0
//     or was killed;
//   - 124 when the timeout expired first (as coreutils timeout);
//   - 128+signal when gorun was interrupted by SIGINT (130) or SIGTERM
//     (143) first, and 130 when Run's ctx was cancelled first.
func (r *Result) ExitCode() int {
	switch {
	case r.Failed != nil:
		if r.Failed.Code > 0 {
			return r.Failed.Code
		}
		if r.Failed.Signal != 0 && r.Cause == "" {
			return 128 + int(r.Failed.Signal)
		}
		return 1
	case r.TimedOut:
		return 124
	case r.Interrupted:
		if r.intrSig != 0 {
			return 128 + int(r.intrSig)
		}
		return 128 + int(syscall.SIGINT)
	}
	for i := range r.Exits {
		if r.Exits[i].Failed() {
			return 1 // unreachable by Run: a failing rank sets Failed
		}
	}
	return 0
}

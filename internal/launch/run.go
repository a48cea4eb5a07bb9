package launch

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorun-hpc/gorun/internal/bootstrap"
)

// drainTimeout bounds the wait for a rank's output after the job ended. It
// only matters when something outside the rank's process group (a process
// that called setsid) still holds the rank's stdout or stderr open.
const drainTimeout = 2 * time.Second

// Run starts the job and supervises it until every rank has been reaped.
//
// It returns an error, and no Result, only when the job could not start
// (invalid Job, program not found, coordinator or spawn failure); ranks
// already started are then killed. Otherwise the Result says how each rank
// ended and why the job stopped.
//
// The job stops at the first of: a rank exiting non-zero or killed by a
// signal; a rank calling Abort; a rank dropping its coordinator connection
// without Close and not exiting within Grace; the timeout (SIGQUIT, so Go
// ranks print their goroutine stacks); ctx's cancellation or SIGINT/SIGTERM
// on Job.Signals. Stopping sends SIGTERM to every running rank and SIGKILL
// after Grace. On failure a report naming the rank, how it ended, the host
// and its last stderr lines is printed to Stderr.
func (j *Job) Run(ctx context.Context) (*Result, error) {
	if err := j.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("launch: not started: %w", err)
	}
	path := j.Path
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			return nil, fmt.Errorf("launch: %w", err)
		}
		path = p
	}
	log := j.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	jobID := bootstrap.NewJobID(os.Getpid())
	sweepStale(log)
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	out := newOutput(j.Stdout, j.Stderr)
	exited := make(chan int, j.NP)
	ccfg := bootstrap.CoordConfig{Size: j.NP, Secret: secret, Logger: log}
	var remote *agents
	parent := os.Environ()
	if hs := j.remoteHosts(); len(hs) > 0 {
		if remote, err = startAgents(j, hs, secret, out, log, exited); err != nil {
			return nil, err
		}
		defer remote.close()
		ccfg.Listener = remote.coord
		// The other hosts' ranks reach this host's where its agents reach gorun, not on
		// loopback (a GORUN_BIND of gorun's environment or -x still decides).
		parent = mergeEnv([]string{bootstrap.EnvBind + "=" + addrToward(hs[0])}, parent)
	}
	coord, err := bootstrap.NewCoordinator(ccfg)
	if err != nil {
		return nil, fmt.Errorf("launch: %w", err)
	}
	defer coord.Close()

	s := &supervisor{
		job:    j,
		log:    log.With("job", jobID),
		out:    newOutput(j.Stdout, j.Stderr),
		grace:  j.Grace,
		exited: exited,
		lostC:  make(chan int, j.NP),
		failed: -1,
		res:    &Result{Exits: make([]RankExit, j.NP)},
	}
	if s.grace == 0 {
		s.grace = DefaultGrace
	}
	envs := j.rankEnvs(parent, jobID, host, coord.Addr(), secret)
	cpus, err := j.cpuPlan()
	if err != nil {
		return nil, err
	}
	s.starter = localStarter{host: host, cpus: cpus}
	if remote != nil {
		s.starter = hostStarters{local: localStarter{host: host, cpus: cpus}, remote: remote}
	}
	if j.starter != nil {
		s.starter = j.starter(host, cpus)
	}
	for r := range j.NP {
		_, _, localSize := j.node(r, host)
		if err := s.spawn(r, localSize, path, envs[r]); err != nil {
			s.abandon()
			return nil, err
		}
	}
	s.log.Debug("launch: ranks started", "np", j.NP, "nodes", max(j.Nodes, 1), "coord", coord.Addr())
	s.supervise(ctx, coord.Events())
	// An Abort sent just before a rank exited may still be in flight.
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	coord.Shutdown(sctx)
	cancel()
	for ev := range coord.Events() {
		s.event(ev)
	}
	if s.failed < 0 && len(s.suspects) > 0 {
		s.blame()
	}
	s.finish()
	sweep(log, jobID)
	return s.res, nil
}

// rankEnvs builds every rank's environment: parent, then Job.Env, then
// the bootstrap contract and GOMAXPROCS; a later entry replaces an
// earlier one with the same key.
func (j *Job) rankEnvs(parent []string, jobID, host, coord string, secret []byte) [][]string {
	base := mergeEnv(parent, j.Env)
	lookup := func(key string) string { v, _ := lookupEnv(base, key); return v }
	transports := j.Transports
	if transports == "" {
		transports = lookup(bootstrap.EnvTransports)
	}
	var names []string
	for name := range strings.SplitSeq(transports, ",") {
		if name = strings.TrimSpace(name); name != "" {
			names = append(names, name)
		}
	}
	envs := make([][]string, j.NP)
	for r := range j.NP {
		nodeID, local, localSize := j.node(r, host)
		e := bootstrap.Env{
			JobID: jobID, Rank: r, Size: j.NP, LocalRank: local, LocalSize: localSize,
			Node: nodeID, Coord: coord, Secret: secret,
			Bind: lookup(bootstrap.EnvBind), Transports: names,
		}
		envs[r] = mergeEnv(base, e.Environ())
	}
	return envs
}

// goMaxProcs is the GOMAXPROCS entry a starter adds for a rank that shares
// a host of cpus CPUs with localSize ranks, unless the user's environment
// sets it: every Go rank would otherwise size itself for the whole
// machine. Two is the floor, so the progress goroutine can run beside a
// computing one.
func goMaxProcs(env []string, cpus, localSize int) []string {
	if _, set := lookupEnv(env, "GOMAXPROCS"); set {
		return env
	}
	return mergeEnv(env, []string{"GOMAXPROCS=" + strconv.Itoa(max(2, cpus/max(localSize, 1)))})
}

// node returns rank's node identity, local rank and local size: its host's
// in RankHosts, else its emulated node's on this host.
func (j *Job) node(rank int, host string) (id string, local, localSize int) {
	if len(j.RankHosts) > 0 {
		id = j.RankHosts[rank]
		for r, h := range j.RankHosts {
			if h == id {
				if r < rank {
					local++
				}
				localSize++
			}
		}
		return id, local, localSize
	}
	nodes := max(j.Nodes, 1)
	node, local, localSize := placement(rank, j.NP, nodes)
	id = host
	if nodes > 1 {
		id = fmt.Sprintf("%s#%d", host, node)
	}
	return id, local, localSize
}

// placement returns rank's node, local rank and local size when np ranks
// are split block-wise over nodes nodes, the first np%nodes one larger.
func placement(rank, np, nodes int) (node, local, localSize int) {
	base, extra := np/nodes, np%nodes
	big := extra * (base + 1) // ranks on the larger nodes
	if rank < big {
		return rank / (base + 1), rank % (base + 1), base + 1
	}
	return extra + (rank-big)/base, (rank - big) % base, base
}

// mergeEnv returns env with over applied: entries of over replace entries
// of env with the same key, in place, and new keys are appended in order.
func mergeEnv(env, over []string) []string {
	out := make([]string, 0, len(env)+len(over))
	index := make(map[string]int, len(env)+len(over))
	for _, list := range [][]string{env, over} {
		for _, kv := range list {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := index[k]; ok {
				out[i] = kv
				continue
			}
			index[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(env[i], "="); k == key {
			return v, true
		}
	}
	return "", false
}

// supervisor is the state of one Run.
type supervisor struct {
	job     *Job
	log     *slog.Logger
	out     *output
	files   []*os.File // --output-filename's, closed by finish
	tee     *tee       // StdinAll's copier
	teeOnce sync.Once
	grace   time.Duration
	starter starter
	procs   []rankProc

	exited chan int // ranks reaped, from the spawn goroutines
	lostC  chan int // ranks whose lost-connection grace expired
	timers []*time.Timer

	// Owned by the supervise loop.
	alive    []bool
	nalive   int
	stopping bool       // the job is being stopped; later exits are not failures
	failed   int        // the first failing rank, or -1
	why      failReason // how it failed
	others   int        // ranks still running when it failed
	graceC   <-chan time.Time
	res      *Result

	// A rank that exits because another failed (it lost a peer) usually
	// exits before the launcher has reaped the one that failed first. So a
	// failed exit only makes the rank a suspect; after settle, the first
	// suspect that did not report failing because of another rank
	// (EventFailing) is blamed.
	suspects   []int
	consequent []bool
	settleC    <-chan time.Time
}

// settle is how long the launcher collects failed exits before it names
// the rank that failed first.
const settle = 200 * time.Millisecond

type failReason int

const (
	failExit  failReason = iota // exited non-zero or was killed
	failAbort                   // called Abort
	failLost                    // dropped its coordinator connection and kept running
)

func (s *supervisor) spawn(rank, localSize int, path string, env []string) error {
	in := s.stdinFor(rank)
	out := s.out
	if s.job.OutputDir != "" {
		var err error
		if out, err = s.rankFiles(rank); err != nil {
			return err
		}
	}
	host := ""
	if len(s.job.RankHosts) > 0 {
		host = s.job.RankHosts[rank]
	}
	p, err := s.starter.start(rankSpec{
		rank: rank, host: host, localSize: localSize, path: path, args: s.job.Args, env: env,
		stdin: in, out: out, tag: s.job.TagOutput, dir: s.job.Dir,
	}, s.exited)
	if err != nil {
		return err
	}
	s.procs = append(s.procs, p)
	s.alive = append(s.alive, true)
	s.consequent = append(s.consequent, false)
	s.nalive++
	s.log.Debug("launch: rank started", "rank", rank, "host", p.Host())
	return nil
}

// abandon kills the ranks started so far, after a later one failed to start.
func (s *supervisor) abandon() {
	for _, p := range s.procs {
		p.Signal(syscall.SIGKILL)
	}
	for range s.procs {
		<-s.exited
	}
	s.drain()
}

// supervise runs until every rank is reaped.
func (s *supervisor) supervise(ctx context.Context, events <-chan bootstrap.Event) {
	var timeoutC <-chan time.Time
	if s.job.Timeout > 0 {
		t := time.NewTimer(s.job.Timeout)
		defer t.Stop()
		timeoutC = t.C
	}
	defer func() {
		for _, t := range s.timers {
			t.Stop()
		}
	}()
	done := ctx.Done()
	sigs := s.job.Signals
	for s.nalive > 0 {
		select {
		case r := <-s.exited:
			s.alive[r] = false
			s.nalive--
			e := s.procs[r].Exit()
			s.log.Debug("launch: rank ended", "rank", r, "status", e.String())
			if !s.stopping && e.Failed() {
				s.suspect(r)
			}
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			s.event(ev)
		case r := <-s.lostC:
			if !s.stopping && s.alive[r] {
				s.fail(r, failLost)
			}
		case <-done:
			done = nil
			if !s.stopping {
				s.res.Interrupted = true
				s.out.notef("cancelled; sending SIGTERM to all ranks")
				s.stop(syscall.SIGTERM, -1)
			}
		case sig := <-sigs:
			s.signal(sig)
		case <-timeoutC:
			if !s.stopping {
				s.res.TimedOut = true
				s.out.labelAll.Store(true) // each dump labelled with its rank
				s.out.notef("timeout: the job ran longer than %v; sending SIGQUIT to all ranks (Go ranks print their goroutine stacks)", s.job.Timeout)
				s.stop(syscall.SIGQUIT, -1)
			}
		case <-s.settleC:
			s.settleC = nil
			if !s.stopping {
				s.blame()
			}
		case <-s.graceC:
			s.graceC = nil
			s.out.notef("%d rank(s) still running %v after being told to stop; sending SIGKILL", s.nalive, s.grace)
			s.killAll(syscall.SIGKILL)
		}
	}
}

func (s *supervisor) event(ev bootstrap.Event) {
	if ev.Rank < 0 || ev.Rank >= len(s.procs) {
		return
	}
	s.log.Debug("launch: coordinator event", "event", ev.String())
	switch ev.Kind {
	case bootstrap.EventAbort:
		switch {
		case !s.stopping && s.nalive == 0:
			// Every rank exited 0, but this one asked for the job to fail.
			s.res.Cause, s.failed, s.why = ev.Msg, ev.Rank, failAbort
		case !s.stopping:
			s.res.Cause = ev.Msg
			s.fail(ev.Rank, failAbort)
		case ev.Rank == s.failed && s.res.Cause == "":
			// The rank's exit status overtook its Abort.
			s.res.Cause, s.why = ev.Msg, failAbort
		}
	case bootstrap.EventFailing:
		s.consequent[ev.Rank] = true
	case bootstrap.EventLost:
		// A rank that exits 0 without Close is not a failure, and its
		// exit status usually arrives just after the lost connection. Give
		// it Grace to show how it ends.
		if !s.stopping && s.nalive > 0 && s.alive[ev.Rank] {
			r := ev.Rank
			s.timers = append(s.timers, time.AfterFunc(s.grace, func() { s.lostC <- r }))
		}
	}
}

func (s *supervisor) signal(sig os.Signal) {
	ss, ok := sig.(syscall.Signal)
	if !ok {
		return
	}
	switch ss {
	case syscall.SIGINT, syscall.SIGTERM:
		if s.stopping {
			s.out.notef("got %s again; killing all ranks", signalName(ss))
			s.graceC = nil
			s.killAll(syscall.SIGKILL)
			return
		}
		s.res.Interrupted = true
		s.res.intrSig = ss
		s.out.notef("got %s; sending SIGTERM to all ranks (%s again kills them)", signalName(ss), signalName(ss))
		s.stop(syscall.SIGTERM, -1)
	default:
		s.log.Debug("launch: forwarding signal", "signal", signalName(ss))
		s.killAll(ss)
	}
}

// suspect records a failed exit of rank r, to be blamed after settle.
func (s *supervisor) suspect(r int) {
	s.suspects = append(s.suspects, r)
	if s.settleC == nil {
		t := time.NewTimer(settle)
		s.timers = append(s.timers, t)
		s.settleC = t.C
	}
}

// blame fails the job on the first suspect that failed by itself, or on the
// first suspect if all of them failed because of another rank.
func (s *supervisor) blame() {
	pick := s.suspects[0]
	for _, r := range s.suspects {
		if !s.consequent[r] {
			pick = r
			break
		}
	}
	s.fail(pick, failExit)
}

// fail records rank r as the job's first failure and stops the others.
func (s *supervisor) fail(r int, why failReason) {
	s.failed, s.why = r, why
	s.others = s.nalive
	if s.alive[r] {
		s.others--
	}
	// An aborting rank is left to exit by itself (with its own code)
	// until Grace runs out.
	spare := -1
	if why == failAbort {
		spare = r
	}
	s.stop(syscall.SIGTERM, spare)
}

// stop sends sig to every running rank except spare, and SIGKILL to all
// after Grace.
func (s *supervisor) stop(sig syscall.Signal, spare int) {
	s.stopping = true
	for r, p := range s.procs {
		if r != spare && s.alive[r] {
			p.Signal(sig)
		}
	}
	t := time.NewTimer(s.grace)
	s.timers = append(s.timers, t)
	s.graceC = t.C
}

func (s *supervisor) killAll(sig syscall.Signal) {
	for r, p := range s.procs {
		if s.alive[r] {
			p.Signal(sig)
		}
	}
}

// drain waits for the output forwarders and stdin copiers, cutting them
// off after drainTimeout.
func (s *supervisor) drain() {
	deadline := time.Now().Add(drainTimeout)
	outs := make([]<-chan struct{}, len(s.procs))
	for i, p := range s.procs {
		outs[i] = p.OutputDone()
	}
	if !waitAll(outs, deadline) {
		s.log.Warn("launch: rank output still open after the job ended; closing it")
		for _, p := range s.procs {
			p.CutOutput()
		}
		waitAll(outs, time.Now().Add(time.Hour)) // the forwarders return now
	}
	ins := make([]<-chan struct{}, len(s.procs))
	for i, p := range s.procs {
		p.CutOutput()
		ins[i] = p.CloseStdin()
	}
	if !waitAll(ins, deadline) {
		s.log.Warn("launch: Job.Stdin did not return from Read; leaving its copier behind")
	}
}

// waitUntil reports whether ch was closed before deadline.
func waitUntil(ch <-chan struct{}, deadline time.Time) bool {
	select {
	case <-ch:
		return true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// finish collects the exits and prints the failure report.
func (s *supervisor) finish() {
	s.drain()
	for _, f := range s.files {
		f.Close()
	}
	for r, p := range s.procs {
		s.res.Exits[r] = p.Exit()
		s.res.Exits[r].LastStderr = p.StderrTail()
	}
	if s.res.TimedOut {
		var b strings.Builder
		for r, p := range s.procs {
			where := p.Blocked()
			if where == "" {
				where = "not in a gorun call (no Go goroutine dump, or its main goroutine was elsewhere)"
			}
			fmt.Fprintf(&b, "rank %d: %s\n", r, where)
		}
		s.out.notef("where each rank's main goroutine was at the timeout:\n%s", strings.TrimSuffix(b.String(), "\n"))
	}
	if s.failed >= 0 {
		s.res.Failed = &s.res.Exits[s.failed]
		s.report()
	}
}

// report prints which rank failed, how, where, and its last stderr lines.
func (s *supervisor) report() {
	e := s.res.Failed
	var b strings.Builder
	who := fmt.Sprintf("rank %d (pid %d) on host %s", e.Rank, e.PID, s.procs[e.Rank].Host())
	switch s.why {
	case failExit:
		fmt.Fprintf(&b, "%s %s\n", who, e)
	case failAbort:
		fmt.Fprintf(&b, "%s aborted the job: %s\n", who, s.res.Cause)
		fmt.Fprintf(&b, "rank %d then %s\n", e.Rank, e)
	case failLost:
		fmt.Fprintf(&b, "%s dropped its coordinator connection without closing it and kept running; it %s\n", who, e)
	}
	if i := slices.IndexFunc(e.LastStderr, func(l string) bool { return strings.HasPrefix(l, "panic: ") }); i >= 0 && s.job.OutputDir == "" {
		// Its stack went by just above: say what panicked, not it again.
		fmt.Fprintf(&b, "rank %d %s (its stack is above)\n", e.Rank, e.LastStderr[i])
	} else if len(e.LastStderr) > 0 {
		fmt.Fprintf(&b, "last %d stderr line(s) of rank %d:\n", len(e.LastStderr), e.Rank)
		for _, l := range e.LastStderr {
			fmt.Fprintf(&b, "  | %s\n", l)
		}
	} else {
		fmt.Fprintf(&b, "rank %d wrote nothing to stderr\n", e.Rank)
	}
	if s.others > 0 {
		fmt.Fprintf(&b, "stopped the other %d running rank(s)\n", s.others)
	}
	s.out.notef("%s", b.String())
}

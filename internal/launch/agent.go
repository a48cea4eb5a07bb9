package launch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/gorun-hpc/gorun/internal/auth"
	"github.com/gorun-hpc/gorun/internal/bootstrap"
)

// An agent is gorun on another host (gorun --agent, started with ssh or
// Job.LauncherExec): it connects back to gorun over one TCP connection,
// proves the job's secret, and multiplexes over it with yamux:
//
//   - the control stream (the first one the agent opens): JSON messages,
//     gorun → agent "start" and "signal", agent → gorun "started" and
//     "exit";
//   - one stream per rank's stdout and stderr, opened by the agent, whose
//     first line is "out RANK" or "err RANK";
//   - rank 0's stdin, opened by gorun: "in RANK";
//   - one coordinator stream, opened by the agent at its first start:
//     "coord". The agent runs a bootstrap.Gatherer on its host's loopback:
//     its ranks register and exchange with it as with the coordinator, and
//     it forwards each exchange once for the whole host, so the
//     coordinator gets one message per host and round, and needs no port
//     that other hosts reach.
//
// The agent starts its ranks with the local start (its host's CPUs decide
// GOMAXPROCS), with GORUN_COORD pointing at its gatherer, GORUN_BIND at its
// address toward gorun (where the ranks' TCP transport listens) and
// GORUN_JOB_ID made with bootstrap.ForKeeper, so this host's leftovers are
// judged by the agent's pid. When the connection to gorun goes, it kills
// its ranks and exits: nothing is orphaned.

// AgentConfig is what gorun writes on an agent's standard input, as one
// JSON line: the secret never appears on a command line.
type AgentConfig struct {
	Launcher string // gorun's agent listener, host:port
	Secret   []byte // the job's secret
	Host     string // this host's name in the job
	Index    int    // the agent's identity in the handshake
}

// agentMsg is a control message, in both directions.
type agentMsg struct {
	Op        string   `json:"op"` // start, signal, started, exit
	Rank      int      `json:"rank"`
	Path      string   `json:"path,omitempty"`
	Args      []string `json:"args,omitempty"`
	Env       []string `json:"env,omitempty"`
	LocalSize int      `json:"local_size,omitempty"`
	Stdin     bool     `json:"stdin,omitempty"`
	Dir       string   `json:"dir,omitempty"`
	Signal    int      `json:"signal,omitempty"`
	PID       int      `json:"pid,omitempty"`
	Code      int      `json:"code,omitempty"`
	Err       string   `json:"err,omitempty"`
	CPUs      int      `json:"cpus,omitempty"` // in "started": the CPUs the agent's ranks may use
}

// authPurpose binds the agent handshake to its service.
const authPurpose = "agent"

// agentHandshake bounds the connection set-up.
const agentHandshake = 20 * time.Second

// yamuxConfig is yamux's configuration for the agent connection: its
// keepalive turns a dead host into a lost session within seconds.
func yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = false // heartbeat below
	c.ConnectionWriteTimeout = pingTimeout
	c.LogOutput = io.Discard
	return c
}

// The heartbeat of an agent's connection, on both ends: a ping every
// second, each answered within pingTimeout; after pingMisses unanswered
// pings in a row the peer is lost and the session closed, so a silent peer
// (a host cut off) is found within about 7 s. A miss does not count while
// this process is itself starved of CPU — its own timers fire late (by
// more than starvedBy): on a host with far more runnable ranks than cores
// the peer's answer is then as late as our reading of it, and a busy host
// is not a lost one (at 64 ranks per host on 2 cores a single 3 s timeout
// took healthy hosts for lost). A host with more ranks than CPUs is given
// more misses (lossMisses), up to maxMisses: about 30 s.
const (
	pingEvery   = time.Second
	pingTimeout = 3 * time.Second
	pingMisses  = 2
	maxMisses   = 10
	starvedBy   = 500 * time.Millisecond
)

// lossMisses is how many pings in a row a host with ranks ranks on cpus
// CPUs may miss: pingMisses, times its oversubscription.
func lossMisses(ranks, cpus int) int32 {
	if cpus <= 0 || ranks <= cpus {
		return pingMisses
	}
	return int32(min(pingMisses*((ranks+cpus-1)/cpus), maxMisses))
}

// heartbeat pings sess until it closes, and closes it when the peer missed
// limit pings in a row, after setting silent.
func heartbeat(sess *yamux.Session, silent *atomic.Bool, limit *atomic.Int32) {
	misses := int32(0)
	for {
		t0 := time.Now()
		select {
		case <-sess.CloseChan():
			return
		case <-time.After(pingEvery):
		}
		late := time.Since(t0) > pingEvery+starvedBy
		for {
			t1 := time.Now()
			_, err := sess.Ping()
			if err == nil {
				misses = 0
				break
			}
			if !errors.Is(err, yamux.ErrTimeout) {
				return // the session is closing
			}
			if late || time.Since(t1) > pingTimeout+starvedBy {
				misses, late = 0, false // starved here: no evidence against the peer
				continue
			}
			if misses++; misses >= max(limit.Load(), pingMisses) {
				silent.Store(true)
				sess.Close()
				return
			}
		}
	}
}

// RunAgent is gorun --agent: it reads its AgentConfig from in, connects to
// gorun and serves it until gorun closes the connection or is lost. It
// returns nil when gorun ended the job.
func RunAgent(in io.Reader, log *slog.Logger) error {
	line, err := bufio.NewReader(in).ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("agent: reading the configuration: %w", err)
	}
	var cfg AgentConfig
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fmt.Errorf("agent: bad configuration: %w", err)
	}
	conn, err := net.DialTimeout("tcp", cfg.Launcher, agentHandshake)
	if err != nil {
		return fmt.Errorf("agent on %s: connecting to gorun at %s: %w", cfg.Host, cfg.Launcher, err)
	}
	conn.SetDeadline(time.Now().Add(agentHandshake))
	if err := auth.Dial(conn, cfg.Secret, authPurpose, uint32(cfg.Index), auth.Any); err != nil {
		conn.Close()
		return fmt.Errorf("agent on %s: %w", cfg.Host, err)
	}
	conn.SetDeadline(time.Time{})
	sess, err := yamux.Client(conn, yamuxConfig())
	if err != nil {
		conn.Close()
		return err
	}
	a := &agent{cfg: cfg, sess: sess, log: log, procs: map[int]rankProc{}, stdins: map[int]*io.PipeWriter{}}
	a.limit.Store(pingMisses)
	go heartbeat(sess, new(atomic.Bool), &a.limit)
	a.bind, _, _ = net.SplitHostPort(conn.LocalAddr().String())
	return a.serve()
}

// agent is the state of RunAgent.
type agent struct {
	cfg  AgentConfig
	sess *yamux.Session
	log  *slog.Logger
	bind string // this host's address toward gorun

	ctl   net.Conn
	encMu sync.Mutex
	enc   *json.Encoder
	relay net.Listener // where this host's ranks reach the gatherer

	gather *bootstrap.Gatherer // made at the first start; guarded by mu
	limit  atomic.Int32        // pings gorun may miss in a row (heartbeat)

	mu     sync.Mutex
	procs  map[int]rankProc
	stdins map[int]*io.PipeWriter
	exited chan int
}

// proc returns the rank started as rank, or nil.
func (a *agent) proc(rank int) rankProc {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.procs[rank]
}

func (a *agent) send(m agentMsg) {
	a.encMu.Lock()
	defer a.encMu.Unlock()
	a.enc.Encode(m) // a failure is the session's, seen by the reader
}

func (a *agent) serve() error {
	defer a.sess.Close()
	ctl, err := a.sess.Open()
	if err != nil {
		return fmt.Errorf("agent on %s: %w", a.cfg.Host, err)
	}
	a.ctl, a.enc = ctl, json.NewEncoder(ctl)
	if a.relay, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return err
	}
	defer a.relay.Close()
	go a.acceptStreams()
	a.exited = make(chan int, 64)
	go a.reportExits()
	dec := json.NewDecoder(ctl)
	for {
		var m agentMsg
		if err := dec.Decode(&m); err != nil {
			break // gorun closed the job, or is lost
		}
		switch m.Op {
		case "start":
			a.start(m)
		case "signal":
			if p := a.proc(m.Rank); p != nil {
				p.Signal(syscall.Signal(m.Signal))
			}
		}
	}
	// Nothing may outlive the job: kill what still runs.
	a.mu.Lock()
	for _, p := range a.procs {
		p.Signal(syscall.SIGKILL)
	}
	g := a.gather
	a.mu.Unlock()
	if g != nil {
		g.Close()
	}
	return nil
}

// start starts one rank and answers "started".
func (a *agent) start(m agentMsg) {
	if err := a.startGatherer(m.LocalSize); err != nil {
		a.send(agentMsg{Op: "started", Rank: m.Rank, Err: err.Error()})
		return
	}
	open := func(kind string) (net.Conn, error) {
		s, err := a.sess.Open()
		if err == nil {
			_, err = fmt.Fprintf(s, "%s %d\n", kind, m.Rank)
		}
		return s, err
	}
	out, err := open("out")
	var errs net.Conn
	if err == nil {
		errs, err = open("err")
	}
	if err != nil {
		a.send(agentMsg{Op: "started", Rank: m.Rank, Err: err.Error()})
		return
	}
	env := mergeEnv(m.Env, []string{
		bootstrap.EnvCoord + "=" + a.relay.Addr().String(),
		bootstrap.EnvBind + "=" + a.bind,
		bootstrap.EnvJobID + "=" + bootstrap.ForKeeper(envValue(m.Env, bootstrap.EnvJobID), os.Getpid()),
	})
	var stdin io.Reader
	if m.Stdin {
		r, w := io.Pipe()
		a.mu.Lock()
		a.stdins[m.Rank] = w
		a.mu.Unlock()
		stdin = r
	}
	p, err := localStarter{host: a.cfg.Host}.start(rankSpec{
		rank: m.Rank, localSize: m.LocalSize, path: m.Path, args: m.Args, env: env,
		stdin: stdin, out: newOutput(out, errs), dir: m.Dir,
	}, a.exited)
	if err != nil {
		out.Close()
		errs.Close()
		a.send(agentMsg{Op: "started", Rank: m.Rank, Err: err.Error()})
		return
	}
	a.mu.Lock()
	a.procs[m.Rank] = p
	a.limit.Store(lossMisses(len(a.procs), goruntime.NumCPU()))
	a.mu.Unlock()
	go func() { // the streams end with the rank's output
		<-p.OutputDone()
		out.Close()
		errs.Close()
	}()
	a.send(agentMsg{Op: "started", Rank: m.Rank, PID: p.(*proc).pidNow(), CPUs: goruntime.NumCPU()})
}

// reportExits sends every reaped rank's exit.
func (a *agent) reportExits() {
	for r := range a.exited {
		p := a.proc(r)
		for p == nil { // start has not recorded it yet
			time.Sleep(time.Millisecond)
			p = a.proc(r)
		}
		e := p.Exit()
		a.mu.Lock()
		g := a.gather
		a.mu.Unlock()
		if g != nil {
			g.Done(r)
		}
		a.send(agentMsg{Op: "exit", Rank: r, PID: e.PID, Code: e.Code, Signal: int(e.Signal)})
	}
}

// acceptStreams takes the streams gorun opens: rank 0's stdin.
func (a *agent) acceptStreams() {
	for {
		s, err := a.sess.Accept()
		if err != nil {
			return
		}
		go func() {
			kind, rank, r, err := readStreamHeader(s)
			if err != nil || kind != "in" {
				s.Close()
				return
			}
			a.mu.Lock()
			w := a.stdins[rank]
			a.mu.Unlock()
			if w == nil {
				s.Close()
				return
			}
			io.Copy(w, r)
			w.Close()
			s.Close()
		}()
	}
}

// startGatherer connects this host's gatherer to gorun's coordinator, once:
// the ranks started here register and exchange through it, so that gorun
// gets one message per host for each exchange.
func (a *agent) startGatherer(ranks int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gather != nil {
		return nil
	}
	s, err := a.sess.Open()
	if err == nil {
		_, err = io.WriteString(s, "coord 0\n")
	}
	if err != nil {
		return fmt.Errorf("agent on %s: opening the coordinator stream: %w", a.cfg.Host, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), agentHandshake)
	defer cancel()
	a.gather, err = bootstrap.NewGatherer(ctx, bootstrap.GatherConfig{
		Secret: a.cfg.Secret, Upstream: s, Listener: a.relay, Ranks: max(ranks, 1), Logger: a.log})
	if err != nil {
		return fmt.Errorf("agent on %s: %w", a.cfg.Host, err)
	}
	return nil
}

// readStreamHeader reads a stream's first line, "KIND RANK", and returns a
// reader of the rest.
func readStreamHeader(s net.Conn) (kind string, rank int, r io.Reader, err error) {
	br := bufio.NewReader(s)
	s.SetReadDeadline(time.Now().Add(agentHandshake))
	line, err := br.ReadString('\n')
	s.SetReadDeadline(time.Time{})
	if err != nil {
		return "", 0, nil, err
	}
	k, n, ok := strings.Cut(strings.TrimSpace(line), " ")
	rank, err = strconv.Atoi(n)
	if !ok || err != nil {
		return "", 0, nil, fmt.Errorf("agent: bad stream header %q", line)
	}
	return k, rank, br, nil
}

func envValue(env []string, key string) string {
	v, _ := lookupEnv(env, key)
	return v
}

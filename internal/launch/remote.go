package launch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/gorun-hpc/gorun/internal/auth"
)

// The launcher's side of the agents (see agent.go for the protocol).

// agents are the job's agents: one per host other than this one.
type agents struct {
	log    *slog.Logger
	out    *output
	secret []byte
	ln     net.Listener // where agents connect
	coord  *relayListener
	cmds   []*exec.Cmd
	ended  []chan struct{} // closed when cmds[i] has exited
	died   chan string     // an agent command that exited: why
	byHost map[string]*agentConn
}

// agentConn is gorun's connection to one agent.
type agentConn struct {
	host   string
	sess   *yamux.Session
	silent *atomic.Bool  // set by the heartbeat when the agent stopped answering
	limit  *atomic.Int32 // pings the agent may miss in a row: more on an oversubscribed host
	ctl    net.Conn

	encMu sync.Mutex
	enc   *json.Encoder

	mu      sync.Mutex
	procs   map[int]*remoteProc
	started map[int]chan agentMsg
	lost    bool
	exited  chan<- int
	out     *output
	tag     bool
}

// remoteCommand is the command that starts an agent on host: exe (or
// "ssh") with host and the remote gorun's --agent after it, or exe's
// template with {host} and {cmd} replaced.
func remoteCommand(exe, host, gorun string) []string {
	if exe == "" {
		exe = "ssh"
	}
	cmd := gorun + " --agent"
	if strings.Contains(exe, "{host}") || strings.Contains(exe, "{cmd}") {
		f := strings.Fields(exe)
		for i, w := range f {
			w = strings.ReplaceAll(w, "{host}", host)
			f[i] = strings.ReplaceAll(w, "{cmd}", cmd)
		}
		// {cmd} as one word stands for the remote command's words.
		var out []string
		for _, w := range f {
			if w == cmd {
				out = append(out, gorun, "--agent")
				continue
			}
			out = append(out, w)
		}
		return out
	}
	return append(strings.Fields(exe), host, gorun, "--agent")
}

// startAgents starts an agent on every host of hosts and waits until each
// has connected and proved the job's secret.
func startAgents(j *Job, hosts []string, secret []byte, out *output, log *slog.Logger, exited chan<- int) (*agents, error) {
	ln, err := net.Listen("tcp", ":0") // every address: the hosts reach one; auth keeps strangers out
	if err != nil {
		return nil, fmt.Errorf("launch: listening for agents: %w", err)
	}
	local, err := net.Listen("tcp", "127.0.0.1:0") // this host's ranks, for the coordinator
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("launch: listening for the coordinator: %w", err)
	}
	a := &agents{log: log, out: out, secret: secret, ln: ln, byHost: map[string]*agentConn{},
		coord: newRelayListener(local.Addr()), died: make(chan string, len(hosts))}
	go a.coord.feed(local)
	gorun := j.RemoteGorun
	if gorun == "" {
		if gorun, err = os.Executable(); err != nil {
			ln.Close()
			return nil, err
		}
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for i, h := range hosts {
		argv := remoteCommand(j.LauncherExec, h, gorun)
		cmd := exec.Command(argv[0], argv[1:]...)
		cfg, _ := json.Marshal(AgentConfig{Launcher: net.JoinHostPort(addrToward(h), port), Secret: secret, Host: h, Index: i})
		cmd.Stdin = strings.NewReader(string(cfg) + "\n")
		w := &agentLog{out: out, host: h}
		cmd.Stdout, cmd.Stderr = w, w
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			a.close()
			return nil, fmt.Errorf("launch: starting the agent on %s (%s): %w", h, strings.Join(argv, " "), err)
		}
		a.cmds = append(a.cmds, cmd)
		ended := make(chan struct{})
		a.ended = append(a.ended, ended)
		go func() {
			err := cmd.Wait()
			close(ended)
			a.died <- fmt.Sprintf("the agent on %s (%s) exited: %v", h, strings.Join(argv, " "), err)
		}()
	}
	if err := a.accept(hosts, exited); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// accept takes the agents' connections until every host has one, then
// closes the agents' port. An agent command that exits first (ssh could
// not connect, no gorun there) fails the start at once, with its output
// already on gorun's stderr.
func (a *agents) accept(hosts []string, exited chan<- int) error {
	// Each connection proves the secret in its own goroutine: a stranger
	// that stays silent holds nobody up. Unfinished handshakes are cut off
	// once every agent is in.
	type authed struct {
		c  net.Conn
		id uint32
	}
	conns := make(chan authed)
	stop := make(chan struct{})
	go func() {
		for {
			c, err := a.ln.Accept()
			if err != nil {
				return
			}
			go func() {
				hs := make(chan struct{})
				go func() {
					select {
					case <-stop:
						c.SetDeadline(time.Now())
					case <-hs:
					}
				}()
				c.SetDeadline(time.Now().Add(agentHandshake))
				id, err := auth.Accept(c, a.secret, authPurpose, auth.Any)
				close(hs)
				c.SetDeadline(time.Time{})
				if err != nil {
					a.log.Warn("launch: refused a connection on the agent port", "from", c.RemoteAddr(), "err", err)
					c.Close()
					return
				}
				select {
				case conns <- authed{c, id}:
				case <-stop:
					c.Close()
				}
			}()
		}
	}()
	defer func() {
		a.ln.Close()
		close(stop)
	}()
	timeout := time.NewTimer(agentHandshake)
	defer timeout.Stop()
	missing := func() string {
		var m []string
		for _, h := range hosts {
			if a.byHost[h] == nil {
				m = append(m, h)
			}
		}
		return strings.Join(m, ", ")
	}
	for len(a.byHost) < len(hosts) {
		var in authed
		select {
		case in = <-conns:
		case why := <-a.died:
			return fmt.Errorf("launch: %s", why)
		case <-timeout.C:
			return fmt.Errorf("launch: no agent connected from %s within %v", missing(), agentHandshake)
		}
		c, id := in.c, in.id
		if int(id) >= len(hosts) || a.byHost[hosts[id]] != nil {
			c.Close()
			continue
		}
		sess, err := yamux.Server(c, yamuxConfig())
		if err != nil {
			c.Close()
			continue
		}
		silent, limit := new(atomic.Bool), new(atomic.Int32)
		limit.Store(pingMisses)
		go heartbeat(sess, silent, limit)
		ctl, err := sess.Accept()
		if err != nil {
			sess.Close()
			return fmt.Errorf("launch: the agent on %s: %w", hosts[id], err)
		}
		ac := &agentConn{host: hosts[id], sess: sess, silent: silent, limit: limit, ctl: ctl, enc: json.NewEncoder(ctl),
			procs: map[int]*remoteProc{}, started: map[int]chan agentMsg{}, exited: exited, out: a.out}
		a.byHost[ac.host] = ac
		go ac.read()
		go ac.acceptStreams(a.coord)
	}
	return nil
}

func (a *agents) close() {
	for _, ac := range a.byHost {
		ac.sess.Close()
	}
	a.ln.Close()
	a.coord.Close()
	for i, c := range a.cmds {
		select {
		case <-a.ended[i]:
		case <-time.After(time.Second): // a lost host's ssh may wait minutes for its own timeouts
			c.Process.Kill()
			<-a.ended[i]
		}
	}
}

// start asks the agent to start one rank.
func (ac *agentConn) start(spec rankSpec) (rankProc, error) {
	p := &remoteProc{rank: spec.rank, host: ac.host, ac: ac, tail: newTail(tailLines), outDone: make(chan struct{}), out: spec.out}
	p.streams.Add(2)
	go func() { p.streams.Wait(); close(p.outDone) }()
	reply := make(chan agentMsg, 1)
	ac.mu.Lock()
	ac.procs[spec.rank] = p
	ac.started[spec.rank] = reply
	ac.tag = spec.tag
	ac.mu.Unlock()
	ac.send(agentMsg{Op: "start", Rank: spec.rank, Path: spec.path, Args: spec.args, Env: spec.env,
		LocalSize: spec.localSize, Stdin: spec.stdin != nil, Dir: spec.dir})
	m, ok := <-reply
	if !ok {
		return nil, fmt.Errorf("launch: starting rank %d on %s: the agent is gone", spec.rank, ac.host)
	}
	if m.Err != "" {
		return nil, fmt.Errorf("launch: starting rank %d on %s: %s", spec.rank, ac.host, m.Err)
	}
	p.pid = m.PID
	if spec.stdin != nil {
		if s, err := ac.sess.Open(); err == nil {
			fmt.Fprintf(s, "in %d\n", spec.rank)
			p.stdin, p.inDone = s, make(chan struct{})
			go func() { defer close(p.inDone); io.Copy(s, spec.stdin); s.Close() }()
		}
	}
	return p, nil
}

func (ac *agentConn) send(m agentMsg) {
	ac.encMu.Lock()
	defer ac.encMu.Unlock()
	ac.enc.Encode(m)
}

// read handles the agent's control messages; when the connection goes,
// every rank of the host that has not ended counts as killed, and the
// report names the host.
func (ac *agentConn) read() {
	dec := json.NewDecoder(ac.ctl)
	var why error
	for {
		var m agentMsg
		if why = dec.Decode(&m); why != nil {
			break
		}
		ac.mu.Lock()
		switch m.Op {
		case "started":
			if m.Err == "" {
				ac.limit.Store(lossMisses(len(ac.procs), m.CPUs))
			}
			if ch := ac.started[m.Rank]; ch != nil {
				ch <- m
				delete(ac.started, m.Rank)
			}
		case "exit":
			if p := ac.procs[m.Rank]; p != nil && !p.ended {
				p.ended = true
				p.exit = RankExit{Rank: m.Rank, PID: m.PID, Code: m.Code, Signal: syscall.Signal(m.Signal)}
				ac.exited <- m.Rank
			}
		}
		ac.mu.Unlock()
	}
	ac.mu.Lock()
	defer ac.mu.Unlock()
	ac.lost = true
	for r, ch := range ac.started {
		close(ch)
		delete(ac.started, r)
	}
	for r, p := range ac.procs {
		if !p.ended {
			p.ended = true
			p.exit = RankExit{Rank: r, PID: p.pid, Code: -1, Signal: syscall.SIGKILL}
			p.tail.add([]byte(fmt.Sprintf("gorun: lost the connection to the agent on host %s (%v)", ac.host, ac.lostWhy(why))))
			p.cut()
			ac.exited <- r
		}
	}
}

// lostWhy says in words why an agent's control stream ended.
func (ac *agentConn) lostWhy(err error) string {
	switch {
	case ac.silent.Load():
		return fmt.Sprintf("it answered no ping for %v", time.Duration(ac.limit.Load())*pingTimeout)
	case errors.Is(err, io.EOF), errors.Is(err, yamux.ErrSessionShutdown):
		return "the agent or its host went away"
	case errors.Is(err, yamux.ErrTimeout), errors.Is(err, yamux.ErrKeepAliveTimeout):
		return "it stopped answering"
	}
	return err.Error()
}

// acceptStreams routes the streams the agent opens.
func (ac *agentConn) acceptStreams(coord *relayListener) {
	for {
		s, err := ac.sess.Accept()
		if err != nil {
			return
		}
		go func() {
			kind, rank, r, err := readStreamHeader(s)
			if err != nil {
				s.Close()
				return
			}
			if kind == "coord" {
				coord.push(&bufferedConn{Conn: s, r: r})
				return
			}
			ac.mu.Lock()
			p := ac.procs[rank]
			tag := ac.tag
			ac.mu.Unlock()
			if p == nil || (kind != "out" && kind != "err") {
				s.Close()
				return
			}
			p.mu.Lock()
			p.outs = append(p.outs, s)
			p.mu.Unlock()
			label := fmt.Appendf(nil, "[%d] ", rank)
			var prefix []byte
			if tag {
				prefix = label
			}
			d, tl := p.out.stdout, (*tail)(nil)
			if kind == "err" {
				d, tl = p.out.stderr, p.tail
			}
			p.out.forward(r, d, prefix, label, tl)
			s.Close()
			p.streams.Done()
		}()
	}
}

// remoteProc is a rank an agent started.
type remoteProc struct {
	rank int
	host string
	ac   *agentConn
	tail *tail
	out  *output // where its lines go
	pid  int

	ended bool     // under ac.mu
	exit  RankExit // under ac.mu

	mu      sync.Mutex
	outs    []net.Conn
	streams sync.WaitGroup
	outDone chan struct{}
	stdin   net.Conn
	inDone  chan struct{}
}

func (p *remoteProc) Host() string { return p.host }

func (p *remoteProc) Signal(sig syscall.Signal) bool {
	p.ac.mu.Lock()
	gone := p.ended || p.ac.lost
	p.ac.mu.Unlock()
	if gone {
		return false
	}
	p.ac.send(agentMsg{Op: "signal", Rank: p.rank, Signal: int(sig)})
	return true
}

func (p *remoteProc) Exit() RankExit {
	p.ac.mu.Lock()
	defer p.ac.mu.Unlock()
	return p.exit
}

func (p *remoteProc) StderrTail() []string        { return p.tail.get() }
func (p *remoteProc) Blocked() string             { return p.tail.blocked() }
func (p *remoteProc) OutputDone() <-chan struct{} { return p.outDone }
func (p *remoteProc) CutOutput()                  { p.cut() }

func (p *remoteProc) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.outs {
		s.Close()
	}
}

func (p *remoteProc) CloseStdin() <-chan struct{} {
	if p.stdin != nil {
		p.stdin.Close()
	}
	return p.inDone
}

// relayListener is the coordinator's listener: the ranks of this host
// dial its TCP listener, the other hosts' come relayed by their agents.
type relayListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newRelayListener(addr net.Addr) *relayListener {
	return &relayListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *relayListener) push(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

func (l *relayListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *relayListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *relayListener) Addr() net.Addr { return l.addr }

// feed pushes the connections of a real listener (this host's ranks).
func (l *relayListener) feed(ln net.Listener) {
	go func() {
		<-l.closed
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		l.push(c)
	}
}

// addrToward is this host's address on the route to host, which the
// agent there dials: the source address the kernel picks for it.
func addrToward(host string) string {
	c, err := net.Dial("udp", net.JoinHostPort(host, "9"))
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	ip, _, _ := net.SplitHostPort(c.LocalAddr().String())
	return ip
}

// bufferedConn is a stream whose first bytes a reader has buffered.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// agentLog forwards an agent's own output (ssh's errors, the agent's) to
// gorun's stderr, naming the host.
type agentLog struct {
	out  *output
	host string
}

func (w *agentLog) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if l != "" {
			w.out.notef("agent on %s: %s", w.host, l)
		}
	}
	return len(p), nil
}

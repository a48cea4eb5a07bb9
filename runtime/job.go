package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	goruntime "runtime"
	"slices"
	"sync"
	"time"

	"github.com/gorun-hpc/gorun/internal/bootstrap"
	"github.com/gorun-hpc/gorun/internal/shmsync"
	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/transport/inproc"
	"github.com/gorun-hpc/gorun/internal/transport/shmring"
	"github.com/gorun-hpc/gorun/internal/transport/tcp"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// peerInfo is what each rank publishes through the coordinator at Init.
type peerInfo struct {
	Addr string `json:"addr"` // tcp listen address, "" if tcp is not allowed
	Shm  string `json:"shm"`  // shared-memory address, "" if shm is not allowed or alone on the node
	Node string `json:"node"`
	Arch string `json:"arch"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	CPUs string `json:"cpus"` // the CPUs it may run on, a hexadecimal mask (cpuMask)
}

// lostGrace is how long a rank whose launcher vanished keeps running before
// it exits, so its pending calls can return their errors first.
const lostGrace = 2 * time.Second

// joinJob is Init under gorun: register with the coordinator, exchange
// addresses, connect to every peer. Each peer is reached by the most
// exclusive transport that both allow: shared memory for a peer on the same
// node (gorun --nodes emulates nodes), TCP for the others.
func (cfg *Config) joinJob(ctx context.Context, env *bootstrap.Env, client launcher) (c *Comm, err error) {
	allowed := cfg.Transports
	if len(env.Transports) > 0 {
		allowed = env.Transports
	}
	// Until the world owns them, everything opened here (and the launcher
	// connection) is released on error.
	var opened []io.Closer
	defer func() {
		if err != nil {
			for _, o := range opened {
				o.Close()
			}
			client.Close()
		}
	}()
	for _, t := range allowed {
		if !slices.Contains(knownTransports, t) {
			return nil, errInvalid(fmt.Sprintf("%s: unknown transport %q", bootstrap.EnvTransports, t))
		}
	}
	allow := func(name string) bool { return len(allowed) == 0 || slices.Contains(allowed, name) }
	w := newWorld(env.Rank, env.Size, nil, cfg)
	spin := w.spinning
	forceYield, forced, err := yieldOverride()
	if err != nil {
		return nil, err
	}
	me := peerInfo{Node: env.Node, Arch: goruntime.GOARCH, PID: os.Getpid(), CPUs: cpuMask()}
	me.Host, _ = os.Hostname()
	var tr *tcp.Transport
	if allow("tcp") {
		bind := env.Bind
		if bind == "" {
			bind = "127.0.0.1"
		}
		tr, err = tcp.Listen(tcp.Config{Secret: env.Secret, Self: env.Rank, Listen: net.JoinHostPort(bind, "0"), Spin: spin, Logger: cfg.logger()})
		if err != nil {
			return nil, err
		}
		opened = append(opened, tr)
		me.Addr = tr.Addr()
	}
	var sr *shmring.Transport
	if allow("shm") && env.LocalSize > 1 {
		sr, err = shmring.Listen(shmring.Config{JobID: env.JobID, Secret: env.Secret, Self: env.Rank, Spin: spin, Logger: cfg.logger()})
		if err != nil {
			return nil, err
		}
		opened = append(opened, sr)
		me.Shm = sr.Addr()
	}
	mine, _ := json.Marshal(me)
	all, err := client.Exchange(ctx, mine)
	if err != nil {
		return nil, fmt.Errorf("exchanging addresses: %w", err)
	}
	tcpAddrs, shmAddrs := make([]string, env.Size), make([]string, env.Size)
	nodes, hosts, masks := make([]string, env.Size), make([]string, env.Size), make([]string, env.Size)
	for i, b := range all {
		var p peerInfo
		if err = json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("rank %d published a malformed address record: %w", i, err)
		}
		if p.Arch != goruntime.GOARCH {
			return nil, fmt.Errorf("rank %d runs on %s and rank %d on %s; all ranks must share one architecture", i, p.Arch, env.Rank, goruntime.GOARCH)
		}
		nodes[i], hosts[i], masks[i] = p.Node, p.Host, p.CPUs
		switch {
		case i == env.Rank:
		case p.Node == env.Node && p.Shm != "" && me.Shm != "":
			shmAddrs[i] = p.Shm
			w.pids[i] = p.PID
			// Single copy only when asked for by name: measured on
			// this VM it is slower than the ring (docs/performance.md).
			w.cma[i].Store(slices.Contains(allowed, "cma"))
		case p.Addr != "" && me.Addr != "":
			tcpAddrs[i] = p.Addr
		default:
			return nil, errInvalid(fmt.Sprintf("no allowed transport reaches rank %d (node %s) from rank %d (node %s); transports allowed: %v", i, p.Node, env.Rank, env.Node, allowed))
		}
	}
	w.setNodes(nodes)
	w.hosts = hosts
	if forced && forceYield || !forced && oversubscribed(env.Rank, hosts, masks) {
		w.setOversubscribed(shmsync.Yield)
		w.log.Debug("waits yield the CPU: more ranks on this node than CPUs, or "+EnvYield+"=1", "rank", env.Rank)
	}
	if sr != nil {
		eps, err := sr.Connect(ctx, shmAddrs, w)
		if err != nil {
			return nil, fmt.Errorf("connecting to peers over shared memory: %w", err)
		}
		merge(w.eps, eps)
		w.pollers = append(w.pollers, sr)
		w.jobID, w.shmOK = env.JobID, true
	}
	if tr != nil {
		eps, err := tr.Connect(ctx, tcpAddrs, w)
		if err != nil {
			return nil, fmt.Errorf("connecting to peers over TCP: %w", err)
		}
		merge(w.eps, eps)
		w.sysPollers = append(w.sysPollers, tr)
	}
	w.eps[env.Rank] = inproc.NewLink(env.Rank, w)
	w.closers = append(opened, client)
	w.tellPeers = func(cause error) {
		// Tell the peers the cause directly, so that it reaches them before
		// they see this process exit. Best effort, bounded: a peer whose
		// channel is full must not hold this up; the launcher stops the job
		// in any case.
		// Peers with no channel yet get one: a peer waiting for this
		// rank would otherwise learn only that it cannot be reached.
		msg := []byte(cause.Error())
		var sent sync.WaitGroup
		for i := range w.size {
			if i != w.rank {
				sent.Go(func() { _ = w.eps[i].Send(wire.Header{Kind: wire.KindAbort}, msg) })
			}
		}
		done := make(chan struct{})
		go func() { sent.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(abortSendWait):
		}
	}
	w.onAbort = func(cause error) {
		w.tellPeers(cause)
		_ = client.Abort(cause.Error())
	}
	w.onPeer = func(cause error) { _ = client.Failing(cause.Error()) }
	go w.watchLauncher(client.Lost())
	return worldComm(w), nil
}

// abortSendWait bounds how long Abort waits for its notices to the peers.
const abortSendWait = 500 * time.Millisecond

// merge copies the non-nil endpoints of src into dst.
func merge(dst, src []transport.Endpoint) {
	for i, e := range src {
		if e != nil {
			dst[i] = e
		}
	}
}

// watchLauncher fails the world when the coordinator connection drops
// without an orderly close (gorun was killed), then ends the process: a rank
// without its launcher would otherwise run on unseen and unstoppable.
func (w *world) watchLauncher(lost <-chan struct{}) {
	select {
	case <-lost:
	case <-w.stopped:
		return
	}
	w.mu.Lock()
	closing := w.closed
	w.mu.Unlock()
	if closing {
		return
	}
	w.fail(errors.New("the launcher (gorun) is gone"))
	fmt.Fprintf(os.Stderr, "gorun: rank %d: lost the launcher; exiting in %v\n", w.rank, lostGrace)
	time.Sleep(lostGrace)
	os.Exit(1)
}

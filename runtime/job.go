package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	goruntime "runtime"
	"slices"
	"time"

	"github.com/gorun-hpc/gorun/internal/bootstrap"
	"github.com/gorun-hpc/gorun/internal/transport/inproc"
	"github.com/gorun-hpc/gorun/internal/transport/tcp"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// peerInfo is what each rank publishes through the coordinator at Init.
type peerInfo struct {
	Addr string `json:"addr"` // tcp listen address
	Node string `json:"node"`
	Arch string `json:"arch"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
}

// lostGrace is how long a rank whose launcher vanished keeps running before
// it exits, so its pending calls can return their errors first.
const lostGrace = 2 * time.Second

// joinJob is Init under gorun: register with the coordinator, exchange
// addresses, connect to every peer.
func (cfg *Config) joinJob(ctx context.Context, env *bootstrap.Env) (*Comm, error) {
	allowed := cfg.Transports
	if len(env.Transports) > 0 {
		allowed = env.Transports
	}
	for _, t := range allowed {
		if !slices.Contains(knownTransports, t) {
			return nil, errInvalid(fmt.Sprintf("%s: unknown transport %q", bootstrap.EnvTransports, t))
		}
	}
	if len(allowed) > 0 && !slices.Contains(allowed, "tcp") && env.Size > 1 {
		return nil, errInvalid(fmt.Sprintf("transports %v leave no way to reach other ranks (tcp is the only inter-process transport)", allowed))
	}

	client, err := bootstrap.Dial(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("contacting the launcher: %w", err)
	}
	w := newWorld(env.Rank, env.Size, nil, cfg)
	bind := env.Bind
	if bind == "" {
		bind = "127.0.0.1"
	}
	tr, err := tcp.Listen(tcp.Config{
		Secret: env.Secret,
		Self:   env.Rank,
		Listen: net.JoinHostPort(bind, "0"),
		Spin:   func() bool { return w.waiters.Load() > 0 },
		Logger: cfg.logger(),
	})
	if err != nil {
		client.Close()
		return nil, err
	}
	host, _ := os.Hostname()
	me, _ := json.Marshal(peerInfo{Addr: tr.Addr(), Node: env.Node, Arch: goruntime.GOARCH, Host: host, PID: os.Getpid()})
	all, err := client.Exchange(ctx, me)
	if err != nil {
		tr.Close()
		client.Close()
		return nil, fmt.Errorf("exchanging addresses: %w", err)
	}
	infos := make([]peerInfo, env.Size)
	addrs := make([]string, env.Size)
	w.nodes = make([]string, env.Size)
	for i, b := range all {
		if err := json.Unmarshal(b, &infos[i]); err != nil {
			tr.Close()
			client.Close()
			return nil, fmt.Errorf("rank %d published a malformed address record: %w", i, err)
		}
		if infos[i].Arch != goruntime.GOARCH {
			tr.Close()
			client.Close()
			return nil, fmt.Errorf("rank %d runs on %s and rank %d on %s; all ranks must share one architecture", i, infos[i].Arch, env.Rank, goruntime.GOARCH)
		}
		w.nodes[i] = infos[i].Node
		if i != env.Rank {
			addrs[i] = infos[i].Addr
		}
	}
	eps, err := tr.Connect(ctx, addrs, w)
	if err != nil {
		tr.Close()
		client.Close()
		return nil, fmt.Errorf("connecting to peers: %w", err)
	}
	copy(w.eps, eps)
	w.eps[env.Rank] = inproc.NewLink(env.Rank, w)
	w.closers = append(w.closers, tr, client)
	w.onAbort = func(cause error) {
		msg := []byte(cause.Error())
		for i := range w.size {
			if i != w.rank {
				// Best effort: the launcher stops the job in any case.
				go func() { _ = w.eps[i].Send(wire.Header{Kind: wire.KindAbort}, msg) }()
			}
		}
		_ = client.Abort(cause.Error())
	}
	w.onPeer = func(cause error) { _ = client.Failing(cause.Error()) }
	go w.watchLauncher(client.Lost())
	return worldComm(w), nil
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
	closing := w.detached
	w.mu.Unlock()
	if closing {
		return
	}
	w.fail(errors.New("the launcher (gorun) is gone"))
	fmt.Fprintf(os.Stderr, "gorun: rank %d: lost the launcher; exiting in %v\n", w.rank, lostGrace)
	time.Sleep(lostGrace)
	os.Exit(1)
}

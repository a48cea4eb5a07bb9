package runtime

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/transport/inproc"
	"github.com/gorun-hpc/gorun/internal/transport/shmring"
	"github.com/gorun-hpc/gorun/internal/transport/tcp"
)

// InitLocal returns the n world communicators of a job whose ranks are
// goroutines of this process: element i is rank i's world. Each rank must
// be driven by its own goroutine (a collective waits for all of them).
// Aborting any of them aborts all. It is Config{}.InitLocal(n); the harness
// in runtime/ranktest builds on it.
func InitLocal(n int) ([]*Comm, error) {
	var cfg Config
	return cfg.InitLocal(n)
}

// InitLocal is InitLocal with this configuration. Config.LocalNodes splits
// the ranks into emulated nodes. With Config.Transports nil the ranks talk
// over in-memory links (fast, and visible to the race detector); naming
// "shm" or "tcp" there puts them on the real transports instead, as
// processes of a job would be: shared-memory rings between ranks of one
// emulated node where "shm" is allowed, loopback TCP between the others
// (and between all, with "tcp" alone). Ranks of one emulated node share
// memory for collectives unless Config.Transports leaves "shm" out.
func (cfg *Config) InitLocal(n int) ([]*Comm, error) {
	fail := func(err error) ([]*Comm, error) {
		return nil, &OpError{Op: "InitLocal", Comm: "world", Peer: NoPeer, Err: err}
	}
	if err := cfg.validate(); err != nil {
		return fail(err)
	}
	if n < 1 {
		return fail(errInvalid(fmt.Sprintf("n = %d ranks; want at least 1", n)))
	}
	k := max(cfg.LocalNodes, 1)
	if k > n {
		return fail(errInvalid(fmt.Sprintf("Config.LocalNodes = %d for %d ranks", k, n)))
	}
	nodes := make([]string, n)
	for i := range nodes {
		// Block-wise, the first n%k nodes one rank larger (as gorun --nodes).
		base, extra := n/k, n%k
		node := extra + (i-extra*(base+1))/max(base, 1)
		if i < extra*(base+1) {
			node = i / (base + 1)
		}
		nodes[i] = fmt.Sprintf("local#%d", node)
	}
	allow := func(name string) bool { return len(cfg.Transports) == 0 || slices.Contains(cfg.Transports, name) }
	real := slices.Contains(cfg.Transports, "tcp") || slices.Contains(cfg.Transports, "shm")
	ws := make([]*world, n)
	for i := range ws {
		ws[i] = newWorld(i, n, nodes, cfg)
		ws[i].shmOK = allow("shm")
		if goroutinesOversubscribed(n) {
			ws[i].setOversubscribed(goruntime.Gosched)
		}
	}
	for _, w := range ws {
		w.onAbort = func(cause error) {
			for _, o := range ws {
				o.fail(cause)
			}
		}
	}
	if real {
		if err := connectLocal(ws, nodes, allow); err != nil {
			return fail(err)
		}
	} else {
		for i, w := range ws {
			for j := range ws {
				w.eps[j] = inproc.NewLink(i, ws[j])
			}
		}
	}
	comms := make([]*Comm, n)
	for i, w := range ws {
		comms[i] = worldComm(w)
	}
	return comms, nil
}

// localJobs numbers the jobs of InitLocal in this process.
var localJobs atomic.Int64

// connectLocal connects the goroutine ranks ws over the real transports:
// shmring between ranks of one node where shm is allowed, TCP between the
// others. Every rank's endpoint to itself is in memory.
func connectLocal(ws []*world, nodes []string, allow func(string) bool) (err error) {
	n := len(ws)
	secret := make([]byte, 32)
	rand.Read(secret)
	job := fmt.Sprintf("local%d.%d", os.Getpid(), localJobs.Add(1))
	trs := make([]*tcp.Transport, n)
	srs := make([]*shmring.Transport, n)
	defer func() {
		if err != nil {
			for i := range n {
				if trs[i] != nil {
					trs[i].Close()
				}
				if srs[i] != nil {
					srs[i].Close()
				}
			}
		}
	}()
	tcpAddrs, shmAddrs := make([][]string, n), make([][]string, n)
	for i, w := range ws {
		tcpAddrs[i], shmAddrs[i] = make([]string, n), make([]string, n)
		if allow("tcp") {
			if trs[i], err = tcp.Listen(tcp.Config{Secret: secret, Self: i, Spin: w.spinning, Logger: w.log}); err != nil {
				return err
			}
		}
		if allow("shm") {
			if srs[i], err = shmring.Listen(shmring.Config{JobID: job, Secret: secret, Self: i, Spin: w.spinning, Logger: w.log}); err != nil {
				return err
			}
		}
	}
	for i := range n {
		for j := range n {
			switch {
			case i == j:
			case nodes[i] == nodes[j] && srs[j] != nil:
				shmAddrs[i][j] = srs[j].Addr()
			case trs[j] != nil:
				tcpAddrs[i][j] = trs[j].Addr()
			default:
				return errInvalid(fmt.Sprintf("no allowed transport reaches rank %d (node %s) from rank %d (node %s)", j, nodes[j], i, nodes[i]))
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, w := range ws {
		wg.Go(func() {
			var eps []transport.Endpoint
			if srs[i] != nil {
				if eps, errs[i] = srs[i].Connect(ctx, shmAddrs[i], w); errs[i] != nil {
					return
				}
				merge(w.eps, eps)
				w.pollers = append(w.pollers, srs[i])
				w.closers = append(w.closers, srs[i])
			}
			if trs[i] != nil {
				if eps, errs[i] = trs[i].Connect(ctx, tcpAddrs[i], w); errs[i] != nil {
					return
				}
				merge(w.eps, eps)
				w.sysPollers = append(w.sysPollers, trs[i])
				w.closers = append(w.closers, trs[i])
			}
		})
	}
	wg.Wait()
	for i, e := range errs {
		if e != nil {
			return fmt.Errorf("connecting rank %d: %w", i, e)
		}
	}
	for i, w := range ws {
		w.eps[i] = inproc.NewLink(i, w)
	}
	return nil
}

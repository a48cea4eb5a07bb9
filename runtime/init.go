package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gorun-hpc/gorun/internal/bootstrap"
	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/transport/inproc"
)

// Config configures a world. The zero value is the default; Init(ctx) is
// new(Config).Init(ctx).
type Config struct {
	// Transports restricts the transports the world may use, by name:
	// "self", "tcp", "shm". Nil allows all of them. "cma" is never on by
	// default: named here, it lets rendezvous messages between ranks of a
	// node be copied once, straight out of the sender's memory, with
	// process_vm_readv (cma.go). The GORUN_TRANSPORTS variable set by
	// gorun --transports takes the place of this list.
	Transports []string

	// EagerLimit is the largest message, in bytes, sent in one frame
	// without waiting for the receiver. Zero means 64 KiB.
	EagerLimit int

	// EagerBudget bounds, in bytes, the eager messages from one peer that
	// a rank holds before its application receives them: a sender that
	// has that much unreceived at a peer sends its next messages by
	// rendezvous (they wait for the matching receive) until the peer
	// catches up. Each message counts its size plus 64 bytes. Zero means
	// 256 MiB shared among the peers, at least 1 MiB and at most 8 MiB
	// each; otherwise at least 4 KiB. Every rank of a job must use the same
	// value.
	EagerBudget int

	// Timeout, if positive, is a watchdog on every blocking call: a call
	// that waits longer aborts the world with a cause naming the call.
	Timeout time.Duration

	// Logger receives diagnostics (strangers refused, peers lost). Nil
	// discards them.
	Logger *slog.Logger

	// LocalNodes splits the ranks of InitLocal block-wise into that many
	// emulated nodes, as gorun --nodes does for processes, so node-aware
	// code (SplitShared) can be tested with goroutine ranks. Zero means 1.
	// Init ignores it.
	LocalNodes int
}

// DefaultEagerLimit is the eager limit when Config.EagerLimit is zero.
const DefaultEagerLimit = 64 << 10

func (cfg *Config) eagerLimit() int {
	if cfg.EagerLimit > 0 {
		return cfg.EagerLimit
	}
	return DefaultEagerLimit
}

// minEagerBudget is the smallest Config.EagerBudget: a few small messages.
const minEagerBudget = 4 << 10

// eagerBudget is the per-peer budget of a world of size ranks (flow.go).
func (cfg *Config) eagerBudget(size int) int64 {
	if cfg.EagerBudget > 0 {
		return int64(cfg.EagerBudget)
	}
	return min(max((256<<20)/int64(max(size-1, 1)), 1<<20), 8<<20)
}

func (cfg *Config) logger() *slog.Logger {
	if cfg.Logger != nil {
		return cfg.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (cfg *Config) validate() error {
	if cfg.EagerLimit < 0 {
		return errInvalid(fmt.Sprintf("Config.EagerLimit %d is negative", cfg.EagerLimit))
	}
	if cfg.EagerBudget < 0 || cfg.EagerBudget > 0 && cfg.EagerBudget < minEagerBudget {
		return errInvalid(fmt.Sprintf("Config.EagerBudget %d: want 0 (the default) or at least %d", cfg.EagerBudget, minEagerBudget))
	}
	if cfg.LocalNodes < 0 {
		return errInvalid(fmt.Sprintf("Config.LocalNodes %d is negative", cfg.LocalNodes))
	}
	if cfg.Timeout < 0 {
		return errInvalid(fmt.Sprintf("Config.Timeout %v is negative", cfg.Timeout))
	}
	for _, t := range cfg.Transports {
		if !slices.Contains(knownTransports, t) {
			return errInvalid(fmt.Sprintf("Config.Transports: unknown transport %q (known: %s)", t, strings.Join(knownTransports, ", ")))
		}
	}
	return nil
}

var knownTransports = []string{"self", "tcp", "shm", "cma"}

// Init joins the job this process was started in and returns its world
// communicator. It is Config{}.Init(ctx).
func Init(ctx context.Context) (*Comm, error) {
	var cfg Config
	return cfg.Init(ctx)
}

// Init joins the job and returns the world communicator.
//
// Started by gorun, the process joins the real world: it finds the
// launcher's coordinator from the environment, exchanges addresses with the
// other ranks and connects to each of them; ctx bounds that wire-up and
// does not matter once Init returns. Started any other way (./app, go run,
// go test), it returns a world of one rank that opens no socket and no
// shared memory. Started by a launcher that gives it a PMI server (PMI_FD:
// srun --mpi=pmi2, MPICH's mpiexec), it wires up through that server
// instead: rank and size from PMI, ranks of a node (PMI_process_mapping)
// on shared memory, the others on TCP. If another launcher's variables
// are present without a PMI server (Open MPI's mpirun, srun without
// --mpi=pmi2), Init returns an error rather than start as one of many
// silent singletons.
//
// Init is collective over the job. Close the returned communicator when
// done (defer world.Close()): a rank that exits without it looks lost to
// the others, and they fail.
func (cfg *Config) Init(ctx context.Context) (*Comm, error) {
	fail := func(err error) (*Comm, error) {
		return nil, &OpError{Op: "Init", Comm: "world", Rank: 0, Peer: NoPeer, Err: err}
	}
	if err := cfg.validate(); err != nil {
		return fail(err)
	}
	env, err := bootstrap.Lookup(os.Getenv)
	if err != nil {
		return fail(err)
	}
	var via launcher
	if env == nil && os.Getenv("PMI_FD") != "" {
		// Started by srun --mpi=pmi2 or MPICH's mpiexec: their PMI server.
		if env, via, err = pmiEnv(os.Getenv); err != nil {
			return fail(err)
		}
	}
	if env == nil {
		if f := bootstrap.Foreign(os.Getenv); f != "" {
			return fail(fmt.Errorf("started by another launcher (%s), which gorun cannot join; start the program with gorun (or with a launcher that gives it a PMI server: srun --mpi=pmi2, mpiexec of MPICH), or unset those variables to run as a single rank", f))
		}
		return cfg.singleton(), nil
	}
	if via == nil {
		client, err := bootstrap.Dial(ctx, env)
		if err != nil {
			return fail(fmt.Errorf("contacting the launcher: %w", err))
		}
		via = client
	}
	c, err := cfg.joinJob(ctx, env, via)
	if err != nil {
		var oe *OpError
		if !errors.As(err, &oe) {
			err = &OpError{Op: "Init", Comm: "world", Rank: env.Rank, Peer: NoPeer, Err: err}
		}
		return nil, err
	}
	return c, nil
}

// singleton is the world of a program not started by a launcher.
func (cfg *Config) singleton() *Comm {
	w := newWorld(0, 1, []string{"local"}, cfg)
	w.eps[0] = inproc.NewLink(0, w)
	return worldComm(w)
}

func worldComm(w *world) *Comm {
	c := w.newComm("world", 0, w.rank, w.size)
	c.world = true
	for i := range c.group {
		c.group[i] = i
	}
	return c
}

var _ transport.Handler = (*world)(nil)

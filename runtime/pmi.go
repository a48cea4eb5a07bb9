package runtime

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/gorun-hpc/gorun/internal/bootstrap"
	"github.com/gorun-hpc/gorun/internal/pmi"
)

// A program started by another launcher's PMI server (srun --mpi=pmi2, or
// MPICH's mpiexec) wires up through it instead of gorun's coordinator:
// rank and size from PMI, node locality from PMI_process_mapping (so ranks
// of a node use shared memory), a job secret chosen by rank 0 and shared
// in the key-value space (which only the job's ranks reach: the server
// speaks to each on a descriptor it inherited), and the ranks' address
// cards exchanged by put, fence, get. A failed wire-up is an error, never
// N singletons.

// launcher is what a world needs of whoever started it: the address
// exchange, and where aborts and failures go. *bootstrap.Client (gorun)
// and *pmiLauncher are the two.
type launcher interface {
	Exchange(ctx context.Context, mine []byte) ([][]byte, error)
	Abort(msg string) error
	Failing(msg string) error
	Lost() <-chan struct{}
	Close() error
}

// pmiLauncher is a launcher over a PMI client.
type pmiLauncher struct {
	c     *pmi.Client
	round int
	never chan struct{} // Lost: the PMI server is not watched
}

// pmiEnv dials the PMI server of the environment and returns the job's
// description and the launcher to wire up with.
func pmiEnv(getenv func(string) string) (*bootstrap.Env, launcher, error) {
	c, err := pmi.Dial(getenv)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*bootstrap.Env, launcher, error) {
		c.Finalize()
		return nil, nil, fmt.Errorf("wiring up through the launcher's PMI-%d server: %w", c.Version(), err)
	}
	rank, size := c.Rank(), c.Size()
	if size < 1 || rank >= size {
		return fail(fmt.Errorf("rank %d of %d", rank, size))
	}
	// Nodes: the mapping, else the host name (unique per real host).
	host, _ := os.Hostname()
	nodes := make([]string, size)
	mapping, err := c.ProcessMapping()
	if err != nil {
		return fail(err)
	}
	if mapping != "" {
		idx, err := pmi.ParseMapping(mapping, size)
		if err != nil {
			return fail(err)
		}
		sum := sha256.Sum256([]byte(c.JobID()))
		for r, n := range idx {
			nodes[r] = "pmi-" + hex.EncodeToString(sum[:4]) + "-node" + strconv.Itoa(n)
		}
	}
	// The secret: rank 0's, through the key-value space.
	if rank == 0 {
		secret := make([]byte, 32)
		rand.Read(secret)
		if err := c.Put("gorun-secret", base64.RawURLEncoding.EncodeToString(secret)); err != nil {
			return fail(err)
		}
	}
	if err := c.Fence(); err != nil {
		return fail(err)
	}
	s, err := c.Get("gorun-secret")
	if err != nil {
		return fail(err)
	}
	secret, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(secret) < bootstrap.MinSecretLen {
		return fail(errors.New("rank 0 published no usable secret"))
	}
	if mapping == "" {
		// Without a mapping, learn the nodes from everyone's host name.
		if err := c.Put("gorun-host-"+strconv.Itoa(rank), base64.RawURLEncoding.EncodeToString([]byte(host))); err != nil {
			return fail(err)
		}
		if err := c.Fence(); err != nil {
			return fail(err)
		}
		for r := range size {
			v, err := c.Get("gorun-host-" + strconv.Itoa(r))
			if err != nil {
				return fail(err)
			}
			h, _ := base64.RawURLEncoding.DecodeString(v)
			nodes[r] = string(h)
		}
	}
	env := &bootstrap.Env{Rank: rank, Size: size, Node: nodes[rank], Secret: secret, Bind: pmiBind()}
	for r, n := range nodes {
		if n == nodes[rank] {
			if r < rank {
				env.LocalRank++
			}
			env.LocalSize++
		}
	}
	// The job id tags this node's shared-memory names; pid 0: no gorun
	// sweeps them (the ranks unlink what they name).
	sum := sha256.Sum256([]byte("pmi:" + c.JobID()))
	env.JobID = "0." + hex.EncodeToString(sum[:8])
	if t := getenv(bootstrap.EnvTransports); t != "" {
		env.Transports = splitList(t)
	}
	return env, &pmiLauncher{c: c, never: make(chan struct{})}, nil
}

// pmiBind is the address the ranks' TCP transport listens on under PMI:
// GORUN_BIND if set, else this host's address toward the others (the
// first non-loopback IPv4 address), else loopback.
func pmiBind() string {
	if b := os.Getenv(bootstrap.EnvBind); b != "" {
		return b
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil {
			return ip.IP.String()
		}
	}
	return bootstrap.DefaultBind
}

// Exchange puts mine under this rank's key, fences, and gets every rank's.
func (p *pmiLauncher) Exchange(ctx context.Context, mine []byte) ([][]byte, error) {
	p.round++
	key := func(r int) string { return "gorun-card-" + strconv.Itoa(p.round) + "-" + strconv.Itoa(r) }
	if err := p.c.Put(key(p.c.Rank()), base64.RawURLEncoding.EncodeToString(mine)); err != nil {
		return nil, err
	}
	if err := p.c.Fence(); err != nil {
		return nil, err
	}
	all := make([][]byte, p.c.Size())
	for r := range all {
		v, err := p.c.Get(key(r))
		if err != nil {
			return nil, err
		}
		if all[r], err = base64.RawURLEncoding.DecodeString(v); err != nil {
			return nil, fmt.Errorf("rank %d's card: %w", r, err)
		}
	}
	return all, nil
}

func (p *pmiLauncher) Abort(msg string) error   { return p.c.Abort(1, msg) }
func (p *pmiLauncher) Failing(msg string) error { return nil } // the peers tell each other
func (p *pmiLauncher) Lost() <-chan struct{}    { return p.never }
func (p *pmiLauncher) Close() error             { return p.c.Finalize() }

// splitList splits a comma list, dropping empty names.
func splitList(s string) []string {
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			out = append(out, name)
		}
	}
	return out
}

package bootstrap

import (
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// The environment variables gorun sets for every rank. Env.Environ writes
// them and Lookup reads them; nothing else in the module spells these names.
const (
	EnvJobID      = "GORUN_JOB_ID"     // unique per job; [A-Za-z0-9._-], also tags /dev/shm names
	EnvRank       = "GORUN_RANK"       // rank in the job, 0 ≤ rank < size
	EnvSize       = "GORUN_SIZE"       // number of ranks in the job
	EnvLocalRank  = "GORUN_LOCAL_RANK" // rank among the ranks of the same node
	EnvLocalSize  = "GORUN_LOCAL_SIZE" // number of ranks on the same node
	EnvNode       = "GORUN_NODE"       // node identity; equal values = same node (shared memory possible)
	EnvCoord      = "GORUN_COORD"      // host:port of the coordinator
	EnvSecret     = "GORUN_SECRET"     // hex job secret (32 random bytes from gorun)
	EnvBind       = "GORUN_BIND"       // IP the rank listens on for peers; default 127.0.0.1
	EnvTransports = "GORUN_TRANSPORTS" // optional comma list restricting transports, e.g. "self,tcp"
)

// DefaultBind is the address ranks listen on for peers when GORUN_BIND is
// unset: gorun starts every rank on the local host.
const DefaultBind = "127.0.0.1"

// MinSecretLen is the shortest job secret Lookup accepts. gorun generates
// 32 bytes; a shorter secret would make guessing the HMAC key feasible.
const MinSecretLen = 16

// maxJobIDLen bounds the job id because it is embedded in file names.
const maxJobIDLen = 64

// Env is what a rank learns from gorun through its environment.
type Env struct {
	JobID      string   // unique per job
	Rank       int      // this process's rank, 0 ≤ Rank < Size
	Size       int      // number of ranks
	LocalRank  int      // rank among the ranks with the same Node
	LocalSize  int      // number of ranks with the same Node
	Node       string   // node identity; ranks with equal Node may share memory
	Coord      string   // host:port of the coordinator
	Secret     []byte   // job secret for auth on every connection
	Bind       string   // IP to listen on for peers; "" means DefaultBind
	Transports []string // allowed transports in order; nil means the runtime's default
}

// Environ returns the environment entries ("KEY=VALUE") that describe e, to
// be appended to a child's environment. GORUN_TRANSPORTS is omitted when
// e.Transports is empty, so an inherited value (or none) stays in effect.
func (e *Env) Environ() []string {
	bind := e.Bind
	if bind == "" {
		bind = DefaultBind
	}
	env := []string{
		EnvJobID + "=" + e.JobID,
		EnvRank + "=" + strconv.Itoa(e.Rank),
		EnvSize + "=" + strconv.Itoa(e.Size),
		EnvLocalRank + "=" + strconv.Itoa(e.LocalRank),
		EnvLocalSize + "=" + strconv.Itoa(e.LocalSize),
		EnvNode + "=" + e.Node,
		EnvCoord + "=" + e.Coord,
		EnvSecret + "=" + hex.EncodeToString(e.Secret),
		EnvBind + "=" + bind,
	}
	if len(e.Transports) > 0 {
		env = append(env, EnvTransports+"="+strings.Join(e.Transports, ","))
	}
	return env
}

// Lookup reads the gorun contract through getenv (usually os.Getenv).
//
// It returns (nil, nil) when GORUN_RANK is unset or empty: the process was
// not started by gorun (see Foreign for other launchers). Otherwise every
// variable except GORUN_BIND and GORUN_TRANSPORTS is required, and the
// error names the first one that is missing or malformed, or the rank that
// is out of range. Bind is DefaultBind when GORUN_BIND is unset.
func Lookup(getenv func(string) string) (*Env, error) {
	if getenv(EnvRank) == "" {
		return nil, nil
	}
	var e Env
	var err error
	if e.JobID, err = required(getenv, EnvJobID); err != nil {
		return nil, err
	}
	if len(e.JobID) > maxJobIDLen || strings.IndexFunc(e.JobID, notIDChar) >= 0 {
		return nil, malformed(EnvJobID, e.JobID, "want at most 64 characters from [A-Za-z0-9._-]")
	}
	if e.Size, err = intVar(getenv, EnvSize); err != nil {
		return nil, err
	}
	if e.Size < 1 {
		return nil, malformed(EnvSize, getenv(EnvSize), "want at least 1")
	}
	if e.Rank, err = intVar(getenv, EnvRank); err != nil {
		return nil, err
	}
	if e.Rank < 0 || e.Rank >= e.Size {
		return nil, fmt.Errorf("bootstrap: %s=%d out of range for %s=%d", EnvRank, e.Rank, EnvSize, e.Size)
	}
	if e.LocalSize, err = intVar(getenv, EnvLocalSize); err != nil {
		return nil, err
	}
	if e.LocalSize < 1 || e.LocalSize > e.Size {
		return nil, fmt.Errorf("bootstrap: %s=%d out of range for %s=%d", EnvLocalSize, e.LocalSize, EnvSize, e.Size)
	}
	if e.LocalRank, err = intVar(getenv, EnvLocalRank); err != nil {
		return nil, err
	}
	if e.LocalRank < 0 || e.LocalRank >= e.LocalSize {
		return nil, fmt.Errorf("bootstrap: %s=%d out of range for %s=%d", EnvLocalRank, e.LocalRank, EnvLocalSize, e.LocalSize)
	}
	if e.Node, err = required(getenv, EnvNode); err != nil {
		return nil, err
	}
	if e.Coord, err = required(getenv, EnvCoord); err != nil {
		return nil, err
	}
	if host, port, err := net.SplitHostPort(e.Coord); err != nil || host == "" {
		return nil, malformed(EnvCoord, e.Coord, "want host:port")
	} else if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return nil, malformed(EnvCoord, e.Coord, "want a port in 1..65535")
	}
	s, err := required(getenv, EnvSecret)
	if err != nil {
		return nil, err
	}
	// The secret itself never goes into an error message.
	if e.Secret, err = hex.DecodeString(s); err != nil {
		return nil, fmt.Errorf("bootstrap: %s is not hexadecimal", EnvSecret)
	}
	if len(e.Secret) < MinSecretLen {
		return nil, fmt.Errorf("bootstrap: %s has %d bytes, want at least %d", EnvSecret, len(e.Secret), MinSecretLen)
	}
	e.Bind = getenv(EnvBind)
	if e.Bind == "" {
		e.Bind = DefaultBind
	} else if net.ParseIP(e.Bind) == nil {
		return nil, malformed(EnvBind, e.Bind, "want an IP address")
	}
	if t := getenv(EnvTransports); t != "" {
		for name := range strings.SplitSeq(t, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				return nil, malformed(EnvTransports, t, "empty transport name")
			}
			e.Transports = append(e.Transports, name)
		}
	}
	return &e, nil
}

func required(getenv func(string) string, name string) (string, error) {
	v := getenv(name)
	if v == "" {
		return "", fmt.Errorf("bootstrap: %s is not set (the process looks started by gorun since %s is set)", name, EnvRank)
	}
	return v, nil
}

func intVar(getenv func(string) string, name string) (int, error) {
	v, err := required(getenv, name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, malformed(name, v, "want an integer")
	}
	return n, nil
}

func malformed(name, value, want string) error {
	return fmt.Errorf("bootstrap: %s=%q is malformed: %s", name, value, want)
}

func notIDChar(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '_', r == '-':
		return false
	}
	return true
}

// Foreign reports whether another launcher started this process: it returns
// "" or a description such as "PMI_RANK=3 (Hydra/PMI)" naming the variable
// that gave it away.
//
// The runtime calls it when Lookup found no gorun contract, and must then
// fail with that description instead of running as one of N silent
// singletons (open-mpi/ompi#13523). A launcher that says the job has exactly
// one process (PMI_SIZE=1, OMPI_COMM_WORLD_SIZE=1) is not reported: a
// singleton is then the right answer.
func Foreign(getenv func(string) string) string {
	one := func(name string) bool { return strings.TrimSpace(getenv(name)) == "1" }
	present := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return n + "=" + v
			}
		}
		return ""
	}
	if v := present("PMI_RANK", "PMI_SIZE", "PMI_FD"); v != "" && !one("PMI_SIZE") {
		return v + " (Hydra/PMI)"
	}
	if v := present("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"); v != "" && !one("OMPI_COMM_WORLD_SIZE") {
		return v + " (Open MPI)"
	}
	if v := present("PMIX_RANK"); v != "" && !one("OMPI_COMM_WORLD_SIZE") {
		return v + " (PMIx)"
	}
	if n, err := strconv.Atoi(getenv("SLURM_NTASKS")); err == nil && n > 1 && getenv("SLURM_PROCID") != "" {
		return fmt.Sprintf("SLURM_PROCID=%s SLURM_NTASKS=%d (Slurm srun)", getenv("SLURM_PROCID"), n)
	}
	if n, err := strconv.Atoi(getenv("WORLD_SIZE")); err == nil && n > 1 && getenv("RANK") != "" && getenv("MASTER_ADDR") != "" {
		return fmt.Sprintf("RANK=%s WORLD_SIZE=%d (torchrun)", getenv("RANK"), n)
	}
	return ""
}

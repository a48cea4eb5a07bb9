package ranktest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/launch"
	"github.com/gorun-hpc/gorun/runtime"
)

// envProgram names, in a re-executed test binary, the registered program
// to run as a rank.
const envProgram = "GORUN_RANKTEST_PROGRAM"

var (
	regMu    sync.Mutex
	programs = map[string]func(c *runtime.Comm) error{}
)

// Register makes fn available to Spawn under name. Call it from an init
// function or a package-level variable of the test package, so that the
// re-executed test binary knows it too. Registering a name twice panics.
func Register(name string, fn func(c *runtime.Comm) error) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := programs[name]; dup {
		panic("ranktest: program " + name + " registered twice")
	}
	programs[name] = fn
}

// InRank reports whether this process is a rank started by Spawn.
func InRank() bool { return os.Getenv(envProgram) != "" }

// Main is the body of a TestMain that uses Spawn:
//
//	func TestMain(m *testing.M) { ranktest.Main(m) }
//
// In a process started by Spawn it runs the registered program as one rank
// (Init, the program, Close) and exits: 0 on success, 1 with the error on
// stderr otherwise. In the ordinary test process it runs the tests and
// exits with their status.
func Main(m *testing.M) {
	name := os.Getenv(envProgram)
	if name == "" {
		os.Exit(m.Run())
	}
	regMu.Lock()
	fn := programs[name]
	regMu.Unlock()
	if fn == nil {
		fmt.Fprintf(os.Stderr, "ranktest: no program %q registered in this test binary\n", name)
		os.Exit(2)
	}
	os.Exit(runRank(fn))
}

func runRank(fn func(c *runtime.Comm) error) int {
	world, err := runtime.Init(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "ranktest: %v\n", err)
		return 1
	}
	err = fn(world)
	if cerr := world.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ranktest: rank %d: %v\n", world.Rank(), err)
		return 1
	}
	return 0
}

// SpawnConfig configures Spawn. The zero value is the default.
type SpawnConfig struct {
	// Nodes splits the ranks into that many emulated nodes (gorun
	// --nodes). Zero means 1.
	Nodes int
	// Transports restricts the ranks' transports (gorun --transports).
	Transports string
	// Env adds KEY=VALUE entries to every rank's environment.
	Env []string
	// Timeout stops the job (all goroutine stacks are printed first) and
	// fails the test. Zero means DefaultTimeout.
	Timeout time.Duration
}

// Spawn runs the program registered as name as n ranks, each a new process
// of the test binary, and returns their combined output. The test fails,
// with the output and the launcher's report, if any rank fails. It is
// SpawnConfig{}.Spawn.
func Spawn(t testing.TB, n int, name string) string {
	t.Helper()
	var cfg SpawnConfig
	return cfg.Spawn(t, n, name)
}

// Spawn is Spawn with this configuration.
func (cfg *SpawnConfig) Spawn(t testing.TB, n int, name string) string {
	t.Helper()
	out, res, err := cfg.run(n, name)
	if err != nil {
		t.Fatalf("ranktest: Spawn %s: %v\n%s", name, err, out)
	}
	if code := res.ExitCode(); code != 0 {
		t.Fatalf("ranktest: Spawn %s with %d ranks failed (exit %d):\n%s", name, n, code, out)
	}
	return out
}

// SpawnResult runs like Spawn but returns the launcher's result instead of
// failing the test when a rank fails, for tests of failure handling.
func (cfg *SpawnConfig) SpawnResult(t testing.TB, n int, name string) (string, *launch.Result) {
	t.Helper()
	out, res, err := cfg.run(n, name)
	if err != nil {
		t.Fatalf("ranktest: Spawn %s: %v\n%s", name, err, out)
	}
	return out, res
}

func (cfg *SpawnConfig) run(n int, name string) (string, *launch.Result, error) {
	regMu.Lock()
	_, ok := programs[name]
	regMu.Unlock()
	if !ok {
		return "", nil, fmt.Errorf("no program %q registered", name)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var out lockedBuffer
	job := launch.Job{
		Path:       exe,
		NP:         n,
		Nodes:      cfg.Nodes,
		Env:        append([]string{envProgram + "=" + name}, cfg.Env...),
		Transports: cfg.Transports,
		TagOutput:  true,
		Stdout:     &out,
		Stderr:     &out,
		Timeout:    timeout,
	}
	res, err := job.Run(context.Background())
	return out.String(), res, err
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

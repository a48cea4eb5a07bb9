package test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/testutil"
)

// wait bounds every wait in the launch tests: reaching it means a hang.
const wait = 30 * time.Second

// TestMain removes the binaries built for the tests. Tests that need more
// package-level set-up or clean-up should add it here.
// It also fails the run if a test left goroutines, child processes,
// sockets or gorun shared-memory segments behind.
func TestMain(m *testing.M) {
	before := testutil.Take()
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	if code == 0 {
		if err := before.Check(); err != nil {
			fmt.Fprintf(os.Stderr, "leak check: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// built holds cmd/gorun and the launch test apps, built once on first use.
var built struct {
	once sync.Once
	dir  string
	err  error
}

var launchApps = []string{"echo", "exit3", "panic", "sleep", "collcheck", "rankfail", "shmleak", "collhold"}

// examples are the programs of examples/ that the tests run.
var examples = []string{"shared", "rwlock", "heat", "particles"}

// binary returns the path of a built program: "gorun" or one of
// launchApps.
func binary(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end launch tests build binaries; skipped with -short")
	}
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "gorun-launch-test-")
		if built.err != nil {
			return
		}
		pkgs := []string{"github.com/gorun-hpc/gorun/cmd/gorun"}
		for _, app := range launchApps {
			pkgs = append(pkgs, "./apps/"+app)
		}
		for _, ex := range examples {
			pkgs = append(pkgs, "../examples/"+ex)
		}
		cmd := exec.Command("go", append([]string{"build", "-o", built.dir + "/"}, pkgs...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return filepath.Join(built.dir, name)
}

// gorun is one running gorun process.
type gorun struct {
	cmd            *exec.Cmd
	stdout, stderr *watcher
	mark           string // in the environment of gorun and every rank
	done           chan struct{}
	start          time.Time
}

// startGorun starts gorun with args (an app name from launchApps as the
// program is replaced by its path). When the test ends it kills gorun if
// needed and checks that no process of the job is left.
func startGorun(t *testing.T, stdin string, args ...string) *gorun {
	t.Helper()
	return startJob(t, func(path string, args ...string) *exec.Cmd { return exec.Command(path, args...) }, nil, stdin, args...)
}

// startJob is startGorun with the command made by command (gorun's path
// and args, app names already replaced by their paths), and after run at
// the end of the test once no process of the job is left.
func startJob(t *testing.T, command func(path string, args ...string) *exec.Cmd, after func(), stdin string, args ...string) *gorun {
	t.Helper()
	path := binary(t, "gorun")
	for i, a := range args {
		for _, app := range slices.Concat(launchApps, examples) {
			if a == app {
				args[i] = binary(t, app)
			}
		}
	}
	b := make([]byte, 8)
	rand.Read(b)
	g := &gorun{
		cmd:    command(path, args...),
		stdout: newWatcher(),
		stderr: newWatcher(),
		mark:   "GORUN_LAUNCH_TEST_MARK=" + hex.EncodeToString(b), // gorun passes it to every rank, remote ones too
		done:   make(chan struct{}),
	}
	g.cmd.Env = append(os.Environ(), g.mark)
	g.cmd.Stdout, g.cmd.Stderr = g.stdout, g.stderr
	if stdin != "" {
		g.cmd.Stdin = strings.NewReader(stdin)
	}
	g.start = time.Now()
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		select {
		case <-g.done:
		default:
			g.cmd.Process.Kill()
			<-g.done
		}
		waitNoProcs(t, g.mark)
		if after != nil {
			after()
		}
	})
	return g
}

// wait waits for gorun to exit and returns its exit code (-1 if killed).
func (g *gorun) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-g.done:
	case <-time.After(wait):
		t.Fatalf("gorun did not exit within %v\nstdout:\n%s\nstderr:\n%s", wait, g.stdout, g.stderr)
	}
	return g.cmd.ProcessState.ExitCode()
}

// runGorun runs gorun to completion.
func runGorun(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	g := startGorun(t, stdin, args...)
	code = g.wait(t)
	return code, g.stdout.String(), g.stderr.String()
}

// watcher is an io.Writer that lets a test wait for output to appear.
type watcher struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every Write
}

func newWatcher() *watcher { return &watcher{changed: make(chan struct{})} }

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.changed)
	w.changed = make(chan struct{})
	return w.buf.Write(p)
}

func (w *watcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitCount waits until s occurs n times in the output.
func (w *watcher) waitCount(t *testing.T, s string, n int) {
	t.Helper()
	timeout := time.After(wait)
	for {
		w.mu.Lock()
		got := strings.Count(w.buf.String(), s)
		changed := w.changed
		w.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("output has %d of %d %q after %v:\n%s", got, n, s, wait, w)
		}
	}
}

// jobProcs returns the live processes whose environment holds mark.
func jobProcs(mark string) []string {
	entries, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range entries {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		env, err := os.ReadFile("/proc/" + pid + "/environ")
		if err != nil || !bytes.Contains(append(append([]byte{0}, env...), 0), []byte("\x00"+mark+"\x00")) {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + pid + "/stat")
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue // dead, waiting for its reaper
		}
		found = append(found, pid)
	}
	return found
}

// waitNoProcs polls until no process of the job is alive, and fails the
// test if one still is after the deadline. Processes killed by the kernel
// (Pdeathsig) die asynchronously, hence the polling.
func waitNoProcs(t *testing.T, mark string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := jobProcs(mark)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				var p int
				fmt.Sscan(pid, &p)
				syscall.Kill(p, syscall.SIGKILL)
			}
			t.Fatalf("processes of the job still alive: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

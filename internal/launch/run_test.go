package launch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"golang.org/x/sys/unix"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const wait = 30 * time.Second

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

// testJob returns a Job running the test binary as app on np ranks, with a
// mark in the environment that checkNoProcs looks for after the test.
func testJob(t *testing.T, app string, np int) (*Job, *watcher, *watcher) {
	t.Helper()
	checkGoroutines(t)
	b := make([]byte, 8)
	rand.Read(b)
	mark := "LAUNCH_TEST_MARK=" + hex.EncodeToString(b)
	t.Cleanup(func() { checkNoProcs(t, mark) })
	stdout, stderr := newWatcher(), newWatcher()
	return &Job{
		Path: os.Args[0],
		NP:   np,
		// Race-enabled ranks otherwise sleep 1s at exit.
		Env:    []string{appVar + "=" + app, mark, "GORACE=atexit_sleep_ms=0"},
		Stdout: stdout,
		Stderr: stderr,
		Grace:  5 * time.Second,
	}, stdout, stderr
}

// run runs j in the background and returns a channel with its outcome.
func run(ctx context.Context, j *Job) <-chan runResult {
	ch := make(chan runResult, 1)
	go func() {
		res, err := j.Run(ctx)
		ch <- runResult{res, err}
	}()
	return ch
}

type runResult struct {
	res *Result
	err error
}

func await(t *testing.T, ch <-chan runResult) *Result {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		return r.res
	case <-time.After(wait):
		t.Fatalf("Run did not return within %v", wait)
	}
	return nil
}

var echoLine = regexp.MustCompile(`rank=(\d+) size=(\d+) local=(\d+)/(\d+) node=(\S+) job=(\S+) gomaxprocs=(\d+) transports=(\S*) stdin="(.*)"`)

func TestRunEnvironment(t *testing.T) {
	j, stdout, _ := testJob(t, "echo", 5)
	j.Nodes = 2
	j.Transports = "self,tcp"
	j.Stdin = strings.NewReader("hello rank 0")
	res := await(t, run(t.Context(), j))
	if res.ExitCode() != 0 || res.Failed != nil {
		t.Fatalf("ExitCode %d, Failed %v", res.ExitCode(), res.Failed)
	}
	lines := echoLine.FindAllStringSubmatch(stdout.String(), -1)
	if len(lines) != 5 {
		t.Fatalf("%d echo lines, want 5:\n%s", len(lines), stdout)
	}
	// 5 ranks on 2 nodes: ranks 0-2 on the first, 3-4 on the second.
	wantLocal := []string{"0/3", "1/3", "2/3", "0/2", "1/2"}
	nodes := map[string]string{}
	jobs := map[string]bool{}
	seen := map[string]bool{}
	for _, m := range lines {
		rank, size, local, node, job, procs, transports, stdin := m[1], m[2], m[3]+"/"+m[4], m[5], m[6], m[7], m[8], m[9]
		r := int(rank[0] - '0')
		seen[rank] = true
		jobs[job] = true
		if size != "5" || local != wantLocal[r] {
			t.Errorf("rank %s: size %s local %s, want 5 %s", rank, size, local, wantLocal[r])
		}
		nodes[rank] = node
		if os.Getenv("GOMAXPROCS") == "" && procs != fmt.Sprint(max(2, runtime.NumCPU()/int(m[4][0]-'0'))) {
			t.Errorf("rank %s: GOMAXPROCS=%s", rank, procs)
		}
		if transports != "self,tcp" {
			t.Errorf("rank %s: transports %q", rank, transports)
		}
		if want := map[bool]string{true: "hello rank 0"}[r == 0]; stdin != want {
			t.Errorf("rank %s: stdin %q, want %q", rank, stdin, want)
		}
	}
	if len(seen) != 5 || len(jobs) != 1 {
		t.Errorf("ranks %v, job ids %v", seen, jobs)
	}
	if nodes["0"] != nodes["2"] || nodes["3"] != nodes["4"] || nodes["0"] == nodes["3"] {
		t.Errorf("node identities %v, want {0,1,2} and {3,4}", nodes)
	}
}

// TestRunBindTo: with BindTo "core" every rank runs on one CPU, as many
// different ones as possible; otherwise on all of gorun's.
func TestRunBindTo(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Skip(err)
	}
	mine := fmt.Sprint(cpuList(&set))
	ncpu := len(cpuList(&set))
	line := regexp.MustCompile(`rank=(\d+) cpus=(\[[0-9 ]*\])`)
	for _, tc := range []struct {
		bind  string
		np    int
		bound bool
	}{
		{"", min(2, ncpu), false},
		{"none", min(2, ncpu), false},
		{"core", min(2, ncpu), true},
		{"core", ncpu + 1, true},
	} {
		t.Run(fmt.Sprintf("%q/np%d", tc.bind, tc.np), func(t *testing.T) {
			j, stdout, _ := testJob(t, "cpus", tc.np)
			j.BindTo = tc.bind
			if res := await(t, run(t.Context(), j)); res.ExitCode() != 0 {
				t.Fatalf("ExitCode %d", res.ExitCode())
			}
			got := line.FindAllStringSubmatch(stdout.String(), -1)
			if len(got) != tc.np {
				t.Fatalf("%d lines, want %d:\n%s", len(got), tc.np, stdout)
			}
			used := map[string]int{}
			for _, m := range got {
				if !tc.bound {
					if m[2] != mine {
						t.Errorf("rank %s runs on %s, want gorun's %s", m[1], m[2], mine)
					}
					continue
				}
				if strings.Contains(m[2], " ") {
					t.Errorf("rank %s runs on %s, want one CPU", m[1], m[2])
				}
				used[m[2]]++
			}
			if tc.bound && len(used) != min(tc.np, ncpu) {
				t.Errorf("ranks bound to %v, want %d different CPUs", used, min(tc.np, ncpu))
			}
		})
	}
}

func TestRunUserGOMAXPROCS(t *testing.T) {
	j, stdout, _ := testJob(t, "echo", 1)
	j.Env = append(j.Env, "GOMAXPROCS=7")
	await(t, run(t.Context(), j))
	if !strings.Contains(stdout.String(), "gomaxprocs=7 ") {
		t.Fatalf("user GOMAXPROCS not kept:\n%s", stdout)
	}
}

func TestRunFailingRank(t *testing.T) {
	j, _, stderr := testJob(t, "exit3", 3)
	res := await(t, run(t.Context(), j))
	if res.ExitCode() != 3 || res.Failed == nil || res.Failed.Rank != 1 || res.Failed.Code != 3 {
		t.Fatalf("ExitCode %d, Failed %+v", res.ExitCode(), res.Failed)
	}
	if want := []string{"exit3: something went wrong", "exit3: rank 1 exits with code 3"}; !slices.Equal(res.Failed.LastStderr, want) {
		t.Errorf("LastStderr %q, want %q", res.Failed.LastStderr, want)
	}
	for r, e := range res.Exits {
		if r != 1 && e.Signal != syscall.SIGTERM {
			t.Errorf("rank %d %s, want stopped by SIGTERM", r, &e)
		}
	}
	report := stderr.String()
	for _, want := range []string{"gorun: rank 1 (pid ", "exited with code 3", "  | exit3: rank 1 exits with code 3", "stopped the other 2"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}

func TestRunAbort(t *testing.T) {
	j, _, stderr := testJob(t, "abort", 3)
	res := await(t, run(t.Context(), j))
	if res.Cause != "bad input" || res.Failed == nil || res.Failed.Rank != 1 || res.ExitCode() != 7 {
		t.Fatalf("Cause %q, Failed %+v, ExitCode %d\n%s", res.Cause, res.Failed, res.ExitCode(), stderr)
	}
	if !strings.Contains(stderr.String(), "aborted the job: bad input") {
		t.Errorf("report lacks the cause:\n%s", stderr)
	}
}

func TestRunExchange(t *testing.T) {
	j, stdout, stderr := testJob(t, "exchange", 4)
	j.Nodes = 2
	res := await(t, run(t.Context(), j))
	if res.ExitCode() != 0 {
		t.Fatalf("ExitCode %d\n%s", res.ExitCode(), stderr)
	}
	if n := strings.Count(stdout.String(), "exchanged with 4 ranks"); n != 4 {
		t.Fatalf("%d ranks exchanged:\n%s", n, stdout)
	}
}

// A rank that exits 0 without closing its client is not itself a failure;
// the ranks that then miss it are.
func TestRunVanishedRank(t *testing.T) {
	j, _, stderr := testJob(t, "vanish", 3)
	res := await(t, run(t.Context(), j))
	if res.Failed == nil || res.Failed.Rank == 0 || res.ExitCode() != 5 {
		t.Fatalf("Failed %+v, ExitCode %d\n%s", res.Failed, res.ExitCode(), stderr)
	}
	if !strings.Contains(stderr.String(), "rank 0 was lost") {
		t.Errorf("the failing rank's stderr does not name rank 0:\n%s", stderr)
	}
}

// A rank that loses its coordinator connection but keeps running is a
// failure once Grace has passed.
func TestRunCutOffRank(t *testing.T) {
	j, stdout, stderr := testJob(t, "cutoff", 3)
	j.Grace = 500 * time.Millisecond
	res := await(t, run(t.Context(), j))
	if res.Failed == nil || res.Failed.Rank != 1 || res.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Fatalf("Failed %+v, ExitCode %d\n%s", res.Failed, res.ExitCode(), stderr)
	}
	if !strings.Contains(stdout.String(), "lost the coordinator") {
		t.Errorf("Client.Lost did not fire in rank 1:\n%s", stdout)
	}
	if !strings.Contains(stderr.String(), "rank 1 (pid") || !strings.Contains(stderr.String(), "dropped its coordinator connection") {
		t.Errorf("report:\n%s", stderr)
	}
}

func TestRunTimeout(t *testing.T) {
	j, stdout, stderr := testJob(t, "sleep", 2)
	j.Timeout = 500 * time.Millisecond
	res := await(t, run(t.Context(), j))
	if !res.TimedOut || res.ExitCode() != 124 {
		t.Fatalf("TimedOut %v, ExitCode %d", res.TimedOut, res.ExitCode())
	}
	// The ranks may still be starting when the timer fires; a Go program
	// killed by SIGQUIT that early still dumps its stacks.
	_ = stdout
	if !strings.Contains(stderr.String(), "SIGQUIT") || !strings.Contains(stderr.String(), "goroutine ") {
		t.Errorf("no goroutine dump after SIGQUIT:\n%s", stderr)
	}
}

func TestRunCancel(t *testing.T) {
	j, stdout, _ := testJob(t, "trap", 3)
	ctx, cancel := context.WithCancel(t.Context())
	ch := run(ctx, j)
	stdout.waitCount(t, "ready", 3)
	cancel()
	res := await(t, ch)
	if !res.Interrupted || res.ExitCode() != 130 || res.Failed != nil {
		t.Fatalf("Interrupted %v, ExitCode %d, Failed %+v", res.Interrupted, res.ExitCode(), res.Failed)
	}
	if n := strings.Count(stdout.String(), "got terminated"); n != 3 {
		t.Errorf("%d ranks got SIGTERM:\n%s", n, stdout)
	}
}

func TestRunSignals(t *testing.T) {
	j, stdout, _ := testJob(t, "trap", 2)
	sigs := make(chan os.Signal, 1)
	j.Signals = sigs
	ch := run(t.Context(), j)
	stdout.waitCount(t, "ready", 2)
	sigs <- syscall.SIGUSR1
	stdout.waitCount(t, "got user defined signal 1", 2)
	sigs <- syscall.SIGTERM
	res := await(t, ch)
	if !res.Interrupted || res.ExitCode() != 143 {
		t.Fatalf("Interrupted %v, ExitCode %d", res.Interrupted, res.ExitCode())
	}
}

func TestRunSecondSignalKills(t *testing.T) {
	j, stdout, stderr := testJob(t, "stubborn", 2)
	j.Grace = time.Hour
	sigs := make(chan os.Signal, 1)
	j.Signals = sigs
	ch := run(t.Context(), j)
	stdout.waitCount(t, "ready", 2)
	sigs <- syscall.SIGINT
	stderr.waitCount(t, "sending SIGTERM", 1)
	sigs <- syscall.SIGINT
	res := await(t, ch)
	if res.ExitCode() != 130 {
		t.Fatalf("ExitCode %d", res.ExitCode())
	}
	for _, e := range res.Exits {
		if e.Signal != syscall.SIGKILL {
			t.Errorf("rank %d %s, want SIGKILL", e.Rank, &e)
		}
	}
}

func TestRunKilledRank(t *testing.T) {
	j, stdout, stderr := testJob(t, "sleep", 2)
	ch := run(t.Context(), j)
	stdout.waitCount(t, "ready", 2)
	var pid int
	fmt.Sscanf(stdout.String()[strings.Index(stdout.String(), "ready "):], "ready %d", &pid)
	syscall.Kill(pid, syscall.SIGKILL)
	res := await(t, ch)
	if res.ExitCode() != 137 || res.Failed == nil || res.Failed.PID != pid {
		t.Fatalf("ExitCode %d, Failed %+v", res.ExitCode(), res.Failed)
	}
	if !strings.Contains(stderr.String(), "was killed by signal SIGKILL") {
		t.Errorf("report:\n%s", stderr)
	}
}

func TestRunKillsGrandchildren(t *testing.T) {
	j, stdout, _ := testJob(t, "grandchild", 2)
	res := await(t, run(t.Context(), j))
	if res.ExitCode() != 0 {
		t.Fatalf("ExitCode %d", res.ExitCode())
	}
	if n := strings.Count(stdout.String(), "grandchild "); n != 2 {
		t.Fatalf("%d grandchildren started:\n%s", n, stdout)
	}
	// checkNoProcs (cleanup) verifies they are gone.
}

func TestRunStartErrors(t *testing.T) {
	for _, j := range []*Job{
		{Path: "", NP: 1},
		{Path: os.Args[0], NP: 0},
		{Path: os.Args[0], NP: 2, Nodes: 3},
		{Path: os.Args[0], NP: 1, Env: []string{"NOEQUALS"}},
		{Path: os.Args[0], NP: 1, Transports: "tcp,"},
		{Path: "/nonexistent/gorun-test-app", NP: 2},
		{Path: "gorun-no-such-program-in-path", NP: 1},
	} {
		checkGoroutines(t)
		if res, err := j.Run(t.Context()); err == nil {
			t.Errorf("Run(%+v) = %+v, want an error", j, res)
		}
	}
}

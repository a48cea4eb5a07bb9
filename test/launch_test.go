package test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var echoLine = regexp.MustCompile(`RANK=(\d+) SIZE=(\d+) LOCAL_RANK=(\d+) LOCAL_SIZE=(\d+) NODE=(\S+) JOB_ID=(\S+) (.*)`)

type echoed struct {
	rank, size, local, localSize int
	node, job, rest              string
}

func parseEcho(t *testing.T, out string) map[int]echoed {
	t.Helper()
	ranks := map[int]echoed{}
	for _, m := range echoLine.FindAllStringSubmatch(out, -1) {
		var e echoed
		e.rank, _ = strconv.Atoi(m[1])
		e.size, _ = strconv.Atoi(m[2])
		e.local, _ = strconv.Atoi(m[3])
		e.localSize, _ = strconv.Atoi(m[4])
		e.node, e.job, e.rest = m[5], m[6], m[7]
		if _, dup := ranks[e.rank]; dup {
			t.Errorf("rank %d reported twice", e.rank)
		}
		ranks[e.rank] = e
	}
	return ranks
}

func TestLaunchEcho(t *testing.T) {
	for _, np := range []int{1, 2, 4, 8} {
		for _, nodes := range []int{1, 2} {
			if nodes > np {
				continue
			}
			t.Run(fmt.Sprintf("np%d_nodes%d", np, nodes), func(t *testing.T) {
				code, stdout, stderr := runGorun(t, "", "-np", fmt.Sprint(np), "--nodes", fmt.Sprint(nodes), "echo", "a", "b c")
				if code != 0 || stderr != "" {
					t.Fatalf("exit %d, stderr:\n%s", code, stderr)
				}
				ranks := parseEcho(t, stdout)
				if len(ranks) != np {
					t.Fatalf("%d ranks reported, want %d:\n%s", len(ranks), np, stdout)
				}
				per := np / nodes // np is a multiple of nodes here
				for r := range np {
					e, ok := ranks[r]
					if !ok {
						t.Fatalf("rank %d missing:\n%s", r, stdout)
					}
					if e.size != np || e.local != r%per || e.localSize != per {
						t.Errorf("rank %d: size %d local %d/%d, want %d %d/%d", r, e.size, e.local, e.localSize, np, r%per, per)
					}
					if same := e.node == ranks[r/per*per].node; !same {
						t.Errorf("rank %d on node %q, its node's first rank on %q", r, e.node, ranks[r/per*per].node)
					}
					if r >= per && e.node == ranks[0].node {
						t.Errorf("rank %d shares node %q with rank 0 across emulated nodes", r, e.node)
					}
					if e.job != ranks[0].job {
						t.Errorf("rank %d job id %q, rank 0 has %q", r, e.job, ranks[0].job)
					}
					if !strings.Contains(e.rest, `args=["a" "b c"]`) {
						t.Errorf("rank %d: %s", r, e.rest)
					}
				}
			})
		}
	}
}

func TestLaunchExport(t *testing.T) {
	t.Setenv("GORUN_LAUNCH_TEST_COPIED", "from gorun")
	code, stdout, stderr := runGorun(t, "", "-np", "2", "-x", "FOO=bar baz", "--x", "GORUN_LAUNCH_TEST_COPIED",
		"echo", "-vars", "FOO,GORUN_LAUNCH_TEST_COPIED")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	for r, e := range parseEcho(t, stdout) {
		if !strings.Contains(e.rest, `FOO="bar baz" GORUN_LAUNCH_TEST_COPIED="from gorun"`) {
			t.Errorf("rank %d: %s", r, e.rest)
		}
	}
	if code, _, stderr := runGorun(t, "", "-np", "1", "-x", "GORUN_LAUNCH_TEST_UNSET_VAR", "echo"); code != 2 || !strings.Contains(stderr, "GORUN_LAUNCH_TEST_UNSET_VAR") {
		t.Errorf("-x of an unset variable: exit %d, stderr %q", code, stderr)
	}
}

func TestLaunchStdin(t *testing.T) {
	code, stdout, stderr := runGorun(t, "line one\nline two\n", "-np", "3", "echo")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	ranks := parseEcho(t, stdout)
	for r := range 3 {
		want := `stdin=""`
		if r == 0 {
			want = `stdin="line one\nline two\n"`
		}
		if !strings.HasSuffix(ranks[r].rest, want) {
			t.Errorf("rank %d: %s, want %s", r, ranks[r].rest, want)
		}
	}
}

func TestLaunchTagOutput(t *testing.T) {
	code, stdout, stderr := runGorun(t, "", "-np", "4", "--tag-output", "echo")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), stdout)
	}
	for _, l := range lines {
		var r int
		if _, err := fmt.Sscanf(l, "[%d] RANK=", &r); err != nil || !strings.HasPrefix(l, fmt.Sprintf("[%d] RANK=%d ", r, r)) {
			t.Errorf("line %q is not tagged with its rank", l)
		}
	}
}

func TestLaunchNoInterleaving(t *testing.T) {
	const np, n, width = 4, 2000, 1000
	code, stdout, stderr := runGorun(t, "", "-np", fmt.Sprint(np), "--tag-output", "echo", "-lines", fmt.Sprint(n), "-width", fmt.Sprint(width))
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for name, out := range map[string]string{"stdout": stdout, "stderr": stderr} {
		next := make([]int, np) // lines of each rank arrive in order
		for l := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
			var r, i int
			if _, err := fmt.Sscanf(l, "[%d] rank %d line %d ", &r, &r, &i); err != nil || r < 0 || r >= np {
				t.Fatalf("%s: malformed line %.80q", name, l)
			}
			want := fmt.Sprintf("[%d] rank %d line %d %s", r, r, i, strings.Repeat(fmt.Sprint(r), width))
			if l != want || i != next[r] {
				t.Fatalf("%s: line %.80q…, want rank %d line %d whole", name, l, r, next[r])
			}
			next[r]++
		}
		for r, c := range next {
			if c != n {
				t.Errorf("%s: rank %d has %d lines, want %d", name, r, c, n)
			}
		}
	}
}

func TestLaunchExit3(t *testing.T) {
	g := startGorun(t, "", "-np", "4", "exit3")
	code := g.wait(t)
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, g.stderr)
	}
	if d := time.Since(g.start); d > 10*time.Second {
		t.Errorf("gorun took %v to notice the failure", d)
	}
	report := g.stderr.String()
	for _, want := range []string{"gorun: rank 1 (pid ", "exited with code 3", "  | exit3: first stderr line", "  | exit3: rank 1 exits with code 3"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	// The cleanup checks that no rank is left.
}

func TestLaunchPanic(t *testing.T) {
	code, _, stderr := runGorun(t, "", "-np", "3", "panic")
	if code == 0 {
		t.Fatal("exit 0 after a panic")
	}
	if !strings.Contains(stderr, "gorun: rank 0 panic: boom from rank 0 (its stack is above)") || !strings.Contains(stderr, "gorun: rank 0 (pid ") {
		t.Errorf("report lacks the panic:\n%s", stderr)
	}
	// The stack once: forwarded, not repeated by the report.
	if n := strings.Count(stderr, "main.main()"); n != 1 {
		t.Errorf("the panicking rank's stack appears %d times, want once:\n%s", n, stderr)
	}
}

func TestLaunchKilledRank(t *testing.T) {
	g := startGorun(t, "", "-np", "3", "sleep")
	g.stdout.waitCount(t, "ready", 3)
	pid := readyPIDs(t, g.stdout.String())[1]
	syscall.Kill(pid, syscall.SIGKILL)
	if code := g.wait(t); code != 137 {
		t.Fatalf("exit %d, want 137\n%s", code, g.stderr)
	}
	if want := fmt.Sprintf("gorun: rank 1 (pid %d) on host ", pid); !strings.Contains(g.stderr.String(), want) || !strings.Contains(g.stderr.String(), "SIGKILL") {
		t.Errorf("report lacks %q and SIGKILL:\n%s", want, g.stderr)
	}
}

// readyPIDs returns the pid of each rank from "ready pid=P rank=R" lines.
func readyPIDs(t *testing.T, out string) map[int]int {
	t.Helper()
	pids := map[int]int{}
	for _, m := range regexp.MustCompile(`ready pid=(\d+) rank=(\d+)`).FindAllStringSubmatch(out, -1) {
		pid, _ := strconv.Atoi(m[1])
		rank, _ := strconv.Atoi(m[2])
		pids[rank] = pid
	}
	return pids
}

func TestLaunchSIGINT(t *testing.T) {
	g := startGorun(t, "", "-np", "3", "sleep", "-trap")
	g.stdout.waitCount(t, "ready", 3)
	g.cmd.Process.Signal(syscall.SIGINT)
	code := g.wait(t)
	if code != 130 {
		t.Fatalf("exit %d, want 130\n%s", code, g.stderr)
	}
	if n := strings.Count(g.stdout.String(), "got terminated"); n != 3 {
		t.Errorf("%d ranks got SIGTERM, want 3:\n%s", n, g.stdout)
	}
}

func TestLaunchForwardSignal(t *testing.T) {
	g := startGorun(t, "", "-np", "2", "sleep", "-trap")
	g.stdout.waitCount(t, "ready", 2)
	g.cmd.Process.Signal(syscall.SIGUSR1)
	g.stdout.waitCount(t, "got user defined signal 1", 2)
	g.cmd.Process.Signal(syscall.SIGTERM)
	if code := g.wait(t); code != 143 {
		t.Fatalf("exit %d, want 143\n%s", code, g.stderr)
	}
}

func TestLaunchTimeout(t *testing.T) {
	g := startGorun(t, "", "-np", "2", "--timeout", "1s", "sleep")
	code := g.wait(t)
	if code != 124 {
		t.Fatalf("exit %d, want 124\n%s", code, g.stderr)
	}
	out := g.stderr.String()
	if strings.Count(out, "SIGQUIT: quit") != 2 || strings.Count(out, "main.main()") < 2 {
		t.Errorf("no goroutine dump from each rank:\n%s", out)
	}
	// Each dump labelled with its rank, though --tag-output was not given.
	if !strings.Contains(out, "[0] SIGQUIT: quit") || !strings.Contains(out, "[1] SIGQUIT: quit") {
		t.Errorf("the dumps are not labelled with their ranks:\n%s", out)
	}
}

// A timeout's summary says where each rank's main goroutine waited.
func TestLaunchTimeoutSummary(t *testing.T) {
	g := startGorun(t, "", "-np", "2", "--timeout", "2s", "collhold")
	if code := g.wait(t); code != 124 {
		t.Fatalf("exit %d, want 124\n%s", code, g.stderr)
	}
	for r := range 2 {
		want := fmt.Sprintf("gorun: rank %d: runtime.Recv, called from main.main [", r)
		if !strings.Contains(g.stderr.String(), want) {
			t.Errorf("the summary lacks %q:\n%s", want, g.stderr)
		}
	}
}

func TestLaunchKill9(t *testing.T) {
	g := startGorun(t, "", "-np", "4", "sleep")
	g.stdout.waitCount(t, "ready", 4)
	if n := len(jobProcs(g.mark)); n != 5 {
		t.Fatalf("%d processes in the job, want gorun and 4 ranks", n)
	}
	g.cmd.Process.Kill()
	g.wait(t)
	// The cleanup polls until the ranks are gone, and fails otherwise.
}

func TestLaunchPackageDir(t *testing.T) {
	code, stdout, stderr := runGorun(t, "", "-np", "2", "./apps/echo", "x")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	ranks := parseEcho(t, stdout)
	if len(ranks) != 2 || !strings.Contains(ranks[1].rest, `args=["x"]`) {
		t.Fatalf("output:\n%s", stdout)
	}
}

func TestLaunchUsage(t *testing.T) {
	binary(t, "gorun")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "no program"},
		{[]string{"-np", "0", "echo"}, 2, "-np 0"},
		{[]string{"-np", "2", "--nodes", "3", "echo"}, 2, "--nodes 3"},
		{[]string{"--bogus", "echo"}, 2, "bogus"},
		{[]string{"-np", "1", "/nonexistent/app"}, 127, "/nonexistent/app"},
	} {
		code, stdout, stderr := runGorun(t, "", tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("gorun %q: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

package test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Agents: ranks of hosts other than this one start through `gorun
// --agent`, connected back to gorun over one authenticated, yamux-
// multiplexed TCP connection. Here the "remote" command is a fake ssh that
// drops the host name and runs the agent on this machine, so every part
// but ssh itself runs: the agent protocol, the coordinator relay, output,
// stdin, signals, exit codes, a lost host. (Real separate hosts: issue 9's
// test bed.)

// fakeSSH writes a script that runs its command here, ignoring the host.
func fakeSSH(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fakessh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nshift\nexec \"$@\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAgentsCollectives(t *testing.T) {
	code, out, errOut := runGorun(t, "hello", "-np", "5", "--host", "h1:2,h2:2,h3",
		"--launcher-exec", fakeSSH(t), "--tag-output", "collcheck")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for r := range 5 {
		if want := "[" + string(rune('0'+r)) + "] rank " + string(rune('0'+r)) + " of 5 ok"; !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestAgentsEnvironmentAndStdin(t *testing.T) {
	code, out, errOut := runGorun(t, "to rank 0", "-np", "3", "--host", "h1:1,h2:2",
		"--launcher-exec", fakeSSH(t), "echo")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	ranks := parseEcho(t, out)
	if len(ranks) != 3 {
		t.Fatalf("output:\n%s", out)
	}
	jobs := map[string]bool{}
	keepers := map[string]bool{}
	for r, e := range ranks {
		if want := map[int]string{0: "h1", 1: "h2", 2: "h2"}[r]; e.node != want {
			t.Errorf("rank %d on node %s, want %s", r, e.node, want)
		}
		keeper, suffix, _ := strings.Cut(e.job, ".")
		jobs[suffix], keepers[keeper] = true, true
	}
	// One job; each host's names judged by its own agent's pid.
	if len(jobs) != 1 || len(keepers) != 2 {
		t.Errorf("job ids %v (want one job) with keepers %v (want one per host)", jobs, keepers)
	}
	if !strings.Contains(ranks[0].rest, `stdin="to rank 0"`) || !strings.Contains(ranks[1].rest, `stdin=""`) {
		t.Errorf("stdin reached the wrong ranks:\n%s", out)
	}
}

func TestAgentsExitCode(t *testing.T) {
	code, _, errOut := runGorun(t, "", "-np", "3", "--host", "h1:2,h2:1", "--launcher-exec", fakeSSH(t), "exit3")
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, errOut)
	}
	if !strings.Contains(errOut, ") on host h1 exited with code 3") {
		t.Errorf("the report does not name host h1:\n%s", errOut)
	}
}

// A host that dies (its agent killed with SIGKILL) ends the job with the
// host named, and nothing of the job is left (the cleanup checks).
func TestAgentsHostLost(t *testing.T) {
	g := startGorun(t, "", "-np", "4", "--host", "h1:2,h2:2", "--launcher-exec", fakeSSH(t), "sleep")
	g.stdout.waitCount(t, "ready", 4)
	var agent int
	for _, pid := range jobProcs(g.mark) {
		cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		if strings.Contains(string(cmd), "--agent") {
			agent, _ = strconv.Atoi(pid)
		}
	}
	if agent == 0 {
		t.Fatal("no agent process found")
	}
	syscall.Kill(agent, syscall.SIGKILL)
	if code := g.wait(t); code == 0 {
		t.Fatalf("the job succeeded with a host lost:\n%s", g.stderr)
	}
	if !strings.Contains(g.stderr.String(), "lost the connection to the agent on host h") {
		t.Errorf("the report does not name the lost host:\n%s", g.stderr)
	}
}

// Ctrl-C reaches the ranks of every host, through their agents.
func TestAgentsInterrupt(t *testing.T) {
	g := startGorun(t, "", "-np", "4", "--host", "h1:2,h2:2", "--launcher-exec", fakeSSH(t), "sleep")
	g.stdout.waitCount(t, "ready", 4)
	g.cmd.Process.Signal(syscall.SIGINT)
	if code := g.wait(t); code != 130 {
		t.Fatalf("exit %d, want 130\n%s", code, g.stderr)
	}
}

// gorun killed with SIGKILL: the agents lose their connection and kill
// their ranks; nothing is left on any host (the cleanup checks).
func TestAgentsGorunKilled(t *testing.T) {
	g := startGorun(t, "", "-np", "4", "--host", "h1:2,h2:2", "--launcher-exec", fakeSSH(t), "sleep")
	g.stdout.waitCount(t, "ready", 4)
	g.cmd.Process.Kill()
	g.wait(t)
}

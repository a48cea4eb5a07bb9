package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseArgsHosts(t *testing.T) {
	var shown bytes.Buffer
	mapOut = &shown
	defer func() { mapOut = os.Stdout }()
	o, err := parseArgs(strings.Fields("--host a:2,b:2 --launcher local --map-by node --display-map ./app"), fakeEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.job.NP != 4 || !slices.Equal(o.job.RankHosts, []string{"a", "b", "a", "b"}) {
		t.Errorf("NP %d RankHosts %q; want 4 (one per slot) on a b a b", o.job.NP, o.job.RankHosts)
	}
	if !strings.Contains(shown.String(), "a") || !strings.Contains(shown.String(), "b") {
		t.Errorf("--display-map printed %q", shown.String())
	}

	file := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(file, []byte("# two hosts\nx slots=2\ny:1 # the small one\n"), 0o600)
	o, err = parseArgs([]string{"-np", "3", "--hostfile", file, "--launcher", "local", "./app"}, fakeEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.job.RankHosts, []string{"x", "x", "y"}) {
		t.Errorf("RankHosts %q, want x x y", o.job.RankHosts)
	}

	for _, tc := range []struct{ args, want string }{
		{"-np 5 --host a:2,b:2 --launcher local ./app", "not enough slots"},
		{"--ppn 2 ./app", "need --host or --hostfile"},
		{"--nodes 2 --host a:2 --launcher local ./app", "--nodes and --host"},
		{"--host a:2 --hostfile f --launcher local ./app", "give one of them"},
		{"--launcher rsh --host a ./app", "want local, ssh or slurm"},
	} {
		_, err := parseArgs(strings.Fields(tc.args), fakeEnv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	o, err = parseArgs(strings.Fields("-np 6 --host a:2,b:2 --oversubscribe --launcher local ./app"), fakeEnv, io.Discard)
	if err != nil || o.job.NP != 6 {
		t.Fatalf("--oversubscribe: %v", err)
	}
	// This host needs no --launcher.
	if _, err := parseArgs(strings.Fields("--host localhost:2 ./app"), fakeEnv, io.Discard); err != nil {
		t.Fatal(err)
	}
}

func TestParseArgsStdio(t *testing.T) {
	o, err := parseArgs(strings.Fields("-np 3 -l --stdin all --wdir /tmp --output-filename out ./app"), fakeEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.job.TagOutput || o.job.StdinRank != -2 || o.job.Dir != "/tmp" || o.job.OutputDir != "out" {
		t.Errorf("parsed %+v", o.job)
	}
	for _, tc := range []struct{ args, want string }{
		{"-np 2 --stdin 2 ./app", "want a rank below"},
		{"-np 2 --stdin x ./app", "want a rank, all or none"},
	} {
		if _, err := parseArgs(strings.Fields(tc.args), fakeEnv, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// Inside a Slurm allocation's shell, gorun takes its hosts and slots and
// starts the agents with srun; inside a step it does not.
func TestParseArgsSlurm(t *testing.T) {
	env := map[string]string{"SLURM_JOB_NODELIST": "n[1-2]", "SLURM_TASKS_PER_NODE": "2(x2)", "SLURM_JOB_ID": "7"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	o, err := parseArgs([]string{"./app"}, lookup, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.job.NP != 4 || !slices.Equal(o.job.RankHosts, []string{"n1", "n1", "n2", "n2"}) {
		t.Errorf("NP %d RankHosts %q, want 4 on n1 n1 n2 n2", o.job.NP, o.job.RankHosts)
	}
	if !strings.HasPrefix(o.job.LauncherExec, "srun ") || o.job.Launcher != "ssh" {
		t.Errorf("launcher %q exec %q, want agents started with srun", o.job.Launcher, o.job.LauncherExec)
	}
	o, err = parseArgs([]string{"-np", "2", "--map-by", "node", "./app"}, lookup, io.Discard)
	if err != nil || !slices.Equal(o.job.RankHosts, []string{"n1", "n2"}) {
		t.Errorf("-np 2 --map-by node: %q, %v", o.job.RankHosts, err)
	}
	env["SLURM_STEP_ID"] = "0"
	o, err = parseArgs([]string{"-np", "2", "./app"}, lookup, io.Discard)
	if err != nil || o.job.RankHosts != nil {
		t.Errorf("inside a step: RankHosts %q, %v; want the local start", o.job.RankHosts, err)
	}
}

package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Under a real Slurm: test/slurm/slurm.sh starts munged, slurmctld and
// slurmd on this machine for the length of a test, and the subtests run
// gorun programs the ways a Slurm site does: `srun --mpi=pmi2` (PMI-2
// against the real slurmstepd), MPICH's mpiexec inside `salloc` (Hydra,
// PMI-1), gorun inside `salloc` (it takes the allocation), and failing
// ranks. TestSlurm is a 1-node cluster (this host); TestSlurmTwoNodes puts
// a slurmd in each of two fake hosts of test/vcluster (own network stack,
// hostname and /dev/shm), so steps span hosts. Both skip, saying why,
// where they cannot run: not root, not Linux, Slurm not installed
// (`test/slurm/slurm.sh deps` installs it; .ci/run does), and for two
// nodes no vcluster.sh, its tools or namespaces.

// slurmWait bounds every Slurm command: reaching it means a hang. Generous:
// the machine may be loaded, and a step's start takes a few round trips.
const slurmWait = 90 * time.Second

// slurmCluster is a running cluster: the environment that names it to
// test/slurm/slurm.sh.
type slurmCluster struct {
	script string
	env    []string // GORUN_SLURM_STATE
}

func TestSlurm(t *testing.T) {
	c := slurmUp(t, 1)
	collcheck := slurmBinary(t, "collcheck")

	t.Run("srun-pmi2-np3", func(t *testing.T) {
		out, err := c.run(t, nil, "srun", "--mpi=pmi2", "-n", "3", collcheck)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		wantRanksOK(t, out, 3, "")
	})

	t.Run("srun-pmi2-tcp-np2", func(t *testing.T) {
		out, err := c.run(t, []string{"GORUN_TRANSPORTS=self,tcp"}, "srun", "--mpi=pmi2", "-n", "2", collcheck)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		wantRanksOK(t, out, 2, "")
	})

	t.Run("salloc-mpiexec-np2", func(t *testing.T) {
		mpi := mpiexec(t)
		// Hydra starts its proxy with srun inside the allocation; the
		// ranks see the proxy step's SLURM_* and must take rank and size
		// from PMI-1.
		out, err := c.run(t, nil, "salloc", "-N1", "-n", "2", mpi, "-n", "2", collcheck)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		wantRanksOK(t, out, 2, "")
	})

	t.Run("salloc-gorun-np3", func(t *testing.T) {
		// No -np: gorun takes its ranks from the allocation's 3 tasks, all
		// on this node (so every rank is local, no agent).
		out, err := c.run(t, nil, "salloc", "-N1", "-n", "3", slurmBinary(t, "gorun"), "--tag-output", collcheck)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		wantRanksOK(t, out, 3, "[%d] ")
	})

	me, _ := os.Hostname()
	slurmRankFail(t, c, 1, 3, 1, me)
}

func TestSlurmTwoNodes(t *testing.T) {
	c := slurmUp(t, 2)
	collcheck := slurmBinary(t, "collcheck")

	// Ranks 0,1 on h1 and 2,3 on h2: shared memory inside a host, TCP
	// between them (every rank listens on its host's address).
	t.Run("srun-pmi2-2x2", func(t *testing.T) {
		out, err := c.run(t, nil, "srun", "--mpi=pmi2", "-N2", "--ntasks-per-node=2", "--label",
			"sh", "-c", `echo "on $(hostname)"; exec "$0"`, collcheck)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		wantRanksOK(t, out, 4, "")
		for r, h := range []string{"h1", "h1", "h2", "h2"} {
			if want := fmt.Sprintf("%d: on %s\n", r, h); !strings.Contains(out, want) {
				t.Errorf("missing %q (rank %d on %s) in\n%s", want, r, h, out)
			}
		}
	})

	t.Run("salloc-mpiexec-2x2", func(t *testing.T) {
		mpi := mpiexec(t)
		// Hydra inside the allocation: one proxy per node, started with srun.
		out, err := c.run(t, nil, "salloc", "-N2", "--ntasks-per-node=2", mpi, "-n", "4", collcheck)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		wantRanksOK(t, out, 4, "")
	})

	t.Run("salloc-gorun-2x2", func(t *testing.T) {
		// gorun runs in h1 (salloc's shell) and starts the agent of h2
		// with srun; no -np: one rank per task of the allocation.
		out, err := c.run(t, nil, "salloc", "-N2", "--ntasks-per-node=2", slurmBinary(t, "gorun"),
			"--display-map", "--tag-output", collcheck)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		wantRanksOK(t, out, 4, "[%d] ")
		for _, re := range []string{`(?m)^h1\s+2\s+2\s+0-1$`, `(?m)^h2\s+2\s+2\s+2-3$`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("the map does not match %s:\n%s", re, out)
			}
		}
	})

	// The failing rank is on h2, the others wait for it on both hosts.
	slurmRankFail(t, c, 2, 4, 3, "h2")

	// Nothing left in any host's /dev/shm (the ranks of a PMI job unlink
	// their segments themselves; no gorun sweeps after them).
	for _, h := range []string{"h1", "h2"} {
		out, err := c.run(t, nil, "on", h, "ls", "/dev/shm")
		if err != nil {
			t.Fatalf("ls /dev/shm in %s: %v\n%s", h, err, out)
		}
		for _, name := range strings.Fields(out) {
			if strings.HasPrefix(name, "gorun") {
				t.Errorf("%s: /dev/shm/%s left behind", h, name)
			}
		}
	}
}

// slurmRankFail runs the subtests of a failing rank, bad of np spread over
// nodes, on host, under srun and under gorun inside salloc. The job must end
// with an error, not hang: the other ranks wait in a Recv from the failing
// one, ignoring SIGTERM, and srun runs without --kill-on-bad-exit, so
// only the runtime can end them.
func slurmRankFail(t *testing.T, c *slurmCluster, nodes, np, bad int, host string) {
	t.Helper()
	rankfail := slurmBinary(t, "rankfail")
	geometry := []string{"-N" + strconv.Itoa(nodes), "--ntasks-per-node=" + strconv.Itoa(np/nodes)}
	for _, tc := range []struct {
		name, mode string
		env        []string
		survivors  bool // the other ranks report the failure themselves
	}{
		{"exit", "exit", nil, true},
		{"exit-tcp", "exit", []string{"GORUN_TRANSPORTS=self,tcp"}, true},
		{"abort", "abort", nil, false}, // the PMI abort may kill them first
		{"kill", "kill", nil, false},   // Slurm ends a step whose task was killed
	} {
		t.Run("srun-rankfail-"+tc.name, func(t *testing.T) {
			args := append(append([]string{"srun", "--mpi=pmi2"}, geometry...),
				rankfail, "-mode", tc.mode, "-rank", strconv.Itoa(bad))
			out, err := c.run(t, tc.env, args...)
			if err == nil {
				t.Fatalf("srun succeeded with a failing rank:\n%s", out)
			}
			if !strings.Contains(out, fmt.Sprintf("rank %d failing by %s", bad, tc.mode)) {
				t.Errorf("rank %d did not get to fail (wire-up failed?):\n%s", bad, out)
			}
			if tc.survivors {
				for r := range np {
					if r != bad && !strings.Contains(out, fmt.Sprintf("rank %d: runtime: ", r)) {
						t.Errorf("rank %d did not report the failure from its Recv:\n%s", r, out)
					}
				}
			}
			t.Logf("srun: %v\n%s", err, out)
		})
	}
	t.Run("salloc-gorun-rankfail", func(t *testing.T) {
		args := append(append([]string{"salloc"}, geometry...),
			slurmBinary(t, "gorun"), rankfail, "-mode", "exit", "-rank", strconv.Itoa(bad))
		out, err := c.run(t, nil, args...)
		if err == nil {
			t.Fatalf("gorun succeeded with a failing rank:\n%s", out)
		}
		report := regexp.MustCompile(fmt.Sprintf(`gorun: rank %d \(pid \d+\) on host (\S+) exited with code 3`, bad))
		if m := report.FindStringSubmatch(out); m == nil || m[1] != host {
			t.Errorf("gorun's report does not name rank %d (on host %q) exiting with code 3:\n%s", bad, host, out)
		}
		t.Logf("salloc: %v\n%s", err, out)
	})
}

// wantRanksOK checks that collcheck's every rank of n said it is ok, each
// line after the tag (a format of the rank) if tag is not "".
func wantRanksOK(t *testing.T, out string, n int, tag string) {
	t.Helper()
	for r := range n {
		want := fmt.Sprintf("rank %d of %d ok", r, n)
		if tag != "" {
			want = fmt.Sprintf(tag, r) + want
		}
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

// slurmUp starts a cluster of n nodes (1: this host; 2: two fake hosts)
// for the test, or skips saying why it cannot. The cluster goes down when
// the test ends; its state folder names this process as the owner, so a
// test binary killed before its cleanup leaves a cluster that the next
// `up` tears down.
func slurmUp(t *testing.T, n int) *slurmCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIP: the Slurm tests start a cluster; skipped with -short")
	}
	if goruntime.GOOS != "linux" {
		t.Skip("SKIP: the Slurm test bed runs on Linux only")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the Slurm test bed needs root (its daemons and jobs run as root); run the tests as root, as CI does")
	}
	path := os.Getenv("PATH") + ":/usr/sbin:/sbin"
	lookPath := func(names ...string) (missing []string) {
		for _, p := range names {
			found := false
			for _, dir := range filepath.SplitList(path) {
				if st, err := os.Stat(filepath.Join(dir, p)); err == nil && st.Mode()&0o111 != 0 {
					found = true
					break
				}
			}
			if !found {
				missing = append(missing, p)
			}
		}
		return missing
	}
	if m := lookPath("munged", "mungekey", "slurmctld", "slurmd", "srun", "salloc", "sinfo"); len(m) > 0 {
		t.Skipf("SKIP: Slurm is not installed (no %s): run test/slurm/slurm.sh deps as root (apt-get install slurmctld slurmd slurm-client munge), as .ci/run does", strings.Join(m, ", "))
	}
	script, err := filepath.Abs("slurm/slurm.sh")
	if err != nil {
		t.Fatal(err)
	}
	if n > 1 {
		vc, _ := filepath.Abs("vcluster/vcluster.sh")
		if _, err := os.Stat(vc); err != nil {
			t.Skipf("SKIP: %d Slurm nodes need the fake hosts of test/vcluster/vcluster.sh: %v", n, err)
		}
		if m := lookPath("ip", "nsenter", "unshare", "setsid", "ss", "flock", "ssh", "ssh-keygen", "sshd"); len(m) > 0 {
			t.Skipf("SKIP: test/vcluster/vcluster.sh needs %s (apt-get install iproute2 util-linux openssh-client openssh-server)", strings.Join(m, ", "))
		}
		if out, err := exec.Command("unshare", "--net", "--mount", "--uts", "true").CombinedOutput(); err != nil {
			t.Skipf("SKIP: no namespaces here for the fake hosts (unshare --net --mount --uts: %v %s)", err, bytes.TrimSpace(out))
		}
	}
	c := &slurmCluster{script: script, env: []string{fmt.Sprintf("GORUN_SLURM_STATE=/run/gorun-slurm-test-%d-%d", os.Getpid(), n)}}
	script1 := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*slurmWait)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
		cmd.Env = append(append(cleanEnv(), c.env...), "GORUN_SLURM_NO_INSTALL=1",
			"GORUN_SLURM_OWNER="+strconv.Itoa(os.Getpid()), "PATH="+path)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) } // up tears itself down
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			err = fmt.Errorf("did not finish within %v: %v", 2*slurmWait, err)
		}
		return string(out), err
	}
	start := time.Now()
	out, err := script1("up", strconv.Itoa(n))
	if err != nil {
		t.Fatalf("test/slurm/slurm.sh up %d: %v\n%s", n, err, out)
	}
	t.Logf("slurm.sh up %d: %v\n%s", n, time.Since(start).Round(time.Millisecond), out)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := script1("status")
			t.Logf("slurm.sh status:\n%s", out)
			logs, _ := filepath.Glob(filepath.Join(strings.TrimPrefix(c.env[0], "GORUN_SLURM_STATE="), "log", "slurm*.log"))
			for _, f := range logs {
				b, _ := os.ReadFile(f)
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("the end of %s:\n%s", f, strings.Join(lines[max(0, len(lines)-20):], "\n"))
			}
		}
		start := time.Now()
		out, err := script1("down")
		if err != nil {
			t.Errorf("test/slurm/slurm.sh down: %v\n%s", err, out)
		}
		t.Logf("slurm.sh down: %v\n%s", time.Since(start).Round(time.Millisecond), out)
	})
	return c
}

// cleanEnv is this process's environment without the variables of an
// enclosing job (Slurm, PMI, gorun, other MPIs), which would mislead the
// cluster's commands and the ranks.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		drop := false
		for _, p := range []string{"SLURM_", "SALLOC_", "SBATCH_", "SRUN_", "PMI_", "PMIX_", "GORUN_", "OMPI_", "MPI_LOCAL"} {
			drop = drop || strings.HasPrefix(kv, p)
		}
		if !drop {
			env = append(env, kv)
		}
	}
	return env
}

// run runs args (srun, salloc...) where the cluster's controller is
// reachable (slurm.sh exec: here, or in h1), or with args "on", NODE, ...
// on that node; to completion, within slurmWait, with the cluster's
// environment plus env. It returns the output (stdout and stderr). Every
// rank carries a mark in its environment (srun and salloc pass theirs on),
// so the test fails if one outlives the command.
func (c *slurmCluster) run(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	mark := "GORUN_LAUNCH_TEST_MARK=" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), slurmWait)
	defer cancel()
	if args[0] != "on" {
		args = append([]string{"exec"}, args...)
	}
	// slurm.sh execs the command itself (through nsenter for a fake
	// host): the process is srun or salloc.
	cmd := exec.CommandContext(ctx, "bash", append([]string{c.script}, args...)...)
	cmd.Env = append(append(append(cleanEnv(), c.env...), mark), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// srun and salloc forward SIGTERM to the step and end it; a KILL
	// follows if they have not exited 10 s later.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v (a hang): %v\n%s", strings.Join(args[1:], " "), slurmWait, err, out.String())
	}
	t.Logf("%s: %v", strings.Join(args[1:min(len(args), 3)], " "), time.Since(start).Round(time.Millisecond))
	waitNoProcs(t, mark)
	return out.String(), err
}

// slurmBinary is binary(t, name) at a path slurmd can run: not on
// /dev/shm (each fake host has its own).
func slurmBinary(t *testing.T, name string) string {
	t.Helper()
	p := binary(t, name)
	if !strings.HasPrefix(p, "/dev/shm/") {
		return p
	}
	dir, err := os.MkdirTemp("/tmp", "gorun-slurm-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	dst := filepath.Join(dir, name)
	src, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

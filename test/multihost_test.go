package test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/test/vcluster"
)

// Across hosts, for real: test/vcluster makes hosts h1..h3 on this machine,
// each with its own network stack, hostname, /dev/shm and sshd, sharing the
// filesystem (so the test binaries) and /proc. gorun runs inside h1 and
// starts the ranks of the other hosts with its default launcher, the
// system's `ssh HOST gorun --agent` (the cluster's keys and settings are in
// every host's /etc/ssh/ssh_config). TestMultihost skips, saying why, where
// the test bed cannot run (not root, no namespaces, no sshd: .ci/run
// installs openssh-server and iproute2). Everything here is named mh* so
// as not to collide with the other files of the package.

// mhReport is gorun's line naming the rank that ended the job.
var mhReport = regexp.MustCompile(`gorun: rank (\d+) \(pid \d+\) on host (\S+) (.*)`)

func TestMultihost(t *testing.T) {
	if why := vcluster.Unavailable(); why != "" {
		t.Skip("SKIP multi-host test bed: " + why)
	}
	gorunPath := binary(t, "gorun") // built (or skipped under -short) before any host exists
	c := vcluster.Up(t, 3)
	mhCheckBed(t, c, gorunPath)

	// Every collective and a ring of point-to-point messages (eager and
	// rendezvous sizes) over 2 hosts x 2 ranks.
	t.Run("Collectives", func(t *testing.T) {
		code, out, errOut := mhRun(t, c, "", "-np", "4", "--host", "h1:2,h2:2", "--tag-output", "collcheck")
		if code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		for r := range 4 {
			if want := fmt.Sprintf("[%d] rank %d of 4 ok\n", r, r); !strings.Contains(out, want) {
				t.Errorf("missing %q in\n%s", want, out)
			}
		}
	})

	// Output tagging, placement (node, local rank), one job with one keeper
	// per host, stdin to rank 0 only, and where each rank listens for its
	// peers: its host's address, never loopback.
	t.Run("OutputAndPlacement", func(t *testing.T) {
		code, out, errOut := mhRun(t, c, "to rank 0", "-np", "4", "--host", "h1:2,h2:2", "--tag-output",
			"echo", "-vars", "GORUN_BIND")
		if code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		tagged := regexp.MustCompile(`^\[(\d+)\] RANK=(\d+) `)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if m := tagged.FindStringSubmatch(line); m == nil || m[1] != m[2] {
				t.Errorf("line not tagged with its rank: %q", line)
			}
		}
		ranks := parseEcho(t, out)
		if len(ranks) != 4 {
			t.Fatalf("want 4 ranks, output:\n%s", out)
		}
		jobs, keepers := map[string]bool{}, map[string]string{}
		for r, e := range ranks {
			host := []string{"h1", "h1", "h2", "h2"}[r]
			if e.node != host || e.local != r%2 || e.localSize != 2 || e.size != 4 {
				t.Errorf("rank %d: node %s local %d/%d size %d, want node %s local %d/2 size 4", r, e.node, e.local, e.localSize, e.size, host, r%2)
			}
			if want := fmt.Sprintf("GORUN_BIND=%q", c.Addr(host)); !strings.Contains(e.rest, want) {
				t.Errorf("rank %d on %s: want %s, got %s", r, host, want, e.rest)
			}
			keeper, suffix, _ := strings.Cut(e.job, ".")
			jobs[suffix] = true
			if k, ok := keepers[host]; ok && k != keeper {
				t.Errorf("two keepers on %s: %s and %s", host, k, keeper)
			}
			keepers[host] = keeper
		}
		if len(jobs) != 1 || keepers["h1"] == keepers["h2"] {
			t.Errorf("job ids %v (want one job) with keepers %v (want one per host)", jobs, keepers)
		}
		if !strings.Contains(ranks[0].rest, `stdin="to rank 0"`) || !strings.Contains(ranks[2].rest, `stdin=""`) {
			t.Errorf("stdin reached the wrong ranks:\n%s", out)
		}
	})

	// A rank of the other host fails: gorun exits with its code and names
	// the rank and its host.
	t.Run("ExitCode", func(t *testing.T) {
		code, _, errOut := mhRun(t, c, "", "-np", "4", "--host", "h1:2,h2:2", "exit3", "-rank", "2")
		if code != 3 {
			t.Fatalf("exit %d, want 3\n%s", code, errOut)
		}
		m := mhReport.FindStringSubmatch(errOut)
		if m == nil || m[1] != "2" || m[2] != "h2" || m[3] != "exited with code 3" {
			t.Errorf("the report does not name rank 2 on host h2 exiting with code 3:\n%s", errOut)
		}
		if !strings.Contains(errOut, "exit3: rank 2 exits with code 3") {
			t.Errorf("the failing rank's stderr did not come through:\n%s", errOut)
		}
	})

	// MPICH's mpiexec (Hydra) with its own ssh launcher starts a gorun
	// program across hosts: the ranks wire up through its PMI servers.
	t.Run("MPICHHydraSSH", func(t *testing.T) {
		mpi, err := exec.LookPath("mpiexec.mpich")
		if err != nil {
			t.Skip("SKIP: mpiexec.mpich is not installed")
		}
		cmd := c.Command("h1", mpi, "-hosts", "h1,h2", "-n", "4", binary(t, "collcheck"))
		done := make(chan struct{})
		var out []byte
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(wait):
			cmd.Process.Kill()
			<-done
			t.Fatalf("mpiexec across hosts did not finish within %v:\n%s", wait, out)
		}
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for r := range 4 {
			if want := fmt.Sprintf("rank %d of 4 ok", r); !strings.Contains(string(out), want) {
				t.Errorf("missing %q in\n%s", want, out)
			}
		}
		mhNoLeftovers(t, c)
	})

	t.Run("Transports", func(t *testing.T) { mhTransports(t, c) })
	t.Run("Strangers", func(t *testing.T) { mhStrangers(t, c, false) })
	// Strangers that connect to gorun's agents' port and stay silent hold
	// nobody up: each connection proves the secret in its own goroutine
	// (internal/launch/remote.go, agents.accept).
	t.Run("SilentStrangerAtAgents", func(t *testing.T) {
		mhStrangers(t, c, true)
	})

	// A host that becomes unreachable: its cable is pulled, nobody is told.
	t.Run("Partition", func(t *testing.T) {
		mhLoseHost(t, c, "h2", func() {
			c.Unplug(t, "h2")
			t.Cleanup(func() { c.Plug(t, "h2") })
		})
	})
	// A host whose every process dies at once (its kernel answers with
	// resets). Last: h3 keeps no sshd.
	t.Run("HostCrash", func(t *testing.T) {
		mhLoseHost(t, c, "h3", func() { c.Kill(t, "h3") })
	})
}

// mhCheckBed checks what the tests take for granted: each host has its
// name, sees the test binaries at their paths, and has a /dev/shm of its
// own.
func mhCheckBed(t *testing.T, c *vcluster.Cluster, gorunPath string) {
	probe := fmt.Sprintf("mh-probe-%d", os.Getpid())
	for _, h := range c.Hosts {
		out, err := c.Command(h, "cat", "/proc/sys/kernel/hostname").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != h {
			t.Fatalf("host %s calls itself %q (%v)", h, out, err)
		}
		if err := c.Command(h, "test", "-x", gorunPath).Run(); err != nil {
			t.Skipf("SKIP multi-host test bed: the test binaries (%s) are not visible on host %s: %v", filepath.Dir(gorunPath), h, err)
		}
	}
	if out, err := c.Command("h1", "touch", "/dev/shm/"+probe).CombinedOutput(); err != nil {
		t.Fatalf("touch on h1: %v %s", err, out)
	}
	defer c.Command("h1", "rm", "-f", "/dev/shm/"+probe).Run()
	for _, h := range c.Hosts {
		names, err := c.Shm(h)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(names, probe); got != (h == "h1") {
			t.Fatalf("a file made in h1's /dev/shm is seen on %s: %v (the hosts must not share /dev/shm)", h, got)
		}
	}
	if _, err := os.Stat("/dev/shm/" + probe); err == nil {
		t.Fatal("a file made in h1's /dev/shm is in this machine's /dev/shm")
	}
}

// mhStart starts gorun inside host with args (names of launchApps become
// their paths). When the test ends it kills gorun if needed and checks that
// nothing of the job is left on any host.
func mhStart(t *testing.T, c *vcluster.Cluster, host, stdin string, args ...string) *gorun {
	t.Helper()
	command := func(path string, args ...string) *exec.Cmd { return c.Command(host, path, args...) }
	return startJob(t, command, func() { mhNoLeftovers(t, c) }, stdin, args...)
}

// mhRun runs gorun inside h1 to completion.
func mhRun(t *testing.T, c *vcluster.Cluster, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	g := mhStart(t, c, "h1", stdin, args...)
	code = g.wait(t)
	return code, g.stdout.String(), g.stderr.String()
}

// mhNoLeftovers fails the test if, within 10 s, a host still runs anything
// but its sshd, or holds a gorun segment in its /dev/shm; it kills what it
// finds, for the next test. A host that is down holds nothing.
func mhNoLeftovers(t *testing.T, c *vcluster.Cluster) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []string
		var pids []int
		for _, h := range c.Hosts {
			procs, err := c.Procs(h)
			if err != nil {
				continue // down
			}
			for _, p := range procs {
				if p.Comm != "sshd" && p.Comm != "sshd-session" {
					left = append(left, fmt.Sprintf("%s: process %s", h, p))
					pids = append(pids, p.PID)
				}
			}
			names, _ := c.Shm(h)
			for _, n := range names {
				if strings.HasPrefix(n, "gorun") {
					left = append(left, fmt.Sprintf("%s: /dev/shm/%s", h, n))
				}
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range pids {
				syscall.Kill(p, syscall.SIGKILL)
			}
			t.Errorf("left on the hosts 10 s after the job:\n%s", strings.Join(left, "\n"))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mhRanks waits until the job of mark has n ranks running and returns their
// pids by rank.
func mhRanks(t *testing.T, mark string, n int) map[int]int {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ranks := map[int]int{}
		for _, p := range jobProcs(mark) {
			env, _ := os.ReadFile("/proc/" + p + "/environ")
			for kv := range bytes.SplitSeq(env, []byte{0}) {
				if v, ok := bytes.CutPrefix(kv, []byte("GORUN_RANK=")); ok {
					r, _ := strconv.Atoi(string(v))
					pid, _ := strconv.Atoi(p)
					if _, seen := ranks[r]; !seen {
						ranks[r] = pid
					}
				}
			}
		}
		if len(ranks) >= n {
			return ranks
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d ranks running after %v", len(ranks), n, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The transport chosen for each pair of ranks, seen from outside: ranks of
// one host map the same memfd segments (the shared-memory rings) and hold
// no TCP connection to each other; ranks of different hosts share no
// segment and hold a TCP connection to each other.
func mhTransports(t *testing.T, c *vcluster.Cluster) {
	g := mhStart(t, c, "h1", "", "-np", "4", "--host", "h1:2,h2:2", "collhold")
	g.stdout.waitCount(t, "ready", 4)
	pids := mhRanks(t, g.mark, 4)
	memfds, conns := map[int]map[string]bool{}, map[int]map[string]bool{}
	for r, pid := range pids {
		memfds[r] = mhMemfds(t, pid)
		socks, err := mhSockets(pid)
		if err != nil {
			t.Fatal(err)
		}
		conns[r] = map[string]bool{}
		for _, s := range socks {
			if s.state == mhEstablished {
				conns[r][s.key(s.local, s.remote)] = true
			}
		}
	}
	tcpBetween := func(a, b int) bool {
		socks, _ := mhSockets(pids[a])
		for _, s := range socks {
			if s.state == mhEstablished && conns[b][s.key(s.remote, s.local)] {
				return true
			}
		}
		return false
	}
	for a := range 4 {
		for b := a + 1; b < 4; b++ {
			shared := false
			for m := range memfds[a] {
				shared = shared || memfds[b][m]
			}
			tcp := tcpBetween(a, b)
			sameHost := a/2 == b/2
			t.Logf("ranks %d-%d (same host: %v): shared memory %v, TCP %v", a, b, sameHost, shared, tcp)
			if sameHost && (!shared || tcp) {
				t.Errorf("ranks %d and %d share a host: want shared memory and no TCP, got shared memory %v, TCP %v", a, b, shared, tcp)
			}
			if !sameHost && (shared || !tcp) {
				t.Errorf("ranks %d and %d are on different hosts: want TCP and no shared memory, got shared memory %v, TCP %v", a, b, shared, tcp)
			}
		}
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	g.wait(t)
}

// Strangers knock on the job's ports while they are open (the agents' port
// of gorun until every agent has connected, a rank's TCP port until its
// peers have): each gets the challenge, a wrong answer is refused and the
// connection closed, a silent one holds nobody up, and the job succeeds.
// The ports stay open until the strangers are in: wrappers hold the agent's
// start and rank 3's until the test opens their gates. With silentAtAgents,
// only silent strangers knock, on the agents' port.
func mhStrangers(t *testing.T, c *vcluster.Cluster, silentAtAgents bool) {
	dir := t.TempDir() // seen by every host
	gateAgents, gateRank3 := filepath.Join(dir, "agents-go"), filepath.Join(dir, "rank3-go")
	await := func(gate string) string { // at most 30 s, so that nothing waits forever
		return fmt.Sprintf("i=0; while [ ! -e %s ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n", gate)
	}
	slowSSH := filepath.Join(dir, "slowssh")
	slowApp := filepath.Join(dir, "slowapp")
	mhScript(t, slowSSH, await(gateAgents)+`exec ssh "$@"`)
	mhScript(t, slowApp, fmt.Sprintf("[ \"$GORUN_RANK\" != 3 ] || { %s}\nexec %s \"$@\"", await(gateRank3), binary(t, "collcheck")))
	open := func(gate string) {
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g := mhStart(t, c, "h1", "", "-np", "4", "--host", "h1:2,h2:2", "--launcher-exec", slowSSH, "--tag-output", slowApp)
	gorunPID := g.cmd.Process.Pid

	// gorun's agent port: the listener on every address.
	agents := net.JoinHostPort(c.Addr("h1"), mhListener(t, gorunPID, func(a netip.Addr) bool { return a.IsUnspecified() }))
	var knocks []*mhStranger
	if silentAtAgents {
		// Two, before the agent: handshakes taken one after the other
		// would keep the agent out for longer than gorun waits for it.
		knocks = append(knocks, mhKnock(t, c, "h3", agents, false), mhKnock(t, c, "h2", agents, false))
		open(gateAgents)
		open(gateRank3)
	} else {
		knocks = append(knocks, mhKnock(t, c, "h2", agents, true))
		open(gateAgents)
		// Ranks 0 (h1) and 2 (h2) wait in their start-up for rank 3,
		// whose script (counted: it has GORUN_RANK=3) waits for the gate:
		// all four, or rank 0 may not have started yet.
		pids := mhRanks(t, g.mark, 4)
		if port, err := mhFindListener(gorunPID, func(a netip.Addr) bool { return a.IsUnspecified() }); err == nil && port != "" {
			t.Errorf("gorun's agent port %s is still open after every agent connected", port)
		}
		isHost := func(h string) func(netip.Addr) bool {
			return func(a netip.Addr) bool { return a.String() == c.Addr(h) }
		}
		rank0 := net.JoinHostPort(c.Addr("h1"), mhListener(t, pids[0], isHost("h1")))
		rank2 := net.JoinHostPort(c.Addr("h2"), mhListener(t, pids[2], isHost("h2")))
		knocks = append(knocks, mhKnock(t, c, "h2", rank0, true), mhKnock(t, c, "h3", rank0, false), mhKnock(t, c, "h1", rank2, true))
		open(gateRank3)
	}

	code := g.wait(t)
	if code != 0 {
		t.Fatalf("exit %d: the strangers stopped the job\nstdout:\n%s\nstderr:\n%s", code, g.stdout, g.stderr)
	}
	for r := range 4 {
		if want := fmt.Sprintf("[%d] rank %d of 4 ok\n", r, r); !strings.Contains(g.stdout.String(), want) {
			t.Errorf("missing %q in\n%s", want, g.stdout)
		}
	}
	for _, k := range knocks {
		if err := k.result(); err != nil {
			t.Error(err)
		}
	}
}

// mhStranger is a connection from a host to one of the job's ports.
type mhStranger struct {
	from, to string
	end      chan struct{} // closed when the job has closed the connection, or err is set
	err      error
}

// mhKnock connects from host to addr and, in the background, reads the
// challenge, then answers it with garbage (wrong) or says nothing, and
// waits for the job to close the connection without proving anything.
func mhKnock(t *testing.T, c *vcluster.Cluster, host, addr string, wrong bool) *mhStranger {
	t.Helper()
	conn, err := c.Dial(host, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("stranger on %s: %v", host, err)
	}
	k := &mhStranger{from: host, to: addr, end: make(chan struct{})}
	go func() {
		defer close(k.end)
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(wait))
		hello := make([]byte, 40) // magic and nonce (internal/auth)
		if _, err := io.ReadFull(conn, hello); err != nil {
			// A port that closes before its first word also keeps the
			// stranger out.
			return
		}
		if !bytes.HasPrefix(hello, []byte("GORUNAU1")) {
			k.err = fmt.Errorf("stranger %s -> %s: not a gorun challenge: %q", host, addr, hello)
			return
		}
		if wrong {
			answer := make([]byte, 72)
			rand.Read(answer)
			conn.Write(answer)
		}
		got, err := io.ReadAll(conn)
		switch {
		case len(got) > 0:
			k.err = fmt.Errorf("stranger %s -> %s: got %d bytes after the challenge: it was let in", host, addr, len(got))
		case err != nil && !isReset(err):
			k.err = fmt.Errorf("stranger %s -> %s: the connection stayed open: %v", host, addr, err)
		}
	}()
	return k
}

// result waits a little for the stranger's end (the job is over, so every
// port it knocked on is closed) and says what went wrong.
func (k *mhStranger) result() error {
	select {
	case <-k.end:
		return k.err
	case <-time.After(5 * time.Second):
		return fmt.Errorf("stranger %s -> %s: its connection is still open after the job", k.from, k.to)
	}
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "connection reset") }

// mhScript writes an executable shell script.
func mhScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// mhListener waits until pid listens on a TCP address that match accepts,
// and returns its port.
func mhListener(t *testing.T, pid int, match func(netip.Addr) bool) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		port, err := mhFindListener(pid, match)
		if err != nil {
			t.Fatalf("process %d: %v", pid, err)
		}
		if port != "" {
			return port
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d does not listen where expected after %v", pid, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mhFindListener(pid int, match func(netip.Addr) bool) (string, error) {
	socks, err := mhSockets(pid)
	if err != nil {
		return "", err
	}
	for _, s := range socks {
		if s.state == mhListen && match(s.local.Addr()) {
			return strconv.Itoa(int(s.local.Port())), nil
		}
	}
	return "", nil
}

// mhLoseHost runs a job on h1 and host, waits until every rank runs, cuts
// host off with cut, and checks that the job ends within 10 seconds with an
// error naming host, leaving nothing on any host.
func mhLoseHost(t *testing.T, c *vcluster.Cluster, host string, cut func()) {
	g := mhStart(t, c, "h1", "", "-np", "4", "--host", "h1:2,"+host+":2", "collhold")
	g.stdout.waitCount(t, "ready", 4)
	start := time.Now()
	cut()
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		t.Errorf("the job still runs 10 s after %s was lost", host)
	}
	code := g.wait(t)
	t.Logf("the job ended %v after %s was lost, exit %d", time.Since(start).Round(time.Millisecond), host, code)
	errOut := g.stderr.String()
	if code == 0 {
		t.Errorf("the job succeeded with %s lost:\n%s", host, errOut)
	}
	if m := mhReport.FindStringSubmatch(errOut); m == nil || m[2] != host {
		t.Errorf("the report does not blame a rank on host %s:\n%s", host, errOut)
	}
	mhNoLeftovers(t, c)
}

// mhMemfds returns the shared-memory segments pid maps, by device and inode.
func mhMemfds(t *testing.T, pid int) map[string]bool {
	t.Helper()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for line := range strings.SplitSeq(string(maps), "\n") {
		f := strings.Fields(line)
		// memfds, or their fallback: unnamed files in /dev/shm (shm.Create)
		if len(f) >= 6 && (strings.HasPrefix(f[5], "/memfd:") || strings.HasPrefix(f[5], "/dev/shm/")) {
			out[f[3]+":"+f[4]] = true
		}
	}
	return out
}

// TCP socket states in /proc/net/tcp.
const (
	mhEstablished = "01"
	mhListen      = "0A"
)

// mhSock is one of a process's TCP sockets.
type mhSock struct {
	state         string
	local, remote netip.AddrPort
	netns         string // the process's network namespace
}

// key names a connection from a to b: with the namespace when it is
// loopback, since every host has its own 127.0.0.1.
func (s mhSock) key(a, b netip.AddrPort) string {
	if a.Addr().IsLoopback() {
		return s.netns + " " + a.String() + ">" + b.String()
	}
	return a.String() + ">" + b.String()
}

// mhSockets lists pid's TCP sockets, from its descriptors and its network
// namespace's /proc/PID/net/tcp{,6}.
func mhSockets(pid int) ([]mhSock, error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return nil, err
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		if l, err := os.Readlink(dir + "/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	netns, _ := os.Readlink(dir + "/ns/net")
	var out []mhSock
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(dir + "/net/" + table)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !mine[f[9]] {
				continue
			}
			out = append(out, mhSock{state: f[3], local: mhHexAddr(f[1]), remote: mhHexAddr(f[2]), netns: netns})
		}
	}
	return out, nil
}

// mhHexAddr decodes an address of /proc/net/tcp{,6}: the IP as 32-bit
// words in host order (little-endian on the machines this runs on), a
// colon, the port in hex.
func mhHexAddr(s string) netip.AddrPort {
	h, p, _ := strings.Cut(s, ":")
	port, _ := strconv.ParseUint(p, 16, 16)
	b, _ := hex.DecodeString(h)
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	a, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

// Package vcluster gives Go tests N fake hosts on this Linux machine, made by
// vcluster.sh beside this file: each host h1..hN has its own network stack
// (10.213.0.I on a bridge), hostname, /dev/shm and SysV IPC, and an sshd
// that lets root in with a key of the cluster, while the filesystem (so a
// test's binaries) and /proc are shared.
//
//	c := vcluster.Up(t, 2) // skips the test, saying why, where it cannot run
//	cmd := c.Command("h1", gorun, "-np", "4", "--host", "h1:2,h2:2", app)
//
// It needs Linux, root, network namespaces, iproute2, util-linux and
// OpenSSH (client and server). The cluster is removed when the test ends,
// whether it passed or not.
package vcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Cluster is a running test bed.
type Cluster struct {
	Name  string   // the namespaces' prefix
	State string   // the script's state folder
	Hosts []string // h1..hN

	script string
}

var (
	checkOnce sync.Once
	missing   string
	sweepOnce sync.Once
	seq       atomic.Int64
)

// Unavailable says why a cluster cannot be made on this machine, or "" if
// it can.
func Unavailable() string {
	checkOnce.Do(func() { missing = unavailable() })
	return missing
}

func unavailable() string {
	if goruntime.GOOS != "linux" {
		return "the test bed needs Linux (network, mount and UTS namespaces)"
	}
	if os.Geteuid() != 0 {
		return "the test bed needs root (it creates network namespaces and runs sshd)"
	}
	var lack []string
	for _, p := range []string{"ip", "ss", "nsenter", "unshare", "setsid", "flock", "ssh", "ssh-keygen", "/usr/sbin/sshd"} {
		if _, err := exec.LookPath(p); err != nil {
			lack = append(lack, p)
		}
	}
	if len(lack) > 0 {
		return fmt.Sprintf("the test bed needs %s (apt-get install iproute2 util-linux openssh-client openssh-server)", strings.Join(lack, ", "))
	}
	if script() == "" {
		return "vcluster.sh is not found beside the package's source"
	}
	if _, err := os.Stat("/etc/ssh/ssh_config"); err != nil {
		return "the test bed needs /etc/ssh/ssh_config (openssh-client) to put the cluster's ssh settings in place"
	}
	if out, err := exec.Command("unshare", "--net", "--mount", "--uts", "--ipc", "true").CombinedOutput(); err != nil {
		return fmt.Sprintf("namespaces are not available here (unshare --net --mount --uts --ipc: %v: %s)", err, bytes.TrimSpace(out))
	}
	return ""
}

// Up creates a cluster of n hosts for the test and removes it when the
// test ends. Where the test bed cannot run, it skips the test with the
// reason. A cluster that fails to come up where it should is a failure.
func Up(t testing.TB, n int) *Cluster {
	t.Helper()
	if why := Unavailable(); why != "" {
		t.Skip("SKIP multi-host test bed: " + why)
	}
	sweepOnce.Do(sweep)
	// A name per process and cluster: [a-z0-9]{1,8}, so test binaries run
	// side by side do not replace each other's clusters.
	pid := strconv.FormatInt(int64(os.Getpid()), 36)
	name := "g" + strings.Repeat("0", max(0, 5-len(pid))) + pid + strconv.FormatInt(seq.Add(1)%1296, 36)
	c := &Cluster{Name: name, State: stateDir(name), script: script()}
	t.Cleanup(func() {
		if out, err := c.run("down"); err != nil {
			t.Errorf("vcluster down: %v\n%s", err, out)
		}
	})
	if out, err := c.run("up", strconv.Itoa(n)); err != nil {
		t.Fatalf("vcluster up %d: %v\n%s", n, err, out)
	}
	// Whose it is, for sweep: a test process killed before its cleanup
	// leaves its cluster running.
	if err := os.WriteFile(filepath.Join(c.State, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		c.Hosts = append(c.Hosts, "h"+strconv.Itoa(i))
	}
	return c
}

func stateDir(name string) string { return "/run/gorun-vcluster-" + name }

// script is vcluster.sh's path: beside this file, or (a -trimpath build)
// in ./vcluster or . of a test of module folder test.
func script() string {
	_, file, _, _ := goruntime.Caller(0)
	for _, p := range []string{filepath.Join(filepath.Dir(file), "vcluster.sh"), "vcluster/vcluster.sh", "vcluster.sh"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// sweep takes down the clusters whose owner (a test process) is dead.
func sweep() {
	owners, _ := filepath.Glob(stateDir("*") + "/owner")
	for _, f := range owners {
		b, _ := os.ReadFile(f)
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		state := filepath.Dir(f)
		c := &Cluster{Name: strings.TrimPrefix(filepath.Base(state), filepath.Base(stateDir(""))), State: state, script: script()}
		c.run("down")
	}
}

// run runs the script with args.
func (c *Cluster) run(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{c.script}, args...)...)
	cmd.Env = append(os.Environ(), "VCLUSTER_NAME="+c.Name, "VCLUSTER_STATE="+c.State, "VCLUSTER_NET="+network)
	return cmd.CombinedOutput()
}

// Kill kills every process of host but its anchor, as a crash of every
// program there would: host's kernel closes their connections at once.
func (c *Cluster) Kill(t testing.TB, host string) {
	t.Helper()
	if out, err := c.run("kill", host); err != nil {
		t.Fatalf("vcluster kill %s: %v\n%s", host, err, out)
	}
}

// Unplug sets host's switch port down: from then on nothing goes in or out,
// and nobody is told.
func (c *Cluster) Unplug(t testing.TB, host string) {
	t.Helper()
	if out, err := c.run("unplug", host); err != nil {
		t.Fatalf("vcluster unplug %s: %v\n%s", host, err, out)
	}
}

// Plug sets host's switch port up again.
func (c *Cluster) Plug(t testing.TB, host string) {
	t.Helper()
	if out, err := c.run("plug", host); err != nil {
		t.Fatalf("vcluster plug %s: %v\n%s", host, err, out)
	}
}

// network is the first three octets of the hosts' addresses.
const network = "10.213.0"

// Addr is host's IP address.
func (c *Cluster) Addr(host string) string { return network + "." + strings.TrimPrefix(host, "h") }

// Anchor is the pid of the process that holds host's namespaces.
func (c *Cluster) Anchor(host string) (int, error) {
	b, err := os.ReadFile(filepath.Join(c.State, host, "anchor.pid"))
	if err != nil {
		return 0, fmt.Errorf("vcluster: %s: %w", host, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("vcluster: %s: bad anchor pid %q", host, b)
	}
	want, err1 := netnsOf("/run/netns/" + c.Name + "-" + host)
	got, err2 := netnsOf(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err1 != nil || err2 != nil || want != got {
		return 0, fmt.Errorf("vcluster: %s is down", host)
	}
	return pid, nil
}

// Command returns a command that runs inside host, with the caller's
// environment and working directory (nsenter: the command is the caller's
// child, no shell in between).
func (c *Cluster) Command(host string, name string, args ...string) *exec.Cmd {
	pid, err := c.Anchor(host)
	if err != nil {
		pid = 0 // nsenter then fails, saying so
	}
	wd, _ := os.Getwd()
	return exec.Command("nsenter", append([]string{"-t", strconv.Itoa(pid), "--net", "--mount", "--uts", "--ipc",
		"--wd=" + wd, "--", name}, args...)...)
}

// Proc is a process of a host.
type Proc struct {
	PID  int
	Comm string // its command name, as in /proc/PID/comm
	Args string // its command line, arguments joined by spaces
}

func (p Proc) String() string { return fmt.Sprintf("%d %s", p.PID, p.Args) }

// Procs lists the live processes of host (those in its network namespace),
// its anchor excepted.
func (c *Cluster) Procs(host string) ([]Proc, error) {
	anchor, err := c.Anchor(host)
	if err != nil {
		return nil, err
	}
	ns, err := netnsOf(fmt.Sprintf("/proc/%d/ns/net", anchor))
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == anchor {
			continue
		}
		if got, err := netnsOf(fmt.Sprintf("/proc/%d/ns/net", pid)); err != nil || got != ns {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := bytes.LastIndexByte(stat, ')'); err != nil || i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
			continue // gone, or a zombie
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		args, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, Proc{PID: pid, Comm: strings.TrimSpace(string(comm)),
			Args: strings.TrimSpace(string(bytes.ReplaceAll(args, []byte{0}, []byte{' '})))})
	}
	return out, nil
}

// Shm lists the names in host's own /dev/shm.
func (c *Cluster) Shm(host string) ([]string, error) {
	anchor, err := c.Anchor(host)
	if err != nil {
		return nil, err
	}
	// /proc/PID/root walks PID's mount namespace: the host's tmpfs.
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/root/dev/shm", anchor))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, nil
}

// Dial connects from inside host to addr over TCP, as a program of that host would.
func (c *Cluster) Dial(host, addr string, timeout time.Duration) (net.Conn, error) {
	anchor, err := c.Anchor(host)
	if err != nil {
		return nil, err
	}
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", anchor))
	if err != nil {
		return nil, err
	}
	defer target.Close()
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// The socket is made on this thread, in the namespace the thread
		// is in; the thread goes back to the scheduler only once it is
		// back in its own namespace (otherwise it exits with the goroutine).
		goruntime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			goruntime.UnlockOSThread()
			done <- result{nil, err}
			return
		}
		defer self.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			done <- result{nil, fmt.Errorf("vcluster: entering %s's network: %w", host, err)}
			return
		}
		conn, err := net.DialTimeout("tcp", addr, timeout)
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			goruntime.UnlockOSThread()
		}
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}

// netnsOf identifies the network namespace of a /proc/PID/ns/net or
// /run/netns/NAME file.
func netnsOf(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	if st.Ino == 0 {
		return 0, errors.New("vcluster: no namespace")
	}
	return st.Ino, nil
}

package launch

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/bootstrap"
)

// The test binary doubles as the rank program: with LAUNCH_TEST_APP set it
// runs that app instead of the tests (as os/exec's tests do).
const appVar = "LAUNCH_TEST_APP"

func TestMain(m *testing.M) {
	if mode := os.Getenv(appVar); mode != "" {
		os.Exit(app(mode))
	}
	os.Exit(m.Run())
}

func app(mode string) int {
	rank := os.Getenv(bootstrap.EnvRank)
	switch mode {
	case "echo":
		in, _ := io.ReadAll(os.Stdin)
		fmt.Printf("rank=%s size=%s local=%s/%s node=%s job=%s gomaxprocs=%s transports=%s stdin=%q\n",
			rank, os.Getenv(bootstrap.EnvSize), os.Getenv(bootstrap.EnvLocalRank), os.Getenv(bootstrap.EnvLocalSize),
			os.Getenv(bootstrap.EnvNode), os.Getenv(bootstrap.EnvJobID), os.Getenv("GOMAXPROCS"),
			os.Getenv(bootstrap.EnvTransports), in)
		return 0
	case "cpus":
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("rank=%s cpus=%v\n", rank, cpuList(&set))
		return 0
	case "exit3":
		if rank == "1" {
			fmt.Fprintln(os.Stderr, "exit3: something went wrong")
			fmt.Fprint(os.Stderr, "exit3: rank 1 exits with code 3")
			return 3
		}
		return sleep()
	case "sleep":
		return sleep()
	case "trap":
		// Reports the signals it gets; exits 0 on SIGTERM.
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGHUP)
		fmt.Println("ready")
		for sig := range ch {
			fmt.Printf("rank %s got %v\n", rank, sig)
			if sig == syscall.SIGTERM {
				return 0
			}
		}
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		return sleep()
	case "abort", "exchange", "vanish", "cutoff":
		return coordApp(mode, rank)
	case "grandchild":
		// Leaves a child in its process group, then exits 0.
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), appVar+"=sleep")
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("grandchild %d\n", cmd.Process.Pid)
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown app %q\n", mode)
	return 2
}

func sleep() int {
	fmt.Printf("ready %d\n", os.Getpid())
	for {
		time.Sleep(time.Hour)
	}
}

// coordApp exercises the coordinator from a real rank process.
func coordApp(mode, rank string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env, err := bootstrap.Lookup(os.Getenv)
	if err != nil || env == nil {
		fmt.Fprintln(os.Stderr, "lookup:", env, err)
		return 1
	}
	c, err := bootstrap.Dial(ctx, env)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	switch {
	case mode == "abort" && rank == "1":
		c.Abort("bad input")
		fmt.Fprintln(os.Stderr, "aborting")
		return 7
	case mode == "vanish" && rank == "0":
		return 0 // no Close: the coordinator sees the connection drop
	case mode == "cutoff" && rank == "1":
		// Cut the connection behind the client's back and keep running.
		shutdownSockets()
		<-c.Lost()
		fmt.Println("lost the coordinator")
		return sleep()
	case mode == "cutoff":
		return sleep()
	}
	all, err := c.Exchange(ctx, []byte(rank))
	if err != nil {
		var re *bootstrap.RankError
		fmt.Fprintln(os.Stderr, "exchange:", err, errors.As(err, &re))
		if mode == "abort" {
			return sleep() // stopped by gorun
		}
		return 5
	}
	if len(all) != env.Size || string(all[env.Rank]) != rank {
		fmt.Fprintf(os.Stderr, "exchange returned %q\n", all)
		return 1
	}
	if err := c.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("rank %s exchanged with %d ranks\n", rank, len(all))
	return 0
}

// procsWithMark returns the live processes whose environment contains
// mark, so tests can check that a job left nothing behind.
func procsWithMark(mark string) []string {
	entries, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range entries {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' || pid == fmt.Sprint(os.Getpid()) {
			continue
		}
		env, err := os.ReadFile("/proc/" + pid + "/environ")
		if err != nil || !strings.Contains("\x00"+string(env)+"\x00", "\x00"+mark+"\x00") {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + pid + "/stat")
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue // a zombie waiting for init is gone for our purposes
		}
		found = append(found, pid)
	}
	return found
}

// checkNoProcs fails t if a process carrying mark is still alive. Ranks
// are reaped before Run returns, so this needs no polling except for
// grandchildren, which are reaped by init asynchronously after the kill.
func checkNoProcs(t *testing.T, mark string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := procsWithMark(mark)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left behind: %v", left)
		}
		runtime.Gosched()
		time.Sleep(20 * time.Millisecond)
	}
}

// shutdownSockets shuts down every socket of the process, as a network
// failure would.
func shutdownSockets() {
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		target, _ := os.Readlink("/proc/self/fd/" + fd.Name())
		if strings.HasPrefix(target, "socket:") {
			var n int
			fmt.Sscan(fd.Name(), &n)
			syscall.Shutdown(n, syscall.SHUT_RDWR)
		}
	}
}

// cpuList returns the CPUs in set, ascending.
func cpuList(set *unix.CPUSet) []int {
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

package shmring

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
)

var testSecret = []byte("shmring test secret 0123456789abcdef")

var jobSeq atomic.Int64

// newJobID returns a job id unique to this process and test.
func newJobID() string {
	return fmt.Sprintf("t%d-%d", os.Getpid(), jobSeq.Add(1))
}

func TestMain(m *testing.M) {
	if helperMain() {
		return
	}
	// Start the netpoller (its epoll and event descriptors stay open for
	// the life of the process) before taking the baseline.
	if ln, err := net.Listen("unix", "@"+newJobID()+"-warmup"); err == nil {
		ln.Close()
	}
	fds0 := countFDs()
	shm0 := listDevShm()
	code := m.Run()
	if code == 0 {
		if err := settle(fds0, shm0); err != nil {
			fmt.Fprintln(os.Stderr, "leak check:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

func listDevShm() map[string]bool {
	m := map[string]bool{}
	ents, _ := os.ReadDir("/dev/shm")
	for _, e := range ents {
		m[e.Name()] = true
	}
	return m
}

// settle waits for goroutines and descriptors to come back to where they
// were and checks that nothing new appeared in /dev/shm.
func settle(fds0 int, shm0 map[string]bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		g := runtime.NumGoroutine()
		fds := countFDs()
		var extra []string
		for name := range listDevShm() {
			if !shm0[name] && strings.Contains(name, "gorun") {
				extra = append(extra, name)
			}
		}
		if g <= 2 && fds <= fds0 && len(extra) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Errorf("%d goroutines, %d fds (had %d), new in /dev/shm: %v\n%s", g, fds, fds0, extra, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pair builds two connected Transports for ranks 0 and 1 in this process.
func pair(t testing.TB, cfg Config, h0, h1 transport.Handler) (t0, t1 *Transport, e0, e1 transport.Endpoint) {
	t.Helper()
	job := newJobID()
	c0, c1 := cfg, cfg
	c0.JobID, c1.JobID = job, job
	c0.Secret, c1.Secret = testSecret, testSecret
	c0.Self, c1.Self = 0, 1
	var err error
	if t0, err = Listen(c0); err != nil {
		t.Fatal(err)
	}
	if t1, err = Listen(c1); err != nil {
		t0.Close()
		t.Fatal(err)
	}
	addrs := []string{t0.Addr(), t1.Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var eps0, eps1 []transport.Endpoint
	var err0, err1 error
	wg.Add(2)
	go func() { defer wg.Done(); eps0, err0 = t0.Connect(ctx, addrs, h0) }()
	go func() { defer wg.Done(); eps1, err1 = t1.Connect(ctx, addrs, h1) }()
	wg.Wait()
	if err0 != nil || err1 != nil {
		t0.Close()
		t1.Close()
		t.Fatalf("connect: %v; %v", err0, err1)
	}
	// Rank 1 dials, so e0 is an accepted channel and e1 a dialed one.
	if err := eps1[0].(transport.Opener).Open(); err != nil {
		t0.Close()
		t1.Close()
		t.Fatal(err)
	}
	return t0, t1, eps0[1], eps1[0]
}

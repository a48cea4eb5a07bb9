// Package testutil holds the project's test helpers: leak checks for
// TestMain (goroutines, child processes, sockets, shared-memory segments).
package testutil

import (
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// settle is how long a check waits for resources that are being released
// (goroutines finishing, sockets closing) before it calls them leaked.
const settle = 5 * time.Second

// Main is a TestMain body: in a process spawned by ranktest.Spawn it runs
// the rank (ranktest.Main); otherwise it runs the tests and then fails the
// run if goroutines, child processes, sockets or gorun shared-memory
// segments were left behind.
func Main(m *testing.M) {
	if ranktest.InRank() {
		ranktest.Main(m)
	}
	before := Take()
	code := m.Run()
	if code == 0 {
		if err := before.Check(); err != nil {
			fmt.Fprintf(os.Stderr, "leak check: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Snapshot is the resource state to compare against.
type Snapshot struct {
	goroutines int
	sockets    int
	shm        map[string]bool
}

// Take records the current state.
func Take() Snapshot {
	return Snapshot{goroutines: goruntime.NumGoroutine(), sockets: countSockets(), shm: ShmEntries()}
}

// Check waits up to a few seconds for the state to return to the
// snapshot's, and describes whatever did not.
func (s Snapshot) Check() error {
	deadline := time.Now().Add(settle)
	for {
		var problems []string
		if n := goruntime.NumGoroutine(); n > s.goroutines {
			buf := make([]byte, 1<<20)
			buf = buf[:goruntime.Stack(buf, true)]
			problems = append(problems, fmt.Sprintf("%d goroutines left (had %d):\n%s", n, s.goroutines, buf))
		}
		if kids := children(); len(kids) > 0 {
			problems = append(problems, fmt.Sprintf("child processes still running: %v", kids))
		}
		if n := countSockets(); n > s.sockets {
			problems = append(problems, fmt.Sprintf("%d sockets open (had %d)", n, s.sockets))
		}
		for name := range ShmEntries() {
			if !s.shm[name] {
				problems = append(problems, "/dev/shm/"+name+" left behind")
			}
		}
		if len(problems) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s", strings.Join(problems, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countSockets counts this process's open socket descriptors.
func countSockets() int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// children lists the live (not zombie) processes whose parent is this one.
func children() []int {
	me := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command may contain spaces and parentheses: fields start
		// after the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == me {
			kids = append(kids, pid)
		}
	}
	return kids
}

// ShmEntries lists the gorun segments in /dev/shm.
func ShmEntries() map[string]bool {
	m := map[string]bool{}
	ents, _ := os.ReadDir("/dev/shm")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "gorun") {
			m[e.Name()] = true
		}
	}
	return m
}

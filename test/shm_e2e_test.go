package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/bootstrap"
)

// A job leaves no named shared-memory segment behind, however its ranks
// end: gorun sweeps the job's names when it is over, and the leftovers of a
// job whose gorun was killed are swept by the next gorun.

var createdRE = regexp.MustCompile(`created (\S+)`)

// created returns the segment paths the ranks reported creating.
func created(t *testing.T, out string, want int) []string {
	t.Helper()
	var paths []string
	for _, m := range createdRE.FindAllStringSubmatch(out, -1) {
		p := m[1]
		if !filepath.IsAbs(p) {
			p = filepath.Join("/dev/shm", p)
		}
		paths = append(paths, p)
	}
	if len(paths) != want {
		t.Fatalf("%d ranks reported a segment, want %d:\n%s", len(paths), want, out)
	}
	return paths
}

func checkGone(t *testing.T, paths []string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			os.Remove(p)
			t.Errorf("%s is still there after the job (stat: %v)", p, err)
		}
	}
}

func TestShmSweepAfterJob(t *testing.T) {
	for _, mode := range []string{"exit", "kill", "panic", "clean"} {
		t.Run(mode, func(t *testing.T) {
			code, out, errOut := runGorun(t, "", "-np", "2", "shmleak", "-mode="+mode)
			if (code == 0) != (mode == "exit" || mode == "clean") {
				t.Fatalf("gorun exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			// A killed or panicking rank may be the first to fail and stop
			// the other before it created its segment.
			want := 2
			if mode == "kill" || mode == "panic" {
				want = max(1, len(createdRE.FindAllString(out, -1)))
			}
			checkGone(t, created(t, out, want))
		})
	}
}

func TestShmSweepAfterGorunKilled(t *testing.T) {
	g := startGorun(t, "", "-np", "2", "shmleak", "-mode=hold")
	g.stdout.waitCount(t, "created", 2)
	paths := created(t, g.stdout.String(), 2)
	g.cmd.Process.Kill()
	g.wait(t)
	waitNoProcs(t, g.mark)
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s vanished before anyone swept it: %v (the test proves nothing)", p, err)
		}
	}
	// The next job on this host sweeps what the dead one left.
	if code, out, errOut := runGorun(t, "", "-np", "1", "echo"); code != 0 {
		t.Fatalf("gorun exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	checkGone(t, paths)
}

// The runtime's own shared segments (the collectives' segment of each
// one-node communicator, the rings) never have a name, so a job killed
// with its launcher leaves nothing in /dev/shm even before the next gorun
// sweeps: the kernel frees them with the last rank. "late" holds rank 0
// inside the set-up of the collectives' segment, which the others never
// join, while the test looks.
func TestShmNoNamesWhileRunning(t *testing.T) {
	jobRE := regexp.MustCompile(`(?:ready|entering) job=(\S+) rank=`)
	for _, tc := range []struct{ name, nodes, late string }{
		{"nodes1", "1", "-late=false"},
		{"nodes2", "2", "-late=false"},
		{"late", "1", "-late"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGorun(t, "", "-np", "4", "--nodes", tc.nodes, "collhold", tc.late)
			if tc.late == "-late" {
				g.stdout.waitCount(t, "ready", 3)
				g.stdout.waitCount(t, "entering", 1)
			} else {
				g.stdout.waitCount(t, "ready", 4)
			}
			m := jobRE.FindStringSubmatch(g.stdout.String())
			if m == nil {
				t.Fatalf("no job id in:\n%s", g.stdout.String())
			}
			names := func() []string {
				entries, _ := os.ReadDir("/dev/shm")
				var mine []string
				for _, e := range entries {
					if strings.HasPrefix(e.Name(), bootstrap.ShmPrefix(m[1])) {
						mine = append(mine, e.Name())
					}
				}
				return mine
			}
			for range 20 {
				if left := names(); len(left) > 0 {
					t.Fatalf("named segments while the job runs: %v", left)
				}
				time.Sleep(10 * time.Millisecond)
			}
			g.cmd.Process.Kill()
			g.wait(t)
			waitNoProcs(t, g.mark)
			if left := names(); len(left) > 0 {
				t.Errorf("named segments after gorun was killed: %v", left)
			}
		})
	}
}

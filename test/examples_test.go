package test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The examples of examples/ run as their doc comments say, one node and
// two, and print what the Python originals print.

func TestExampleShared(t *testing.T) {
	for _, extra := range [][]string{nil, {"--nodes", "2"}} {
		t.Run(fmt.Sprint(extra), func(t *testing.T) {
			args := append([]string{"-np", "4"}, extra...)
			code, out, errOut := runGorun(t, "", append(args, "shared")...)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			nodes := 1
			if extra != nil {
				nodes = 2
			}
			for _, want := range []string{
				fmt.Sprintf("<Shared\n  replicated on %d nodes, each with %d processes (4 total)\n  shape = (3, 5), dtype = float64\n  [ [0. 0. 0. 0. 0.] [0. 0. 0. 0. 0.] [0. 0. 0. 0. 0.] ]\n>", nodes, 4/nodes),
				"rank 3: shm[2, 3] = 5\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("missing %q in\n%s", want, out)
				}
			}
			updated := " [[0. 0. 0. 0. 0.]\n [0. 0. 1. 2. 0.]\n [0. 3. 4. 5. 0.]]"
			if n := strings.Count(out, updated); n != 5 {
				t.Errorf("the updated array printed %d times, want 5 (4 ranks and the read-only access):\n%s", n, out)
			}
		})
	}
}

func TestExampleRWLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hello.txt")
	code, out, errOut := runGorun(t, "", "-np", "4", "--nodes", "2", "rwlock", "-o", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 5 || lines[0] != "header" {
		t.Fatalf("the file holds %q", b)
	}
	// Each rank appended once; it read before it wrote, so it saw at most
	// the lines before its own.
	seen := map[int]bool{}
	for i, l := range lines[1:] {
		var r, n int
		if _, err := fmt.Sscanf(l, "rank %d saw %d line(s) when it read", &r, &n); err != nil || seen[r] || n < 1 || n > i+1 {
			t.Fatalf("line %d is %q (%v)", i+1, l, err)
		}
		seen[r] = true
	}
	if !strings.Contains(out, "5 lines in "+path+", 4 ranks") {
		t.Errorf("the report is missing:\n%s", out)
	}
}

// TestExampleHeat runs the Jacobi solver on grids of ranks of several
// shapes, one node and two, and has rank 0 compare the answer with its
// serial solve: equal bit for bit, or the job fails.
func TestExampleHeat(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // the summary line's start
	}{
		{[]string{"-np", "1"}, "heat: 23×17 grid on 1×1 ranks: "},
		{[]string{"-np", "4"}, "heat: 23×17 grid on 2×2 ranks: "},
		{[]string{"-np", "3"}, "heat: 23×17 grid on 3×1 ranks: "},
		{[]string{"-np", "4", "--nodes", "2"}, "heat: 23×17 grid on 2×2 ranks: "},
		{[]string{"-np", "6", "--nodes", "2"}, "heat: 23×17 grid on 3×2 ranks: "},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			// -tol stops the solve before -iters does.
			args := append(c.args, "heat", "-n", "23", "-m", "17", "-tol", "1e-2", "-iters", "1000", "-check")
			code, out, errOut := runGorun(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			if !strings.Contains(out, c.want) || !strings.HasSuffix(out, "heat: ok (equal to the serial solve bit for bit)\n") {
				t.Errorf("got\n%s", out)
			}
		})
	}
}

// TestExampleParticles runs the particle exchange in one and two
// dimensions, one node and two; the example checks itself after every
// step.
func TestExampleParticles(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-np", "1"}, "particles: 300 particles on [1 1] ranks, 30 steps;"},
		{[]string{"-np", "4"}, "particles: 1200 particles on [2 2] ranks, 30 steps;"},
		{[]string{"-np", "4", "--nodes", "2"}, "particles: 1200 particles on [2 2] ranks, 30 steps;"},
		{[]string{"-np", "3", "--nodes", "2", "particles", "-dim", "1"}, "particles: 900 particles on [3] ranks, 30 steps;"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := c.args
			if !slices.Contains(args, "particles") {
				args = append(args, "particles")
			}
			args = append(args, "-n", "300", "-steps", "30", "-dt", "0.05", "-check")
			code, out, errOut := runGorun(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			if !strings.Contains(out, c.want) || !strings.HasSuffix(out, "\nparticles: ok\n") {
				t.Errorf("got\n%s", out)
			}
		})
	}
}

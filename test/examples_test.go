package test

import (
	"fmt"
	"os"
	"path/filepath"
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

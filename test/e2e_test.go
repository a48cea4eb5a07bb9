package test

import (
	"fmt"
	"strings"
	"testing"
)

// End-to-end: gorun runs programs that use the runtime over real processes
// and sockets.

func TestE2ECollectives(t *testing.T) {
	for _, tc := range []struct {
		np    int
		extra []string
	}{
		{1, nil}, {2, nil}, {3, nil}, {4, nil}, {8, nil},
		{4, []string{"--nodes", "2"}},
		{5, []string{"--host", "a:2,b:2,c", "--launcher", "local", "--map-by", "node"}},
		{3, []string{"--nodes", "3"}},
	} {
		t.Run(fmt.Sprintf("np%d%s", tc.np, strings.Join(tc.extra, "")), func(t *testing.T) {
			args := append([]string{"-np", fmt.Sprint(tc.np)}, tc.extra...)
			args = append(args, "collcheck")
			code, out, errOut := runGorun(t, "", args...)
			if code != 0 {
				t.Fatalf("gorun exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			for r := range tc.np {
				if want := fmt.Sprintf("rank %d of %d ok", r, tc.np); !strings.Contains(out, want) {
					t.Errorf("missing %q in output:\n%s", want, out)
				}
			}
		})
	}
}

func TestE2ERankFailure(t *testing.T) {
	for _, tc := range []struct {
		mode string
		code int
		says string // gorun's report names the failing rank and how
		wait string // what the others wait in
	}{
		{"exit", 3, "rank 1", "recv"},
		{"panic", 2, "deliberate panic", "recv"},
		{"kill", 137, "SIGKILL", "recv"},
		{"abort", 1, "deliberate abort", "recv"},
		{"exit", 3, "rank 1", "barrier"},
		{"kill", 137, "SIGKILL", "barrier"},
	} {
		t.Run(tc.mode+"/"+tc.wait, func(t *testing.T) {
			code, out, errOut := runGorun(t, "", "-np", "3", "--grace", "20s", "rankfail", "-mode="+tc.mode, "-rank=1", "-wait="+tc.wait)
			if code != tc.code {
				t.Fatalf("gorun exited %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if !strings.Contains(errOut, tc.says) || !strings.Contains(errOut, "rank 1") {
				t.Fatalf("gorun's report does not name rank 1 and %q:\n%s", tc.says, errOut)
			}
			// The ranks blocked on rank 1 see their Recv fail with
			// ErrAborted naming the cause (gorun waits a moment before it
			// stops them); none may report success.
			if strings.Contains(out, "<nil>") {
				t.Fatalf("a rank's Recv from the failed rank succeeded:\n%s", out)
			}
			if !strings.Contains(out, "aborted") {
				t.Fatalf("no surviving rank reported ErrAborted\nstdout:\n%s\nstderr:\n%s", out, errOut)
			}
		})
	}
}

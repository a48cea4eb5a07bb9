package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The everyday flags of mpirun and srun: --stdin, --wdir, --output-filename,
// -l; here and through agents (a fake ssh, as in agents_test.go).

func TestLaunchStdinAll(t *testing.T) {
	for _, via := range [][]string{nil, {"--host", "h1:1,h2:2", "--launcher-exec", ""}} {
		args := []string{"-np", "3", "--stdin", "all"}
		if via != nil {
			via[3] = fakeSSH(t)
			args = append(args, via...)
		}
		code, out, errOut := runGorun(t, "for everyone", append(args, "echo")...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errOut)
		}
		ranks := parseEcho(t, out)
		for r := range 3 {
			if !strings.Contains(ranks[r].rest, `stdin="for everyone"`) {
				t.Errorf("%v: rank %d: %s", args, r, ranks[r].rest)
			}
		}
	}
	code, out, _ := runGorun(t, "for two", "-np", "3", "--stdin", "2", "echo")
	ranks := parseEcho(t, out)
	if code != 0 || !strings.Contains(ranks[2].rest, `stdin="for two"`) || !strings.Contains(ranks[0].rest, `stdin=""`) {
		t.Errorf("--stdin 2: exit %d\n%s", code, out)
	}
}

func TestLaunchWdirAndOutputFiles(t *testing.T) {
	wdir, outDir := t.TempDir(), t.TempDir()
	code, out, errOut := runGorun(t, "", "-np", "2", "-l", "--wdir", wdir, "--output-filename", outDir,
		"--host", "h1:1,h2:1", "--launcher-exec", fakeSSH(t), "echo")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if strings.Contains(out, "RANK=") {
		t.Errorf("rank output reached gorun's stdout with --output-filename:\n%s", out)
	}
	for r := range 2 {
		b, err := os.ReadFile(filepath.Join(outDir, "1", "rank."+string(rune('0'+r)), "stdout"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "RANK="+string(rune('0'+r))+" ") || !strings.Contains(string(b), "cwd="+wdir+" ") {
			t.Errorf("rank %d's stdout file: %q (want its line, with cwd=%s)", r, b, wdir)
		}
	}
}

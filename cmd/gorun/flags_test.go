package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func fakeEnv(k string) (string, bool) {
	if k == "HOME" {
		return "/home/me", true
	}
	return "", false
}

func TestParseArgs(t *testing.T) {
	o, err := parseArgs(strings.Fields("-np 4 --nodes 2 --tag-output -x A=1 -x HOME --timeout 30s --grace=1s --transports self,tcp -v ./app -np 9 x"), fakeEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	j := o.job
	if j.NP != 4 || j.Nodes != 2 || !j.TagOutput || j.Timeout != 30*time.Second || j.Grace != time.Second || j.Transports != "self,tcp" || !o.verbose {
		t.Errorf("parsed %+v", j)
	}
	if j.Path != "./app" || !slices.Equal(j.Args, []string{"-np", "9", "x"}) {
		t.Errorf("program %q args %q: flags after the program belong to it", j.Path, j.Args)
	}
	if !slices.Equal(j.Env, []string{"A=1", "HOME=/home/me"}) {
		t.Errorf("Env %q", j.Env)
	}
}

func TestParseArgsDefaults(t *testing.T) {
	o, err := parseArgs([]string{"app"}, fakeEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.job.NP != runtime.NumCPU() || o.job.Nodes != 0 || o.job.TagOutput || o.job.Timeout != 0 || o.job.Transports != "" {
		t.Errorf("defaults %+v", o.job)
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, args := range []string{
		"",
		"-np 2",
		"-np 0 app",
		"-np x app",
		"-np 2 --nodes 3 app",
		"--nodes -1 app",
		"-x UNSET_VAR app",
		"-x =1 app",
		"--timeout 5 app",
		"--timeout -1s app",
		"--transports tcp,,self app",
		"--no-such-flag app",
	} {
		_, err := parseArgs(strings.Fields(args), fakeEnv, io.Discard)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("parseArgs(%q) error %v, want a usage error", args, err)
		}
	}
	if _, err := parseArgs([]string{"-h"}, fakeEnv, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestRunUsageExitCodes(t *testing.T) {
	for args, want := range map[string]int{
		"":                         2,
		"-np 0 true":               2,
		"--help":                   0,
		"-np 1 /nonexistent/gorun": 127,
	} {
		if got := run(strings.Fields(args), nil, io.Discard, io.Discard); got != want {
			t.Errorf("gorun %s: exit %d, want %d", args, got, want)
		}
	}
}

func TestBuildTarget(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := buildTarget(dir, nil); err == nil || !strings.Contains(err.Error(), "no Go files") {
		t.Errorf("an empty directory: %v, want an error saying it has no Go files", err)
	}
	main := filepath.Join(dir, "main.go")
	os.WriteFile(main, []byte("package main\n"), 0o644)
	if pkg, files, err := buildTarget(dir, nil); err != nil || pkg != dir || files != nil {
		t.Errorf("a package directory: %q %q %v", pkg, files, err)
	}
	other := filepath.Join(dir, "other.go")
	os.WriteFile(other, []byte("package main\n"), 0o644)
	if pkg, files, err := buildTarget(main, []string{other, "arg.go.txt"}); err != nil || pkg != "" || !slices.Equal(files, []string{main, other}) {
		t.Errorf("Go files: %q %q %v", pkg, files, err)
	}
	if _, _, err := buildTarget(filepath.Join(dir, "nope.go"), nil); err == nil {
		t.Error("a missing .go file was accepted")
	}
	if pkg, files, err := buildTarget("/bin/true", nil); err != nil || pkg != "" || files != nil {
		t.Errorf("a program: %q %q %v", pkg, files, err)
	}
}

package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// buildTarget says what path is: a package directory (dir != "") or Go
// files (files), both built like go run; or a program to run (neither). A
// directory without Go files is an error.
func buildTarget(path string, args []string) (dir string, files []string, err error) {
	if strings.HasSuffix(path, ".go") {
		files = []string{path}
		for _, a := range args { // go run a.go b.go: the leading .go arguments
			if !strings.HasSuffix(a, ".go") {
				break
			}
			files = append(files, a)
		}
		for _, f := range files {
			if _, err := os.Stat(f); err != nil {
				return "", nil, fmt.Errorf("%s: %w", f, err)
			}
		}
		return "", files, nil
	}
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return "", nil, nil
	}
	matches, _ := filepath.Glob(filepath.Join(path, "*.go"))
	if len(matches) == 0 {
		return "", nil, fmt.Errorf("%s is a directory with no Go files: give a program, a Go package directory or .go files", path)
	}
	return path, nil, nil
}

// build compiles the package in dir (or the Go files, in the current
// directory) into tmp, as go run does, and returns the binary. It returns
// "" and gorun's exit code when the build fails or is interrupted; the go
// command's own messages go to stderr.
func build(dir string, files []string, tmp string, sigs <-chan os.Signal, stderr io.Writer, verbose bool) (string, int) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(stderr, "gorun: %s is a package directory, but there is no go command to build it: %v\n", dir, err)
		return "", 1
	}
	var cmd *exec.Cmd
	var bin string
	if files != nil {
		dir = strings.Join(files, " ")
		bin = filepath.Join(tmp, strings.TrimSuffix(filepath.Base(files[0]), ".go"))
		cmd = exec.Command(gocmd, append([]string{"build", "-o", bin}, files...)...)
	} else {
		bin = filepath.Join(tmp, filepath.Base(filepath.Clean(mustAbs(dir))))
		// Run in dir with "." so the go command finds the package's own
		// module, wherever gorun was started.
		cmd = exec.Command(gocmd, "build", "-o", bin, ".")
		cmd.Dir = dir
	}
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	if verbose {
		fmt.Fprintf(stderr, "gorun: building %s: %s (in %s)\n", dir, strings.Join(cmd.Args, " "), cmd.Dir)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "gorun: building %s: %v\n", dir, err)
		return "", 1
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintf(stderr, "gorun: building %s failed: %v\n", dir, err)
				return "", 1
			}
			return bin, 0
		case sig := <-sigs:
			s, _ := sig.(syscall.Signal)
			if s != syscall.SIGINT && s != syscall.SIGTERM {
				continue
			}
			cmd.Process.Kill()
			<-done
			fmt.Fprintf(stderr, "gorun: build of %s interrupted by %v\n", dir, sig)
			return "", 128 + int(s)
		}
	}
}

func mustAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

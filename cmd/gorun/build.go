package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// isPackageDir reports whether path is a directory holding Go files, and
// returns it cleaned.
func isPackageDir(path string) (string, bool) {
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return "", false
	}
	matches, _ := filepath.Glob(filepath.Join(path, "*.go"))
	return path, len(matches) > 0
}

// build compiles the package in dir into tmp, as go run does, and returns
// the binary. It returns "" and gorun's exit code when the build fails or
// is interrupted; the go command's own messages go to stderr.
func build(dir, tmp string, sigs <-chan os.Signal, stderr io.Writer, verbose bool) (string, int) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(stderr, "gorun: %s is a package directory, but there is no go command to build it: %v\n", dir, err)
		return "", 1
	}
	bin := filepath.Join(tmp, filepath.Base(filepath.Clean(mustAbs(dir))))
	// Run in dir with "." so the go command finds the package's own
	// module, wherever gorun was started.
	cmd := exec.Command(gocmd, "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	if verbose {
		fmt.Fprintf(stderr, "gorun: building %s: (cd %s && go build -o %s .)\n", dir, dir, bin)
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

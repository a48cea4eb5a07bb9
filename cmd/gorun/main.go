// Command gorun runs a program as N ranks of a gorun job, on this host or
// on the hosts of --host or --hostfile (through agents started with ssh).
//
//	gorun [flags] -np N ./app args...
//	gorun [flags] -np N ./pkgdir args...
//
// A directory of Go files is built first (like go run) into a temporary
// directory that is removed afterwards. gorun forwards the ranks' output
// line by line, sends SIGINT/SIGTERM on to the ranks as SIGTERM (a second
// one kills them), forwards SIGHUP, SIGUSR1, SIGUSR2 and SIGQUIT, and stops
// the whole job when one rank fails, printing which rank failed, how, and
// its last stderr lines.
//
// Exit status: 0 if every rank exited 0; otherwise the first failing rank's
// exit code, or 128+signal if it was killed; 124 on --timeout; 128+signal
// when gorun was interrupted; 2 for a usage error; 127 when the program
// does not exist; 1 when the job could not start or a package failed to
// build. See docs/launch.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gorun-hpc/gorun/internal/launch"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--agent" {
		// Hidden: gorun on another host, started by gorun itself (its
		// configuration, with the job's secret, comes on stdin).
		if err := launch.RunAgent(os.Stdin, slog.New(slog.DiscardHandler)); err != nil {
			fmt.Fprintf(os.Stderr, "gorun: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// forwarded are the signals gorun handles instead of dying: INT and TERM
// stop the job, the others go to every rank.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT}

// run is gorun without os.Exit, so deferred clean-up runs.
func run(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, os.LookupEnv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "gorun: %v\n%s\nRun 'gorun -h' for the flags.\n", err, usageLine)
		return 2
	}
	if o.verbose {
		o.job.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	// Catch signals before building, so a Ctrl-C during the build still
	// removes the temporary directory.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	pkg, files, err := buildTarget(o.job.Path, o.job.Args)
	if err != nil {
		fmt.Fprintf(stderr, "gorun: %v\n", err)
		return 2
	}
	if pkg != "" || files != nil {
		tmp, err := os.MkdirTemp("", "gorun-build-")
		if err != nil {
			fmt.Fprintf(stderr, "gorun: %v\n", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		bin, code := build(pkg, files, tmp, sigs, stderr, o.verbose)
		if bin == "" {
			return code
		}
		o.job.Path = bin
		o.job.Args = o.job.Args[max(len(files)-1, 0):]
	}

	// A nil *os.File would be a non-nil Reader. A terminal that gorun does
	// not own (gorun ... &) would stop gorun with SIGTTIN on the first read.
	if stdin != nil && !backgroundTerminal(stdin) {
		o.job.Stdin = stdin
	}
	o.job.Stdout = stdout
	o.job.Stderr = stderr
	o.job.Signals = sigs
	res, err := o.job.Run(context.Background())
	if err != nil {
		fmt.Fprintf(stderr, "gorun: %v\n", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return 127
		}
		return 1
	}
	return res.ExitCode()
}

// backgroundTerminal reports whether f is a terminal whose foreground
// process group is not gorun's.
func backgroundTerminal(f *os.File) bool {
	pgrp, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp != unix.Getpgrp()
}

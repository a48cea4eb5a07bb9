package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/gorun-hpc/gorun/internal/hosts"
	"github.com/gorun-hpc/gorun/internal/launch"
)

const usageLine = "usage: gorun [flags] -np N program|package-dir [args...]"

const helpIntro = `Runs program as N ranks, on this host or on the hosts of --host or
--hostfile (an agent per host, started with ssh). A directory of Go files,
or .go files, is built first, like go run. Flags take one or two dashes;
flags after the program are the program's.
`

const helpEnd = `
Exit status: 0 if every rank exited 0; otherwise the first failing rank's
exit code, or 128+signal if it was killed; 124 on --timeout; 128+signal
when gorun was interrupted; 2 for a usage error; 127 when the program does
not exist; 1 when the job could not start or a build failed.

Each rank gets GORUN_JOB_ID, GORUN_RANK, GORUN_SIZE, GORUN_LOCAL_RANK,
GORUN_LOCAL_SIZE, GORUN_NODE, GORUN_COORD, GORUN_SECRET (and GORUN_BIND,
GORUN_TRANSPORTS when set), and GOMAXPROCS = its host's CPUs / its ranks
there unless set. runtime.Init reads them; GORUN_YIELD=0|1 overrides its
oversubscription detection (more ranks on a node than CPUs: waits yield
the CPU). See docs/launch.md.
`

// usageError is a command-line error: gorun prints it and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// options is the parsed command line.
type options struct {
	job     launch.Job // everything but the I/O and signal fields
	verbose bool
}

// parseArgs' output for --display-map; a variable for tests.
var mapOut io.Writer = os.Stdout

// parseArgs parses gorun's command line (without the program name).
// lookupEnv serves -x VAR; -h prints the help to help. Errors are
// *usageError, or flag.ErrHelp after the help text was printed.
func parseArgs(args []string, lookupEnv func(string) (string, bool), help io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("gorun", flag.ContinueOnError)
	// Errors are reported by the caller, in one line; only -h prints the
	// flag list.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	np := runtime.NumCPU()
	fs.IntVar(&np, "np", np, "number of ranks `N`")
	fs.IntVar(&np, "n", np, "same as -np")
	fs.IntVar(&o.job.Nodes, "nodes", 0, "emulate `K` nodes: split the ranks block-wise into K groups that do not share memory (default 1)")
	fs.Func("bind-to", "bind each rank to one CPU (`core`, round-robin) or not (none, the default)", func(s string) error {
		if s != "core" && s != "none" {
			return fmt.Errorf("want core or none, got %q", s)
		}
		o.job.BindTo = s
		return nil
	})
	fs.BoolVar(&o.job.TagOutput, "tag-output", false, "prefix every output line with \"[rank] \"")
	fs.BoolVar(&o.job.TagOutput, "l", false, "same as --tag-output")
	fs.Func("stdin", "give gorun's stdin to `RANK`, to all ranks (all), or to none (none); default 0", func(s string) error {
		switch s {
		case "all":
			o.job.StdinRank = launch.StdinAll
		case "none":
			o.job.StdinRank = launch.StdinNone
		default:
			r, err := strconv.Atoi(s)
			if err != nil || r < 0 {
				return fmt.Errorf("want a rank, all or none, got %q", s)
			}
			o.job.StdinRank = r
		}
		return nil
	})
	fs.StringVar(&o.job.Dir, "wdir", "", "run the ranks in `DIR` (default: gorun's working directory)")
	fs.StringVar(&o.job.OutputDir, "output-filename", "", "write each rank's output to `DIR`/1/rank.R/stdout and stderr instead of gorun's")
	fs.Func("x", "export `VAR[=value]` to every rank (repeatable); -x VAR copies gorun's value", func(s string) error {
		k, _, ok := strings.Cut(s, "=")
		if k == "" {
			return fmt.Errorf("want VAR or VAR=value, got %q", s)
		}
		if !ok {
			v, set := lookupEnv(k)
			if !set {
				return fmt.Errorf("%s is not set in gorun's environment", k)
			}
			s = k + "=" + v
		}
		o.job.Env = append(o.job.Env, s)
		return nil
	})
	fs.DurationVar(&o.job.Timeout, "timeout", 0, "stop the job after `D` (e.g. 30s, 5m): SIGQUIT (Go ranks dump goroutine stacks), then SIGKILL; exit 124")
	fs.DurationVar(&o.job.Grace, "grace", launch.DefaultGrace, "time `D` between SIGTERM/SIGQUIT and SIGKILL")
	fs.StringVar(&o.job.Transports, "transports", "", "restrict the ranks' transports to `LIST`, e.g. self,tcp (sets GORUN_TRANSPORTS)")
	fs.BoolVar(&o.verbose, "v", false, "log what gorun does to stderr")
	var hf hostFlags
	hf.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(help, "%s\n\n%s\n", usageLine, helpIntro)
			fs.SetOutput(help)
			fs.PrintDefaults()
			fmt.Fprint(help, helpEnd)
			return nil, err
		}
		return nil, usagef("%v", err)
	}
	rest := fs.Args()
	npSet := false
	fs.Visit(func(f *flag.Flag) { npSet = npSet || f.Name == "np" || f.Name == "n" })
	var slurm func(string) (string, bool)
	if !hf.given() && inAllocation(lookupEnv) && o.job.Nodes == 0 {
		slurm = lookupEnv // inside salloc or sbatch: the allocation's hosts
	}
	if hf.given() || slurm != nil {
		if o.job.Nodes > 0 {
			return nil, usagef("--nodes and --host/--hostfile: the hosts are the nodes; give one of them")
		}
		if npSet && np < 1 {
			return nil, usagef("-np %d: want at least 1", np)
		}
		if len(rest) == 0 {
			return nil, usagef("no program to run")
		}
		var err error
		if o.job.RankHosts, np, err = hf.place(np, npSet, mapOut, slurm); err != nil {
			return nil, err
		}
		o.job.Launcher, o.job.LauncherExec, o.job.RemoteGorun = hf.launcher, hf.exec, hf.remote
	} else if hf.launcherSet || hf.displayMap || hf.opt != (hosts.Options{}) || hf.exec != "" || hf.remote != "" {
		return nil, usagef("--launcher, --launcher-exec, --remote-gorun, --ppn, --map-by, --oversubscribe and --display-map need --host or --hostfile")
	}
	switch {
	case len(rest) == 0:
		return nil, usagef("no program to run")
	case np < 1:
		return nil, usagef("-np %d: want at least 1", np)
	case o.job.Nodes < 0 || o.job.Nodes > np:
		return nil, usagef("--nodes %d: want 1..%d (at most -np)", o.job.Nodes, np)
	case o.job.Timeout < 0:
		return nil, usagef("--timeout %v is negative", o.job.Timeout)
	case o.job.Grace < 0:
		return nil, usagef("--grace %v is negative", o.job.Grace)
	case o.job.StdinRank >= np:
		return nil, usagef("--stdin %d: want a rank below -np %d, all or none", o.job.StdinRank, np)
	}
	if o.job.Transports != "" {
		for name := range strings.SplitSeq(o.job.Transports, ",") {
			if strings.TrimSpace(name) == "" {
				return nil, usagef("--transports %q has an empty name", o.job.Transports)
			}
		}
	}
	o.job.NP = np
	o.job.Path = rest[0]
	o.job.Args = rest[1:]
	return &o, nil
}

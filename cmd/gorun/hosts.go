package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/gorun-hpc/gorun/internal/hosts"
)

// hostFlags are the flags that place ranks on named hosts.
type hostFlags struct {
	spec, file  string // --host, --hostfile
	opt         hosts.Options
	displayMap  bool
	launcher    string // --launcher: "local" or "ssh"
	launcherSet bool
	exec        string // --launcher-exec
	remote      string // --remote-gorun
}

func (h *hostFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&h.spec, "host", "", "run on `HOSTS`: h1:4,h2:4 (4 slots each) or h1,h1,h2 (a slot per mention)")
	fs.StringVar(&h.file, "hostfile", "", "read the hosts from `FILE`: lines \"host:n\" or \"host slots=n [max_slots=m]\", # comments; a bare host is 1 slot")
	fs.IntVar(&h.opt.PPN, "ppn", 0, "place `K` ranks on each host, whatever its slots")
	fs.Func("map-by", "place ranks by `slot` (fill a host, then the next: the default) or by node (round-robin)", func(s string) error {
		if s != "slot" && s != "node" {
			return fmt.Errorf("want slot or node, got %q", s)
		}
		h.opt.MapBy = hosts.MapBy(s)
		return nil
	})
	fs.BoolVar(&h.opt.Oversubscribe, "oversubscribe", false, "allow more ranks than slots (placement wraps around the hosts); without it that is an error")
	fs.BoolVar(&h.displayMap, "display-map", false, "print which rank runs on which host before starting")
	fs.StringVar(&h.exec, "launcher-exec", "", "start agents with `CMD` instead of ssh: CMD host gorun --agent, or a template with {host} and {cmd}")
	fs.StringVar(&h.remote, "remote-gorun", "", "the `PATH` of gorun on the other hosts (default: this gorun's path)")
	fs.Func("launcher", "start the agents of other hosts with `ssh` (the default), with srun (slurm: the default inside a Slurm allocation), or run every rank here (local): each host is then an emulated node of that name", func(s string) error {
		if s != "local" && s != "ssh" && s != "slurm" {
			return fmt.Errorf("want local, ssh or slurm, got %q", s)
		}
		h.launcher, h.launcherSet = s, true
		return nil
	})
}

// given reports whether any host flag was given.
func (h *hostFlags) given() bool { return h.spec != "" || h.file != "" }

// srunExec starts an agent on one node of the allocation, as Hydra starts
// its proxies: one task, on that node, beside the job's other steps.
const srunExec = "srun --nodes=1 --ntasks=1 --nodelist={host} --overlap --kill-on-bad-exit=1 {cmd}"

// inAllocation reports whether gorun runs in a Slurm allocation's shell
// (salloc, sbatch), not inside a step, where the variables describe the
// step (see hosts.SlurmHosts).
func inAllocation(lookupEnv func(string) (string, bool)) bool {
	_, job := lookupEnv(hosts.EnvSlurmJobNodelist)
	_, step := lookupEnv("SLURM_STEP_ID")
	return job && !step
}

// place turns the host flags (or the Slurm allocation, when slurm is set)
// into every rank's host (np 0: one rank per slot) and checks that they
// can be started. It prints the map if asked.
func (h *hostFlags) place(np int, npSet bool, stdout io.Writer, slurm func(string) (string, bool)) ([]string, int, error) {
	var list []hosts.Host
	switch {
	case slurm != nil:
		l, _, err := hosts.SlurmHosts(slurm)
		if err != nil {
			return nil, 0, usagef("the Slurm allocation: %v", err)
		}
		list = l
		if !h.launcherSet {
			h.launcher = "slurm"
		}
	case h.spec != "" && h.file != "":
		return nil, 0, usagef("--host and --hostfile: give one of them")
	case h.spec != "":
		l, err := hosts.ParseHostSpec(h.spec)
		if err != nil {
			return nil, 0, usagef("--host: %v", err)
		}
		list = l
	default:
		l, err := hosts.ReadHostfile(h.file)
		if err != nil {
			return nil, 0, usagef("--hostfile: %v", err)
		}
		list = l
	}
	if !npSet {
		np = 0 // as many ranks as slots
	}
	m, err := hosts.Place(list, np, h.opt)
	if err != nil {
		return nil, 0, usagef("%v", err)
	}
	if h.launcher == "slurm" {
		if h.exec == "" {
			h.exec = srunExec
		}
		h.launcher = "ssh" // agents, started with h.exec
	}
	if h.displayMap {
		if err := hosts.DisplayMap(stdout, m); err != nil {
			return nil, 0, err
		}
	}
	rankHosts := make([]string, m.NP())
	for r, hi := range m.Host {
		rankHosts[r] = m.Hosts[hi].Name
	}
	return rankHosts, m.NP(), nil
}

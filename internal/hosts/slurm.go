package hosts

import (
	"errors"
	"fmt"
)

// The Slurm variables SlurmHosts reads.
const (
	EnvSlurmJobNodelist = "SLURM_JOB_NODELIST"      // the allocation's nodes (hostlist expression)
	EnvSlurmNodelist    = "SLURM_NODELIST"          // older name of the same, read if the first is unset
	EnvSlurmTasks       = "SLURM_TASKS_PER_NODE"    // tasks per node, "2(x3),1"; gives the slots
	EnvSlurmCPUs        = "SLURM_JOB_CPUS_PER_NODE" // CPUs per node, same format; slots only if tasks are unset
)

// SlurmHosts returns the hosts and slots of the Slurm allocation gorun
// runs in, reading the environment through lookup (os.LookupEnv). ok is
// false, with no error, when SLURM_JOB_NODELIST and SLURM_NODELIST are
// both unset: not inside an allocation.
//
// The hosts are SLURM_JOB_NODELIST expanded by ParseHostlist (or
// SLURM_NODELIST when only that is set). Their slots come from
// SLURM_TASKS_PER_NODE, the n-th count for the n-th node; it wins over
// SLURM_JOB_CPUS_PER_NODE, which is read only when SLURM_TASKS_PER_NODE
// is unset or empty. This is what MPICH's Hydra (which reads the task
// counts only) and Open MPI (which reads the CPU counts only in a debug
// mode) do, and for a reason: the task counts are the layout Slurm
// computed from --ntasks, --ntasks-per-node and --cpus-per-task, while the
// CPU counts would give a job run with -c 8 eight times the ranks it asked
// for, and whole nodes' CPUs under select/linear.
//
// More counts than nodes are ignored, as Hydra and Open MPI do (Open MPI
// notes that Slurm produces such lists); fewer counts than nodes, a count
// of 0, and any parse error are errors naming the variable. Repeated node
// names add up as in ParseHostSpec. MaxSlots is 0: an allocation sets no
// hard limit, so --oversubscribe can exceed the task counts.
//
// Inside a job step (under srun), Slurm replaces SLURM_TASKS_PER_NODE with
// the step's counts but keeps the job's node list, so the pair describes
// neither; the launcher should read the allocation from the batch or
// salloc shell, as mpirun and mpiexec do.
func SlurmHosts(lookup func(string) (string, bool)) (hosts []Host, ok bool, err error) {
	nodesVar := EnvSlurmJobNodelist
	nodelist, set := lookup(nodesVar)
	if !set {
		nodesVar = EnvSlurmNodelist
		if nodelist, set = lookup(nodesVar); !set {
			return nil, false, nil
		}
	}
	names, err := ParseHostlist(nodelist)
	if err != nil {
		return nil, true, relabel(err, nodesVar)
	}

	countsVar := EnvSlurmTasks
	counts, set := lookup(countsVar)
	if !set || counts == "" {
		countsVar = EnvSlurmCPUs
		if counts, set = lookup(countsVar); !set || counts == "" {
			return nil, true, &Error{Source: nodesVar, Text: nodelist,
				Err: fmt.Errorf("neither %s nor %s is set, so the slots per node are unknown", EnvSlurmTasks, EnvSlurmCPUs)}
		}
	}
	slots, err := ParseTaskCounts(counts)
	if err != nil {
		return nil, true, relabel(err, countsVar)
	}
	if len(slots) < len(names) {
		return nil, true, &Error{Source: countsVar, Text: counts,
			Err: fmt.Errorf("gives counts for %d nodes but %s names %d", len(slots), nodesVar, len(names))}
	}

	var b builder
	for i, name := range names {
		if slots[i] == 0 {
			return nil, true, &Error{Source: countsVar, Text: counts,
				Err: fmt.Errorf("gives node %s (number %d in %s) no slots", name, i+1, nodesVar)}
		}
		if err := b.add(name, slots[i], 0); err != nil {
			return nil, true, &Error{Source: nodesVar, Text: nodelist, Err: err}
		}
	}
	return b.hosts, true, nil
}

// relabel puts the variable's name on a parse error from this package.
func relabel(err error, source string) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.Source = source
		return &c
	}
	return fmt.Errorf("%s: %w", source, err)
}

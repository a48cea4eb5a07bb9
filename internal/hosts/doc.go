// Package hosts reads where a multi-host gorun job may run and decides
// which host runs each rank. It does no I/O beyond reading a hostfile and
// knows nothing of ssh, agents or ranks' environments: the launcher turns
// its answers into agents and GORUN_* variables.
//
// # Sources of hosts
//
//   - --host: [ParseHostSpec] reads "h1:4,h2:4" and "h1,h1,h2" (each
//     repetition adds a slot, as in Open MPI).
//   - --hostfile: [ParseHostfile] and [ReadHostfile] read both Hydra's
//     "host:n" and Open MPI's "host slots=n max_slots=m" lines, "#"
//     comments and blank lines.
//   - Slurm: [SlurmHosts] reads the allocation from SLURM_JOB_NODELIST and
//     SLURM_TASKS_PER_NODE (or SLURM_JOB_CPUS_PER_NODE), built on
//     [ParseHostlist] ("node[01-04,7]") and [ParseTaskCounts] ("2(x3),1").
//
// All of them return []Host in order of first appearance, one entry per
// distinct name: a name given again adds its slots. A bare name is one
// slot. Names are checked (letters, digits, '.', '-', '_', one '@'; never a
// leading '-', which ssh would take for an option); IPv6 literals are not
// accepted. Parse errors are *Error, naming the source (flag, file or
// variable), the hostfile line, the offending text and what is wrong.
//
// # Placement
//
// [Place] maps ranks to hosts by slot (block, the default) or by node
// (round-robin), with an optional ranks-per-node override and
// oversubscription; its doc says exactly where every rank goes and when
// it is an error ([ErrNotEnoughSlots]). [DisplayMap] prints the result
// for --display-map.
//
//	hs, err := hosts.ParseHostSpec("h1:4,h2:4")
//	m, err := hosts.Place(hs, 6, hosts.Options{MapBy: hosts.MapByNode})
//	hosts.DisplayMap(os.Stdout, m)
//	// rank r runs on hs[m.Host[r]].Name with local rank m.LocalRank[r]
//	// of m.Count[m.Host[r]]
package hosts

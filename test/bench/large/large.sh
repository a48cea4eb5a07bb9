#!/usr/bin/env bash
# test/bench/large/large.sh: large collectives (Bcast 1 MiB, Allgather 1 MiB
# per rank, Alltoall 64 KiB per pair, and the 8 B calls of the same
# programs) on one node and across two emulated nodes, gorun beside Open
# MPI, interleaved in one run.
#
# usage: test/bench/large/large.sh [NP ...]      (default: 2 4)
#   REPS   runs of each launcher per NP (default 3); the table shows the
#          median of the runs' values (µs per call, averaged over ranks)
#   OUT    output folder (default: a temporary one, printed)
# Columns: gorun (one node: shared memory), gorun-n2 (gorun --nodes 2: two
# emulated nodes on this host, shared memory inside a node and loopback TCP
# between them), ompi (mpirun.openmpi --oversubscribe --bind-to none: vader)
# and ompi-tcp (the same with --mca pml ob1 --mca btl tcp,self on lo, the
# comparison for gorun-n2). gorun runs test/bench/{bcast,allgather,alltoall};
# Open MPI runs oversub/c/coll.c, which measures the same way. Other gorun
# settings come from the environment (GORUN_TRANSPORTS, GOMAXPROCS, ...).
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
reps=${REPS:-3}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(2 4)
out=${OUT:-$(mktemp -d /tmp/gorun-large.XXXXXX)}
. "$repo/test/bench/oversub/lib.sh"
progs=(bcast allgather alltoall)
bench_build "${progs[@]}"
case " ${mpis[*]} " in *" ompi "*) ;; *) echo "large.sh: mpicc.openmpi not found" >&2; exit 2 ;; esac
names=(gorun gorun-n2 ompi ompi-tcp)
ompi=(mpirun.openmpi "${root[@]}" --oversubscribe --bind-to none)
tcp=(--mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)

# one NAME NP: the rows of one run of every benchmark, as name<TAB>bench<TAB>bytes<TAB>us.
one() {
	local name=$1 np=$2 p
	case $name in
	gorun) for p in "${progs[@]}"; do timeout 300 "$bin/gorun" -np "$np" "$bin/$p" -rows; done ;;
	gorun-n2) for p in "${progs[@]}"; do timeout 300 "$bin/gorun" -np "$np" --nodes 2 "$bin/$p" -rows; done ;;
	ompi) timeout 300 "${ompi[@]}" -np "$np" "$bin/coll-ompi" "${progs[@]}" ;;
	ompi-tcp) timeout 300 "${ompi[@]}" "${tcp[@]}" -np "$np" "$bin/coll-ompi" "${progs[@]}" ;;
	esac 2>>"$out/$name.err" | awk -v n="$name" -F'\t' 'NF==4 {print n "\t" $1 "\t" $2 "\t" $3}'
}
bench_interleave "${names[@]}"
{
	echo "# µs per call (median of $reps runs, each the mean over ranks), $(nproc) cores, $(date -u +%F)"
	echo
	bench_table "${names[*]}" "gorun / ompi=gorun:ompi" "gorun-n2 / ompi-tcp=gorun-n2:ompi-tcp"
} | tee "$out/table.md"
echo "large.sh: raw.tsv, table.md and stderr logs in $out" >&2

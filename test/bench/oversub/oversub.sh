#!/usr/bin/env bash
# test/bench/oversub/oversub.sh: Barrier, Bcast and Allreduce (8 B and
# 1 MiB) with more ranks than cores on this machine, gorun beside
# mpirun.openmpi --oversubscribe and mpiexec.mpich, interleaved in one run.
#
# usage: test/bench/oversub/oversub.sh [NP ...]      (default: 4 8)
#   REPS   runs of each launcher per size (default 3); the table shows the
#          median of the runs' values (µs per call, averaged over ranks)
#   OUT    output folder (default: a temporary one, printed)
#   GORUN_COLUMNS  gorun variants (default "gorun"; add "gorun-noyield"
#          for GORUN_YIELD=0, the waits of a node with a core per rank)
# gorun runs test/bench/{barrier,bcast,allreduce}; the MPIs run c/coll.c,
# which measures the same way (osu.Loop and bench.h's loop).
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
reps=${REPS:-3}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(4 8)
out=${OUT:-$(mktemp -d /tmp/gorun-oversub.XXXXXX)}
. "$repo/test/bench/oversub/lib.sh"
bench_build barrier bcast allreduce
names=(${GORUN_COLUMNS:-gorun} "${mpis[@]}")

# one NAME NP: the rows of one run of every benchmark, as name<TAB>bench<TAB>bytes<TAB>us.
one() {
	local name=$1 np=$2 p
	case $name in
	gorun | gorun-noyield)
		local env=()
		[ "$name" = gorun-noyield ] && env=(GORUN_YIELD=0)
		for p in barrier bcast allreduce; do
			env "${env[@]}" timeout 300 "$bin/gorun" -np "$np" "$bin/$p" -rows
		done ;;
	ompi) timeout 300 mpirun.openmpi "${root[@]}" --oversubscribe -np "$np" "$bin/coll-ompi" ;;
	mpich) timeout 300 mpiexec.mpich -n "$np" "$bin/coll-mpich" ;;
	esac 2>>"$out/$name.err" | awk -v n="$name" -F'\t' 'NF==4 {print n "\t" $1 "\t" $2 "\t" $3}'
}
bench_interleave "${names[@]}"
# table: np, bench, bytes, the median per name, and gorun / the faster MPI.
{
	echo "# µs per call (median of $reps runs, each the mean over ranks), $(nproc) cores, $(date -u +%F)"
	echo
	bench_table "${names[*]}" "gorun / faster MPI=gorun:ompi,mpich"
} | tee "$out/table.md"
echo "oversub.sh: raw.tsv, table.md and stderr logs in $out" >&2

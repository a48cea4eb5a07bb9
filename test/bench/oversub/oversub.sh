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
mkdir -p "$out/bin"
bin=$(cd "$out/bin" && pwd)
(cd "$repo" && go build -o "$bin/gorun" ./cmd/gorun &&
	for p in barrier bcast allreduce; do go build -o "$bin/$p" "./test/bench/$p"; done)
have() { command -v "$1" >/dev/null; }
names=(${GORUN_COLUMNS:-gorun})
if have mpicc.openmpi; then mpicc.openmpi -O2 -o "$bin/coll-ompi" "$repo/test/bench/oversub/c/coll.c" && names+=(ompi); fi
if have mpicc.mpich; then mpicc.mpich -O2 -o "$bin/coll-mpich" "$repo/test/bench/oversub/c/coll.c" && names+=(mpich); fi
root=()
[ "$(id -u)" = 0 ] && root=(--allow-run-as-root)

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
raw=$out/raw.tsv
: >"$raw"
for np in "${sizes[@]}"; do
	for rep in $(seq 1 "$reps"); do
		for name in "${names[@]}"; do # interleaved: drift hits every launcher alike
			one "$name" "$np" | sed "s/^/$np\t/" | tee -a "$raw" >&2
		done
	done
done
# table: np, bench, bytes, the median per name, and gorun / the faster MPI.
{
	echo "# µs per call (median of $reps runs, each the mean over ranks), $(nproc) cores, $(date -u +%F)"
	echo
	printf '| np | call | bytes |'; for n in "${names[@]}"; do printf ' %s |' "$n"; done; echo ' gorun / faster MPI |'
	printf '|---|---|---|'; for _ in "${names[@]}"; do printf -- '---|'; done; echo -- '---|'
	awk -F'\t' '{print $1 "\t" $3 "\t" $4}' "$raw" | sort -u -k1,1n -k2,2 -k3,3n | while IFS=$'\t' read -r np b bytes; do
		printf '| %s | %s | %s |' "$np" "$b" "$bytes"
		g="" best=""
		for n in "${names[@]}"; do
			m=$(awk -F'\t' -v np="$np" -v n="$n" -v b="$b" -v s="$bytes" '$1==np && $2==n && $3==b && $4==s {print $5}' "$raw" |
				sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "-"}')
			printf ' %s |' "$m"
			case $n in
			gorun) g=$m ;;
			ompi | mpich) if [ "$m" != - ] && { [ -z "$best" ] || awk -v a="$m" -v b="$best" 'BEGIN{exit !(a<b)}'; }; then best=$m; fi ;;
			esac
		done
		if [ -n "$g" ] && [ "$g" != - ] && [ -n "$best" ]; then awk -v a="$g" -v b="$best" 'BEGIN{printf " %.2f |\n", a/b}'; else echo " - |"; fi
	done
} | tee "$out/table.md"
echo "oversub.sh: raw.tsv, table.md and stderr logs in $out" >&2

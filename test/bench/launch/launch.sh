#!/usr/bin/env bash
# test/bench/launch/launch.sh: the start-up time of a trivial job (Init, one
# Allreduce, Close: main.go and its C twin c/hello.c), gorun beside MPICH's
# mpiexec (and Open MPI's mpirun on one host), interleaved in one run.
#
# usage: test/bench/launch/launch.sh [NP ...]        (default: 16 64 128 256)
#   HOSTS  0 (default): every rank on this machine: gorun (local launcher),
#          mpiexec.mpich, mpirun.openmpi --oversubscribe.
#          N >= 1: N test-bed hosts (test/vcluster, needs root): gorun and
#          mpiexec.mpich both run on h1 and start the other hosts with ssh;
#          NP ranks are spread evenly (NP/N per host).
#   REPS   runs of each launcher per size (default 3); the table shows the
#          median and the fastest, in seconds of wall time.
#   OUT    output folder (default: a temporary one, printed)
# A run that fails or whose sum is not NP is reported, never timed.
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
hosts=${HOSTS:-0}
reps=${REPS:-3}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16 64 128 256)
out=${OUT:-$(mktemp -d /tmp/gorun-launch.XXXXXX)}
mkdir -p "$out"
bin=$out/bin
mkdir -p "$bin"
(cd "$repo" && go build -o "$bin/gorun" ./cmd/gorun && go build -o "$bin/launch" ./test/bench/launch)
have() { command -v "$1" >/dev/null; }
have mpicc.mpich && mpicc.mpich -O2 -o "$bin/hello-mpich" "$repo/test/bench/launch/c/hello.c"
[ "$hosts" = 0 ] && have mpicc.openmpi && mpicc.openmpi -O2 -o "$bin/hello-ompi" "$repo/test/bench/launch/c/hello.c"

vc="$repo/test/vcluster/vcluster.sh"
export VCLUSTER_NAME=${VCLUSTER_NAME:-lbench}
if [ "$hosts" != 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "launch.sh: HOSTS=$hosts needs root (the test bed)" >&2; exit 2; }
	bash "$vc" up "$hosts" >/dev/null
	trap 'bash "$vc" down >/dev/null' EXIT
fi
# run NAME NP CMD...: one timed run; prints the seconds or FAIL.
run() {
	local name=$1 np=$2
	shift 2
	local t0 t1 log=$out/$name-np$np.log
	t0=$(date +%s.%N)
	if ! "$@" >"$log.out" 2>&1 || ! grep -q "^ranks $np\$" "$log.out"; then
		cat "$log.out" >>"$log"
		echo FAIL
		return
	fi
	t1=$(date +%s.%N)
	cat "$log.out" >>"$log"
	echo "$t0 $t1" | awk '{printf "%.3f\n", $2-$1}'
}
where() { if [ "$hosts" = 0 ]; then "$@"; else bash "$vc" exec h1 "$@"; fi; }
hostlist() { # gorun and mpiexec host lists with NP/hosts slots each
	local np=$1 sep=$2 i list=""
	for i in $(seq 1 "$hosts"); do list+="${list:+,}h$i$sep$((np / hosts))"; done
	echo "$list"
}
cmd_for() { # NAME NP: the command line of one launcher
	local np=$2
	case $1 in
	gorun)
		if [ "$hosts" = 0 ]; then echo "$bin/gorun -np $np $bin/launch"
		else echo "$bin/gorun --launcher ssh --host $(hostlist "$np" :) -np $np $bin/launch"; fi ;;
	mpich)
		if [ "$hosts" = 0 ]; then echo "mpiexec.mpich -n $np $bin/hello-mpich"
		else echo "mpiexec.mpich -launcher ssh -hosts $(hostlist "$np" :) -n $np $bin/hello-mpich"; fi ;;
	ompi) echo "mpirun.openmpi --allow-run-as-root --oversubscribe -np $np $bin/hello-ompi" ;;
	esac
}
names=(gorun)
[ -x "$bin/hello-mpich" ] && names+=(mpich)
[ -x "$bin/hello-ompi" ] && names+=(ompi)
raw=$out/raw.tsv
: >"$raw"
for np in "${sizes[@]}"; do
	for rep in $(seq 1 "$reps"); do
		for name in "${names[@]}"; do # interleaved: drift hits every launcher alike
			s=$(run "$name" "$np" where $(cmd_for "$name" "$np"))
			printf '%s\t%s\t%s\t%s\n' "$np" "$name" "$rep" "$s" | tee -a "$raw" >&2
		done
	done
done
{
	echo "# launch time of a trivial job (Init, Allreduce, Close), seconds; hosts=$hosts, $reps runs, $(date -u +%F)"
	echo
	printf '| np |'; for n in "${names[@]}"; do printf ' %s median | %s min |' "$n" "$n"; done; printf ' gorun / fastest other (median) |\n'
	printf '|---|'; for _ in "${names[@]}"; do printf -- '---|---|'; done; printf -- '---|\n'
	for np in "${sizes[@]}"; do
		printf '| %s |' "$np"
		best=""
		for n in "${names[@]}"; do
			read -r med mn < <(awk -v np="$np" -v n="$n" '$1==np && $2==n && $4!="FAIL" {print $4}' "$raw" | sort -g |
				awk '{v[NR]=$1} END {if (NR==0) print "FAIL FAIL"; else print v[int((NR+1)/2)], v[1]}')
			printf ' %s | %s |' "$med" "$mn"
			if [ "$n" = gorun ]; then g=$med; elif [ "$med" != FAIL ]; then
				if [ -z "$best" ] || awk -v a="$med" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$med; fi
			fi
		done
		if [ -n "$best" ] && [ "$g" != FAIL ]; then awk -v a="$g" -v b="$best" 'BEGIN{printf " %.2f |\n", a/b}'; else echo " - |"; fi
	done
} | tee "$out/table.md"
echo "launch.sh: logs and raw.tsv in $out" >&2

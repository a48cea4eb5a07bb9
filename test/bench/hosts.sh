#!/usr/bin/env bash
# test/bench/hosts.sh: ping-pong latency and windowed bandwidth between two
# test-bed hosts (test/vcluster: network namespaces on a bridge, one rank on
# each), gorun beside Open MPI over TCP (and MPICH), interleaved in one run
# (issue 9; docs/performance.md "Across two test-bed hosts").
#
# usage: test/bench/hosts.sh            (as root: the test bed needs it)
#   REPS          runs of every program (default 3); the tables show the median
#                 and the range of the runs, and gorun / ompi of the medians
#   COLUMNS       what to run (default "gorun ompi mpich"; ompi and mpich are
#                 left out when not installed). Also: gorun-gmp1 (gorun with
#                 -x GOMAXPROCS=1), gorun-b (the gorun, latency and bw
#                 binaries in the folder GORUN_B, for before/after runs), and
#                 gorun-lo and ompi-lo: both ranks on h1 over its loopback TCP
#                 (gorun --transports self,tcp), for the difference the two
#                 hosts make in the same run
#   BENCHES       "lat bw" (default), or one of them
#   BW_SIZES      bandwidth sizes (default 1,8,64,1024,8192,65536,1048576,4194304)
#   PERF_TARGET_S length of each timed loop (default 0.25)
#   OUT           output folder (default: a temporary one, printed): bin/,
#                 raw.tsv, one log per run, transport.txt, env.txt, load.tsv
#                 (the load average after each run: others share the machine),
#                 tables.md
#   VCLUSTER_NAME the test bed's name (default hostbnch)
#
# Every program runs on h1 and starts its peer on h2 with ssh: gorun with its
# default settings (--host h1:1,h2:1); mpirun.openmpi with btl tcp,self on
# eth0 only (IPv4) and no binding; mpiexec.mpich (ch4:ucx) with UCX's tcp on
# eth0. The C programs are ../shared/bench/mpi/p2p.c built from a temporary
# copy (that folder is read-only and shared) whose bandwidth sizes are
# replaced by BW_SIZES and whose rows print 6 significant digits, as
# gorun's do (4 decimals of GB/s say little at 1 B). The measurements hold
# /tmp/gorun-heavy.lock, taken once: others benchmark on this machine too.
# The test bed is torn down on exit, whatever the exit.
#
# Open MPI binds each host's first rank to core 0 by default. The test-bed
# hosts share this machine's cores, so both ranks would spin on one core and
# every message would wait for the other's time slice: 4 ms flat latency.
# Hence --bind-to none (gorun and MPICH do not bind by default).
set -euo pipefail
die() { echo "hosts.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root: it brings up a 2-host test bed of network namespaces (test/vcluster)"
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
# ../shared/bench beside the main checkout (a worktree's is found through git).
shared=$repo/../shared/bench
[ -d "$shared" ] || shared=$(cd "$(git -C "$repo" rev-parse --git-common-dir)/.." && pwd)/../shared/bench
reps=${REPS:-3}
target=${PERF_TARGET_S:-0.25}
bw_sizes=${BW_SIZES:-1,8,64,1024,8192,65536,1048576,4194304}
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive number"
[[ $bw_sizes =~ ^[0-9]+(,[0-9]+)*$ ]] || die "BW_SIZES must be a comma list of byte counts"
out=${OUT:-$(mktemp -d /tmp/gorun-hosts.XXXXXX)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
case $out in /dev/shm/*) die "OUT must be seen by every host (not under /dev/shm)" ;; esac
bin=$out/bin
mkdir -p "$bin"
have() { command -v "$1" >/dev/null; }
columns=${COLUMNS:-gorun ompi mpich}

# ---- build ------------------------------------------------------------------
(cd "$repo" && for p in ./cmd/gorun ./test/bench/latency ./test/bench/bw; do go build -o "$bin/" "$p"; done)
need_c=0
for c in $columns; do case $c in ompi* | mpich) need_c=1 ;; esac; done
if [ $need_c = 1 ]; then
	[ -f "$shared/mpi/p2p.c" ] || die "$shared/mpi/p2p.c not found (the C programs)"
	tmp=$(mktemp -d)
	cp -r "$shared/mpi" "$tmp/"
	chmod -R u+w "$tmp"
	# The bandwidth sizes of p2p.c are a constant array: rewrite it in the copy.
	sed -i -E "s/^(static const size_t bw_sizes\[\] *= *)\{[^}]*\};/\1{$bw_sizes};/" "$tmp/mpi/p2p.c"
	grep -q "bw_sizes\[\] *= *{$bw_sizes};" "$tmp/mpi/p2p.c" || die "could not set the bandwidth sizes in p2p.c"
	# 6 significant digits instead of 4 decimals (0.0001 GB/s at 1 B), as gorun's -rows.
	sed -i 's/\\t%\.4f\\t/\\t%.6g\\t/' "$tmp/mpi/bench.h"
	grep -q '%.6g' "$tmp/mpi/bench.h" || die "could not set the value format in bench.h"
	cflags="-O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-stringop-overflow -std=gnu11" # the Makefile's
	if have mpicc.openmpi; then mpicc.openmpi $cflags -o "$bin/p2p-ompi" "$tmp/mpi/p2p.c"; fi
	if have mpicc.mpich; then mpicc.mpich $cflags -o "$bin/p2p-mpich" "$tmp/mpi/p2p.c"; fi
	rm -rf "$tmp"
fi
names=()
for c in $columns; do
	case $c in
	gorun | gorun-gmp1 | gorun-lo) names+=("$c") ;;
	gorun-b)
		for p in gorun latency bw; do [ -x "${GORUN_B:-}/$p" ] || die "gorun-b: GORUN_B=${GORUN_B:-} has no $p"; done
		names+=("$c") ;;
	ompi | ompi-lo) if have mpirun.openmpi && [ -x "$bin/p2p-ompi" ]; then names+=("$c"); else echo "hosts.sh: no Open MPI, its column $c is left out" >&2; fi ;;
	mpich) if have mpiexec.mpich && [ -x "$bin/p2p-mpich" ]; then names+=(mpich); else echo "hosts.sh: no MPICH, its column is left out" >&2; fi ;;
	*) die "unknown column $c" ;;
	esac
done

# ---- the test bed -----------------------------------------------------------
vc=$repo/test/vcluster/vcluster.sh
export VCLUSTER_NAME=${VCLUSTER_NAME:-hostbnch}
trap 'bash "$vc" down >/dev/null 2>&1 || true' EXIT
trap 'exit 143' TERM INT HUP
bash "$vc" up 2 >/dev/null
bash "$vc" check >/dev/null
on_h1() { bash "$vc" exec h1 "$@"; }
h2ip=$(on_h1 getent hosts h2 | awk '{print $1}')

# cmd_for NAME lat|bw: the command line of one run, started on h1.
cmd_for() {
	local g=$bin x=(--host h1:1,h2:1) prog
	case $1 in
	gorun*)
		[ "$1" = gorun-b ] && g=$GORUN_B
		[ "$1" = gorun-gmp1 ] && x+=(-x GOMAXPROCS=1)
		[ "$1" = gorun-lo ] && x=(--transports self,tcp)
		if [ "$2" = lat ]; then prog=("$g/latency" -rows); else prog=("$g/bw" -rows -sizes "$bw_sizes"); fi
		echo "$g/gorun" "${x[@]}" -np 2 -x "PERF_TARGET_S=$target" "${prog[@]}" ;;
	ompi*)
		local hosts=h1,h2 dev=eth0
		[ "$1" = ompi-lo ] && hosts=h1:2 dev=lo
		echo mpirun.openmpi --allow-run-as-root --host $hosts -np 2 --bind-to none \
			--mca plm_rsh_agent ssh --mca pml ob1 --mca btl tcp,self \
			--mca btl_tcp_if_include $dev --mca oob_tcp_if_include $dev --mca btl_tcp_disable_family 6 \
			-x "PERF_TARGET_S=$target" "$bin/p2p-ompi" "$2" ;;
	mpich)
		echo mpiexec.mpich -launcher ssh -hosts h1,h2 -iface eth0 -n 2 \
			-genv UCX_TLS self,tcp -genv UCX_NET_DEVICES eth0 -genv PERF_TARGET_S "$target" \
			"$bin/p2p-mpich" "$2" ;;
	esac
}

# ---- environment and the transport gorun chooses --------------------------
{
	echo "date_utc: $(date -u +%FT%TZ)"
	echo "gorun: $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD -- . 2>/dev/null || echo ' (modified)')"
	echo "go: $(go version | cut -d' ' -f3-)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
	echo "kernel: $(uname -sr)"
	echo "openmpi: $(dpkg-query -W -f='${Version}' openmpi-bin 2>/dev/null || echo -)"
	echo "mpich: $(dpkg-query -W -f='${Version}' mpich 2>/dev/null || echo -)"
	echo "h1 eth0: $(on_h1 ip -br addr show eth0 | awk '{print $3}'), mtu $(on_h1 ip -o link show eth0 | sed -E 's/.* mtu ([0-9]+) .*/\1/'); h2 is $h2ip"
	echo "reps: $reps, PERF_TARGET_S: $target, bandwidth sizes: $bw_sizes"
	for n in "${names[@]}"; do echo "$n: $(cmd_for "$n" lat)"; done
} >"$out/env.txt"

# The transport between the two ranks, seen from outside as in
# test/multihost_test.go: the rank on h1 holds an established TCP connection
# to h2 and maps no shared-memory segment (memfd) that the rank on h2 maps.
transport_check() {
	local log=$out/transport.log p exe r0="" r1="" i conn shared=0 ino
	# shellcheck disable=SC2046 # the command is a list of words
	timeout 300 bash "$vc" exec h1 $(cmd_for gorun lat | sed "s/PERF_TARGET_S=$target/PERF_TARGET_S=0.05/") >"$log" 2>&1 8>&- &
	local job=$!
	while kill -0 "$job" 2>/dev/null; do
		for p in $(ip netns pids "$VCLUSTER_NAME-h1") $(ip netns pids "$VCLUSTER_NAME-h2"); do
			exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
			[ "$exe" = "$bin/latency" ] || continue
			if [ "$(readlink "/proc/$p/ns/net")" = "$(readlink "/proc/$(cat /run/gorun-vcluster-$VCLUSTER_NAME/h1/anchor.pid)/ns/net")" ]; then r0=$p; else r1=$p; fi
		done
		if [ -n "$r0" ] && [ -n "$r1" ]; then
			conn=$(nsenter -t "$r0" --net ss -Htnpi state established dst "$h2ip" 2>/dev/null |
				awk -v pid="pid=$r0," 'index($0, pid) {print $3 " -> " $4; getline; print "  " $0}')
			[ -z "$conn" ] || break
		fi
		sleep 0.05
	done
	if [ -n "$r0" ] && [ -n "$r1" ]; then
		for ino in $(awk '/memfd:/ {print $5}' "/proc/$r0/maps" 2>/dev/null | sort -u); do
			grep -q "memfd:.* $ino " "/proc/$r1/maps" 2>/dev/null && shared=$((shared + 1))
		done
	fi
	wait "$job" || true
	{
		if [ -n "${conn:-}" ]; then
			echo "gorun rank 0 (h1, pid $r0) to rank 1 (h2, pid $r1): TCP $conn"
			echo "memfd segments mapped by both ranks: $shared"
		else
			echo "gorun: no TCP connection of rank 0 to $h2ip seen (log: $log)"
		fi
	} | tee "$out/transport.txt" >&2
}
# The heavy lock, held by this shell only (8>&- keeps the runs from
# inheriting it) until it exits.
exec 8>>/tmp/gorun-heavy.lock
echo "hosts.sh: waiting for /tmp/gorun-heavy.lock" >&2
flock 8
transport_check

# ---- the runs, interleaved ----------------------------------------------------
raw=$out/raw.tsv
: >"$raw"
: >"$out/load.tsv"
run() { # rep name lat|bw
	local log=$out/$2-$3-$1.log rc=0 load
	# shellcheck disable=SC2046 # the command is a list of words
	timeout 300 bash "$vc" exec h1 $(cmd_for "$2" "$3") </dev/null >"$log" 2>&1 8>&- || rc=$?
	load=$(cut -d' ' -f1 /proc/loadavg)
	[ $rc = 0 ] || echo "# FAILED rc=$rc rep=$1 $2 $3 (log $log)" >>"$raw"
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$load" >>"$out/load.tsv"
	awk -F'\t' -v r="$1" -v n="$2" 'NF == 4 && ($1 == "pingpong_lat" || $1 == "uni_bw") {print $1 "\t" $2 "\t" n "\t" r "\t" $3}' "$log" >>"$raw"
	echo "rep $1 $2 $3: rc=$rc" >&2
}
for rep in $(seq 1 "$reps"); do
	for b in ${BENCHES:-lat bw}; do
		for n in "${names[@]}"; do run "$rep" "$n" "$b"; done
	done
done

# ---- tables: median (min-max) per size, and gorun / ompi of the medians ----------
table() { # bench title scale
	awk -F'\t' -v bench="$1" -v title="$2" -v scale="$3" -v names="${names[*]}" '
	function median(s,   v, n, i, j, t) {
		n = split(s, v, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
		lo = v[1]; hi = v[n]
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	# a gorun column is compared with the MPIs between the hosts, or with ompi-lo on loopback
	function pair(g, o) { return g ~ /-lo$/ ? o == "ompi-lo" : o == "ompi" || o == "mpich" }
	function fmt(x) { return x >= 100 ? sprintf("%.0f", x) : x >= 10 ? sprintf("%.1f", x) : x >= 1 ? sprintf("%.2f", x) : sprintf("%.3g", x) }
	$1 == bench { v[$2, $3] = v[$2, $3] " " $5 * scale; if (!($2 in seen)) { seen[$2] = 1; sizes[++ns] = $2 } }
	END {
		nn = split(names, nm, " ")
		if (ns == 0) exit
		printf "%s\n\n| bytes |", title
		for (i = 1; i <= nn; i++) printf " %s |", nm[i]
		for (i = 1; i <= nn; i++) if (nm[i] ~ /^gorun/) { for (j = 1; j <= nn; j++) if (pair(nm[i], nm[j])) printf " %s / %s |", nm[i], nm[j] }
		printf "\n|---:|"
		for (i = 1; i <= nn; i++) printf "---:|"
		for (i = 1; i <= nn; i++) if (nm[i] ~ /^gorun/) { for (j = 1; j <= nn; j++) if (pair(nm[i], nm[j])) printf "---:|" }
		printf "\n"
		for (k = 1; k <= ns; k++) {
			s = sizes[k]
			printf "| %s |", s
			for (i = 1; i <= nn; i++) {
				if ((s, nm[i]) in v) { m[nm[i]] = median(v[s, nm[i]]); printf " %s (%s–%s) |", fmt(m[nm[i]]), fmt(lo), fmt(hi) }
				else { m[nm[i]] = ""; printf " – |" }
			}
			for (i = 1; i <= nn; i++) if (nm[i] ~ /^gorun/) { for (j = 1; j <= nn; j++) if (pair(nm[i], nm[j])) {
				if (m[nm[i]] != "" && m[nm[j]] > 0) printf " %.2f |", m[nm[i]] / m[nm[j]]; else printf " – |" } }
			printf "\n"
		}
	}' "$raw"
}
{
	echo "# two test-bed hosts, one rank each, TCP; $reps runs, median (min–max); $(date -u +%F)"
	echo
	echo "transport: $(head -1 "$out/transport.txt")"
	echo
	table pingpong_lat "ping-pong latency, µs (gorun / other: lower is better for gorun)" 1
	echo
	table uni_bw "bandwidth, MB/s (gorun / other: higher is better for gorun)" 1000
	echo
	awk -F'\t' 'NR == 1 || $4 < lo {lo = $4} NR == 1 || $4 > hi {hi = $4} END {printf "load average (1 min) after the runs: %s to %s on %d cores\n", lo, hi, '"$(nproc)"'}' "$out/load.tsv"
	if grep -q '^#' "$raw"; then echo; grep '^#' "$raw"; fi
} | tee "$out/tables.md"
echo "hosts.sh: commands in $out/env.txt, logs and raw.tsv in $out" >&2

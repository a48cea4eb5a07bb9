#!/usr/bin/env bash
# test/bench/launch/memory.sh: what a trivial job's ranks hold after Init
# and one Allreduce, on this machine: the ring segments (memfd mappings,
# which du -sh /dev/shm does not see) and the resident set, per rank.
#
# usage: test/bench/launch/memory.sh [NP] [EXTRA GORUN FLAGS...]   (default NP 256)
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
np=${1:-256}
shift || true
bin=$(mktemp -d /tmp/gorun-mem.XXXXXX)
trap 'rm -rf "$bin"' EXIT
(cd "$repo" && go build -o "$bin/gorun" ./cmd/gorun && go build -o "$bin/launch" ./test/bench/launch)
"$bin/gorun" "$@" -np "$np" "$bin/launch" -hold 20s >"$bin/out" 2>&1 &
job=$!
# Wait until rank 0 printed the sum: every rank is past its Allreduce.
for _ in $(seq 600); do grep -q '^ranks' "$bin/out" && break; sleep 0.2; done
sleep 1
pids=$(pgrep -f "^$bin/launch -hold" || true)
n=0 segs=0 segkb=0 rss=0 maxrss=0
for p in $pids; do
	m=$(awk '/memfd:/ {split($1, a, "-"); s += strtonum("0x" a[2]) - strtonum("0x" a[1]); c++} END {printf "%d %d", c, s / 1024}' "/proc/$p/maps" 2>/dev/null) || continue
	r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
	read -r c s <<<"$m"
	n=$((n + 1)) segs=$((segs + c)) segkb=$((segkb + s)) rss=$((rss + r))
	[ "$r" -gt "$maxrss" ] && maxrss=$r
done
wait "$job" || { cat "$bin/out" >&2; exit 1; }
[ "$n" -gt 0 ] || { echo "memory.sh: no rank found" >&2; exit 1; }
echo "np $np ($n ranks seen): memfd mappings $((segs / n)) per rank, $((segkb / n / 1024)) MiB mapped per rank, $((segkb / 1024)) MiB in all; VmRSS $((rss / n / 1024)) MiB per rank (max $((maxrss / 1024))), $((rss / 1024)) MiB in all"

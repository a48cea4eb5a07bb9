#!/usr/bin/env bash
# test/bench/plot.sh: draw the pictures of docs/performance.md
# (docs/img/*.svg) from the benchmark rows in docs/data.
#
# usage: test/bench/plot.sh [-run]
#   -run  first measure again and rewrite docs/data (about 15 minutes; run it
#         alone on the machine, or under flock /tmp/gorun-heavy.lock):
#         docs/data/osu.tsv     latency and bandwidth at np 2: gorun on shared
#                               memory and on TCP, Open MPI (vader, tcp) and
#                               MPICH, from test/bench/compare.sh
#                               (REPS, default 3; run.sh -n -t 0.1)
#         docs/data/launch.tsv  launch time of a trivial job at np 16 64 128 256,
#                               from test/bench/launch/launch.sh (HOSTS=0 REPS=1)
# Without -run it only draws: go run ./test/bench/plot -data docs/data -out docs/img
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$repo"

if [ "${1:-}" = -run ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	reps=${REPS:-3}
	cmd="REPS=$reps COLUMNS='shm tcp' TARGETS='ompi ompi-tcp mpich' test/bench/compare.sh -n -t 0.1"
	OUT=$tmp/osu REPS=$reps COLUMNS="shm tcp" TARGETS="ompi ompi-tcp mpich" test/bench/compare.sh -n -t 0.1 >&2
	{
		echo "# $cmd, $(date -u +%FT%TZ): the pingpong_lat (µs) and uni_bw rows of its raw.tsv (code $(git rev-parse --short HEAD))"
		printf 'rep\tlabel\tbench\tbytes\tvalue\tunit\n'
		awk -F'\t' '/^#/ || $3 == "pingpong_lat" || $3 == "uni_bw"' "$tmp/osu/raw.tsv"
	} >docs/data/osu.tsv.new
	mv docs/data/osu.tsv.new docs/data/osu.tsv

	cmd="HOSTS=0 REPS=1 test/bench/launch/launch.sh 16 64 128 256"
	OUT=$tmp/launch HOSTS=0 REPS=1 test/bench/launch/launch.sh 16 64 128 256 >&2
	{
		echo "# $cmd, $(date -u +%FT%TZ): its raw.tsv, wall seconds of Init, one Allreduce and Close (code $(git rev-parse --short HEAD))"
		printf 'np\tlauncher\trep\tseconds\n'
		cat "$tmp/launch/raw.tsv"
	} >docs/data/launch.tsv.new
	mv docs/data/launch.tsv.new docs/data/launch.tsv
fi
go run ./test/bench/plot -data docs/data -out docs/img

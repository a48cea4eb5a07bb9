#!/usr/bin/env bash
# test/bench/launch/memory.sh: what a trivial job's ranks hold after Init
# and one Allreduce, on this machine: the memfd mappings (the rings and
# shared segments, which du -sh /dev/shm does not see) and the resident set,
# per rank. Each rank reads its own /proc/self/{maps,status} (launch -mem)
# and rank 0 prints the sums.
#
# usage: test/bench/launch/memory.sh [NP] [EXTRA GORUN FLAGS...]   (default NP 256)
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
np=${1:-256}
shift || true
bin=$(mktemp -d /tmp/gorun-mem.XXXXXX)
trap 'rm -rf "$bin"' EXIT
(cd "$repo" && go build -o "$bin/gorun" ./cmd/gorun && go build -o "$bin/launch" ./test/bench/launch)
"$bin/gorun" "$@" -np "$np" "$bin/launch" -mem | grep '^np '

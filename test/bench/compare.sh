#!/usr/bin/env bash
# test/bench/compare.sh: run gorun's OSU-style benchmarks interleaved with
# Open MPI over loopback TCP, through ../shared/bench/run.sh, and print
# where the tables are.
#
# usage: test/bench/compare.sh [run.sh options, e.g. -n or -t 0.5]
#   REPS     repetitions (default 5), passed as run.sh -r
#   TARGETS  run.sh targets besides "extra" (default "ompi-tcp"; for example
#            "ompi ompi-tcp mpich-tcp")
#   OUT      output directory (default test/bench/results/<UTC date-time>)
#
# gorun and the five programs are built into OUT/bin (kept, so that a
# result can be traced to the binaries measured while the tree changes;
# OUT/tree.txt has a hash of the Go sources), and run.sh runs from a
# temporary copy of ../shared/bench (that folder is read-only and shared
# with other sessions; run.sh builds into it). The ranks get
# GORUN_TRANSPORTS=self,tcp, so the gorun-tcp column stays on TCP whatever
# other transports exist. configs.tsv, raw.tsv, env.txt, tables.md and
# ratios.md (the project's targets, from ./ratios) end up in OUT.
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
shared=$repo/../shared/bench
# In a git worktree elsewhere, ../shared is beside the main checkout.
[ -d "$shared" ] || shared=$(cd "$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir)/../.." && pwd)/shared/bench
[ -x "$shared/run.sh" ] || { echo "compare.sh: $shared/run.sh not found" >&2; exit 2; }
out=${OUT:-$repo/test/bench/results/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
bin=$out/bin
mkdir -p "$bin"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$shared" "$tmp/bench"
rm -rf "$tmp/bench/build" "$tmp/bench/results"
chmod -R u+w "$tmp/bench"

cd "$repo"
{
    echo "built: $(date -u +%FT%TZ)"
    echo "go sources: $(git ls-files -co --exclude-standard -- '*.go' | sort | xargs sha256sum | sha256sum | cut -c1-16)"
} >"$out/tree.txt"
go build -o "$bin/gorun" ./cmd/gorun
progs=(latency bw allreduce bcast barrier)
for p in "${progs[@]}" ratios; do
    go build -o "$bin/$p" "./test/bench/$p"
done

# COLUMNS picks the gorun columns (default "tcp tcp-gmp1"):
#   tcp       loopback TCP only, gorun's default GOMAXPROCS (max(2, cores/ranks))
#   tcp-gmp1  the same with GOMAXPROCS=1, one thread per rank when the ranks fill the cores
#   shm       gorun's default transports (shared memory between ranks of one node)
for p in "${progs[@]}"; do
    for col in ${COLUMNS:-tcp tcp-gmp1}; do
        case $col in
        tcp) printf 'gorun-tcp\tenv GORUN_TRANSPORTS=self,tcp %s -np 2 %s -rows\n' "$bin/gorun" "$bin/$p" ;;
        tcp-gmp1) printf 'gorun-tcp-gmp1\tenv GORUN_TRANSPORTS=self,tcp GOMAXPROCS=1 %s -np 2 %s -rows\n' "$bin/gorun" "$bin/$p" ;;
        shm) printf 'gorun-shm\t%s -np 2 %s -rows\n' "$bin/gorun" "$bin/$p" ;;
        *) echo "compare.sh: unknown column $col" >&2; exit 2 ;;
        esac
    done
done >"$out/configs.tsv"

# shellcheck disable=SC2086 # TARGETS is a list of words
BENCH_EXTRA=$out/configs.tsv "$tmp/bench/run.sh" -r "${REPS:-5}" -o "$out" "$@" ${TARGETS:-ompi-tcp} extra
echo
{
    for col in ${COLUMNS:-tcp tcp-gmp1}; do
        base=ompi-tcp set=tcp
        [ "$col" = shm ] && base=ompi set=shm
        "$bin/ratios" -a "gorun-$col" -b "$base" -set "$set" "$out/raw.tsv"
        echo
    done
} | tee "$out/ratios.md"
echo "compare.sh: tables: $out/tables.md; targets: $out/ratios.md; raw rows: $out/raw.tsv; commands: $out/configs.tsv" >&2

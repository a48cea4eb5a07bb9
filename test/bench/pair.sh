#!/usr/bin/env bash
# test/bench/pair.sh: paired A/B run of two builds of gorun and its benchmarks,
# to measure what a change costs on a noisy machine.
#
# usage: test/bench/pair.sh DIR_A DIR_B
#   DIR_A, DIR_B  each holds gorun and the bench programs (go build -o DIR/... ./cmd/gorun
#                 ./test/bench/barrier ...), for example built from two commits
#   REPS          pairs per benchmark (default 15)
#   TRANSPORTS    "shm tcp" (default): shm is gorun's default, tcp forces self,tcp
#   PROGS         "barrier bcast allreduce latency" (default)
#   OUT           raw rows (default pair.tsv in the current directory)
#
# Each pair runs A and B back to back, in random order, np=2, and records the first row
# of 0 or 8 bytes. The summary is, per benchmark, the medians of A and B, the median of
# the per-pair ratios B/A, and in how many pairs B was faster: a drift of the host's state
# during the run cancels out of each pair.
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,16p' "$0"; exit 2; }
a=$1 b=$2 out=${OUT:-pair.tsv}
: >"$out"
run() { # dir transport prog
    local env=()
    [ "$2" = tcp ] && env=(GORUN_TRANSPORTS=self,tcp)
    env "${env[@]}" PERF_TARGET_S="${PERF_TARGET_S:-0.25}" "$1/gorun" -np 2 "$1/$3" -rows 2>/dev/null |
        awk '($2==0||$2==8){print $1"\t"$2"\t"$3; exit}'
}
for rep in $(seq 1 "${REPS:-15}"); do
    for tr in ${TRANSPORTS:-shm tcp}; do
        for p in ${PROGS:-barrier bcast allreduce latency}; do
            first=$a second=$b
            [ $((RANDOM % 2)) = 0 ] && first=$b second=$a
            r1=$(run "$first" "$tr" "$p")
            r2=$(run "$second" "$tr" "$p")
            [ "$first" = "$a" ] && { ra=$r1; rb=$r2; } || { ra=$r2; rb=$r1; }
            printf '%s\t%s\t%s\t%s\n' "$rep" "$tr" "$ra" "$(cut -f3 <<<"$rb")" >>"$out"
        done
    done
done
# rep, transport, bench, bytes, A, B
printf '| transport | bench | bytes | A (median) | B (median) | B/A (median of pairs) | B faster in |\n|---|---|---:|---:|---:|---:|---:|\n'
cut -f2,3,4 "$out" | sort -u | while IFS=$'\t' read -r tr bench bytes; do
    awk -F'\t' -v tr="$tr" -v bench="$bench" -v bytes="$bytes" '
        function median(v, n,   i, j, t) {
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }
        $2 == tr && $3 == bench && $4 == bytes { n++; A[n] = $5; B[n] = $6; R[n] = $6 / $5; if ($6 < $5) f++ }
        END { printf "| %s | %s | %s | %.3f | %.3f | %.3f | %d/%d |\n", tr, bench, bytes, median(A, n), median(B, n), median(R, n), f, n }' "$out"
done

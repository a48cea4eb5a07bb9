# test/bench/oversub/lib.sh: the pieces oversub.sh and large.sh share,
# sourced by them (not run). The sourcing script sets repo, reps, out and
# sizes (the NPs) and defines one NAME NP, which prints the rows of one run
# as name<TAB>bench<TAB>bytes<TAB>us.

# bench_build PROG...: builds gorun and test/bench/PROG into $out/bin and
# coll.c for each MPI installed (coll-ompi, coll-mpich); sets bin, mpis (the
# MPIs built: ompi, mpich) and root (mpirun's --allow-run-as-root as root).
bench_build() {
	local p
	mkdir -p "$out/bin"
	bin=$(cd "$out/bin" && pwd)
	(cd "$repo" && go build -o "$bin/gorun" ./cmd/gorun &&
		for p in "$@"; do go build -o "$bin/$p" "./test/bench/$p"; done)
	mpis=()
	if command -v mpicc.openmpi >/dev/null; then
		mpicc.openmpi -O2 -o "$bin/coll-ompi" "$repo/test/bench/oversub/c/coll.c" && mpis+=(ompi)
	fi
	if command -v mpicc.mpich >/dev/null; then
		mpicc.mpich -O2 -o "$bin/coll-mpich" "$repo/test/bench/oversub/c/coll.c" && mpis+=(mpich)
	fi
	root=()
	if [ "$(id -u)" = 0 ]; then root=(--allow-run-as-root); fi
}

# bench_interleave NAME...: for each NP of sizes, REPS rounds of one run of
# every NAME in turn (interleaved: drift hits every launcher alike), into
# $out/raw.tsv as np<TAB>name<TAB>bench<TAB>bytes<TAB>us (and on stderr);
# sets raw.
bench_interleave() {
	local np rep name
	raw=$out/raw.tsv
	: >"$raw"
	for np in "${sizes[@]}"; do
		for rep in $(seq 1 "$reps"); do
			for name in "$@"; do
				one "$name" "$np" | sed "s/^/$np\t/" | tee -a "$raw" >&2
			done
		done
	done
}

# bench_median NP NAME BENCH BYTES: the median of NAME's values in $raw (the
# lower one of an even count), or "-" if there are none.
bench_median() {
	awk -F'\t' -v np="$1" -v n="$2" -v b="$3" -v s="$4" '$1==np && $2==n && $3==b && $4==s {print $5}' "$raw" |
		sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "-"}'
}

# bench_table NAMES RATIO...: the markdown table of $raw: np, call, bytes,
# the median of each of the NAMES (one word list), then one column per
# RATIO, LABEL=NAME:BASE[,BASE...], NAME's median over the smallest of the
# BASEs' ("-" when one side has no value).
bench_table() {
	local names=($1) r n np b bytes
	shift
	printf '| np | call | bytes |'
	for n in "${names[@]}"; do printf ' %s |' "$n"; done
	for r in "$@"; do printf ' %s |' "${r%%=*}"; done
	echo
	printf '|---|---|---|'
	for _ in "${names[@]}" "$@"; do printf -- '---|'; done
	echo
	awk -F'\t' '{print $1 "\t" $3 "\t" $4}' "$raw" | sort -u -k1,1n -k2,2 -k3,3n | while IFS=$'\t' read -r np b bytes; do
		printf '| %s | %s | %s |' "$np" "$b" "$bytes"
		for n in "${names[@]}"; do printf ' %s |' "$(bench_median "$np" "$n" "$b" "$bytes")"; done
		for r in "$@"; do
			local spec=${r#*=} g best="" m base
			g=$(bench_median "$np" "${spec%%:*}" "$b" "$bytes")
			for base in $(tr , ' ' <<<"${spec#*:}"); do
				m=$(bench_median "$np" "$base" "$b" "$bytes")
				if [ "$m" != - ] && { [ -z "$best" ] || awk -v a="$m" -v b="$best" 'BEGIN{exit !(a<b)}'; }; then best=$m; fi
			done
			if [ "$g" != - ] && [ -n "$best" ]; then awk -v a="$g" -v b="$best" 'BEGIN{printf " %.2f |", a/b}'; else printf ' - |'; fi
		done
		echo
	done
}

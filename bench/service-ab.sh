#!/usr/bin/env bash
# Interleaved A/B of two server settings, end to end: for each round, a
# fresh `peedy serve` with the A environment, then one with B, each given one
# warm-up run and then one measured `peedy-loadgen throughput` run. Prints one
# line per run: docs/s, server CPU ms/doc, load generator CPU ms/doc, server
# context switches/doc. Cheaper and less noisy than comparing two whole
# bench/service.py runs when one setting is what changed.
#
#   bench/service-ab.sh small|large [ROUNDS]
#   A="PEEDY_BLOB_MEMORY=0" B="PEEDY_BLOB_MEMORY=64M" bench/service-ab.sh large 3
#
# Environment: A, B (space-separated VAR=value lists; defaults compare
# --blob-memory off and on), COPIES (default 20 small / 24 large), PEEDY_BIN,
# PEEDY_LOADGEN (default target/release/…; build them first with
# `cargo build --release -p peedy -p peedy-loadgen`). The large manuals are
# the ones bench/engine.sh fetches into bench/data/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

kind=${1:?usage: bench/service-ab.sh small|large [ROUNDS]}
rounds=${2:-3}
A=${A:-PEEDY_BLOB_MEMORY=0}
B=${B:-PEEDY_BLOB_MEMORY=64M}
PEEDY_BIN=${PEEDY_BIN:-target/release/peedy}
PEEDY_LOADGEN=${PEEDY_LOADGEN:-target/release/peedy-loadgen}
docs=bench/data/texlive-latex-recommended-doc/usr/share/doc/texlive-doc/latex
case $kind in
large)
	files=("$docs/memoir/memman.pdf" "$docs/lwarp/lwarp.pdf")
	copies=${COPIES:-24}
	;;
small)
	mapfile -t files < <(ls ../shared/corpus/sample-files/*.pdf | grep -v '/005-')
	copies=${COPIES:-20}
	;;
*)
	echo "usage: bench/service-ab.sh small|large [ROUNDS]" >&2
	exit 2
	;;
esac
for f in "${files[@]}"; do
	[[ -f $f ]] || {
		echo "missing $f (run bench/engine.sh once to fetch the manuals)" >&2
		exit 1
	}
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One server with the settings in $1, one warm-up and one measured run.
measure() {
	local settings=$1 dir pid base line
	dir=$(mktemp -d "$work/srv.XXXX")
	# shellcheck disable=SC2086 # the settings are VAR=value words
	env $settings "$PEEDY_BIN" serve --listen 127.0.0.1:0 --data-dir "$dir/data" \
		--allow-private-callbacks >"$dir/out" 2>"$dir/log" &
	pid=$!
	for _ in $(seq 100); do
		grep -q http "$dir/out" 2>/dev/null && break
		sleep 0.1
	done
	line=$(head -1 "$dir/out")
	base=${line##*listening on }
	"$PEEDY_LOADGEN" --base "$base" --server-pid "$pid" throughput --copies 1 "${files[@]}" >/dev/null 2>&1
	"$PEEDY_LOADGEN" --base "$base" --server-pid "$pid" throughput --copies "$copies" "${files[@]}" 2>/dev/null |
		python3 -c 'import json, sys
d = json.load(sys.stdin)
s, g = d["server"], d["loadgen"]
print("%d docs  %.1f docs/s  server %.2f ms/doc  loadgen %.2f ms/doc  %.1f switches/doc"
      % (d["documents"], d["docs_per_s"], s["cpu_ms_per_doc"], g["cpu_ms_per_doc"], s["ctx_switches_per_doc"]))'
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

for _ in $(seq "$rounds"); do
	printf 'A %-28s ' "$A"
	measure "$A"
	printf 'B %-28s ' "$B"
	measure "$B"
done

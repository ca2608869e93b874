#!/usr/bin/env bash
# Engine benchmark: Peedy vs its peers, side by side, in one run (issue 2,
# DESIGN.md section 9).
#
# Run from anywhere (the repo root is found from this file):
#
#     bench/engine.sh                       # build peedy, RUNS=5
#     RUNS=1 bench/engine.sh                # quick look
#     PEEDY_BIN=target/release/peedy bench/engine.sh   # skip the cargo build
#
# Environment:
#   RUNS       timed runs per (file, tool); the median is reported   (default 5)
#   PEEDY_BIN  peedy binary; when unset, `cargo build --release -p peedy` runs
#              first and target/release/peedy is used
#   TOOLS      tools to run, space separated            (default "peedy mutool qpdf pdftk")
#   CORPUS     directory of small PDFs for the batch    (default ../shared/corpus/sample-files beside the repo;
#              the batch is skipped when it does not exist)
#   LARGE      large PDFs to use instead of the Debian manuals (space separated paths)
#
# Needs (Debian): qpdf mupdf-tools pdftk-java poppler-utils time, plus apt-get
# (to fetch the manuals) and dpkg. A tool that is not installed is reported as
# "missing"; the rest still run.
#
# What it measures, for every tool watermarking every page with "Ricky Bobby"
# (Helvetica, 50°, opacity 0.2):
#   - large real PDFs (octave.pdf, lwarp.pdf, memman.pdf from Debian's
#     octave-doc and texlive-latex-recommended-doc; downloaded into bench/data
#     with `apt-get download` + `dpkg -x` when missing): median wall time of RUNS
#     runs, peak RSS (/usr/bin/time %M), output size;
#   - the small corpus as a batch: one process per file, total wall time of the
#     batch (median of RUNS batches), failures (non-zero exit or no output),
#     peak RSS of the worst file, total output size. Files that need a user
#     password (005-libreoffice-writer-password) are left out: the peers cannot
#     open them without the password.
#   - a cheap output check, once per (file, tool): pdfinfo's page count of the
#     output against the input, and `qpdf --check` no worse than on the input.
# Every (file, tool) first gets an untimed warm-up run through
# `/usr/bin/time -f %M`, which gives the peak RSS, the output size and the
# output check; then RUNS timed runs of the bare command (wall time from bash's
# EPOCHREALTIME, no wrapper). Runs are interleaved (run 1 of every tool, then
# run 2, ...) so a busy neighbour on the machine hurts every tool alike; the
# report gives the load average and the fastest run next to the median.
#
# The tools:
#   peedy   $PEEDY_BIN stamp IN --text "Ricky Bobby" -o OUT
#   mutool  mutool run bench/stamp.js IN OUT "Ricky Bobby"   (one shared Form
#           XObject, incremental save; see the comment in stamp.js)
#   qpdf    qpdf IN --overlay STAMP.pdf --repeat=1 -- OUT
#   pdftk   pdftk IN multistamp STAMP.pdf output OUT
# STAMP.pdf is a one-page US Letter PDF written by this script
# (bench/out/stamp-letter.pdf).
#
# Output: a Markdown report on stdout and in bench/out/engine-results.md;
# outputs of the last run in bench/out/engine/<tool>/, stderr of failed runs in
# bench/out/engine/logs/. Peedy failing (or not built yet) is recorded as
# "fail"; the peers are still measured.

set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
DATA=$BENCH/data
OUT=$BENCH/out
WORK=$OUT/engine
RUNS=${RUNS:-5}
TOOLS=${TOOLS:-peedy mutool qpdf pdftk}
CORPUS=${CORPUS:-$ROOT/../shared/corpus/sample-files}
TEXT="Ricky Bobby"
STAMP_PDF=$OUT/stamp-letter.pdf
TIME=/usr/bin/time

if ! [[ $RUNS =~ ^[1-9][0-9]*$ ]]; then
	echo "RUNS must be a positive integer, got '$RUNS'" >&2
	exit 2
fi
if [[ ! -x $TIME ]]; then
	echo "$TIME not found: apt-get install time" >&2
	exit 2
fi

log() { printf '%s\n' "$*" >&2; }

# Paths given in the environment are relative to where the script was started.
CALLER_PWD=$PWD
abspath() { if [[ $1 == /* ]]; then echo "$1"; else echo "$CALLER_PWD/$1"; fi; }
[[ $CORPUS == /* ]] || CORPUS=$(abspath "$CORPUS")
if [[ -n ${PEEDY_BIN:-} && $PEEDY_BIN == */* ]]; then PEEDY_BIN=$(abspath "$PEEDY_BIN"); fi

mkdir -p "$DATA" "$WORK/logs"
cd "$ROOT"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- inputs ----

# name  debian-package
MANUALS=(
	"octave.pdf octave-doc"
	"lwarp.pdf texlive-latex-recommended-doc"
	"memman.pdf texlive-latex-recommended-doc"
)

find_manual() { # name -> path under bench/data (empty when absent)
	find "$DATA" -type f -name "$1" -path '*/usr/share/doc/*' 2>/dev/null | sort | head -n 1
}

fetch_manuals() {
	local entry name pkg deb
	for entry in "${MANUALS[@]}"; do
		read -r name pkg <<<"$entry"
		[[ -n $(find_manual "$name") ]] && continue
		log "fetching $pkg for $name into $DATA"
		if ! compgen -G "$DATA/${pkg}_*.deb" >/dev/null; then
			(cd "$DATA" && apt-get download "$pkg") || {
				log "apt-get download $pkg failed (is apt-get update done? Debian sources?)"
				continue
			}
		fi
		for deb in "$DATA/${pkg}"_*.deb; do
			dpkg -x "$deb" "$DATA/$pkg"
		done
	done
}

LARGE_FILES=()
if [[ -n ${LARGE:-} ]]; then
	read -r -a LARGE_FILES <<<"$LARGE"
	for i in "${!LARGE_FILES[@]}"; do LARGE_FILES[i]=$(abspath "${LARGE_FILES[$i]}"); done
else
	fetch_manuals
	for entry in "${MANUALS[@]}"; do
		read -r name _ <<<"$entry"
		p=$(find_manual "$name")
		if [[ -n $p ]]; then LARGE_FILES+=("$p"); else log "no $name: skipped"; fi
	done
fi

CORPUS_FILES=()
CORPUS_SKIPPED=()
if [[ -d $CORPUS ]]; then
	while IFS= read -r -d '' f; do
		# qpdf --requires-password exits 0 when a user password is needed.
		if command -v qpdf >/dev/null && qpdf --requires-password "$f" >/dev/null 2>&1; then
			CORPUS_SKIPPED+=("$(basename "$f")")
		else
			CORPUS_FILES+=("$f")
		fi
	done < <(find "$CORPUS" -maxdepth 1 -type f -name '*.pdf' -print0 | sort -z)
fi

# ------------------------------------------------------------ stamp page ----

# One US Letter page: "Ricky Bobby", Helvetica 60 pt, rotated 50° about the page
# centre, ExtGState /ca 0.2 — the same drawing as bench/stamp.js. Written by
# hand with exact xref offsets (LC_ALL=C makes ${#s} count bytes).
write_stamp_pdf() {
	# Helvetica width of "Ricky Bobby" = 5557/1000 em -> 333.42 pt; cap height 0.718 em.
	local content='q /GS0 gs 1 0 0 1 306 396 cm 0.6428 0.766 -0.766 0.6428 0 0 cm BT /F0 60 Tf 0 g -166.71 -21.54 Td (Ricky Bobby) Tj ET Q'
	local objs=(
		'<< /Type /Catalog /Pages 2 0 R >>'
		'<< /Type /Pages /Kids [3 0 R] /Count 1 >>'
		'<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F0 4 0 R >> /ExtGState << /GS0 5 0 R >> >> /Contents 6 0 R >>'
		'<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>'
		'<< /Type /ExtGState /ca 0.2 /CA 0.2 >>'
		"<< /Length ${#content} >>"$'\n'"stream"$'\n'"$content"$'\n'"endstream"
	)
	local pdf=$'%PDF-1.4\n%\xe2\xe3\xcf\xd3\n' offsets=() i xref
	for i in "${!objs[@]}"; do
		offsets+=("${#pdf}")
		pdf+="$((i + 1)) 0 obj"$'\n'"${objs[$i]}"$'\n'"endobj"$'\n'
	done
	xref=${#pdf}
	pdf+="xref"$'\n'"0 $((${#objs[@]} + 1))"$'\n'"0000000000 65535 f "$'\n'
	for i in "${offsets[@]}"; do
		pdf+=$(printf '%010d 00000 n ' "$i")$'\n'
	done
	pdf+="trailer"$'\n'"<< /Size $((${#objs[@]} + 1)) /Root 1 0 R >>"$'\n'"startxref"$'\n'"$xref"$'\n'"%%EOF"$'\n'
	printf '%s' "$pdf" >"$STAMP_PDF"
}
write_stamp_pdf

# ----------------------------------------------------------------- tools ----

PEEDY_NOTE=""
if [[ " $TOOLS " == *" peedy "* ]]; then
	if [[ -z ${PEEDY_BIN:-} ]]; then
		log "building peedy (cargo build --release -p peedy)"
		if cargo build --release -p peedy >&2; then
			PEEDY_BIN=$ROOT/target/release/peedy
		else
			PEEDY_BIN=/bin/false
			PEEDY_NOTE="cargo build --release -p peedy failed"
		fi
	fi
	PEEDY_BIN=$(command -v "$PEEDY_BIN" || echo "$PEEDY_BIN")
fi

have_tool() { # tool -> 0 when its program is installed
	case $1 in
		peedy) [[ -x $PEEDY_BIN ]] ;;
		mutool) command -v mutool >/dev/null ;;
		qpdf) command -v qpdf >/dev/null ;;
		pdftk) command -v pdftk >/dev/null ;;
		*) return 1 ;;
	esac
}

tool_cmd() { # tool in out -> CMD array
	case $1 in
		peedy) CMD=("$PEEDY_BIN" stamp "$2" --text "$TEXT" -o "$3") ;;
		mutool) CMD=(mutool run "$BENCH/stamp.js" "$2" "$3" "$TEXT") ;;
		qpdf) CMD=(qpdf "$2" --overlay "$STAMP_PDF" --repeat=1 -- "$3") ;;
		pdftk) CMD=(pdftk "$2" multistamp "$STAMP_PDF" output "$3") ;;
	esac
}

# measure tool in out [rss] -> sets M_SECS (and M_RSS_KB with "rss"); returns
# non-zero on failure: a non-zero exit (except qpdf's 3, "succeeded with
# warnings") or no output. Timed runs start the tool directly; the untimed
# warm-up run goes through /usr/bin/time to get the peak RSS, so the timings
# carry no wrapper overhead.
measure() {
	local tool=$1 in=$2 out=$3 t0 t1 rc=0 errlog
	errlog=$WORK/logs/$tool-$(basename "$in").log
	tool_cmd "$tool" "$in" "$out"
	rm -f "$out"
	if [[ ${4:-} == rss ]]; then
		$TIME -f %M -o "$WORK/rss" "${CMD[@]}" >/dev/null 2>"$errlog" || rc=$?
		M_RSS_KB=$(grep -E '^[0-9]+$' "$WORK/rss" | tail -n 1 || true)
		M_RSS_KB=${M_RSS_KB:-0}
		M_SECS=0
	else
		t0=$EPOCHREALTIME
		"${CMD[@]}" >/dev/null 2>"$errlog" || rc=$?
		t1=$EPOCHREALTIME
		M_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
	fi
	if [[ $rc -ne 0 && ! ($tool == qpdf && $rc -eq 3) ]] || [[ ! -s $out ]]; then
		echo "exit $rc" >>"$errlog"
		return 1
	fi
	rm -f "$errlog"
	return 0
}

median() { # numbers on stdin -> median
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "" } else if (NR % 2) { print v[(NR + 1) / 2] } else { printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 } }'
}

fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }
mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
pages() { pdfinfo "$1" 2>/dev/null | awk '/^Pages:/ { print $2 }' || true; }

# Cheap fidelity check of one output, done once per (file, tool) on the
# warm-up output: does poppler count as many pages as in the input, and is
# `qpdf --check` no worse than on the input (qpdf exits 0 clean, 3 warnings,
# 2 errors)? Sets F_PROBLEM to "" or a short description.
check_rank() { # pdf -> 0 clean, 1 warnings, 2 errors
	local rc=0
	qpdf --check "$1" >/dev/null 2>&1 || rc=$?
	case $rc in 0) echo 0 ;; 3) echo 1 ;; *) echo 2 ;; esac
}
declare -A IN_PAGES IN_CHECK
fidelity() { # in out
	local in=$1 out=$2 p
	F_PROBLEM=""
	[[ -n ${IN_PAGES[$in]+x} ]] || IN_PAGES[$in]=$(pages "$in")
	[[ -n ${IN_CHECK[$in]+x} ]] || IN_CHECK[$in]=$(check_rank "$in")
	p=$(pages "$out")
	if [[ ${p:-0} != "${IN_PAGES[$in]:-0}" ]]; then
		F_PROBLEM="pages ${p:-unreadable}/${IN_PAGES[$in]:-?}"
	fi
	if (($(check_rank "$out") > IN_CHECK[$in])); then
		F_PROBLEM+="${F_PROBLEM:+, }qpdf --check worse"
	fi
	return 0
}

read -r -a TOOL_LIST <<<"$TOOLS"
for tool in "${TOOL_LIST[@]}"; do mkdir -p "$WORK/$tool"; done

# Results: R_<field>[file|tool]
declare -A R_SECS R_MIN R_RSS R_OUT R_STATUS R_PROBLEM

# ----------------------------------------------------------- large files ----

# Run 0 is an untimed warm-up through /usr/bin/time (peak RSS, output size,
# does it work at all); runs 1..RUNS are timed. A tool that fails its warm-up
# is not run again on that file.
for in in "${LARGE_FILES[@]}"; do
	name=$(basename "$in")
	cat "$in" >/dev/null # page cache warm for everyone
	declare -A times=() rss=() fails=()
	for ((run = 0; run <= RUNS; run++)); do
		for tool in "${TOOL_LIST[@]}"; do
			have_tool "$tool" || continue
			[[ -n ${fails[$tool]:-} ]] && continue
			out=$WORK/$tool/$name
			if ((run == 0)); then
				if measure "$tool" "$in" "$out" rss; then
					rss[$tool]=$M_RSS_KB
					fidelity "$in" "$out"
					R_PROBLEM["$name|$tool"]=$F_PROBLEM
					log "$name $tool warm-up: ${M_RSS_KB} KB peak RSS"
				else
					fails[$tool]=1
				fi
			elif measure "$tool" "$in" "$out"; then
				times[$tool]+="$M_SECS "
				log "$name $tool run $run: ${M_SECS} s"
			else
				fails[$tool]=1
			fi
			[[ -n ${fails[$tool]:-} ]] && log "$name $tool run $run: FAILED (see $WORK/logs)"
		done
	done
	for tool in "${TOOL_LIST[@]}"; do
		key="$name|$tool"
		if ! have_tool "$tool"; then
			R_STATUS[$key]=missing
		elif [[ -n ${fails[$tool]:-} ]]; then
			R_STATUS[$key]=fail
		else
			R_STATUS[$key]=ok
			R_SECS[$key]=$(tr ' ' '\n' <<<"${times[$tool]}" | grep . | median)
			R_MIN[$key]=$(tr ' ' '\n' <<<"${times[$tool]}" | grep . | sort -g | head -n 1)
			R_RSS[$key]=${rss[$tool]:-0}
			R_OUT[$key]=$(fsize "$WORK/$tool/$name")
		fi
	done
	unset times rss fails
done

# ---------------------------------------------------------- small corpus ----

# Batch 0 is the untimed warm-up through /usr/bin/time: it gives the failures,
# the worst peak RSS and the output sizes. Batches 1..RUNS are timed; the batch
# time is the sum of the per-file wall times (failed files included).
declare -A C_SECS C_MIN C_FAILS C_FAILED C_RSS C_OUT C_BAD C_BADLIST
CORPUS_IN_BYTES=0
for f in "${CORPUS_FILES[@]}"; do CORPUS_IN_BYTES=$((CORPUS_IN_BYTES + $(fsize "$f"))); done
if ((${#CORPUS_FILES[@]} > 0)); then
	cat "${CORPUS_FILES[@]}" >/dev/null
	declare -A ctimes=()
	for ((run = 0; run <= RUNS; run++)); do
		for tool in "${TOOL_LIST[@]}"; do
			have_tool "$tool" || continue
			mkdir -p "$WORK/$tool/corpus"
			fails=0 worst=0 outbytes=0 total=0 failed_names="" bad=0 bad_list=""
			for in in "${CORPUS_FILES[@]}"; do
				out=$WORK/$tool/corpus/$(basename "$in")
				if ((run == 0)); then
					if measure "$tool" "$in" "$out" rss; then
						outbytes=$((outbytes + $(fsize "$out")))
						fidelity "$in" "$out"
						if [[ -n $F_PROBLEM ]]; then
							bad=$((bad + 1))
							bad_list+=" $(basename "$in") ($F_PROBLEM);"
						fi
					else
						fails=$((fails + 1))
						failed_names+=" $(basename "$in")"
					fi
					((M_RSS_KB > worst)) && worst=$M_RSS_KB
				else
					measure "$tool" "$in" "$out" || true
					total=$(awk -v a="$total" -v b="$M_SECS" 'BEGIN { printf "%.4f", a + b }')
				fi
			done
			if ((run == 0)); then
				C_FAILS[$tool]=$fails
				C_FAILED[$tool]=$failed_names
				C_OUT[$tool]=$outbytes
				C_RSS[$tool]=$worst
				C_BAD[$tool]=$bad
				C_BADLIST[$tool]=$bad_list
				log "corpus $tool warm-up: $fails failed${failed_names:+:$failed_names}"
			else
				ctimes[$tool]+="$total "
				log "corpus $tool run $run: ${total} s"
			fi
		done
	done
	for tool in "${TOOL_LIST[@]}"; do
		have_tool "$tool" || continue
		C_SECS[$tool]=$(tr ' ' '\n' <<<"${ctimes[$tool]}" | grep . | median)
		C_MIN[$tool]=$(tr ' ' '\n' <<<"${ctimes[$tool]}" | grep . | sort -g | head -n 1)
	done
fi

# ---------------------------------------------------------------- report ----

version() {
	case $1 in
		peedy) "$PEEDY_BIN" --version 2>/dev/null | head -n 1 || true ;;
		mutool) mutool -v 2>&1 | head -n 1 ;;
		qpdf) qpdf --version 2>/dev/null | head -n 1 ;;
		pdftk) pdftk --version 2>/dev/null | grep -m 1 -i pdftk ;;
	esac
}

report() {
	local cpu mem in name key tool base secs
	# Everything here is best effort: a report line must not abort the run.
	set +e
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	echo "# Engine benchmark results"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $(nproc) cores, $cpu, $mem RAM, Linux $(uname -r)"
	echo "- load average (1/5/15 min) at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg) (above ~1 means something else was running: the numbers are noisy)"
	echo "- timed runs per measurement: $RUNS (median wall time) after one untimed warm-up run that gives peak RSS, output size and the output check"
	for tool in "${TOOL_LIST[@]}"; do
		if have_tool "$tool"; then
			if [[ $tool == peedy ]]; then
				echo "- peedy: $PEEDY_BIN $(version peedy)${PEEDY_NOTE:+ ($PEEDY_NOTE)}"
			else
				echo "- $tool: $(version "$tool" || true)"
			fi
		else
			echo "- $tool: not found$([[ $tool == peedy ]] && echo " ($PEEDY_BIN)")"
		fi
	done
	echo
	echo "## Large files (every page stamped)"
	echo
	echo "| file (pages, MB) | tool | median s | min s | × peedy | peak RSS MB | output MB | out/in | output check |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
	for in in "${LARGE_FILES[@]}"; do
		name=$(basename "$in")
		base=${R_SECS["$name|peedy"]:-}
		for tool in "${TOOL_LIST[@]}"; do
			key="$name|$tool"
			case ${R_STATUS[$key]} in
				ok)
					secs=${R_SECS[$key]}
					printf '| %s (%s, %s) | %s | %.3f | %.3f | %s | %s | %s | %s | %s |\n' "$name" "$(pages "$in")" "$(mb "$(fsize "$in")")" \
						"$tool" "$secs" "${R_MIN[$key]}" "$([[ -n $base ]] && ratio "$secs" "$base" || echo n/a)" \
						"$(awk -v k="${R_RSS[$key]}" 'BEGIN { printf "%.1f", k / 1024 }')" \
						"$(mb "${R_OUT[$key]}")" "$(ratio "${R_OUT[$key]}" "$(fsize "$in")")" \
						"${R_PROBLEM[$key]:-ok}"
					;;
				*)
					printf '| %s (%s, %s) | %s | %s | | | | | | |\n' "$name" "$(pages "$in")" "$(mb "$(fsize "$in")")" "$tool" "${R_STATUS[$key]}"
					;;
			esac
		done
	done
	echo
	if ((${#CORPUS_FILES[@]} > 0)); then
		echo "## Small corpus as a batch (${#CORPUS_FILES[@]} files, $(mb "$CORPUS_IN_BYTES") MB, one process per file)"
		echo
		[[ ${#CORPUS_SKIPPED[@]} -gt 0 ]] && echo "Left out (needs a user password): ${CORPUS_SKIPPED[*]}" && echo
		echo "| tool | batch median s | batch min s | × peedy | failed files | bad outputs | worst peak RSS MB | output MB (ok files) | out/in |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
		base=""
		[[ ${C_FAILS[peedy]:-x} == 0 ]] && base=${C_SECS[peedy]:-}
		for tool in "${TOOL_LIST[@]}"; do
			if ! have_tool "$tool"; then
				echo "| $tool | missing | | | | | | | |"
				continue
			fi
			printf '| %s | %.3f | %.3f | %s | %s | %s | %s | %s | %s |\n' "$tool" "${C_SECS[$tool]}" "${C_MIN[$tool]}" \
				"$([[ -n $base ]] && ratio "${C_SECS[$tool]}" "$base" || echo n/a)" \
				"${C_FAILS[$tool]}/${#CORPUS_FILES[@]}" "${C_BAD[$tool]}" \
				"$(awk -v k="${C_RSS[$tool]:-0}" 'BEGIN { printf "%.1f", k / 1024 }')" \
				"$(mb "${C_OUT[$tool]}")" \
				"$([[ ${C_FAILS[$tool]} == 0 ]] && ratio "${C_OUT[$tool]}" "$CORPUS_IN_BYTES" || echo n/a)"
		done
		echo
		for tool in "${TOOL_LIST[@]}"; do
			[[ -n ${C_FAILED[$tool]:-} ]] && echo "- $tool failed on:${C_FAILED[$tool]}"
			[[ -n ${C_BADLIST[$tool]:-} ]] && echo "- $tool bad outputs:${C_BADLIST[$tool]%;}"
		done
		echo
		echo "The batch time includes failed files. A failure is a non-zero exit (qpdf's exit 3, \"succeeded with warnings\", is not one) or no output. A bad output is one that exited fine but where pdfinfo counts a different number of pages than in the input, or \`qpdf --check\` is worse than on the input (clean < warnings < errors)."
	else
		echo "Small corpus: skipped ($CORPUS not found)."
	fi
	echo
	echo "× peedy = tool median / peedy median (above 1: peedy is faster). min = fastest run, the least disturbed by other work on the machine. out/in = output size / input size. Output check: page count (pdfinfo) and \`qpdf --check\` of the output against the input."
}

report | tee "$OUT/engine-results.md"

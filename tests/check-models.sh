#!/bin/sh
# check-models.sh: every Promela model under tests/models checked with spin,
# and every known-bug mutant of it shown to fail; TAP for tap-driver.sh.
#
# Convention: each tests/models/*.pml is a model. Lines of the model file of
# the form below (one per line, anywhere in the file) say how to check it:
#   /* SPIN: <options for spin -a, e.g. -DN=3> */                 (optional)
#   /* PAN_CC: <options for compiling pan.c, e.g. -DSAFETY -DNFAIR=3> */
#                                       (optional; several lines are joined)
#   /* PAN: <options for ./pan, e.g. -a -f -m200000> */
#                            (optional; default one run with -m100000)
#   /* MUTANT: NAME <one-line description of the known bug it reproduces> */
#                                                          (zero or more)
# Each PAN line is one run of pan (for example a safety run and a separate
# liveness run with -a -f); a PAN line without -m gets -m100000. For a run
# with -a or -l (acceptance or non-progress cycles) -DSAFETY is dropped from
# the PAN_CC options, since a safety-only pan cannot search for cycles.
#
# Checks, one TAP line each:
#   - every PAN run of the model as is must end with "errors: 0" and a
#     complete search (no "max search depth too small", no "search not
#     completed", no out-of-memory);
#   - every MUTANT is checked again with spin -a -DNAME and the same options;
#     some PAN run of it must report errors > 0 (a counterexample trail).
# On a failure of the real model the start of the trail replayed by spin is
# printed as TAP comments. Set MODELS to a space-separated list of model
# names (e.g. MODELS='mutex cond') to check only those.
# Skips (1..0) without spin or a C compiler; pan is built and run in a
# temporary directory, so a read-only srcdir (VPATH, distcheck) is fine.
#
# The checks run as independent jobs, MODEL_JOBS at a time (default: the
# number of online CPUs): the script hands each job back to itself as
# `check-models.sh --job DIR` through xargs -P, and prints the jobs' TAP
# lines in order once all have ended. A real model's pan is compiled with
# -O2 (its search is long); a mutant's with -O0 (it stops at its first
# counterexample, so the compile is most of its cost: 1.5 s against 7 s).
srcdir=${srcdir:-.}
cc=${CC:-cc}

# directive FILE KEY: the text of every /* KEY: text */ line, one a line.
directive() {
	sed -n "s|^[[:space:]]*/\\*[[:space:]]*$2:[[:space:]]*\\(.*[^[:space:]]\\)[[:space:]]*\\*/[[:space:]]*\$|\\1|p" "$1"
}

# pan_runs FILE: the pan options of each run, one run a line.
pan_runs() {
	directive "$1" PAN | grep . || echo -m100000
}

selected() {
	[ -z "$MODELS" ] && return 0
	for m in $MODELS; do
		[ "$m" = "$1" ] && return 0
	done
	return 1
}

# run FILE DEFINE PANOPTS: build pan for FILE (with -DDEFINE unless empty,
# optimized by $opt) in $work/run and run it with PANOPTS; pan's output goes
# to $work/out. Fails (status 1) when spin or the compiler fails.
run() {
	file=$1 define=${2:+-D$2} panopts=$3
	spinopts=$(directive "$file" SPIN | tr '\n' ' ')
	ccopts=$(directive "$file" PAN_CC | tr '\n' ' ')
	case " $panopts " in
	*" -a "* | *" -l "*)
		ccopts=$(echo " $ccopts " | sed 's/ -DSAFETY / /g') ;;
	esac
	case " $panopts " in
	*" -m"*) ;;
	*) panopts="$panopts -m100000" ;;
	esac
	rm -rf "$work/run" && mkdir "$work/run" || return 1
	(cd "$work/run" &&
		spin $spinopts $define -a "$file" >"$work/out" 2>&1 &&
		$cc $opt -w $ccopts -o pan pan.c >>"$work/out" 2>&1 &&
		./pan $panopts >"$work/out" 2>&1) </dev/null
	[ -x "$work/run/pan" ]
}

# errors: the error count of the last run, empty if pan never reported one.
errors() {
	sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$work/out" | tail -n 1
}

# incomplete: whether the last run's search was cut short.
incomplete() {
	grep -qi -e 'max search depth too small' -e 'search not completed' \
		-e 'out of memory' -e 'memory limit' "$work/out"
}

# comment: the last run's output (and trail, if any) as TAP comments.
comment() {
	sed -n '1,40s/^/# /p' "$work/out"
	for trail in "$work/run"/*.trail; do
		[ -f "$trail" ] || continue
		echo "# trail (spin -t -p -g -l):"
		(cd "$work/run" && spin $spinopts $define -t -p -g -l \
			-k "$trail" "$file" 2>&1) | sed -n '1,150s/^/# /p'
	done
}

# check_model N FILE PANOPTS: one run of the real model, one TAP line.
check_model() {
	n=$1 file=$2 opts=$3 name=$(basename "$2" .pml)
	start=$(date +%s)
	if ! run "$file" "" "$opts"; then
		echo "not ok $n - $name: pan $opts: spin or cc failed"
		comment
		return
	fi
	e=$(errors)
	secs=$(($(date +%s) - start))
	states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' \
		"$work/out" | head -n 1)
	if [ "$e" = 0 ] && ! incomplete; then
		echo "ok $n - $name: pan $opts: errors: 0 ($states states, ${secs}s)"
	else
		echo "not ok $n - $name: pan $opts: errors: ${e:-?}$(incomplete && echo ', search incomplete')"
		comment
	fi
}

# check_mutant N FILE MUTANT WHAT: the mutant must fail some run; one TAP line.
check_mutant() {
	n=$1 file=$2 mutant=$3 what=$4 name=$(basename "$2" .pml)
	found= failed=
	pan_runs "$file" >"$work/runs"
	while read -r opts; do
		if ! run "$file" "$mutant" "$opts"; then
			failed=1
			break
		fi
		e=$(errors)
		if [ -n "$e" ] && [ "$e" != 0 ]; then
			found="pan $opts: errors: $e"
			break
		fi
	done <"$work/runs"
	if [ -n "$found" ]; then
		echo "ok $n - $name -D$mutant fails as it must ($found): $what"
	elif [ -n "$failed" ]; then
		echo "not ok $n - $name -D$mutant: spin or cc failed: $what"
		comment
	else
		echo "not ok $n - $name -D$mutant: no counterexample (the model cannot see: $what)"
	fi
}

# A job (see the top): DIR holds `spec`, lines N, FILE, then `model OPTS` or
# `mutant NAME WHAT`; the job works in DIR and writes its TAP line to
# DIR/tap. Only the main run below starts jobs, and a job starts none.
if [ "${1:-}" = --job ]; then
	if [ -z "${CHECK_MODELS_MAIN:-}" ] || [ $# -ne 2 ]; then
		echo "check-models.sh: --job is for the script's own main run" >&2
		exit 2
	fi
	work=$PWD/$2
	{ read -r n; read -r file; read -r kind rest; } <"$work/spec"
	case $kind in
	model) opt=-O2 ;;
	*) opt=-O0 ;;
	esac
	case $kind in
	model) check_model "$n" "$file" "$rest" ;;
	mutant) check_mutant "$n" "$file" "${rest%% *}" "${rest#* }" ;;
	esac >"$work/tap.part" 2>&1
	mv "$work/tap.part" "$work/tap"
	exit 0
fi
if [ -n "${CHECK_MODELS_MAIN:-}" ]; then
	echo "check-models.sh: not run again from one of its own jobs" >&2
	exit 2
fi

if [ -n "${SYNC_SKIP_MODELS:-}" ]; then
	echo "1..0 # SKIP SYNC_SKIP_MODELS is set (.ci/run checks the models once)"
	exit 0
fi
models=$(cd "$srcdir/tests/models" 2>/dev/null && pwd) || {
	echo "1..0 # SKIP no tests/models under $srcdir"
	exit 0
}
if ! command -v spin >/dev/null 2>&1; then
	echo '1..0 # SKIP spin not installed'
	exit 0
fi
if ! command -v "${cc%% *}" >/dev/null 2>&1; then
	echo "1..0 # SKIP no C compiler ($cc)"
	exit 0
fi
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
jobs=${MODEL_JOBS:-$(nproc 2>/dev/null || echo 1)}

work=$(mktemp -d "${TMPDIR:-/tmp}/check-models.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM
mkdir "$work/j" || exit 1

# add_job KIND REST: job N+1 for $file. Real models' runs come first, so
# that the long searches start early and the short mutants fill the end.
n=0
add_job() {
	n=$((n + 1))
	dir=$work/j/$(printf '%04d' "$n")
	mkdir "$dir" && printf '%s\n%s\n%s\n' "$n" "$file" "$*" >"$dir/spec"
}
for file in "$models"/*.pml; do
	[ -f "$file" ] && selected "$(basename "$file" .pml)" || continue
	pan_runs "$file" >"$work/runs"
	while read -r opts; do add_job model "$opts"; done <"$work/runs"
done
for file in "$models"/*.pml; do
	[ -f "$file" ] && selected "$(basename "$file" .pml)" || continue
	directive "$file" MUTANT >"$work/mutants"
	while read -r mutant what; do add_job mutant "$mutant $what"; done \
		<"$work/mutants"
done
echo "1..$n"

CHECK_MODELS_MAIN=$$
export CHECK_MODELS_MAIN
(cd "$work/j" && ls | xargs -n 1 -P "$jobs" sh "$self" --job)
for dir in "$work"/j/*; do
	[ -d "$dir" ] || continue
	if [ -f "$dir/tap" ]; then
		cat "$dir/tap"
	else
		echo "not ok $(sed -n 1p "$dir/spec") - job $(basename "$dir") ended without a result: $(sed -n 3p "$dir/spec")"
	fi
done

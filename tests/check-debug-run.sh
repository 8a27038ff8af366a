#!/bin/sh
# Runs the project's own stress tests and examples with the lock-order and
# misuse checker on (SYNC_CHECK=deadlock,abort) and the examples also with
# the profiler on (SYNC_PROFILE=1): each must exit 0 with no SYNC_CHECK
# report, so that the checker makes no false report on correct programs of
# every primitive. Speaks TAP; run by `make check` from the build directory.
set -u
programs=$(for f in tests/stress/* examples/*; do
	case $f in *.* | */deadlock_check) continue ;; esac # reports on purpose
	[ -f "$f" ] && [ -x "$f" ] && echo "$f"
done)
[ -n "$programs" ] || { echo "1..0 # SKIP no programs built"; exit 0; }
set -- $programs
examples=$(for p in "$@"; do case $p in examples/*) echo "$p" ;; esac; done | wc -l)
echo "1..$(($# + examples))"
n=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# run NAME ENV...: the program with the environment given, checked
run() {
	prog=$1
	shift
	n=$((n + 1))
	env "$@" timeout 300 "./$prog" >"$out" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && ! grep -q 'libsync: SYNC_CHECK' "$out"; then
		echo "ok $n - $prog with $*: exit 0, no report"
	else
		echo "not ok $n - $prog with $*: exit $rc"
		grep -A12 'libsync: SYNC_CHECK' "$out" | sed 's/^/# /' | head -60
		tail -5 "$out" | sed 's/^/# /'
	fi
}

for prog in "$@"; do
	run "$prog" SYNC_CHECK=deadlock,abort
	case $prog in
	examples/*) run "$prog" SYNC_PROFILE=1 ;;
	esac
done

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

# A program still running after this many seconds has hung (they take
# seconds); its threads' stacks are shown, then it is killed.
limit=${CHECK_DEBUG_RUN_LIMIT:-300}
stacks=$(mktemp)
trap 'rm -f "$out" "$stacks"' EXIT

# tree PID: PID and its descendants (a stress test re-runs itself in a
# child for its second mode)
tree() {
	echo "$1"
	for c in $(pgrep -P "$1" 2>/dev/null); do tree "$c"; done
}

# hung PID: every thread's stack of PID's tree into $stacks (where gdb is
# installed), then the tree is killed
hung() {
	for p in $(tree "$1"); do
		echo "process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
		command -v gdb >/dev/null &&
			timeout 60 gdb -p "$p" -batch -ex 'thread apply all bt' 2>&1 |
			grep -E '^(Thread|#)'
	done >"$stacks"
	kill -KILL $(tree "$1") 2>/dev/null
}

# run NAME ENV...: the program with the environment given, checked
run() {
	prog=$1
	shift
	n=$((n + 1))
	: >"$stacks"
	env "$@" "./$prog" >"$out" 2>&1 &
	pid=$!
	# the watchdog: its output away from ours, so that the sleep it leaves
	# behind when killed holds no pipe of the test driver open
	(sleep "$limit" && kill -0 "$pid" 2>/dev/null && hung "$pid") \
		>/dev/null 2>&1 &
	watchdog=$!
	wait "$pid"
	rc=$?
	kill "$watchdog" 2>/dev/null # its sleep, if left, ends by itself
	if [ -s "$stacks" ]; then
		echo "not ok $n - $prog with $*: still running after $limit s, killed"
		tail -5 "$out" | sed 's/^/# /'
		sed 's/^/# /' "$stacks" | head -300
	elif [ $rc -eq 0 ] && ! grep -q 'libsync: SYNC_CHECK' "$out"; then
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

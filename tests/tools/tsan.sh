#!/bin/sh
# tsan.sh COMPILER: the programs of tests/tools compiled with
# -fsanitize=thread by COMPILER (gcc or clang; $TOOLS_GCC, $TOOLS_CLANG
# override the command) and linked with the ordinary built libsync.so, as a
# user links it. The correct programs must run with no report (exit code 0,
# no "WARNING: ThreadSanitizer" on stderr); the racy ones must be reported
# (exit code 66, and a data race or a lock-order inversion in the report);
# a pool of 100,000 queued tasks must run in seconds. TAP on stdout. Skips
# without the compiler or its TSan runtime, or when the library is itself
# built with a sanitizer.
. "${srcdir:-.}/tests/tools/common.sh"

case $1 in
gcc) cc=${TOOLS_GCC:-gcc} ;;
clang) cc=${TOOLS_CLANG:-clang} ;;
*) echo "usage: tsan.sh gcc|clang" >&2; exit 2 ;;
esac
set -- $cc
command -v "$1" >/dev/null 2>&1 || skip_all "no $cc"
why=$(library_unusable)
[ -n "$why" ] && skip_all "$why"
echo 'int main(void) { return 0; }' >"$work/empty.c"
if ! $cc -fsanitize=thread -o "$work/empty" "$work/empty.c" >/dev/null 2>&1 ||
	! "$work/empty" >/dev/null 2>&1; then
	skip_all "$cc has no working ThreadSanitizer runtime"
fi

TSAN_OPTIONS='halt_on_error=1 exitcode=66 second_deadlock_stack=1'
LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export TSAN_OPTIONS LD_LIBRARY_PATH

# Scale of the correct programs: enough hand-offs to meet every path.
scale=4000
clean="mutex_bank cond_buffer sem_pool spinlocks:spin spinlocks:ticket
spinlocks:mcs rwlock_config epoch_config queue_pool queue_bounded_pool
map_wordcount map_counters robust_recovery"
# NAME:KIND[:ARG]: KIND is the report's title ('_' for ' ').
reported="race_unprotected:data_race lock_order:lock-order-inversion
lock_order:lock-order-inversion:pthread"
echo "1..$(($(echo $clean $reported | wc -w) + 1))"

# run NAME ARG...: runs the program built as NAME; its stderr in $work/err.
run() {
	prog=$1
	shift
	timed "$work/$prog" "$@" >"$work/out" 2>"$work/err"
}

compiled() {
	[ -x "$work/$1" ] || build "$cc" "$1" "$1" -fsanitize=thread
}

for entry in $clean; do
	name=${entry%%:*} arg=
	[ "$name" != "$entry" ] && arg=${entry#*:}
	what="$1 -fsanitize=thread: $name${arg:+ $arg}: no report"
	if ! compiled "$name"; then
		not_ok "$what: does not compile" "$work/$name.cc"
	elif ! run "$name" $scale $arg; then
		not_ok "$what (exit code $rc)" "$work/err"
	elif grep -q 'WARNING: ThreadSanitizer' "$work/err"; then
		not_ok "$what (exit code 0, but a report)" "$work/err"
	else
		ok "$what (${msecs} ms)"
	fi
done

for entry in $reported; do
	name=${entry%%:*} rest=${entry#*:}
	kind=$(echo "${rest%%:*}" | tr _ ' ') arg=
	[ "${rest%%:*}" != "$rest" ] && arg=${rest#*:}
	what="$1 -fsanitize=thread: $name${arg:+ $arg}: reported as $kind"
	if ! compiled "$name"; then
		not_ok "$what: does not compile" "$work/$name.cc"
		continue
	fi
	run "$name" 100 $arg
	# the race must be the one on *unguarded, not a false one
	if [ "$rc" = 66 ] && grep -q "WARNING: ThreadSanitizer: $kind" "$work/err" &&
		{ [ "$name" != race_unprotected ] || grep -q unguarded_alloc "$work/err"; }; then
		ok "$what"
	else
		not_ok "$what (exit code $rc)" "$work/err"
	fi
done

# The pool of 100,000 tasks, each malloc'ed by the producer and freed by a
# worker: seconds if TSan sees the hand-offs (minutes when it reports).
limit=60
what="$1 -fsanitize=thread: queue_pool 100000 tasks within ${limit} s"
if ! compiled queue_pool; then
	not_ok "$what: does not compile" "$work/queue_pool.cc"
elif command -v timeout >/dev/null 2>&1 &&
	! timed timeout "$limit" "$work/queue_pool" 100000 >"$work/out" 2>"$work/err"; then
	not_ok "$what (exit code $rc after $secs s)" "$work/err"
elif [ "$secs" -ge "$limit" ]; then
	not_ok "$what (took $secs s)" "$work/err"
else
	ok "$what (took ${msecs} ms)"
fi

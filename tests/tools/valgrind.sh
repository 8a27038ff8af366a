#!/bin/sh
# valgrind.sh TOOL: the programs of tests/tools, compiled by $CC without a
# sanitizer and linked with the built libsync.so, run small under
# `valgrind --tool=TOOL` (helgrind or drd) with --error-exitcode=66: the
# correct programs must draw no report, the racy one must; under DRD, a
# pool of 4,000 queued tasks must run within a minute. TAP on stdout.
# Skips without valgrind, when the library was configured without
# Valgrind's client-request headers (it cannot tell the tool anything), or
# when it is built with a sanitizer.
. "${srcdir:-.}/tests/tools/common.sh"

tool=$1
case $tool in
helgrind | drd) ;;
*) echo "usage: valgrind.sh helgrind|drd" >&2; exit 2 ;;
esac
cc=${CC:-cc}
command -v valgrind >/dev/null 2>&1 || skip_all "valgrind not installed"
why=$(library_unusable)
[ -n "$why" ] && skip_all "$why"
case " $SYNC_TOOLS_DEFS " in
*HAVE_VALGRIND_HELGRIND_H* | *HAVE_VALGRIND_DRD_H*) ;;
*) skip_all "library configured without valgrind/helgrind.h or drd.h" ;;
esac

LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH

# A few hundred hand-offs each: Valgrind runs one thread at a time.
scale=200
clean="mutex_bank cond_buffer sem_pool spinlocks:spin spinlocks:ticket
spinlocks:mcs rwlock_config epoch_config queue_pool queue_bounded_pool
map_wordcount map_counters robust_recovery"
# DRD also runs a pool of a few thousand queued tasks within a time limit
# (below).
timing=0
[ "$tool" = drd ] && timing=1
echo "1..$(($(echo $clean | wc -w) + 1 + timing))"

# vg NAME ARG...: runs NAME under the tool; its output in $work/err.
vg() {
	prog=$1
	shift
	timed valgrind --tool="$tool" -q --error-exitcode=66 \
		"$work/$prog" "$@" >"$work/out" 2>"$work/err"
}

compiled() {
	[ -x "$work/$1" ] || build "$cc" "$1" "$1"
}

for entry in $clean race_unprotected; do
	name=${entry%%:*} arg=
	[ "$name" != "$entry" ] && arg=${entry#*:}
	case $name in
	race_*) want=66 what="$tool: $name: reported" ;;
	*) want=0 what="$tool: $name${arg:+ $arg}: no report" ;;
	esac
	if ! compiled "$name"; then
		not_ok "$what: does not compile" "$work/$name.cc"
		continue
	fi
	vg "$name" $scale $arg
	if [ "$rc" = "$want" ] &&
		{ [ "$want" = 0 ] || grep -q unguarded_alloc "$work/err"; }; then
		ok "$what (${msecs} ms)"
	else
		not_ok "$what (exit code $rc)" "$work/err"
	fi
done

# DRD: 4,000 tasks of queue_pool within 60 s. DRD keeps the segment
# of each release it may still have to order, and each new segment costs
# a walk over them all: when the queue released on each slot, a producer
# running ahead of its workers left thousands apart and the run grew
# quadratic (25 s at 2,000 tasks, 154 s at 4,000; now about a second).
# The kill after 10 s more: DRD deep in such a walk took SIGTERM only at
# its end.
[ "$timing" = 1 ] || exit 0
limit=60
tasks=4000
what="$tool: queue_pool $tasks tasks within ${limit} s"
if ! compiled queue_pool; then
	not_ok "$what: does not compile" "$work/queue_pool.cc"
elif command -v timeout >/dev/null 2>&1 &&
	! timed timeout -k 10 "$limit" valgrind --tool="$tool" -q --error-exitcode=66 \
		"$work/queue_pool" $tasks >"$work/out" 2>"$work/err"; then
	not_ok "$what (exit code $rc after $secs s)" "$work/err"
elif [ "$secs" -ge "$limit" ]; then
	not_ok "$what (took $secs s)" "$work/err"
else
	ok "$what (took ${msecs} ms)"
fi

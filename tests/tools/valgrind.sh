#!/bin/sh
# valgrind.sh TOOL: the programs of tests/tools, compiled by $CC without a
# sanitizer and linked with the built libsync.so, run small under
# `valgrind --tool=TOOL` (helgrind or drd) with --error-exitcode=66: the
# correct programs must draw no report, the racy one must. TAP on stdout.
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
spinlocks:mcs rwlock_config epoch_config queue_pool map_wordcount robust_recovery"
echo "1..$(($(echo $clean | wc -w) + 1))"

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

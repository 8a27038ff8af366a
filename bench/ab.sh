#!/bin/sh
# ab.sh A B [RUNS] [WORKLOAD:THREADS ...]: A/B of two builds of libsync on
# this machine. A and B are install prefixes (make install DESTDIR= or
# --prefix) or build trees (with include/ from their source and .libs/):
# bench/ab_loops.c is compiled against each one's headers and run against
# its libsync.so (LD_LIBRARY_PATH), the runs of A and B alternating, RUNS
# of each (default 7); prints the median ns/op of each side and B/A.
# One-thread workloads are pinned to CPU 0 (taskset) when it exists.
# Example: ./configure --prefix=/tmp/old && make install at the old commit,
# the same to /tmp/new, then: sh bench/ab.sh /tmp/old /tmp/new 9 mutex:1
set -u
[ $# -ge 2 ] || { echo "usage: ab.sh A B [RUNS] [WORKLOAD:THREADS ...]" >&2; exit 2; }
a=$1 b=$2
shift 2
runs=7
case ${1:-} in [0-9]*) runs=$1; shift ;; esac
[ $# -gt 0 ] || set -- mutex:1 mutex:2 mutex:8 spinlock:1 spinlock:2 ticket:1 \
	rwlock-read:1 rwlock-read:2 rwlock-write:1 sem:1 queue:1 map-get:1 epoch:1
src=$(cd "$(dirname "$0")" && pwd)/ab_loops.c
work=$(mktemp -d "${TMPDIR:-/tmp}/ab.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# libdir PREFIX, incdir PREFIX: an install prefix, or a build tree.
libdir() { for d in "$1/lib" "$1/lib64" "$1/.libs"; do [ -d "$d" ] && { echo "$d"; return; }; done; }
incdir() { for d in "$1/include" "$(sed -n 's/^abs_top_srcdir = //p' "$1/Makefile" 2>/dev/null)/include"; do
	[ -f "$d/sync.h" ] && { echo "$d"; return; }; done; }

for side in a b; do
	eval p=\$$side
	inc=$(incdir "$p") lib=$(libdir "$p")
	[ -n "$inc" ] && [ -n "$lib" ] || { echo "ab.sh: no include/sync.h or lib in $p" >&2; exit 1; }
	${CC:-cc} -std=c11 -O2 -pthread -I"$inc" -o "$work/$side" "$src" -L"$lib" -lsync || exit 1
	echo "$lib" >"$work/$side.lib"
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
pin=
command -v taskset >/dev/null 2>&1 && pin="taskset -c 0"

printf '%-16s %8s %10s %10s %7s\n' workload threads "A ns/op" "B ns/op" B/A
for w in "$@"; do
	name=${w%%:*} threads=${w#*:}
	run_pin=
	[ "$threads" = 1 ] && run_pin=$pin
	: >"$work/ra"
	: >"$work/rb"
	i=0
	while [ $i -lt "$runs" ]; do
		for side in a b; do
			LD_LIBRARY_PATH=$(cat "$work/$side.lib") $run_pin "$work/$side" "$name" "$threads" \
				>>"$work/r$side" || exit 1
		done
		i=$((i + 1))
	done
	ma=$(median <"$work/ra") mb=$(median <"$work/rb")
	awk -v n="$name" -v t="$threads" -v a="$ma" -v b="$mb" \
		'BEGIN { printf "%-16s %8s %10s %10s %7.2f\n", n, t, a, b, b / a }'
done

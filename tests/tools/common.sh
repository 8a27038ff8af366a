# common.sh: sourced by tsan.sh and valgrind.sh. Finds the built library,
# decides whether the tool checks can run against it, and compiles and runs
# the programs of tests/tools in a temporary directory (srcdir may be
# read-only). Environment (from local.mk): srcdir, SYNC_TOOLS_LIBDIR (the
# directory of the built libsync.so), CFLAGS and SYNC_TOOLS_DEFS (how the
# library was configured).
srcdir=${srcdir:-.}
tools_src=$srcdir/tests/tools
libdir=${SYNC_TOOLS_LIBDIR:-$(pwd)/.libs}

work=$(mktemp -d "${TMPDIR:-/tmp}/sync-tools.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM

skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

# Why the library cannot be checked as users link it, or nothing: it must
# exist and must not be instrumented itself (the ASan/UBSan build of CI).
library_unusable() {
	if [ ! -f "$libdir/libsync.so" ]; then
		echo "no libsync.so in $libdir"
	elif case " $CFLAGS " in *-fsanitize=*) true ;; *) false ;; esac; then
		echo "library built with a sanitizer (CFLAGS: $CFLAGS)"
	elif command -v nm >/dev/null 2>&1 &&
		nm -D "$libdir/libsync.so" 2>/dev/null |
		grep -Eq ' U (__asan_|__ubsan_|__msan_|__tsan_func_entry|__tsan_read)'; then
		echo "library built with a sanitizer (nm -D)"
	fi
}

# comment FILE: its first lines as TAP comments.
comment() {
	sed -n '1,60s/^/# /p' "$1"
}

# timed CMD...: runs CMD, leaving its wall time in whole seconds in $secs
# and its milliseconds in $msecs.
timed() {
	t0=$(date +%s%N)
	"$@"
	rc=$?
	msecs=$((($(date +%s%N) - t0) / 1000000))
	secs=$((msecs / 1000))
	return $rc
}

# build CC NAME OUT FLAGS...: compiles tests/tools/NAME.c into $work/OUT
# against the headers of srcdir and the built library; the compiler's
# output goes to $work/OUT.cc.
build() {
	cc=$1 name=$2 out=$3
	shift 3
	# shellcheck disable=SC2086
	$cc -std=gnu11 -O1 -g -pthread "$@" -I"$srcdir/include" -I"$tools_src" \
		-o "$work/$out" "$tools_src/$name.c" -L"$libdir" -lsync \
		>"$work/$out.cc" 2>&1
}

n=0
# ok / not_ok DESCRIPTION [FILE]: one TAP line; FILE is shown on failure.
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	echo "not ok $n - $1"
	[ -n "$2" ] && comment "$2"
}

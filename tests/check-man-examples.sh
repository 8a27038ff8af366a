#!/bin/sh
# Compiles (as the pages say: plain cc, default dialect) and runs every
# complete program (one with main) in the EXAMPLES of the section-3 pages
# against the library just built, so that the examples a reader copies stay
# correct. Speaks TAP; run by `make check`.
set -u
srcdir=${srcdir:-.}
cc=${CC:-cc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -e ./.libs/libsync.so ]; then
	echo "1..0 # SKIP no shared library"
	exit 0
fi

# Writes the literal blocks of a page's EXAMPLES section that define main()
# to $work/<page>.<n>.c, with mdoc escapes undone.
extract() {
	awk -v out="$work/$(basename "$1")" '
		/^\.Sh / { in_examples = ($0 == ".Sh EXAMPLES") }
		in_examples && /^\.Bd -literal/ { n++; block = ""; inside = 1; next }
		inside && /^\.Ed/ {
			inside = 0
			if (block ~ /\nmain\(/) { f = out "." n ".c"; printf "%s", block > f; close(f) }
			next
		}
		inside {
			line = $0
			gsub(/\\e/, "\\", line); gsub(/\\-/, "-", line)
			gsub(/\\\(aq/, "\047", line); gsub(/\\&/, "", line)
			block = block "\n" line
		}
	' "$1"
}

for page in "$srcdir"/man/man3/*.3; do
	[ -L "$page" ] || extract "$page"
done

set -- "$work"/*.c
[ -e "$1" ] || { echo "1..0 # SKIP no example programs"; exit 0; }
echo "1..$#"
n=0
for src in "$@"; do
	n=$((n + 1))
	name=$(basename "$src" .c)
	# shellcheck disable=SC2086 # CFLAGS and LDFLAGS are word lists
	if ! $cc -Wall -Wextra -Werror ${CFLAGS:-} -I"$srcdir/include" \
		-o "$work/$name" "$src" ${LDFLAGS:-} -L./.libs -lsync -pthread \
		>"$work/$name.log" 2>&1; then
		echo "not ok $n - example $name compiles"
		sed 's/^/# /' "$work/$name.log"
	elif ! LD_LIBRARY_PATH=./.libs timeout 60 "$work/$name" >"$work/$name.out" 2>&1; then
		echo "not ok $n - example $name runs and exits 0"
		sed 's/^/# /' "$work/$name.out"
	else
		echo "ok $n - example $name compiles and runs"
	fi
done

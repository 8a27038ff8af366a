#!/bin/sh
# Runs every example program that make check built under examples/ (each
# must exit 0 within 60 s), so that the examples a reader copies stay
# correct. Speaks TAP; run by `make check` from the build directory.
set -u
set -- $(for f in examples/*; do
	case $f in *.*) continue ;; esac
	[ -f "$f" ] && [ -x "$f" ] && echo "$f"
done)
[ $# -gt 0 ] || { echo "1..0 # SKIP no example programs built"; exit 0; }
echo "1..$#"
n=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ex in "$@"; do
	n=$((n + 1))
	if timeout 60 "./$ex" >"$out" 2>&1; then
		echo "ok $n - $ex runs and exits 0"
	else
		echo "not ok $n - $ex runs and exits 0"
	fi
	sed 's/^/# /' "$out"
done

#!/bin/sh
# check-models.sh: the Promela models under tests/models, checked with spin.
#   epoch_retire.pml: with the retire stamp's fence (-DRETIRE_FENCE, as
#   src/epoch.c does) no reader uses a reclaimed object; without it spin
#   finds the use after free (so the model can fail).
# Prints TAP for automake's tap-driver.sh; skips without spin or a C compiler.
srcdir=${srcdir:-.}
models=$srcdir/tests/models
cc=${CC:-cc}

if ! command -v spin >/dev/null 2>&1; then
	echo '1..0 # SKIP spin not installed'
	exit 0
fi

work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT

# errors MODEL [SPIN-OPTION]: how many errors spin's exhaustive search finds.
errors() {
	(cd "$work" && rm -f pan* ./*.trail &&
		spin -a $2 "$1" >/dev/null 2>&1 &&
		$cc -O2 -w -o pan pan.c >/dev/null 2>&1 &&
		./pan -m100000 2>&1 | sed -n 's/.*errors: \([0-9]*\).*/\1/p')
}

echo 1..2
model=$(cd "$models" && pwd)/epoch_retire.pml
e=$(errors "$model" -DRETIRE_FENCE)
if [ "$e" = 0 ]; then
	echo "ok 1 - epoch_retire: with the fence before the stamp, no reader uses a reclaimed object"
else
	echo "not ok 1 - epoch_retire: with the fence, spin found ${e:-?} errors"
fi
e=$(errors "$model")
if [ -n "$e" ] && [ "$e" != 0 ]; then
	echo "ok 2 - epoch_retire: without the fence, spin finds the use after free"
else
	echo "not ok 2 - epoch_retire: without the fence, spin found ${e:-?} errors (the model cannot fail)"
fi

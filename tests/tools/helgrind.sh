#!/bin/sh
# Helgrind on the programs of tests/tools: see valgrind.sh.
exec "${SHELL:-/bin/sh}" "${srcdir:-.}/tests/tools/valgrind.sh" helgrind

#!/bin/sh
# ThreadSanitizer with gcc on the programs of tests/tools: see tsan.sh.
exec "${SHELL:-/bin/sh}" "${srcdir:-.}/tests/tools/tsan.sh" gcc

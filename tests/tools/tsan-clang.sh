#!/bin/sh
# ThreadSanitizer with clang on the programs of tests/tools: see tsan.sh.
exec "${SHELL:-/bin/sh}" "${srcdir:-.}/tests/tools/tsan.sh" clang

#!/bin/sh
# check-man.sh: the manual matches the shared library, and lints clean.
#  (a) every exported sync_* symbol (sync_impl_* excepted) has a page
#      man/man3/<symbol>.3 whose NAME section lists it;
#  (b) the library exports no symbol outside the sync_ prefix;
#  (c) every page under man/ passes `mandoc -T lint -W warning`.
# Prints TAP for automake's tap-driver.sh. Run from the build directory with
# $srcdir set to the source directory, as `make check` does.

srcdir=${srcdir:-.}
mandir=$srcdir/man
lib=./.libs/libsync.so

if [ ! -f "$lib" ]; then
	echo '1..0 # SKIP no shared library'
	exit 0
fi

n=0

# ok COND DESCRIPTION [DIAGNOSTICS]: one TAP line, diagnostics as comments.
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		if [ -n "$3" ]; then
			printf '%s\n' "$3" | sed 's/^/# /'
		fi
	fi
}

# lines TEXT: how many non-empty lines TEXT has.
lines() {
	if [ -z "$1" ]; then
		echo 0
	else
		printf '%s\n' "$1" | wc -l | tr -d ' '
	fi
}

# so_target PAGE: for a link page ".so man3/x.3", the path of x.3; else empty.
so_target() {
	sed -n '1s/^\.so[[:space:]][[:space:]]*//p' "$1" | sed 's/[[:space:]]*$//'
}

# names PAGE SYMBOL: whether PAGE (a link page is followed) lists SYMBOL
# with .Nm in its NAME section.
names() {
	names_page=$1
	names_target=$(so_target "$names_page")
	if [ -n "$names_target" ]; then
		names_page=$mandir/$names_target
	fi
	[ -f "$names_page" ] || return 1
	sed -n '/^\.Sh NAME/,/^\.Sh /p' "$names_page" |
		grep -Eq "^\\.Nm $2( ,)?\$"
}

# Defined dynamic symbols of the kinds a program can link to: code (T),
# data (D, B, R), weak (W, V) and indirect functions (i). Version nodes from
# the version script (A) are not symbols. "name@@VERSION" becomes "name".
nm_out=$(nm -D --defined-only "$lib" 2>&1)
nm_rc=$?
syms=
if [ "$nm_rc" -eq 0 ]; then
	syms=$(printf '%s\n' "$nm_out" |
		awk 'NF >= 3 && $2 ~ /^[TDBRWVi]$/ { sub(/@.*/, "", $3); print $3 }' |
		sort -u)
fi
public=$(printf '%s\n' "$syms" | grep '^sync_' | grep -v '^sync_impl_')
foreign=$(printf '%s\n' "$syms" | grep -v '^sync_' | grep -v '^$')

pages=$(find "$mandir" -type f -name '*.[1-9]' | sort)

if command -v mandoc >/dev/null 2>&1; then
	have_mandoc=yes
else
	have_mandoc=no
fi

echo "1..$(($(lines "$public") + 1 + $(lines "$pages")))"

# (a) one line per documented-API symbol.
while IFS= read -r sym; do
	[ -n "$sym" ] || continue
	page=$mandir/man3/$sym.3
	if [ ! -f "$page" ]; then
		ok 1 "man page for $sym" "missing: $page"
	elif ! names "$page" "$sym"; then
		ok 1 "man page for $sym" "$page does not list $sym in NAME (.Nm)"
	else
		ok 0 "man page for $sym"
	fi
done <<EOF
$public
EOF

# (b) one line for the whole export list.
if [ "$nm_rc" -ne 0 ]; then
	ok 1 "libsync.so exports only sync_ symbols" "nm -D failed: $nm_out"
elif [ -n "$foreign" ]; then
	ok 1 "libsync.so exports only sync_ symbols" "exported: $foreign"
else
	ok 0 "libsync.so exports only sync_ symbols"
fi

# (c) one line per page. mandoc always warns that .so is fragile, and
# resolves the .so path against its working directory, so a link page is
# checked by linting its target from $mandir instead: the link must be that
# one .so line, and the target an ordinary page that lists the link's name.
while IFS= read -r page; do
	[ -n "$page" ] || continue
	rel=${page#"$mandir"/}
	if [ "$have_mandoc" = no ]; then
		n=$((n + 1))
		echo "ok $n - mandoc lint $rel # SKIP mandoc missing"
		continue
	fi
	target=$(so_target "$page")
	if [ -z "$target" ]; then
		out=$(mandoc -T lint -W warning "$page" 2>&1)
		rc=$?
		[ "$rc" -eq 0 ] && [ -z "$out" ]
		ok $? "mandoc lint $rel" "$out"
		continue
	fi
	name=$(basename "$page")
	name=${name%.*}
	if [ "$(wc -l <"$page" | tr -d ' ')" -ne 1 ]; then
		ok 1 "mandoc lint $rel (.so $target)" "a link page must be one .so line"
	elif [ ! -f "$mandir/$target" ] || [ -n "$(so_target "$mandir/$target")" ]; then
		ok 1 "mandoc lint $rel (.so $target)" "no page $target to link to"
	elif ! names "$page" "$name"; then
		ok 1 "mandoc lint $rel (.so $target)" "$target does not list $name in NAME (.Nm)"
	else
		out=$(cd "$mandir" && mandoc -T lint -W warning "$target" 2>&1)
		rc=$?
		[ "$rc" -eq 0 ] && [ -z "$out" ]
		ok $? "mandoc lint $rel (.so $target)" "$out"
	fi
done <<EOF
$pages
EOF

exit 0

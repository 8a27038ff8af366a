#!/bin/sh
# check-man.sh: the manual matches the shared library, and lints clean.
#  (a) every exported sync_* symbol (sync_impl_* excepted) has a page
#      man/man3/<symbol>.3 whose NAME section lists it;
#  (b) the library exports no symbol outside the sync_ prefix;
#  (c) every page under man/ passes `mandoc -T lint -W warning`; the other
#      names of a family page are symbolic links to it (mandoc warns that
#      .so links are fragile), each of which must resolve to a page that
#      lists the link's name.
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

# names PAGE SYMBOL: whether PAGE (a link is followed) lists SYMBOL with .Nm
# in its NAME section.
names() {
	[ -f "$1" ] || return 1
	sed -n '/^\.Sh NAME/,/^\.Sh /p' "$1" | grep -Eq "^\\.Nm $2( ,)?\$"
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
links=$(find "$mandir" -type l -name '*.[1-9]' | sort)

if command -v mandoc >/dev/null 2>&1; then
	have_mandoc=yes
else
	have_mandoc=no
fi

echo "1..$(($(lines "$public") + 1 + $(lines "$pages") + $(lines "$links")))"

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

# (c) one line per page, and one per link.
while IFS= read -r page; do
	[ -n "$page" ] || continue
	rel=${page#"$mandir"/}
	if [ "$have_mandoc" = no ]; then
		n=$((n + 1))
		echo "ok $n - mandoc lint $rel # SKIP mandoc missing"
		continue
	fi
	out=$(mandoc -T lint -W warning "$page" 2>&1)
	rc=$?
	[ "$rc" -eq 0 ] && [ -z "$out" ]
	ok $? "mandoc lint $rel" "$out"
done <<EOF
$pages
EOF

while IFS= read -r link; do
	[ -n "$link" ] || continue
	rel=${link#"$mandir"/}
	name=$(basename "$link")
	name=${name%.*}
	names "$link" "$name"
	ok $? "link $rel -> $(readlink "$link") lists $name" \
		"the target is missing or does not list $name in NAME (.Nm)"
done <<EOF
$links
EOF

exit 0

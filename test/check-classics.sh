#!/bin/sh
# The classic samples (examples/classics, doc/classics.md): each must exit 0
# with nothing on stderr and print exactly test/fixtures/classics/NAME.out.
# `make check` runs this with top_builddir, top_srcdir and CLASSICS (the
# names) set.

builddir=${top_builddir:-.}
srcdir=${top_srcdir:-.}
tmp=${TMPDIR:-/tmp}/check-classics.$$
trap 'rm -f "$tmp.out" "$tmp.err" "$tmp.diff"' EXIT INT TERM

rc=0
for name in $CLASSICS; do
    prog="$builddir/examples/classics/$name"
    expected="$srcdir/test/fixtures/classics/$name.out"
    if [ ! -x "$prog" ] || [ ! -f "$expected" ]; then
        echo "check-classics: FAIL: $name: $prog or $expected is missing"
        rc=1
        continue
    fi
    "$prog" >"$tmp.out" 2>"$tmp.err"
    status=$?
    ok=yes
    if [ "$status" -ne 0 ]; then
        echo "check-classics: FAIL: $name exited with $status"
        ok=no
    fi
    if [ -s "$tmp.err" ]; then
        echo "check-classics: FAIL: $name wrote to stderr:"
        sed 's/^/  /' "$tmp.err"
        ok=no
    fi
    if ! diff -u "$expected" "$tmp.out" >"$tmp.diff"; then
        echo "check-classics: FAIL: $name's output differs from $expected:"
        cat "$tmp.diff"
        ok=no
    fi
    [ "$ok" = yes ] && echo "check-classics: $name: as expected, exit 0" ||
        rc=1
done
[ -n "$CLASSICS" ] || { echo "check-classics: CLASSICS is empty"; rc=1; }
exit "$rc"

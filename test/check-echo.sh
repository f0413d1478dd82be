#!/bin/sh
# One TCP echo server in four styles:
# examples/echo/{callbacks,promises,task,async}
# each serve the demonstration client of examples/echo/client.c on
# 127.0.0.1 and must exit 0 with nothing on stderr, printing exactly
# test/fixtures/echo.out -- so the four servers stay the same server.
# `make check` runs this with top_builddir and top_srcdir set.

builddir=${top_builddir:-.}
srcdir=${top_srcdir:-.}
expected="$srcdir/test/fixtures/echo.out"
tmp=${TMPDIR:-/tmp}/check-echo.$$
trap 'rm -f "$tmp.out" "$tmp.err"' EXIT INT TERM

rc=0
for style in callbacks promises task async; do
    prog="$builddir/examples/echo/$style"
    if [ ! -x "$prog" ]; then
        echo "check-echo: FAIL: $prog not built"
        rc=1
        continue
    fi
    "$prog" >"$tmp.out" 2>"$tmp.err"
    status=$?
    ok=yes
    if [ "$status" -ne 0 ]; then
        echo "check-echo: FAIL: $style exited with $status"
        ok=no
    fi
    if [ -s "$tmp.err" ]; then
        echo "check-echo: FAIL: $style wrote to stderr:"
        sed 's/^/  /' "$tmp.err"
        ok=no
    fi
    if ! diff -u "$expected" "$tmp.out" >"$tmp.err"; then
        echo "check-echo: FAIL: $style printed something else:"
        sed 's/^/  /' "$tmp.err"
        ok=no
    fi
    [ "$ok" = yes ] && echo "check-echo: $style: ok" || rc=1
done
exit $rc

#!/bin/sh
# One job, four styles: examples/styles/{callbacks,promises,task,async} must
# each exit 0 with nothing on stderr and print exactly the trace kept in
# test/fixtures/styles.out -- so the four versions stay the same job, and the
# await layer keeps the ordering the other two styles give. The same for
# examples/group (a task group with a limit and a deadline) and
# test/fixtures/group.out, and for examples/echo (a TCP echo server, each
# serving the demonstration client of examples/echo/client.c on 127.0.0.1)
# and test/fixtures/echo.out; and for examples/fetch (the essay's
# fetch(url).then(res => res.json()).then(process).catch(log) against a
# server each starts itself) and test/fixtures/fetch.out. `make check` runs
# this with top_builddir and top_srcdir set (the programs are noinst programs
# of the build tree; the libtool wrappers run them).

builddir=${top_builddir:-.}
srcdir=${top_srcdir:-.}
tmp=${TMPDIR:-/tmp}/check-styles.$$
trap 'rm -f "$tmp.out" "$tmp.err"' EXIT INT TERM

rc=0
for job in styles group echo fetch; do
expected="$srcdir/test/fixtures/$job.out"
if [ ! -f "$expected" ]; then
    echo "check-styles: $expected is missing" >&2
    exit 1
fi
for style in callbacks promises task async; do
    prog="$builddir/examples/$job/$style"
    if [ ! -x "$prog" ]; then
        echo "check-styles: FAIL: $prog not built"
        rc=1
        continue
    fi
    "$prog" >"$tmp.out" 2>"$tmp.err"
    status=$?
    ok=yes
    if [ "$status" -ne 0 ]; then
        echo "check-styles: FAIL: $style exited with $status"
        ok=no
    fi
    if [ -s "$tmp.err" ]; then
        echo "check-styles: FAIL: $style wrote to stderr:"
        sed 's/^/  /' "$tmp.err"
        ok=no
    fi
    if ! diff -u "$expected" "$tmp.out" >"$tmp.err"; then
        echo "check-styles: FAIL: $style's trace differs from $expected:"
        cat "$tmp.err"
        ok=no
    fi
    if [ "$ok" = yes ]; then
        echo "check-styles: $job/$style: the trace, exit 0"
    else
        rc=1
    fi
done
done
[ "$rc" -eq 0 ] && echo "check-styles: the four styles print the same trace"
exit "$rc"

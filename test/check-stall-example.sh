#!/bin/sh
# The examples' debug mode turns the stall detector on: examples/stall/stall
# blocks its loop three times (a timer callback, a promise handler, a task
# step); with --debug each is reported on stderr with its kind, and its end;
# without, nothing is. Built with libdw (config.h says HAVE_LIBDW), each of
# the example's static callbacks is named with its file:line. `make check`
# runs this with top_builddir set.

builddir=${top_builddir:-.}
prog="$builddir/examples/stall/stall"
tmp=${TMPDIR:-/tmp}/check-stall-example.$$
trap 'rm -f "$tmp.out" "$tmp.err"' EXIT INT TERM

if [ ! -x "$prog" ]; then
    echo "check-stall-example: FAIL: $prog not built"
    exit 1
fi

rc=0
fail() {
    echo "check-stall-example: FAIL: $*"
    rc=1
}

if ! "$prog" --debug >"$tmp.out" 2>"$tmp.err"; then
    fail "stall --debug exited with $?"
fi
for want in \
    'pact: stall #1: the loop thread has been in a timer callback for' \
    'pact: stall #1: the timer callback [a-z_]*( )?returned after' \
    'pact: stall #2: the loop thread has been in a promise reaction for' \
    'pact: stall #2: the promise reaction [a-z_]*( )?returned after' \
    'pact: stall #3: the loop thread has been in a task step for' \
    "pact: stall:   task 'indexer', spawned at " \
    "pact: stall #3: the task step of task 'indexer' returned after"; do
    grep -qE "$want" "$tmp.err" || fail "no line matching: $want"
done
# with libdw, the static functions by name and file:line (where each is
# defined: the line of its name in stall.c)
if grep -q '^#define HAVE_LIBDW 1' "$builddir/config.h" 2>/dev/null; then
    src=${top_srcdir:-.}/examples/stall/stall.c
    for fn in on_report_due:callback on_resolved:handler indexer:body; do
        name=${fn%%:*}
        role=${fn#*:}
        line=$(grep -n "^static [a-z_ *]*\b$name(" "$src" | cut -d: -f1)
        want="pact: stall:   $role: $name at [^ ]*examples/stall/stall.c:$line "
        grep -qE "$want" "$tmp.err" || fail "no line matching: $want"
    done
    for ended in 'the timer callback on_report_due returned' \
        'the promise reaction on_resolved returned'; do
        grep -qF "$ended" "$tmp.err" || fail "no line with: $ended"
    done
    grep -q 'no symbol for it' "$tmp.err" &&
        fail "a callback left unnamed though built with libdw"
fi
[ $rc -eq 0 ] || sed 's/^/  /' "$tmp.err"

if ! "$prog" >"$tmp.out" 2>"$tmp.err"; then
    fail "stall exited with $?"
fi
if [ -s "$tmp.err" ]; then
    fail "stall without --debug wrote to stderr:"
    sed 's/^/  /' "$tmp.err"
fi
exit $rc

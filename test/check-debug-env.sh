#!/bin/sh
# PACT_DEBUG=1 in the environment prints each misuse's function and reason
# in any build, as --enable-debug builds always do; without it (in a build
# that is not a debug one) misuse is silent. test/debug_env makes the same
# misuse twice: a refresh of a timer that never was, PACT_ENOENT.
set -u
child=${top_builddir:-.}/test/debug_env
[ -x "$child" ] || { echo "check-debug-env: no $child" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
want='pact: pact_timer_refresh(): not a pending timer (ENOENT)'

# with PACT_DEBUG=1: both misuses named, function and reason
PACT_DEBUG=1 "$child" >"$tmp/out" 2>"$tmp/err" ||
    { echo "check-debug-env: the child failed (PACT_DEBUG=1)" >&2; fail=1; }
n=$(grep -cxF "$want" "$tmp/err")
if [ "$n" -ne 2 ]; then
    echo "check-debug-env: PACT_DEBUG=1: want twice on stderr: $want; got:" >&2
    cat "$tmp/err" >&2
    fail=1
fi

# without it, or with PACT_DEBUG=0: silent, unless this is a debug build
for v in unset 0; do
    if [ "$v" = unset ]; then
        (unset PACT_DEBUG; "$child") >"$tmp/out" 2>"$tmp/err"
    else
        PACT_DEBUG=$v "$child" >"$tmp/out" 2>"$tmp/err"
    fi || { echo "check-debug-env: the child failed (PACT_DEBUG $v)" >&2; fail=1; }
    if grep -q debug-build "$tmp/out"; then
        continue
    fi
    if [ -s "$tmp/err" ]; then
        echo "check-debug-env: PACT_DEBUG $v: want a silent stderr; got:" >&2
        cat "$tmp/err" >&2
        fail=1
    fi
done
exit $fail

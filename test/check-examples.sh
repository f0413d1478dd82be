#!/bin/sh
# The examples that no other check runs: each must exit 0 with nothing on
# stderr, and where a job is written in several styles, every style must
# print the same as the first (chain, config, offload); the tour and the
# hello programs, whose lines differ by design, must print their first
# line. `make check` runs this with top_builddir set.

builddir=${top_builddir:-.}
tmp=${TMPDIR:-/tmp}/check-examples.$$
trap 'rm -f "$tmp".*' EXIT INT TERM

rc=0
fail() {
    echo "check-examples: FAIL: $*"
    rc=1
}

# run NAME: its stdout in $tmp.NAME; 0 if it exited 0 with stderr empty
run() {
    prog="$builddir/examples/$1"
    out="$tmp.$(echo "$1" | tr / _)"
    if [ ! -x "$prog" ]; then
        fail "$prog not built"
        return 1
    fi
    "$prog" >"$out" 2>"$tmp.err"
    status=$?
    if [ "$status" -ne 0 ]; then
        fail "$1 exited with $status"
        return 1
    fi
    if [ -s "$tmp.err" ]; then
        fail "$1 wrote to stderr:"
        sed 's/^/  /' "$tmp.err"
        return 1
    fi
    if [ ! -s "$out" ]; then
        fail "$1 printed nothing"
        return 1
    fi
    return 0
}

for job in "chain/callbacks chain/promises" \
    "config/callbacks config/tasks" \
    "offload/callbacks offload/promises offload/await"; do
    set -- $job
    first=$1
    run "$first" || continue
    for style in "$@"; do
        [ "$style" = "$first" ] && continue
        run "$style" || continue
        a="$tmp.$(echo "$first" | tr / _)"
        b="$tmp.$(echo "$style" | tr / _)"
        if ! diff -u "$a" "$b" >"$tmp.diff"; then
            fail "$style prints other than $first:"
            cat "$tmp.diff"
        fi
    done
done

# name, and what its first line must match
while read -r name want; do
    run "$name" || continue
    head -n 1 "$tmp.$(echo "$name" | tr / _)" | grep -qE "$want" ||
        fail "$name's first line is not /$want/"
done <<'LIST'
tour/tour ^pact [0-9.]+: a tour of the event loop$
hello/callback ^callback: hello after 10 ms
hello/promise ^promise: hello after 10 ms$
hello/task ^task: \{"task": "hello after 10 ms"\}$
LIST

[ $rc -eq 0 ] && echo "check-examples: every example ran, exit 0"
exit $rc

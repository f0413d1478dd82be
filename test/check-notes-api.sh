#!/bin/sh
# examples/notes-api (doc/notes-api.md) driven over real HTTP on 127.0.0.1
# by test/notes_check: options and a busy port; CRUD, bad JSON and an
# oversized body; 8 concurrent writers x 50 notes; a deadline; clients that
# disconnect mid-request; SIGTERM with a request past the drain deadline;
# writes in flight across a graceful restart (SIGTERM) and across kill -9,
# after which every acknowledged write must be there, and every note whole.
# Every server stopped by SIGTERM must exit 0 with no sanitizer report.
#
# `make check` runs it with top_builddir and HAVE_SQLITE3 set; skipped (77)
# when configure did not find SQLite. NOTES_VALGRIND, if set, is the
# valgrind command to run every server under (`make valgrind` sets it).
# No timing is asserted: each wait is for an event (a line, a count in
# /health), bounded only against hanging.

builddir=${top_builddir:-.}
if [ "${HAVE_SQLITE3:-no}" != yes ]; then
    echo "check-notes-api: SKIP: configure did not find SQLite (libsqlite3-dev)"
    exit 77
fi
server="$builddir/examples/notes-api/notes-api"
check="$builddir/test/notes_check"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-notes-api.XXXXXX") || exit 1
PIDS=
cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "check-notes-api: FAIL: $*"
    for f in "$tmp"/*.err; do
        [ -s "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }
    done
    exit 1
}
say() { echo "check-notes-api: $*"; }

# launch ARGS...: exec the server (under NOTES_VALGRIND if set); run it in
# a subshell, so that $! is the server's (or valgrind's) own pid.
launch() {
    if [ -n "$NOTES_VALGRIND" ]; then
        # shellcheck disable=SC2086
        exec "$builddir/libtool" --mode=execute $NOTES_VALGRIND "$server" "$@"
    fi
    exec "$server" "$@"
}

# start NAME ARGS...: a server in the background; sets PID and PORT.
start() {
    name=$1
    shift
    : >"$tmp/$name.out"
    (launch --port 0 "$@") >"$tmp/$name.out" 2>"$tmp/$name.err" &
    PID=$!
    PIDS="$PIDS $PID"
    i=0
    until grep -q '^listening on ' "$tmp/$name.out"; do
        kill -0 "$PID" 2>/dev/null || fail "$name exited before listening"
        i=$((i + 1))
        [ "$i" -lt 6000 ] || fail "$name never printed its port"
        sleep 0.1
    done
    PORT=$(sed -n 's/^listening on //p' "$tmp/$name.out")
}

# stop NAME PID: SIGTERM; it must exit 0, drained, with no sanitizer report.
stop() {
    kill -TERM "$2"
    wait "$2"
    rc=$?
    [ "$rc" -eq 0 ] || fail "$1 exited with $rc after SIGTERM"
    grep -q '^notes-api: drained' "$tmp/$1.err" || fail "$1 did not say it drained"
    if grep -E -q 'Sanitizer|runtime error|definitely lost|Invalid (read|write)' \
        "$tmp/$1.err"; then
        fail "$1: a sanitizer or valgrind report"
    fi
}

# run WHAT...: notes_check; fails the test on its failure.
run() {
    "$check" "$@" || fail "notes_check $1"
}

# Options: a usage message and exit 2.
for bad in "--port 70000" "--port x" "--bogus" "--deadline-ms 0" "extra"; do
    # shellcheck disable=SC2086
    (launch $bad) >/dev/null 2>"$tmp/usage.err"
    rc=$?
    [ "$rc" -eq 2 ] && grep -q '^usage: notes-api' "$tmp/usage.err" ||
        fail "notes-api $bad: exit $rc, expected 2 and a usage message"
done
rm -f "$tmp/usage.err"
say "bad options: a usage message, exit 2"

db="$tmp/notes.db"
start main --db "$db" --max-body 4096
main=$PID
run crud "$PORT" 4096
run writers "$PORT" 8 50

# A busy port: a clear message, exit 1, and no database made.
(launch --port "$PORT" --db "$tmp/busy.db") >/dev/null 2>"$tmp/busy.txt"
rc=$?
[ "$rc" -eq 1 ] || fail "a second server on port $PORT: exit $rc, expected 1"
grep -q "port $PORT on 127.0.0.1 is in use" "$tmp/busy.txt" ||
    fail "a busy port: no clear message: $(cat "$tmp/busy.txt")"
# the message alone: not pact's uncaught-error handler, no leak report
[ "$(wc -l <"$tmp/busy.txt")" -eq 1 ] ||
    fail "a busy port: more than the message: $(cat "$tmp/busy.txt")"
[ ! -e "$tmp/busy.db" ] || fail "a busy port left a database behind"
say "a busy port: a clear message, exit 1"

# hammer_then SIGNAL: 4 writers until the server goes, SIGNAL once 20
# notes are acknowledged; then restart and verify every acknowledged one.
hammer_then() {
    log="$tmp/acked-$1.log"
    : >"$log"
    "$check" hammer "$PORT" 4 "$log" >"$tmp/hammer.txt" 2>&1 &
    hammer=$!
    i=0
    while [ "$(wc -l <"$log")" -lt 20 ]; do
        kill -0 "$hammer" 2>/dev/null || fail "the writers stopped early: $(cat "$tmp/hammer.txt")"
        i=$((i + 1))
        [ "$i" -lt 6000 ] || fail "the writers never got 20 notes in"
        sleep 0.1
    done
    if [ "$1" = TERM ]; then
        stop main "$main"
    else
        kill -9 "$main"
        wait "$main" 2>/dev/null
    fi
    wait "$hammer" || fail "the writers: $(cat "$tmp/hammer.txt")"
    say "SIG$1 during writes: $(cat "$tmp/hammer.txt")"
    start main --db "$db" --max-body 4096
    main=$PID
    run verify "$PORT" "$log"
}
hammer_then TERM
hammer_then KILL
if command -v sqlite3 >/dev/null 2>&1; then
    [ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] ||
        fail "the database after kill -9 is not intact"
fi
stop main "$main"
say "every acknowledged write survived SIGTERM and kill -9; no note half-written"

# A deadline: a query slower than it is cut, 504.
start slow --db "$db" --query-delay-ms 600000 --deadline-ms 300
run deadline "$PORT"
stop slow "$PID"

# Clients that go mid-request: their queries are cancelled.
start gone --db "$db" --query-delay-ms 600000 --deadline-ms 600000 \
    --drain-ms 200
run disconnect "$PORT"
# SIGTERM with a request that outlasts the drain deadline: cut, exit 0.
"$check" status "$PORT" GET /notes >"$tmp/cut.txt" &
client=$!
run waitfor "$PORT" in_flight 1
stop gone "$PID"
wait "$client"
grep -q 'cut' "$tmp/gone.err" || fail "the drain did not say it cut a request"
say "SIGTERM: the request past the drain deadline was cut ($(cat "$tmp/cut.txt")), exit 0"
say "all passed"
exit 0

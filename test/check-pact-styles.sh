#!/bin/sh
# pact-styles (examples/pact-styles), by shape, never by speed:
#  - a short run prints both tables: a row per style in each daemon's table
#    with ratios to libevent, the three places of the blocking table, the
#    stall detector's report naming the user's handler (hash_inline), and
#    the task dump with the stuck request's task in it; it writes the SVG;
#  - --json parses (python3 or node when there is one, else grep);
#  - bad options exit 2 with the usage; a port in use is a clear error;
#  - each style's echo server sends back exactly the bytes it was sent (in
#    pieces of odd sizes, binary included), and each style's API answers a
#    fixed set of requests exactly as the callbacks style does, and as
#    expected;
#  - with valgrind (and no sanitizer), each server of both daemons serves
#    those transcripts and shuts down on SIGTERM with no error and no leak.
# make check runs it with top_builddir and top_srcdir set.

builddir=$(cd "${top_builddir:-.}" && pwd)
P="$builddir/examples/pact-styles/pact-styles"
tmp=${TMPDIR:-/tmp}/check-pact-styles.$$
mkdir -p "$tmp" || exit 1
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
rc=0
fail() {
    echo "check-pact-styles: FAIL: $*"
    rc=1
}
ok() { echo "check-pact-styles: $*"; }

if [ ! -x "$P" ]; then
    echo "check-pact-styles: $P is not built" >&2
    exit 1
fi
STYLES="callbacks promises task async libevent"

# ---- options ----------------------------------------------------------------
for bad in --bogus --duration=abc --duration=0 --connections=0 \
    --styles=callbacks,nope --styles= extra-arg; do
    "$P" "$bad" >"$tmp/out" 2>"$tmp/err"
    status=$?
    if [ "$status" -ne 2 ] || ! grep -q '^usage: pact-styles' "$tmp/err"; then
        fail "'$bad' gave status $status (want 2 and the usage)"
    fi
done
"$P" --help >"$tmp/out" 2>&1 && grep -q -- '--duration' "$tmp/out" ||
    fail "--help does not show the options"
ok "bad options: exit 2 with the usage"

# ---- a short run: both tables' shapes, the chart --------------------------
"$P" --duration=0.2 --connections=2 --svg="$tmp/chart.svg" -q \
    >"$tmp/tables" 2>"$tmp/err"
status=$?
[ "$status" -eq 0 ] || fail "a short run exited with $status: $(cat "$tmp/err")"
for title in '^TCP echo server' '^HTTP JSON API' \
    '^the cost of blocking the loop' '^inline, on the loop  *[0-9.]* ms' \
    '^pool, its CPU lane  *[0-9.]* ms' '^worker thread  *[0-9.]* ms' \
    "^the stall detector's report" '^the task dump' \
    'pact: dump of loop: [1-9]' 'task .*awaiting at .*block\.c' \
    "^chart: $tmp/chart.svg"; do
    grep -q "$title" "$tmp/tables" || fail "no line '$title' in the tables"
done
# the report names the handler, not the HTTP server's code that called it
sed -n "/^the stall detector/,/^\$/p" "$tmp/tables" | grep -q 'hash_inline' ||
    fail "the stall report does not name hash_inline"
for s in $STYLES; do
    n=$(grep -c "^$s  *[0-9][0-9]*  *[0-9.]*x  *[0-9.]*  *[0-9.]*  *[0-9.]*x  *[0-9.]* MiB  *[0-9.]*x  *[0-9?][0-9]*  *[0-9.]*x\$" "$tmp/tables")
    [ "$n" -eq 2 ] || fail "style $s has $n well-formed rows, not 2 (echo, api)"
done
grep -q failed "$tmp/tables" && fail "a run failed: $(grep failed "$tmp/tables")"
if [ -s "$tmp/chart.svg" ] && head -c 5 "$tmp/chart.svg" | grep -q '<svg' &&
    tail -n 1 "$tmp/chart.svg" | grep -q '</svg>' &&
    [ "$(grep -c '<rect' "$tmp/chart.svg")" -ge 20 ]; then
    ok "a short run: both tables, the stall report, the dump, the chart"
else
    fail "the chart $tmp/chart.svg is missing or malformed"
fi
[ "$rc" -ne 0 ] && { echo "--- the tables:"; cat "$tmp/tables"; }

# ---- --json -------------------------------------------------------------------
(cd "$tmp" && "$P" --json --duration=0.2 --connections=2 \
    --styles=task,libevent -q --svg= >"$tmp/json" 2>"$tmp/err") ||
    fail "--json exited with $?: $(cat "$tmp/err")"
[ -e "$tmp/pact-styles.svg" ] && fail "--svg= wrote a chart"
if command -v python3 >/dev/null 2>&1; then
    python3 - "$tmp/json" <<'PY' || fail "--json: not the JSON expected"
import json, sys
d = json.load(open(sys.argv[1]))
for t in ("echo", "api"):
    assert [r["style"] for r in d[t]] == ["task", "libevent"], d[t]
    for r in d[t]:
        assert r["ok"] and r["requests_per_s"] > 0 and r["lines"] > 0, r
        assert r["vs_libevent"]["requests_per_s"] > 0, r
b = d["blocking"]
assert [m["mode"] for m in b["modes"]] == ["inline", "pool", "worker"], b
assert "hash_inline" in b["stall_report"] and "awaiting at" in b["task_dump"]
PY
    how=python3
elif command -v node >/dev/null 2>&1; then
    node -e '
const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
if (d.echo.length !== 2 || d.api.length !== 2 || d.blocking.modes.length !== 3)
    process.exit(1);' "$tmp/json" || fail "--json: not the JSON expected"
    how=node
else
    grep -q '"echo": \[' "$tmp/json" && grep -q '"blocking": {' "$tmp/json" ||
        fail "--json: not the JSON expected"
    how=grep
fi
ok "--json parses ($how)"

# ---- servers: start one, its port ------------------------------------------
# start SPEC [WRAPPER...]: run --serve=SPEC in the background; sets $pid,
# $port (empty when it did not say one within a minute: valgrind is slow)
start() {
    spec=$1
    shift
    rm -f "$tmp/port"
    "$@" "$P" --serve="$spec" >"$tmp/port" 2>"$tmp/server.err" &
    pid=$!
    pids="$pids $pid"
    port=
    i=0
    while [ $i -lt 600 ] && [ -z "$port" ] && kill -0 "$pid" 2>/dev/null; do
        port=$(sed -n 's/^port //p' "$tmp/port" 2>/dev/null)
        [ -n "$port" ] || sleep 0.1
        i=$((i + 1))
    done
}
# stop: SIGTERM, and its exit status in $status
stop() {
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
    status=$?
}

# ---- a port in use --------------------------------------------------------------
start echo:callbacks
if [ -n "$port" ]; then
    "$P" --port="$port" --styles=callbacks --no-blocking --duration=0.1 \
        --svg= -q >"$tmp/out" 2>"$tmp/err"
    status=$?
    if [ "$status" -eq 1 ] && grep -q "port $port is in use" "$tmp/err"; then
        ok "a port in use: $(head -n 1 "$tmp/err")"
    else
        fail "a port in use gave status $status: $(cat "$tmp/err")"
    fi
else
    fail "echo:callbacks did not say its port"
fi
stop

# ---- the transcripts -------------------------------------------------------
# bytes of every value, lines, a long line, and random bytes
awk 'BEGIN { for (i = 0; i < 256; i++) printf "%c", i;
             for (i = 0; i < 300; i++) print "line " i;
             for (i = 0; i < 20000; i++) printf "x"; print "" }' \
    >"$tmp/echo.in"
head -c 300000 /dev/urandom >>"$tmp/echo.in" 2>/dev/null
cat >"$tmp/api.expected" <<'EOF2'
GET /items/5 -> 200 {"id":5,"name":"widget","price_cents":35}
GET /items/12345 -> 200 {"id":12345,"name":"widget","price_cents":415}
GET /items/zero -> 404 {"error":"no such item"}
POST /items -> 201 {"name":"widget","qty":3,"id":1}
POST /items -> 201 {"name":"gadget","tags":[1,2],"id":2}
POST /items -> 400 {"error":"the body is not a JSON object"}
POST /items -> 400 {"error":"the body is not a JSON object"}
EOF2

# transcripts LABEL [WRAPPER...]: every style's echo and API transcript
transcripts() {
    label=$1
    shift
    for s in $STYLES; do
        start "echo:$s" "$@"
        if [ -z "$port" ]; then
            fail "$label echo:$s did not start: $(cat "$tmp/server.err")"
            continue
        fi
        "$P" --echo-client="$port" <"$tmp/echo.in" >"$tmp/echo.$s" ||
            fail "$label echo:$s: the client failed"
        cmp -s "$tmp/echo.in" "$tmp/echo.$s" ||
            fail "$label echo:$s sent back other bytes than it was sent"
        stop
        [ "$status" -eq 0 ] ||
            fail "$label echo:$s ended with $status: $(cat "$tmp/server.err")"
        start "api:$s" "$@"
        if [ -z "$port" ]; then
            fail "$label api:$s did not start: $(cat "$tmp/server.err")"
            continue
        fi
        "$P" --api-client="$port" >"$tmp/api.$s" ||
            fail "$label api:$s: the client failed"
        diff -u "$tmp/api.expected" "$tmp/api.$s" ||
            fail "$label api:$s answered otherwise"
        stop
        [ "$status" -eq 0 ] ||
            fail "$label api:$s ended with $status: $(cat "$tmp/server.err")"
    done
}
before=$rc
transcripts ""
[ "$rc" -eq "$before" ] &&
    ok "each style's echo gives back the $(wc -c <"$tmp/echo.in") bytes sent; each API the same answers"

# ---- valgrind ------------------------------------------------------------------
if [ -n "$SAN_CFLAGS" ]; then
    ok "valgrind: skipped (a sanitizer build)"
elif [ -z "$VALGRIND" ] || ! command -v "$VALGRIND" >/dev/null 2>&1; then
    ok "valgrind: skipped (not found)"
else
    before=$rc
    transcripts "valgrind" "$builddir/libtool" --mode=execute "$VALGRIND" \
        -q --error-exitcode=9 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect,possible
    [ "$rc" -eq "$before" ] &&
        ok "valgrind: every echo and API server clean, no leak"
fi
exit "$rc"

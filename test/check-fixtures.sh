#!/bin/sh
# The Node fixtures must still be what their .js files print: one run of each
# case under the installed Node v20, compared with the stored .txt (and .exit)
# files (test/fixtures/order/regen.sh --check, for order/, promise/ and
# async/, without its repeated and loaded runs, which are for regenerating).
# Skipped (77) without Node v20.
node=$(command -v node) || { echo "no node: skipped"; exit 77; }
major=$("$node" -p 'process.versions.node.split(".")[0]' 2>/dev/null)
[ "$major" = 20 ] || { echo "node is v$major, the fixtures name v20: skipped"; exit 77; }
fixtures=${top_srcdir:-.}/test/fixtures
status=0
for dir in order promise async; do
    RUNS=1 LOAD_RUNS=0 SPINNERS=0 NODE=$node \
        sh "$fixtures/order/regen.sh" --check --dir "$fixtures/$dir" || status=1
done
exit "$status"

#!/bin/sh
# The Node fixtures must still be what their .js files print: one run of each
# case under the installed Node v20, compared with the stored .txt
# (test/fixtures/order/regen.sh --check without its repeated and loaded runs,
# which are for regenerating). Skipped (77) without Node v20.
node=$(command -v node) || { echo "no node: skipped"; exit 77; }
major=$("$node" -p 'process.versions.node.split(".")[0]' 2>/dev/null)
[ "$major" = 20 ] || { echo "node is v$major, the fixtures name v20: skipped"; exit 77; }
RUNS=1 LOAD_RUNS=0 SPINNERS=0 NODE=$node \
    exec sh "${top_srcdir:-.}/test/fixtures/order/regen.sh" --check

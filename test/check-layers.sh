#!/bin/sh
# The layers are enforced by the compiler (doc/internals.md): each layer's
# sources build with -DPACT__LAYER=N, and every header of a higher layer,
# public or private, is then an #error. This compiles small files as a file
# of each layer would, and checks that a wrong-way include fails and the
# right way compiles; and that every source of src/ is built in a layer.
# `make check` runs it with top_srcdir, top_builddir and CC set.

srcdir=${top_srcdir:-.}
builddir=${top_builddir:-.}
cc=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pact-layers.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

# compile LAYER HEADER...: 0 when a file of LAYER including HEADERs compiles
compile() {
    layer=$1
    shift
    : >"$tmp/t.c"
    for h in "$@"; do
        echo "#include \"$h\"" >>"$tmp/t.c"
    done
    echo "int pact_layers_check_(void);" >>"$tmp/t.c"
    echo "int pact_layers_check_(void) { return 0; }" >>"$tmp/t.c"
    $cc -std=c11 -fsyntax-only -DHAVE_CONFIG_H -D_GNU_SOURCE \
        -DPACT__LAYER="$layer" -I"$builddir" -I"$srcdir/include" \
        -I"$srcdir/src" "$tmp/t.c" >"$tmp/out" 2>&1
}

# must LAYER HEADER...: the include is allowed
must() {
    if compile "$@"; then
        echo "check-layers: layer $1 may include ${2}${3:+ $3}: ok"
    else
        echo "check-layers: layer $1 including ${2}${3:+ $3} failed:" >&2
        cat "$tmp/out" >&2
        fail=1
    fi
}

# must_not LAYER HEADER...: the include is a compile error naming the layer
must_not() {
    if compile "$@"; then
        echo "check-layers: layer $1 including ${2}${3:+ $3} compiled" >&2
        fail=1
    elif grep -q 'is layer' "$tmp/out"; then
        echo "check-layers: layer $1 may not include ${2}${3:+ $3}: ok"
    else
        echo "check-layers: layer $1 including ${2}${3:+ $3} failed, but" \
            "not by the layer check:" >&2
        cat "$tmp/out" >&2
        fail=1
    fi
}

# the core: its own header and layer-1 public headers, nothing above
must 1 internal.h
must 1 internal.h pact/loop.h
must 1 internal.h pact/stall.h
must_not 1 internal.h pact/promise.h
must_not 1 internal.h pact/value.h
must_not 1 internal.h pact/chan.h
must_not 1 internal.h pact.h
must_not 1 internal.h promise_internal.h
must_not 1 internal.h json_deep.h
must_not 1 internal.h task_internal.h
must_not 1 internal.h pool_internal.h
# the promise layer
must 2 promise_internal.h
must_not 2 promise_internal.h pact/task.h
must_not 2 promise_internal.h task_internal.h
must_not 2 promise_internal.h context.h
must_not 2 promise_internal.h pact/pool.h
# the await layer
must 3 task_internal.h promise_internal.h context.h
must_not 3 task_internal.h pact/worker.h
must_not 3 task_internal.h fs_internal.h
# task groups and cancel scopes
must 4 scope_internal.h
must 4 pact/group.h pact/scope.h
must_not 3 task_internal.h pact/group.h
must_not 3 task_internal.h pact/scope.h
must_not 3 task_internal.h scope_internal.h
must_not 2 promise_internal.h pact/group.h
must_not 3 task_internal.h pact/tcp.h
must_not 3 task_internal.h pact/stream.h
must_not 3 task_internal.h tcp_internal.h
# the services: everything below
must 5 pool_internal.h fs_internal.h
must 5 tcp_internal.h promise_internal.h pool_internal.h
must 5 worker_internal.h task_internal.h
must 5 pact.h internal.h
must 5 scope_internal.h pool_internal.h

# every source is built in one of the layers' libraries
for f in "$srcdir"/src/*.c "$srcdir"/src/*.S; do
    [ -e "$f" ] || continue
    name=src/$(basename "$f")
    n=$(sed -n '/^libpact_\(core\|promise\|await\|scope\|services\)_la_SOURCES/,/^$/p' \
        "$srcdir/Makefile.am" | grep -c "[ 	]$name\( \|\$\)")
    if [ "$n" -ne 1 ]; then
        echo "check-layers: $name is in $n layers' sources in Makefile.am" >&2
        fail=1
    fi
done

[ "$fail" -eq 0 ] && echo "check-layers: the layers hold"
exit "$fail"

#!/bin/sh
# The library exports exactly the pact_ API: every defined dynamic symbol of
# .libs/libpact.so starts with pact_ but not pact__ (the sources build with
# -fvisibility=hidden and mark the API PACT_API; pact__ names are internal),
# and every function a public header declares with PACT_API is there. `make check` runs this with
# top_builddir, top_srcdir and NM set.

builddir=${top_builddir:-.}
srcdir=${top_srcdir:-.}
nm_cmd=${NM:-nm}
lib="$builddir/.libs/libpact.so"

if [ ! -f "$lib" ]; then
    echo "check-exports: $lib not built (--disable-shared?); skipped"
    exit 77
fi

# "ADDRESS TYPE NAME" for every defined dynamic symbol. The symbols the
# toolchain adds to every shared object, and the sanitizers' own, are not
# ours to name and are left out.
syms=$($nm_cmd -D --defined-only "$lib" | awk '
    NF >= 3 && $2 ~ /^[BDGRSTVWiu]$/ {
        name = $3
        sub(/@.*/, "", name)
        if (name ~ /^(_init|_fini|_edata|_end|__bss_start|_DYNAMIC|_GLOBAL_OFFSET_TABLE_|__data_start|__dso_handle)$/) next
        if (name ~ /^(__asan|__ubsan|__tsan|__lsan|__sanitizer|__odr_asan|___asan|__gcov)/) next
        print $2, name
    }' | LC_ALL=C sort -k2)
status=$?
if [ "$status" -ne 0 ]; then
    echo "check-exports: $nm_cmd -D failed on $lib" >&2
    exit 1
fi

exported=$(printf '%s\n' "$syms" | awk 'NF == 2 { print $2 }')
count=$(printf '%s\n' "$exported" | grep -c '^pact_')
foreign=$(printf '%s\n' "$exported" | grep -v '^pact_' | grep -v '^$')
internal=$(printf '%s\n' "$exported" | grep '^pact__')

echo "check-exports: $lib exports:"
if [ -n "$syms" ]; then
    printf '%s\n' "$syms" | sed 's/^/  /'
else
    echo "  (nothing)"
fi

rc=0
if [ "$count" -eq 0 ]; then
    echo "check-exports: FAIL: no pact_ symbol is exported"
    rc=1
fi
if [ -n "$foreign" ]; then
    echo "check-exports: FAIL: exported symbols without the pact_ prefix"
    echo "  (make them static, or prefix them pact__ and keep them hidden):"
    printf '%s\n' "$foreign" | sed 's/^/  /'
    rc=1
fi

if [ -n "$internal" ]; then
    echo "check-exports: FAIL: internal pact__ symbols are exported"
    echo "  (pact__ names are for src/ only: leave them without PACT_API):"
    printf '%s\n' "$internal" | sed 's/^/  /'
    rc=1
fi

# Functions declared PACT_API in the public headers must all be defined.
declared=$(sed -n 's/^PACT_API[^(]*[ *]\(pact_[A-Za-z0-9_]*\)(.*/\1/p' \
    "$srcdir"/include/pact.h "$srcdir"/include/pact/*.h | LC_ALL=C sort -u)
missing=
for f in $declared; do
    if ! printf '%s\n' "$exported" | grep -qx "$f"; then
        missing="$missing $f"
    fi
done
if [ -n "$missing" ]; then
    echo "check-exports: FAIL: declared in include/ but not exported:"
    for f in $missing; do
        echo "  $f"
    done
    rc=1
fi

[ "$rc" -eq 0 ] && echo "check-exports: $count pact_ symbols, nothing else"
exit "$rc"

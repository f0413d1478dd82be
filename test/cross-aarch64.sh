#!/bin/sh
# cross-aarch64.sh: test/switch_check.c built for aarch64 and run under qemu's
# user-mode emulator -- the assembly switch (src/switch_aarch64.S, with
# ucontext linked beside it) and ucontext alone, each at -O0 and -O2. Not
# part of make check (it needs a cross toolchain); run it by hand from
# anywhere:  sh test/cross-aarch64.sh [build-dir]
#
# Needs, on Debian (as root):
#   apt-get install gcc-aarch64-linux-gnu qemu-user-static
# (qemu-user instead of qemu-user-static works too.) CROSS_CC and QEMU
# override the compiler and the emulator. Exits 77 when either is missing,
# 1 when a check fails.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-${TMPDIR:-/tmp}/pact-cross-aarch64}
cc=${CROSS_CC:-aarch64-linux-gnu-gcc}
qemu=${QEMU:-}
if [ -z "$qemu" ]; then
    for q in qemu-aarch64-static qemu-aarch64; do
        if command -v "$q" >/dev/null 2>&1; then
            qemu=$q
            break
        fi
    done
fi
if ! command -v "$cc" >/dev/null 2>&1 || [ -z "$qemu" ]; then
    echo "cross-aarch64: needs $cc and qemu-aarch64:" >&2
    echo "  apt-get install gcc-aarch64-linux-gnu qemu-user-static" >&2
    exit 77
fi
mkdir -p "$out"

# the warnings configure --enable-werror uses; _GNU_SOURCE as Makefile.am
cflags="-std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
-Wmissing-prototypes -Wpointer-arith -Wformat=2 -Werror -g \
-D_GNU_SOURCE -DPACT_CONTEXT_BOTH -I$top/src"
src=$top/src
# static when the cross libc has libc.a, else through qemu's -L
link=-static
sysroot=
if ! echo 'int main(void){return 0;}' |
    "$cc" -static -x c -o "$out/probe" - 2>/dev/null; then
    link=
    sysroot=$("$cc" -print-sysroot 2>/dev/null || true)
    [ -n "$sysroot" ] || sysroot=/usr/aarch64-linux-gnu
fi

fail=0
for opt in -O0 -O2; do
    for ctx in asm ucontext; do
        exe=$out/switch_check-$ctx$opt
        if [ "$ctx" = asm ]; then
            # shellcheck disable=SC2086 # cflags is a list
            "$cc" $cflags $opt -DPACT_CONTEXT_ASM=1 $link -o "$exe" \
                "$top/test/switch_check.c" "$src/context_asm.c" \
                "$src/context_ucontext.c" "$src/switch_aarch64.S"
        else
            # shellcheck disable=SC2086
            "$cc" $cflags $opt -DPACT_CONTEXT_ASM=0 $link -o "$exe" \
                "$top/test/switch_check.c" "$src/context_ucontext.c"
        fi
        echo "== aarch64 $ctx $opt ($qemu)"
        if [ -n "$sysroot" ]; then
            "$qemu" -L "$sysroot" "$exe" || fail=1
        else
            "$qemu" "$exe" || fail=1
        fi
    done
done
if [ "$fail" = 0 ]; then
    echo "cross-aarch64: all passed"
else
    echo "cross-aarch64: FAILED"
fi
exit "$fail"

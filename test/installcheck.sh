#!/bin/sh
# make installcheck (and so make distcheck): the hello programs of the README
# (examples/hello/) built against the INSTALLED library as a user would,
# through pkg-config alone and then through the CMake package, and run.
#   - pkg-config: cc x.c $(pkg-config --cflags --libs pact), with
#     PKG_CONFIG_PATH at the installed .pc and nothing from the build tree;
#   - CMake (skipped when cmake is absent): examples/hello/CMakeLists.txt,
#     find_package(pact) with CMAKE_PREFIX_PATH at the install prefix.
# Each program must exit 0 and print its line. The Makefile sets: srcdir,
# prefix, libdir, DESTDIR (may be empty), CC, PKG_CONFIG, CMAKE, CFLAGS.
set -u

hello=$(cd "$srcdir/examples/hello" && pwd) || exit 1
pcdir=$DESTDIR$libdir/pkgconfig
[ -f "$pcdir/pact.pc" ] || { echo "installcheck: no $pcdir/pact.pc: make install first" >&2; exit 1; }
[ -f "$hello/callback.c" ] || { echo "installcheck: no $hello/callback.c" >&2; exit 1; }
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
# pkg-config's view of a staged install (DESTDIR): its paths move with it
if [ -n "$DESTDIR" ]; then
    PKG_CONFIG_SYSROOT_DIR=$DESTDIR
    export PKG_CONFIG_SYSROOT_DIR
fi
PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
# the library is found where it was installed, as ldconfig or an rpath would
LD_LIBRARY_PATH=$DESTDIR$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# run NAME PROGRAM: it must exit 0 and print "NAME: ...hello..."
run() {
    if ! "$2" >"$tmp/out" 2>"$tmp/err"; then
        echo "installcheck: $2 failed:" >&2
        cat "$tmp/out" "$tmp/err" >&2
        fail=1
    elif ! grep -q "^$1: .*hello" "$tmp/out"; then
        echo "installcheck: $2 printed, not '$1: ... hello ...':" >&2
        cat "$tmp/out" >&2
        fail=1
    else
        echo "installcheck: $2: $(cat "$tmp/out")"
    fi
}

flags=$($PKG_CONFIG --cflags --libs pact) || {
    echo "installcheck: $PKG_CONFIG --cflags --libs pact failed" >&2
    exit 1
}
echo "installcheck: pkg-config --cflags --libs pact: $flags"
for style in callback promise task; do
    # CFLAGS only carries the build's sanitizer flags, which a sanitized
    # library needs in the program too; empty in an ordinary build.
    # shellcheck disable=SC2086
    if ! $CC $CFLAGS -o "$tmp/$style" "$hello/$style.c" $flags 2>"$tmp/cc.err"; then
        echo "installcheck: $style.c does not build with the pkg-config line:" >&2
        cat "$tmp/cc.err" >&2
        fail=1
        continue
    fi
    run "$style" "$tmp/$style"
done

if [ -z "${CMAKE:-}" ] || ! command -v "$CMAKE" >/dev/null 2>&1; then
    echo "installcheck: no cmake: the CMake package is not checked"
    exit $fail
fi
# find_package(pact) reads the installed pactConfig.cmake; under DESTDIR its
# paths name the final prefix, so point them at the staged one for this test
cmprefix=$DESTDIR$prefix
if [ -n "$DESTDIR" ]; then
    mkdir -p "$tmp/cmake-pkg"
    sed "s|\"$libdir\"|\"$DESTDIR$libdir\"|; s|\"$prefix/|\"$DESTDIR$prefix/|" \
        "$DESTDIR$libdir/cmake/pact/pactConfig.cmake" >"$tmp/cmake-pkg/pactConfig.cmake"
    cp "$DESTDIR$libdir/cmake/pact/pactConfigVersion.cmake" "$tmp/cmake-pkg/"
    cmdir=-Dpact_DIR=$tmp/cmake-pkg
else
    cmdir=-Dpact_DIR=$libdir/cmake/pact
fi
if ! (cd "$tmp" && CC=$CC CFLAGS=$CFLAGS "$CMAKE" -S "$hello" -B cmake-build \
    -DCMAKE_PREFIX_PATH="$cmprefix" "$cmdir" >cmake.log 2>&1 &&
    "$CMAKE" --build cmake-build >>cmake.log 2>&1); then
    echo "installcheck: the CMake build of examples/hello failed:" >&2
    cat "$tmp/cmake.log" >&2
    exit 1
fi
for style in callback promise task; do
    run "$style" "$tmp/cmake-build/$style"
done
exit $fail

#!/bin/sh
# Formatting as a test: every C file under src/ include/ test/ examples/ must
# already be as clang-format would write it (the style is .clang-format at the
# top). `make check` runs this with CLANG_FORMAT (found by configure; empty
# when clang-format is missing, and then the check is skipped) and top_srcdir.
# To fix what it reports: ./dev format, or clang-format -i on the files listed.

if [ -z "${CLANG_FORMAT:-}" ]; then
    echo "check-format: clang-format not found by configure; skipped"
    exit 77
fi
srcdir=${top_srcdir:-.}

files=$(find "$srcdir/src" "$srcdir/include" "$srcdir/test" "$srcdir/examples" \
    -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | LC_ALL=C sort)
if [ -z "$files" ]; then
    echo "check-format: no C files under $srcdir" >&2
    exit 1
fi

n=0
bad=
for f in $files; do
    n=$((n + 1))
    if ! "$CLANG_FORMAT" --dry-run --Werror "$f" >/dev/null 2>&1; then
        bad="$bad $f"
    fi
done

if [ -n "$bad" ]; then
    echo "check-format: not formatted as .clang-format says:"
    for f in $bad; do
        echo "  $f"
    done
    echo "check-format: fix with: $CLANG_FORMAT -i$bad"
    echo "check-format: first differences:"
    for f in $bad; do
        "$CLANG_FORMAT" --dry-run "$f" 2>&1
    done | head -n 60
    exit 1
fi
echo "check-format: $n files formatted"

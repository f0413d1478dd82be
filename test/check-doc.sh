#!/bin/sh
# The reference is complete: Doxygen over the public headers (doc/Doxyfile,
# the settings of make doc) warns about every undocumented public symbol
# (function, type, field, enum value, macro) and every documentation error,
# and any warning fails the check. A header without a @file comment is
# failed too: Doxygen ignores the functions of an undocumented file, so they
# would pass unseen. `make check` runs this with top_builddir, top_srcdir,
# DOXYGEN and DOC_CHECK set.

builddir=${top_builddir:-.}
srcdir=${top_srcdir:-.}

if [ -z "$DOXYGEN" ]; then
    if [ "$DOC_CHECK" = yes ]; then
        echo "check-doc: FAIL: doxygen not found, and configure was given --enable-doc-check"
        exit 1
    fi
    echo "check-doc: SKIP: doxygen not found, so the reference is not checked:"
    echo "  install the Debian package doxygen and configure again"
    echo "  (--enable-doc-check makes configure require it)"
    exit 77
fi
if [ ! -f "$builddir/doc/Doxyfile" ]; then
    echo "check-doc: FAIL: $builddir/doc/Doxyfile missing (run configure)"
    exit 1
fi

rc=0
nofile=$(grep -L '@file' "$srcdir"/include/pact.h "$srcdir"/include/pact/*.h)
if [ -n "$nofile" ]; then
    echo "check-doc: FAIL: headers whose first comment is not /** @file ... */"
    echo "  (Doxygen leaves their functions out, documented or not):"
    printf '%s\n' "$nofile" | sed 's/^/  /'
    rc=1
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# Later settings override the Doxyfile's: XML is the cheapest output that
# makes Doxygen check every member.
{
    cat "$builddir/doc/Doxyfile"
    echo "OUTPUT_DIRECTORY = $tmp"
    echo "GENERATE_HTML = NO"
    echo "GENERATE_MAN = NO"
    echo "GENERATE_XML = YES"
    echo "QUIET = YES"
    echo "WARN_IF_UNDOCUMENTED = YES"
    echo "WARN_IF_DOC_ERROR = YES"
    echo "WARN_IF_INCOMPLETE_DOC = YES"
    echo "WARN_AS_ERROR = NO"
    echo "WARN_LOGFILE = $tmp/warnings"
} | "$DOXYGEN" - >"$tmp/out" 2>&1
status=$?
if [ "$status" -ne 0 ]; then
    echo "check-doc: FAIL: $DOXYGEN exited with $status:"
    sed 's/^/  /' "$tmp/out"
    rc=1
fi
if [ -s "$tmp/warnings" ]; then
    n=$(grep -c 'warning:\|error:' "$tmp/warnings")
    echo "check-doc: FAIL: $n Doxygen warnings (document each public symbol"
    echo "  with /** ... */ before it, or /**< ... */ after a field):"
    sed 's/^/  /' "$tmp/warnings"
    rc=1
fi
# Doxygen does not warn about an undocumented enum value: look in its XML.
bare=$(awk '
    /<enumvalue / { inside = 1; doc = 0; name = "" }
    inside && /<name>/ {
        name = $0
        gsub(/.*<name>|<\/name>.*/, "", name)
    }
    inside && /<para>/ { doc = 1 }
    inside && /<\/enumvalue>/ {
        if (!doc)
            print name
        inside = 0
    }' "$tmp"/xml/*.xml 2>/dev/null | LC_ALL=C sort -u)
if [ -n "$bare" ]; then
    echo "check-doc: FAIL: undocumented enum values (add /**< ... */):"
    printf '%s\n' "$bare" | sed 's/^/  /'
    rc=1
fi
[ "$rc" -eq 0 ] && echo "check-doc: every public symbol is documented"
exit "$rc"

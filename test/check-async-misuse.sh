#!/bin/sh
# The PACT_ASYNC misuse that pact/async.h promises the compiler refuses:
# each snippet below must FAIL to compile, for the reason named (the
# compiler's message is matched, so a snippet broken some other way cannot
# pass), and the correct form beside them must compile without a warning.
#   - an await outside PACT_ASYNC_BEGIN/END (a case label outside a switch)
#   - two awaits on one line (a duplicate case value)
#   - an initialized local in scope across an await (gcc only: its
#     -Wjump-misses-init, made an error inside the body by the header; clang
#     has no such warning, so that case is skipped there)
# `make check` runs this with CC and top_srcdir set (AM_TESTS_ENVIRONMENT).
set -u

CC=${CC:-cc}
srcdir=${top_srcdir:-.}
inc=$srcdir/include
[ -f "$inc/pact/async.h" ] || { echo "check-async-misuse: no $inc/pact/async.h" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# gcc proper, as pact/async.h tells it (clang defines __GNUC__ too)
if printf '#if defined(__GNUC__) && !defined(__clang__)\nIS_GCC\n#endif\n' |
    $CC -E - 2>/dev/null | grep -q IS_GCC; then
    gcc=yes
else
    gcc=no
fi

# snippet NAME: the body's statements on stdin become $tmp/NAME.c.
snippet() {
    {
        cat <<'EOF'
#include <pact.h>

struct frame {
    PACT_ASYNC_FRAME;
    int n;
};

pact_error *body(pact_async *a, pact_value *result);
pact_error *body(pact_async *a, pact_value *result)
{
    struct frame *f = (struct frame *)a;
    pact_loop *loop = pact_async_loop(a);
EOF
        cat
        echo '}'
    } >"$tmp/$1.c"
}

# compile NAME [FLAGS...]: 0 if it compiles; the messages in $tmp/NAME.err.
compile() {
    name=$1
    shift
    # shellcheck disable=SC2086 # CC may carry flags
    $CC -std=c11 "$@" -I"$inc" -c "$tmp/$name.c" -o "$tmp/$name.o" \
        >"$tmp/$name.err" 2>&1
}

status=0
n=0

# must_fail NAME PATTERN WHAT: NAME must not compile, with PATTERN (an
# extended regex) in the compiler's messages.
must_fail() {
    n=$((n + 1))
    if compile "$1"; then
        echo "check-async-misuse: FAIL: $3 compiled ($1)"
        status=1
    elif ! grep -Eqi -e "$2" "$tmp/$1.err"; then
        echo "check-async-misuse: FAIL: $3 failed to compile, but not with /$2/:"
        cat "$tmp/$1.err"
        status=1
    else
        echo "check-async-misuse: ok: refused: $3"
    fi
}

snippet correct <<'EOF'
    PACT_ASYNC_BEGIN(a);
    {
        int k = f->n; /* a temporary in a block closed before the await */
        f->n = k + 1;
    }
    for (f->n = 0; f->n < 3; f->n++) {
        PACT_ASYNC_TRY(a, pact_resolved(loop, pact_int(f->n)), NULL);
    }
    *result = pact_int(f->n);
    PACT_ASYNC_END(a);
EOF
n=$((n + 1))
if compile correct -Wall -Wextra -Werror; then
    echo "check-async-misuse: ok: the correct form compiles (-Wall -Wextra -Werror)"
else
    echo "check-async-misuse: FAIL: the correct form does not compile with $CC:"
    cat "$tmp/correct.err"
    exit 1
fi

snippet before_begin <<'EOF'
    PACT_ASYNC_TRY(a, pact_resolved(loop, pact_int(1)), NULL);
    PACT_ASYNC_BEGIN(a);
    f->n = 1;
    (void)result;
    PACT_ASYNC_END(a);
EOF
must_fail before_begin 'case.*(not within|not in).*switch' \
    "an await before PACT_ASYNC_BEGIN"

snippet after_end <<'EOF'
    PACT_ASYNC_BEGIN(a);
    f->n = 1;
    (void)result;
    PACT_ASYNC_END(a);
    PACT_ASYNC_TRY(a, pact_resolved(loop, pact_int(1)), NULL);
EOF
must_fail after_end 'case.*(not within|not in).*switch' \
    "an await after PACT_ASYNC_END"

snippet two_on_a_line <<'EOF'
    PACT_ASYNC_BEGIN(a);
    f->n = 1;
    (void)result;
    PACT_ASYNC_TRY(a, pact_resolved(loop, pact_int(1)), NULL); PACT_ASYNC_TRY(a, pact_resolved(loop, pact_int(2)), NULL);
    PACT_ASYNC_END(a);
EOF
must_fail two_on_a_line 'duplicate case' "two awaits on one line"

snippet init_across <<'EOF'
    PACT_ASYNC_BEGIN(a);
    int k = f->n;
    PACT_ASYNC_TRY(a, pact_resolved(loop, pact_int(1)), NULL);
    f->n = k;
    (void)result;
    PACT_ASYNC_END(a);
EOF
if [ "$gcc" = no ]; then
    echo "check-async-misuse: skip: an initialized local across an await (not gcc: no -Wjump-misses-init)"
else
    # no warning flags: the header alone makes it an error
    must_fail init_across 'jumps over variable initialization|jump-misses-init' \
        "an initialized local in scope across an await"
fi

if [ "$status" = 0 ]; then
    echo "check-async-misuse: $n cases as expected with $CC"
fi
exit "$status"

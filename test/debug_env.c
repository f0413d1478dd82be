/* The child of test/check-debug-env.sh: one misuse (a timer delay above
 * PACT_TIMEOUT_MAX), whose reason goes to stderr only when the build is a
 * debug one or PACT_DEBUG is set. Prints "debug-build" when it is a debug
 * build, so that the script knows what to expect without PACT_DEBUG. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>

#include <pact.h>

static void never(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
}

int main(void)
{
#ifdef PACT_DEBUG
    puts("debug-build");
#endif
    pact_loop *loop;
    if (pact_loop_new(&loop) < 0)
        return 2;
    int rc =
        pact_timeout(loop, (uint64_t)PACT_TIMEOUT_MAX + 1, never, NULL, NULL);
    int rc2 =
        pact_timeout(loop, (uint64_t)PACT_TIMEOUT_MAX + 1, never, NULL, NULL);
    pact_loop_free(loop);
    return rc == PACT_ERANGE && rc2 == PACT_ERANGE ? 0 : 1;
}

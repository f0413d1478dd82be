/* The child of test/check-debug-env.sh: one misuse (refreshing a timer that
 * never was), whose reason goes to stderr only when the build is a
 * debug one or PACT_DEBUG is set. Prints "debug-build" when it is a debug
 * build, so that the script knows what to expect without PACT_DEBUG. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>

#include <pact.h>

int main(void)
{
#ifdef PACT_DEBUG
    puts("debug-build");
#endif
    pact_loop *loop;
    if (pact_loop_new(&loop) < 0)
        return 2;
    pact_handle none = {0};
    int rc = pact_timer_refresh(loop, none);
    int rc2 = pact_timer_refresh(loop, none);
    pact_loop_free(loop);
    return rc == PACT_ENOENT && rc2 == PACT_ENOENT ? 0 : 1;
}

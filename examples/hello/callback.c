/* hello, callback style: a timer calls back after 10 ms (README, Using pact).
 * cc callback.c $(pkg-config --cflags --libs pact) */
#include <pact.h>
#include <stdio.h>

static void hello(pact_error *err, void *ud)
{
    printf("callback: %s (pact %s)\n", err ? "failed" : (const char *)ud,
           pact_version_string());
}

int main(void)
{
    pact_loop *loop;
    if (pact_loop_new(&loop) < 0)
        return 1;
    if (pact_timeout(loop, 10, hello, "hello after 10 ms", NULL) < 0)
        return 1;
    pact_loop_run(loop, PACT_RUN_DEFAULT);
    return pact_loop_free(loop) < 0;
}

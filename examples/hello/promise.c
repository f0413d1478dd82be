/* hello, promise style: pact_delay(10).then(hello) (README, Using pact).
 * cc promise.c $(pkg-config --cflags --libs pact) */
#include <pact.h>
#include <stdio.h>

static pact_value hello(const pact_value *v, void *ud)
{
    (void)v;
    printf("promise: %s\n", (const char *)ud);
    return pact_nothing();
}

int main(void)
{
    pact_loop *loop;
    if (pact_loop_new(&loop) < 0)
        return 1;
    pact_promise *delay = pact_delay(loop, 10, NULL);
    pact_promise *done = pact_then(delay, hello, NULL, "hello after 10 ms");
    pact_promise_unref(delay); /* pact_then borrowed it */
    pact_loop_run(loop, PACT_RUN_DEFAULT);
    pact_promise_unref(done);
    return pact_loop_free(loop) < 0;
}

/* hello, task style: a task awaits a 10 ms sleep, then prints a JSON object
 * built with jansson, which pact's pkg-config line links too (README, Using
 * pact). cc task.c $(pkg-config --cflags --libs pact) */
#include <jansson.h>
#include <pact.h>
#include <stdio.h>
#include <stdlib.h>

static pact_error *hello(void *arg, pact_value *result)
{
    (void)result;
    pact_error *err = pact_sleep(10); /* PACT_AWAIT(pact_delay(...)) */
    if (err)
        return err;
    json_t *msg = json_pack("{s:s}", "task", (const char *)arg);
    char *text = json_dumps(msg, 0);
    printf("task: %s\n", text);
    free(text);
    json_decref(msg);
    return NULL;
}

int main(void)
{
    pact_loop *loop;
    if (pact_loop_new(&loop) < 0)
        return 1;
    pact_promise *done =
        pact_task_spawn(loop, hello, "hello after 10 ms", NULL);
    pact_loop_run(loop, PACT_RUN_DEFAULT);
    int failed = pact_promise_state(done) != PACT_FULFILLED;
    pact_promise_unref(done);
    return pact_loop_free(loop) < 0 || failed;
}

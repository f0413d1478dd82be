/* classics/outlive -- the idea: a task started and forgotten outlives the
 * function that started it (fire-and-forget), and a task group -- a
 * nursery -- is what keeps every child inside its parent's scope.
 *
 *   async function handle() {
 *     asyncio.create_task(upload())        # nobody awaits it: it outlives
 *     return                               # handle() and its errors vanish
 *   }
 *   async function handleScoped() {
 *     async with asyncio.TaskGroup() as g: # every child done (or
 *       g.create_task(upload())            # cancelled) before the block
 *   }                                      # ends
 *
 * Three handlers, each a task: one forgets its child; one waits for its
 * group; one gives its group a deadline, which cancels the child. */
#include "classics.h"

static pact_loop *loop;

/* Three steps of 30 ms each; says at each whether its parent has ended. */
static bool parent_done;

static pact_error *upload(void *arg, pact_value *result)
{
    (void)result;
    const char *who = arg;
    for (int step = 1; step <= 3; step++) {
        pact_error *err = pact_sleep(30);
        if (err) {
            printf("  %s: cancelled at step %d (%s)\n", who, step,
                   pact_err_name(pact_error_code(err)));
            return err;
        }
        printf("  %s: step %d%s\n", who, step,
               parent_done ? ", after its parent returned" : "");
    }
    return NULL;
}

static pact_error *handle_forgetful(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    pact_promise_unref(pact_task_spawn(loop, upload, "orphan", NULL));
    PACT_AWAIT_TRY(pact_delay(loop, 40, NULL), NULL);
    printf("  handler: returns\n");
    parent_done = true;
    return NULL;
}

static pact_error *handle_scoped(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    pact_group *g;
    TRY(pact_group_new(loop, NULL, &g));
    TRY(pact_group_spawn(g, upload, "child", NULL));
    pact_error *err = pact_group_await(g);
    pact_group_unref(g);
    printf("  handler: returns, its group %s\n", err ? "failed" : "done");
    parent_done = true;
    return err;
}

static pact_error *handle_deadline(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    pact_group *g;
    TRY(pact_group_new(loop, &(pact_group_opts){.timeout_ms = 45}, &g));
    TRY(pact_group_spawn(g, upload, "child", NULL));
    pact_error *err = pact_group_await(g);
    pact_group_unref(g);
    printf("  handler: returns, its group %s\n",
           err ? pact_err_name(pact_error_code(err)) : "done");
    parent_done = true;
    pact_error_unref(err);
    return NULL;
}

static void run(const char *title, pact_task_fn handler)
{
    printf("%s\n", title);
    parent_done = false;
    pact_promise *t = pact_task_spawn(loop, handler, NULL, NULL);
    TRY(pact_loop_run(loop, PACT_RUN_DEFAULT));
    pact_promise_unref(t);
}

int main(void)
{
    TRY(pact_loop_new(&loop));
    run("fire and forget:", handle_forgetful);
    run("a task group:", handle_scoped);
    run("a task group with a deadline:", handle_deadline);
    TRY(pact_loop_free(loop));
    return 0;
}

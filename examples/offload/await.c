/* offload, await style: the job of callbacks.c in a task; it prints the same
 * lines. Every job is submitted first, so they run in parallel on the pool,
 * then one await waits for all of them: the task reads as straight-line
 * code, and the loop runs other callbacks while it waits.
 *
 * Why pact_all_settled and not one await per job in turn: a job that fails
 * while the task still waits on an earlier one would leave a rejected
 * promise without a handler at the end of a microtask drain, which is an
 * unhandled rejection (as in Node: `for (const p of ps) await p` reports one
 * too). As in JavaScript, `await Promise.allSettled(ps)` is the idiom. */
#include <stdio.h>
#include <stdlib.h>

#include "primes.h"

#include "../debug.h"

static pact_error *count_all(void *arg, pact_value *result)
{
    pact_loop *loop = arg;
    pact_promise *ps[NLIMITS];
    for (size_t i = 0; i < NLIMITS; i++)
        ps[i] = pact_offload_p(loop, count_primes, (void *)&limits[i], NULL);
    pact_promise *all = pact_all_settled(loop, ps, NLIMITS);
    for (size_t i = 0; i < NLIMITS; i++)
        pact_promise_unref(ps[i]); /* the combinator keeps what it needs */
    pact_value settled;
    PACT_AWAIT_TRY(all, &settled); /* steals `all` */
    int64_t total = 0;
    for (size_t i = 0; i < NLIMITS; i++) {
        pact_promise *p = pact_list_at(settled.u.list, i);
        pact_error *err = pact_promise_error(p);
        if (err) {
            printf("primes below %lld: %s: %s\n", (long long)limits[i],
                   pact_err_name(pact_error_code(err)),
                   pact_error_message(err));
        } else {
            int64_t count = pact_promise_value(p)->u.i;
            printf("primes below %lld: %lld\n", (long long)limits[i],
                   (long long)count);
            total += count;
        }
    }
    printf("total: %lld\n", (long long)total);
    pact_value_release(&settled);
    *result = pact_int(total);
    return NULL;
}

int main(int argc, char **argv)
{
    pact_loop *loop;
    if (pact_loop_new(&loop) < 0)
        return 1;
    if (example_debug(loop, argc, argv) < 0) /* --debug */
        return 1;
    pact_promise *task = pact_task_spawn(loop, count_all, loop, NULL);
    if (!task)
        return 1;
    int rc = pact_loop_run(loop, PACT_RUN_DEFAULT);
    bool ok = pact_promise_state(task) == PACT_FULFILLED;
    pact_promise_unref(task);
    return !ok || pact_loop_free(loop) < 0 || rc < 0;
}

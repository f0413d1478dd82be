/* group, as tasks: each child is a task that awaits its fetch; the main
 * task awaits the group with pact_group_await, which never lets a child
 * outlive it (group.h says what the job is). */
#include "group.h"

static pact_error *child(void *arg, pact_value *result)
{
    (void)result;
    int id = *(const int *)arg;
    pact_loop *loop = pact_task_loop(pact_task_current());
    pact_value v;
    pact_error *err = PACT_AWAIT_ERR(id == HUNG ? pact_delay(loop, 60000, NULL)
                                                : fetch_record_p(loop, id),
                                     &v);
    print_child(id, err, err ? NULL : v.u.ptr);
    return err;
}

static pact_error *job(void *arg, pact_value *result)
{
    (void)result;
    pact_loop *loop = arg;
    printf("group: fetching %zu records, 2 at a time, %d ms deadline\n", NIDS,
           DEADLINE_MS);
    pact_group *g;
    TRY(pact_group_new(loop, &group_opts, &g));
    for (size_t i = 0; i < NIDS; i++)
        TRY(pact_group_spawn(g, child, (void *)&ids[i], NULL));
    pact_error *err = pact_group_await(g);
    pact_group_unref(g);
    print_group(err);
    pact_error_unref(err);
    return NULL;
}

int main(void)
{
    pact_loop *loop;
    TRY(pact_loop_new(&loop));
    return run_job(loop, pact_task_spawn(loop, job, loop, NULL));
}

/* group, with promise chains: each child is a fetch's promise with a
 * reaction that prints; the group's wait is the job's promise (group.h
 * says what the job is). */
#include "group.h"

struct child {
    int id;
};

static pact_value printed(pact_error *err, const pact_value *v, void *ud)
{
    print_child(*(const int *)ud, err, v ? v->u.ptr : NULL);
    return err ? pact_throw(pact_error_ref(err)) : pact_nothing();
}

static pact_promise *child(pact_loop *loop, pact_error *cancelled, void *ud)
{
    if (cancelled)
        return NULL;
    const int *id = ud;
    pact_promise *p =
        *id == HUNG ? pact_delay(loop, 60000, NULL) : fetch_record_p(loop, *id);
    pact_promise *q = p ? pact_then_cb(p, printed, ud) : NULL;
    pact_promise_unref(p);
    return q;
}

static pact_value report(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    print_group(err);
    return pact_nothing();
}

int main(void)
{
    pact_loop *loop;
    TRY(pact_loop_new(&loop));
    printf("group: fetching %zu records, 2 at a time, %d ms deadline\n", NIDS,
           DEADLINE_MS);
    pact_group *g;
    TRY(pact_group_new(loop, &group_opts, &g));
    for (size_t i = 0; i < NIDS; i++)
        TRY(pact_group_go(g, child, (void *)&ids[i]));
    pact_promise *w = pact_group_wait(g);
    pact_group_unref(g);
    pact_promise *done = w ? pact_then_cb(w, report, NULL) : NULL;
    pact_promise_unref(w);
    return run_job(loop, done);
}

/* group, with callbacks: each child is started by pact_group_go through
 * pact_promisify, its callback prints, and the group's callback ends the
 * job (group.h says what the job is). */
#include <stdlib.h>

#include "group.h"

struct child {
    int id;
    pact_deferred *d;
};

static void on_fetch(pact_error *err, const struct record *rec, void *ud)
{
    struct child *c = ud;
    print_child(c->id, err, rec);
    pact_deferred_cb(err, c->d);
    free(c);
}

static void on_hung(pact_error *err, void *ud)
{
    on_fetch(err, NULL, ud);
}

static int start(pact_loop *loop, void *args, pact_deferred *d)
{
    struct child *c = malloc(sizeof *c);
    if (!c)
        return PACT_ENOMEM;
    *c = (struct child){*(const int *)args, d};
    /* started with the group's token as the ambient one: its timer is the
     * group's, so the deadline cancels it */
    int rc = c->id == HUNG ? pact_timeout(loop, 60000, on_hung, c, NULL)
                           : fetch_record(loop, c->id, on_fetch, c);
    if (rc < 0)
        free(c);
    return rc;
}

static pact_promise *child(pact_loop *loop, pact_error *cancelled, void *ud)
{
    return cancelled ? NULL : pact_promisify(loop, start, ud);
}

static void done(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    print_group(err);
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
    TRY(pact_group_wait_cb(g, done, NULL));
    pact_group_unref(g);
    return run_job(loop, NULL);
}

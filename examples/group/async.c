/* group, as stackless async functions: each child is a PACT_ASYNC frame
 * started by pact_group_go (made while the group's token is the ambient
 * one, so what it awaits is the group's); the job awaits the group's wait
 * (group.h says what the job is). */
#include "group.h"

typedef struct fetch_frame {
    PACT_ASYNC_FRAME;
    int id;
    pact_value v;
    pact_error *err;
} fetch_frame;

static pact_error *fetch_body(pact_async *a, pact_value *result)
{
    (void)result;
    fetch_frame *f = (fetch_frame *)a;
    pact_loop *loop = pact_async_loop(a);
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_AWAIT_ERR(a,
                         f->id == HUNG ? pact_delay(loop, 60000, NULL)
                                       : fetch_record_p(loop, f->id),
                         &f->v, f->err);
    print_child(f->id, f->err, f->err ? NULL : f->v.u.ptr);
    return f->err;
    PACT_ASYNC_END(a);
}

static pact_promise *child(pact_loop *loop, pact_error *cancelled, void *ud)
{
    if (cancelled)
        return NULL;
    fetch_frame *f = pact_async_new(loop, sizeof *f, fetch_body);
    if (!f)
        return NULL;
    f->id = *(const int *)ud;
    return pact_async_start(f);
}

typedef struct job_frame {
    PACT_ASYNC_FRAME;
    pact_group *g;
    pact_error *err;
} job_frame;

static pact_error *job_body(pact_async *a, pact_value *result)
{
    (void)result;
    job_frame *j = (job_frame *)a;
    PACT_ASYNC_BEGIN(a);
    printf("group: fetching %zu records, 2 at a time, %d ms deadline\n", NIDS,
           DEADLINE_MS);
    TRY(pact_group_new(pact_async_loop(a), &group_opts, &j->g));
    for (size_t i = 0; i < NIDS; i++)
        TRY(pact_group_go(j->g, child, (void *)&ids[i]));
    PACT_ASYNC_AWAIT_ERR(a, pact_group_wait(j->g), NULL, j->err);
    pact_group_unref(j->g);
    print_group(j->err);
    pact_error_unref(j->err);
    return NULL;
    PACT_ASYNC_END(a);
}

int main(void)
{
    pact_loop *loop;
    TRY(pact_loop_new(&loop));
    job_frame *j = pact_async_new(loop, sizeof *j, job_body);
    return run_job(loop, j ? pact_async_start(j) : NULL);
}

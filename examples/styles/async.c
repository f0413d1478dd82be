/* styles, async style: the job of callbacks.c (read records 1 to 3 one after
 * another, retrying a fetch once when it times out, then a summary) written
 * as stackless PACT_ASYNC functions; it prints the same trace.
 *
 * What changes from task.c: the code reads almost the same, but each
 * function that awaits is coloured. read_record cannot simply be called: it
 * is an async function of its own -- a frame struct, a body and a starter
 * that returns a promise -- and the job awaits that promise. The body is
 * re-entered at each await rather than resumed, so what must survive an
 * await (the loop counter, the totals) lives in the frame, not in locals.
 * In exchange, a suspended function costs its frame, not a stack.
 *
 * In Node terms, exactly the code in the comment of callbacks.c: two async
 * functions, one awaiting the other.
 */
#include <stdio.h>
#include <string.h>

#include "fetch.h"

#include "../debug.h"

/* ---- read_record: an async function of its own --------------------------- */

struct read_record {
    PACT_ASYNC_FRAME;
    int id; /* its argument */
};

static pact_error *read_record_body(pact_async *a, pact_value *result)
{
    struct read_record *f = (struct read_record *)a;
    pact_error *err; /* locals are fine between awaits, not across them */
    pact_value v;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_AWAIT_ERR(a, fetch_record_p(pact_async_loop(a), f->id), &v, err);
    if (err) {
        if (pact_error_code(err) != PACT_ETIMEDOUT)
            return err; /* rejects read_record's promise */
        print_failure(f->id, "retrying after", err);
        pact_error_unref(err);
        PACT_ASYNC_TRY(a, fetch_record_p(pact_async_loop(a), f->id), &v);
    }
    *result = v; /* last, after every await: the record's pointer */
    PACT_ASYNC_END(a);
}

/* The starter: a frame with the arguments, run until its first await.
 * @return the promise of the record (a new reference), NULL: no memory. */
static pact_promise *read_record(pact_loop *loop, int id)
{
    struct read_record *f = pact_async_new(loop, sizeof *f, read_record_body);
    if (!f)
        return NULL;
    f->id = id;
    return pact_async_start(f);
}

/* ---- the job: the loop, with its state in the frame ---------------------- */

struct job {
    PACT_ASYNC_FRAME;
    int id; /* crosses the await: the loop counter */
    int read, failed;
    int64_t total;
};

static pact_error *job_body(pact_async *a, pact_value *result)
{
    (void)result; /* fulfils with nothing */
    struct job *f = (struct job *)a;
    pact_error *err;
    pact_value v;
    PACT_ASYNC_BEGIN(a);
    for (f->id = 1; f->id <= 3; f->id++) {
        PACT_ASYNC_AWAIT_ERR(a, read_record(pact_async_loop(a), f->id), &v,
                             err);
        if (err) {
            print_failure(f->id, "failed with", err);
            pact_error_unref(err);
            f->failed++;
            continue;
        }
        const struct record *rec = v.u.ptr; /* no resume jumps over it */
        print_record(rec);
        f->read++;
        f->total += rec->amount;
    }
    print_summary(f->read, f->failed, f->total);
    PACT_ASYNC_END(a);
}

static pact_promise *job(pact_loop *loop)
{
    struct job *f = pact_async_new(loop, sizeof *f, job_body);
    return f ? pact_async_start(f) : NULL;
}

int main(int argc, char **argv)
{
    pact_loop *loop;
    TRY(pact_loop_new(&loop));
    TRY(example_debug(loop, argc, argv)); /* --debug */

    printf("styles: read records 1 to 3, one after another\n");
    /* Unlike a task, the job runs at once, up to its first await. */
    pact_promise *done = must(job(loop));

    return run_job(loop, done);
}

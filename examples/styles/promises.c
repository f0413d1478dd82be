/* styles, promise style: the job of callbacks.c (read records 1 to 3 one
 * after another, retrying a fetch once when it times out, then a summary)
 * written with promises; it prints the same trace.
 *
 * What changes: the retry is a catch handler that returns the second
 * fetch's promise for the chain to adopt, and the error of a step skips to
 * the next handler that takes errors on its own. What stays: a loop over
 * asynchronous steps is still written by hand, as a handler that starts the
 * next read and returns its promise; and a closure's variables (the loop,
 * the current id) still live in the ud pointer.
 *
 * In Node terms:
 *
 *   const readRecord = (id) => fetchRecord(id).catch((e) => {
 *     if (e.code !== 'ETIMEDOUT') throw e;
 *     return fetchRecord(id);                  // one retry
 *   });
 *   const next = (id) => readRecord(id).then(ok, fail)   // both go on
 *     .then(() => id < 3 ? next(id + 1) : undefined);
 *   next(1).then(summarise);
 */
#include <stdio.h>
#include <string.h>

#include "fetch.h"

#include "../debug.h"

/* What the handlers share: the job. */
struct job {
    pact_loop *loop;
    int id; /* the record being read */
    int read, failed;
    int64_t total;
};

/* ---- read_record: a promise of the record, one retry after a timeout ---- */

static pact_value retry_on_timeout(pact_error *err, void *ud)
{
    struct job *j = ud;
    if (pact_error_code(err) != PACT_ETIMEDOUT)
        return pact_throw(pact_error_ref(err)); /* rethrow: err is borrowed */
    print_failure(j->id, "retrying after", err);
    return pact_promise_v(must(fetch_record_p(j->loop, j->id))); /* adopt */
}

static pact_promise *read_record(struct job *j)
{
    pact_promise *first = must(fetch_record_p(j->loop, j->id));
    pact_promise *p = must(pact_catch(first, retry_on_timeout, j));
    pact_promise_unref(first); /* p's reaction holds what it needs */
    return p;
}

/* ---- the job: each read's handler starts the next one -------------------- */

static pact_promise *next_record(struct job *j);

static pact_value on_record(pact_error *err, const pact_value *v, void *ud)
{
    struct job *j = ud;
    if (err) {
        print_failure(j->id, "failed with", err);
        j->failed++;
    } else {
        const struct record *rec = v->u.ptr;
        print_record(rec);
        j->read++;
        j->total += rec->amount;
    }
    if (++j->id > 3)
        return pact_nothing();
    return pact_promise_v(next_record(j)); /* the chain waits for the rest */
}

static pact_promise *next_record(struct job *j)
{
    pact_promise *r = read_record(j);
    pact_promise *p = must(pact_then_cb(r, on_record, j));
    pact_promise_unref(r);
    return p;
}

static pact_value summarise(const pact_value *v, void *ud)
{
    (void)v;
    struct job *j = ud;
    print_summary(j->read, j->failed, j->total);
    return pact_nothing();
}

int main(int argc, char **argv)
{
    struct job j = {.id = 1};
    TRY(pact_loop_new(&j.loop));
    TRY(example_debug(j.loop, argc, argv)); /* --debug */

    printf("styles: read records 1 to 3, one after another\n");
    pact_promise *reads = next_record(&j);
    pact_promise *done = must(pact_then(reads, summarise, NULL, &j));
    pact_promise_unref(reads); /* the chain holds itself together */

    return run_job(j.loop, done);
}

/* styles, callback style: read records 1 to 3 one after another, retrying a
 * fetch once when it times out, then print a summary. promises.c, task.c
 * and async.c are the same job in the other styles; all four print the same
 * trace (test/fixtures/styles.out) and use the same fetch (fetch.c).
 *
 * In Node terms:
 *
 *   async function readRecord(id) {
 *     try { return await fetchRecord(id); }
 *     catch (e) { if (e.code !== 'ETIMEDOUT') throw e; }
 *     return await fetchRecord(id);            // one retry
 *   }
 *   for (let id = 1; id <= 3; id++)
 *     try { total += (await readRecord(id)).amount; read++; }
 *     catch (e) { failed++; }
 *
 * In this style each step is a function called when the one before ends,
 * and what crosses from one step to the next lives in a struct: the retry's
 * state in a small request of its own, the job's in the job. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"

#include "../debug.h"

/* ---- read_record: one fetch, and one retry after a timeout -------------- */

struct read_req {
    pact_loop *loop;
    int id;
    bool retried;
    fetch_cb cb; /* the caller's callback, called once */
    void *ud;
};

static void read_done(pact_error *err, const struct record *rec, void *ud)
{
    struct read_req *r = ud;
    if (err && pact_error_code(err) == PACT_ETIMEDOUT && !r->retried) {
        print_failure(r->id, "retrying after", err);
        r->retried = true;
        TRY(fetch_record(r->loop, r->id, read_done, r)); /* r goes on */
        return;
    }
    r->cb(err, rec, r->ud);
    free(r);
}

/* As fetch_record, with the retry. */
static int read_record(pact_loop *loop, int id, fetch_cb cb, void *ud)
{
    struct read_req *r = malloc(sizeof *r);
    if (!r)
        return PACT_ENOMEM;
    *r = (struct read_req){loop, id, false, cb, ud};
    int rc = fetch_record(loop, id, read_done, r);
    if (rc < 0)
        free(r);
    return rc;
}

/* ---- the job: the loop over the records, by hand ------------------------- */

struct job {
    pact_loop *loop;
    int id; /* the record being read */
    int read, failed;
    int64_t total;
};

static void next_record(struct job *j);

static void on_record(pact_error *err, const struct record *rec, void *ud)
{
    struct job *j = ud;
    if (err) {
        print_failure(j->id, "failed with", err);
        j->failed++;
    } else {
        print_record(rec);
        j->read++;
        j->total += rec->amount;
    }
    j->id++;
    next_record(j);
}

static void next_record(struct job *j)
{
    if (j->id <= 3)
        TRY(read_record(j->loop, j->id, on_record, j));
    else
        print_summary(j->read, j->failed, j->total);
}

int main(int argc, char **argv)
{
    struct job j = {.id = 1};
    TRY(pact_loop_new(&j.loop));
    TRY(example_debug(j.loop, argc, argv)); /* --debug */

    printf("styles: read records 1 to 3, one after another\n");
    next_record(&j);

    return run_job(j.loop, NULL);
}

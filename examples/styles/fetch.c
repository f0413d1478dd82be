/* styles: the fake fetch and its promise twin, and the shared trace lines
 * (see fetch.h). */
#include "fetch.h"

#include <stdio.h>
#include <stdlib.h>

const char example_name[] = "styles";

#define FETCH_MS 10

/* The store: records 1 and 2 (3 is missing), and how often each id was
 * asked for, which is what the script looks at. */
static const struct record store[] = {
    {1, "ada", 120},
    {2, "brian", 80},
};
static int tries[8];

/* One fetch in flight: what its timer's callback needs. */
struct fetch {
    int id;
    int try;
    fetch_cb cb;
    void *ud;
};

/* The store's answer to try @p try of record @p id: NULL and *@p rec set,
 * or an error (a new reference). */
static pact_error *answer(int id, int try, const struct record **rec)
{
    *rec = NULL;
    if (id == 2 && try == 1)
        return PACT_ERROR(PACT_ETIMEDOUT, "no answer in %d ms", FETCH_MS);
    for (size_t i = 0; i < sizeof store / sizeof store[0]; i++)
        if (store[i].id == id) {
            *rec = &store[i];
            return NULL;
        }
    return PACT_ERROR(PACT_ENOENT, "no such record");
}

static void fetched(pact_error *err, void *ud)
{
    struct fetch *f = ud;
    const struct record *rec = NULL;
    pact_error *own = err ? NULL : answer(f->id, f->try, &rec);
    f->cb(err ? err : own, rec, f->ud); /* a timer error: ECANCELED */
    pact_error_unref(own);
    free(f);
}

int fetch_record(pact_loop *loop, int id, fetch_cb cb, void *ud)
{
    if (!cb || id < 0 || id >= (int)(sizeof tries / sizeof tries[0]))
        return PACT_EINVAL;
    struct fetch *f = malloc(sizeof *f);
    if (!f)
        return PACT_ENOMEM;
    *f = (struct fetch){id, tries[id] + 1, cb, ud};
    int rc = pact_timeout(loop, FETCH_MS, fetched, f, NULL);
    if (rc < 0) {
        free(f);
        return rc;
    }
    tries[id]++;
    printf("  fetch %d (try %d)\n", id, f->try);
    return 0;
}

/* ---- the promise twin: pact_promisify and a few lines -------------------- */

/* The fetch's callback settles the deferred: the record as a borrowed
 * pointer, or the error (pact_deferred_value_cb takes both). */
static void settle(pact_error *err, const struct record *rec, void *d)
{
    pact_value v = pact_ptr((void *)rec); /* static: pact never writes it */
    pact_deferred_value_cb(err, &v, d);
}

static int start_fetch(pact_loop *loop, void *args, pact_deferred *d)
{
    return fetch_record(loop, *(const int *)args, settle, d);
}

pact_promise *fetch_record_p(pact_loop *loop, int id)
{
    return pact_promisify(loop, start_fetch, &id);
}

/* ---- the trace ----------------------------------------------------------- */

void print_record(const struct record *rec)
{
    printf("  record %d: %s, %lld\n", rec->id, rec->name,
           (long long)rec->amount);
}

/* file:line is left out, so that the trace is the same wherever it builds */
void print_failure(int id, const char *what, const pact_error *err)
{
    printf("  record %d: %s %s (%s)\n", id, what,
           pact_err_name(pact_error_code(err)), pact_error_message(err));
}

void print_summary(int read, int failed, int64_t total)
{
    printf("summary: %d read, %d failed, total %lld\n", read, failed,
           (long long)total);
}

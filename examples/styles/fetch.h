/* styles: what the four versions of the job share -- the one asynchronous
 * operation they all use, and the lines of the trace that do not depend on
 * the style.
 *
 * The operation is a fake fetch of a record from a flaky store, written once
 * as an error-first callback primitive (fetch_record); its promise twin
 * (fetch_record_p) is that primitive through pact_promisify, so the promise,
 * task and async versions run exactly the code the callback version runs.
 *
 * The store is scripted, so that the trace is the same on every run: each
 * fetch takes 10 ms (a timer standing in for I/O); the first try of record 2
 * times out (ETIMEDOUT: worth a retry); record 3 does not exist (ENOENT). */
#ifndef STYLES_FETCH_H
#define STYLES_FETCH_H

#include <stdint.h>

#include <pact.h>

#include "../common/job.h" /* run_job, TRY, must */

/* A record of the store (static storage: borrowed by everyone). */
struct record {
    int id;
    const char *name;
    int64_t amount;
};

/* The fetch's callback: @p err (borrowed) is NULL and @p rec the record, or
 * @p rec is NULL. */
typedef void (*fetch_cb)(pact_error *err, const struct record *rec, void *ud);

/* Fetch record @p id: @p cb is called once, from the loop, never from inside
 * this call. @return 0, or a negative code (then @p cb is never called). */
int fetch_record(pact_loop *loop, int id, fetch_cb cb, void *ud);

/* The promise twin: fulfils with pact_ptr(record) (borrowed: the records are
 * static) or rejects with the fetch's error. @return a new reference, NULL
 * only for misuse or no memory. */
pact_promise *fetch_record_p(pact_loop *loop, int id);

/* The trace lines every style prints alike. */
void print_record(const struct record *rec);
/* "  record ID: WHAT NAME (message)", e.g. "failed with ENOENT (...)". */
void print_failure(int id, const char *what, const pact_error *err);
void print_summary(int read, int failed, int64_t total);

#endif

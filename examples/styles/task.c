/* styles, task style: the job of callbacks.c (read records 1 to 3 one after
 * another, retrying a fetch once when it times out, then a summary) written
 * as a stackful task; it prints the same trace.
 *
 * What changes: the job is straight-line code again -- a for loop, an if
 * for the retry -- and its state is ordinary locals. read_record awaits,
 * yet it is an ordinary C function that the job calls and that returns its
 * result: it runs on the task's stack, so awaiting inside it suspends the
 * whole task (no function colouring). What C adds: the error of an await is
 * an object to drop, and the value one to own (here a borrowed pointer,
 * nothing to free).
 *
 * In Go terms (a goroutine: its functions block without being marked):
 *
 *   func readRecord(id int) (*Record, error) {
 *       rec, err := fetchRecord(id)     // suspends this goroutine only
 *       if errors.Is(err, ETIMEDOUT) {
 *           rec, err = fetchRecord(id)  // one retry
 *       }
 *       return rec, err
 *   }
 */
#include <stdio.h>
#include <string.h>

#include "fetch.h"

#include "../debug.h"

/* One fetch, and one retry after a timeout. An ordinary function: it may
 * await because a task (any task) is running it. @return NULL and *@p out
 * set, or the error (a new reference). */
static pact_error *read_record(pact_loop *loop, int id,
                               const struct record **out)
{
    pact_value v;
    pact_error *err = PACT_AWAIT_ERR(fetch_record_p(loop, id), &v);
    if (err) {
        if (pact_error_code(err) != PACT_ETIMEDOUT)
            return err;
        print_failure(id, "retrying after", err);
        pact_error_unref(err);
        /* a second failure is the caller's: return it, as Rust's `?` */
        PACT_AWAIT_TRY(fetch_record_p(loop, id), &v);
    }
    *out = v.u.ptr;
    return NULL;
}

/* The task's body: the job, straight through. */
static pact_error *job(void *arg, pact_value *result)
{
    (void)result; /* fulfils with nothing */
    pact_loop *loop = arg;
    int read = 0, failed = 0;
    int64_t total = 0;
    for (int id = 1; id <= 3; id++) {
        const struct record *rec;
        pact_error *err = read_record(loop, id, &rec);
        if (err) {
            print_failure(id, "failed with", err);
            pact_error_unref(err);
            failed++;
            continue;
        }
        print_record(rec);
        read++;
        total += rec->amount;
    }
    print_summary(read, failed, total);
    return NULL;
}

int main(int argc, char **argv)
{
    pact_loop *loop;
    TRY(pact_loop_new(&loop));
    TRY(example_debug(loop, argc, argv)); /* --debug */

    printf("styles: read records 1 to 3, one after another\n");
    /* The task starts as a microtask, once the loop runs. */
    pact_promise *done = must(pact_task_spawn(loop, job, loop, NULL));

    return run_job(loop, done);
}

/* chain, promise style: the job of callbacks.c written with promises; it
 * prints the same trace. Read callbacks.c first for what the job is.
 *
 * What changes: pact_all is the join (no counter), the first error of a
 * step skips the steps after it on its own, a handler returns the next step's
 * value (or, to wait for more, a promise to adopt), and the error handler
 * sits beside the step it covers. What C adds to JavaScript: every promise a
 * call returns is a reference to drop, and a closure's variables live in the
 * ud pointer.
 *
 * The chain, in Node terms:
 *
 *   Promise.all([delay(10).then(quantity), delay(20).then(unitPrice)])
 *     .then(askDiscount)          // returns a promise of the rate
 *     .then(printTotal, orderFailed);
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pact.h>

#include "../debug.h"

/* Stop on any unexpected error code, naming the call. */
#define TRY(call)                                                              \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ < 0) {                                                         \
            fprintf(stderr, "promises: %s: %s\n", #call, pact_err_name(rc_));  \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* Functions that return a promise return NULL only for misuse or no memory. */
static pact_promise *must(pact_promise *p)
{
    if (!p) {
        fprintf(stderr, "promises: out of memory\n");
        exit(1);
    }
    return p;
}

/* What the handlers share: the values travel along the chain instead. */
struct order {
    pact_loop *loop;
    double subtotal;
};

/* Print an error and its cause on two lines, as callbacks.c does. */
static void report(const char *what, const pact_error *err)
{
    printf("  %s: %s: %s\n", what, pact_err_name(pact_error_code(err)),
           pact_error_message(err));
    const pact_error *cause = pact_error_cause(err);
    if (cause)
        printf("    caused by %s: %s\n", pact_err_name(pact_error_code(cause)),
               pact_error_message(cause));
}

/* ---- the steps: each handler returns the next step's resolution ---------- */

static pact_value quantity(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    printf("  quantity: 3\n");
    return pact_int(3);
}

static pact_value unit_price(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    printf("  unit price: %.2f\n", 2.5);
    return pact_double(2.5);
}

static pact_value discount_rate(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    double rate = 0.10; /* what the service says, when it answers in time */
    printf("  discount: %.0f%%\n", rate * 100);
    return pact_double(rate);
}

/* The discount's catch: report, and fulfil with no discount instead. */
static pact_value no_discount(pact_error *err, void *ud)
{
    (void)ud;
    report("discount: failed", err);
    printf("  discount: none, then\n");
    return pact_double(0);
}

/* After pact_all: @p v is a list of the two input promises, both fulfilled. */
static pact_value ask_discount(const pact_value *v, void *ud)
{
    struct order *o = ud;
    int64_t q = pact_promise_value(pact_list_at(v->u.list, 0))->u.i;
    double p = pact_promise_value(pact_list_at(v->u.list, 1))->u.d;
    o->subtotal = (double)q * p;
    printf("  subtotal: %lld x %.2f = %.2f\n", (long long)q, p, o->subtotal);

    printf("  discount: asked, with a 15 ms deadline\n");
    pact_abort *deadline;
    TRY(pact_abort_timeout(o->loop, 15, &deadline));
    pact_promise *answer = must(pact_delay(o->loop, 50, deadline));
    pact_abort_unref(deadline); /* the timer holds its own reference */
    pact_promise *rate =
        must(pact_then(answer, discount_rate, no_discount, NULL));
    pact_promise_unref(answer); /* rate's reaction keeps what it needs */
    /* Steals our reference to rate: the chain adopts it (two more turns). */
    return pact_promise_v(rate);
}

static pact_value print_total(const pact_value *v, void *ud)
{
    struct order *o = ud;
    printf("  total: %.2f\n", o->subtotal * (1 - v->u.d));
    return pact_nothing();
}

/* A lookup that failed: pact_all rejects with the first error. */
static pact_value order_failed(pact_error *err, void *ud)
{
    (void)ud;
    report("order failed", err);
    return pact_nothing(); /* handled: the chain ends fulfilled */
}

int main(int argc, char **argv)
{
    struct order o = {0};
    TRY(pact_loop_new(&o.loop));
    TRY(example_debug(o.loop, argc, argv)); /* --debug */

    printf("order: quantity (10 ms) and unit price (20 ms), in parallel\n");
    pact_promise *t1 = must(pact_delay(o.loop, 10, NULL));
    pact_promise *t2 = must(pact_delay(o.loop, 20, NULL));
    pact_promise *in[2] = {must(pact_then(t1, quantity, NULL, NULL)),
                           must(pact_then(t2, unit_price, NULL, NULL))};
    pact_promise *both = must(pact_all(o.loop, in, 2));
    pact_promise *rate = must(pact_then(both, ask_discount, NULL, &o));
    pact_promise *done = must(pact_then(rate, print_total, order_failed, &o));

    /* The chain holds itself together: each promise keeps the reactions that
     * wait on it, and each timer's callback keeps its deferred. Drop every
     * reference but the last; keep that one to look at after the run. */
    pact_promise_unref(t1);
    pact_promise_unref(t2);
    pact_promise_unref(in[0]);
    pact_promise_unref(in[1]);
    pact_promise_unref(both);
    pact_promise_unref(rate);

    int rc = pact_loop_run(o.loop, PACT_RUN_DEFAULT);
    if (pact_promise_state(done) != PACT_FULFILLED)
        printf("  the chain did not end fulfilled\n");
    pact_promise_unref(done); /* the last reference: the loop can go */
    int freed = pact_loop_free(o.loop);
    printf("done: pact_loop_run %d, pact_loop_free %d\n", rc, freed);
    return rc != 0 || freed != 0;
}

/* chain, promise style: the job of callbacks.c written with promises; it
 * prints the same trace. Read callbacks.c first for what the job is.
 *
 * What changes: pact_all is the join (no counter), the first error of a
 * step skips the steps after it on its own, a handler returns the next step's
 * value (or, to wait for more, a promise to adopt), and the error handler
 * sits beside the step it covers. What C adds to JavaScript: every promise a
 * call returns is a reference to drop, and a closure's variables live in the
 * ud pointer. The _take forms (pact_then_take and its kin) steal the promise
 * they are given, so a chain is still one expression: only its end is a
 * reference to drop.
 *
 * The chain, in Node terms:
 *
 *   Promise.all([delay(10).then(quantity), delay(20).then(unitPrice)])
 *     .then(askDiscount)          // returns a promise of the rate
 *     .then(totalLine, orderFailed);  // the line to print, a string
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
    if (q <= 0) /* throw new RangeError(...): rejects the rest of the chain */
        return PACT_THROW(PACT_ERANGE, "nothing to price (quantity %lld)",
                          (long long)q);
    o->subtotal = (double)q * p;
    printf("  subtotal: %lld x %.2f = %.2f\n", (long long)q, p, o->subtotal);

    printf("  discount: asked, with a 15 ms deadline\n");
    pact_abort *deadline;
    TRY(pact_abort_timeout(o->loop, 15, &deadline));
    /* delay(50, deadline).then(discountRate, noDiscount): the delay's
     * promise goes to the chain (then_take steals it) */
    pact_promise *rate = must(pact_then_take(pact_delay(o->loop, 50, deadline),
                                             discount_rate, no_discount, NULL));
    pact_abort_unref(deadline); /* the timer holds its own reference */
    /* Steals our reference to rate: the chain adopts it (two more turns). */
    return pact_promise_v(rate);
}

/* The chain's value: the line to print, a plain string (PACT_STRING). */
static pact_value total_line(const pact_value *v, void *ud)
{
    struct order *o = ud;
    return pact_string_fmt("total: %.2f", o->subtotal * (1 - v->u.d));
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
    pact_promise *in[2] = {must(pact_then_take(pact_delay(o.loop, 10, NULL),
                                               quantity, NULL, NULL)),
                           must(pact_then_take(pact_delay(o.loop, 20, NULL),
                                               unit_price, NULL, NULL))};
    /* Promise.all(in).then(askDiscount).then(totalLine, orderFailed): each
     * _take call steals the promise it is given (a NULL one, from a link
     * that could not be made, passes through as NULL), so only the end of
     * the chain is ours; keep it to look at after the run. */
    pact_promise *done = must(pact_then_take(
        pact_then_take(pact_all(o.loop, in, 2), ask_discount, NULL, &o),
        total_line, order_failed, &o));
    /* pact_all borrows its inputs: drop ours. The chain holds itself
     * together: each promise keeps the reactions that wait on it, and each
     * timer's callback keeps its deferred. */
    pact_promise_unref(in[0]);
    pact_promise_unref(in[1]);

    int rc = pact_loop_run(o.loop, PACT_RUN_DEFAULT);
    if (pact_promise_state(done) != PACT_FULFILLED)
        printf("  the chain did not end fulfilled\n");
    const char *line = pact_value_string(pact_promise_value(done));
    if (line) /* NULL when order_failed handled a failure */
        printf("  %s\n", line);
    pact_promise_unref(done); /* the last reference: the loop can go */
    int freed = pact_loop_free(o.loop);
    printf("done: pact_loop_run %d, pact_loop_free %d\n", rc, freed);
    return rc != 0 || freed != 0;
}

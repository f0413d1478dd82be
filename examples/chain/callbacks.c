/* chain, callback style: one small job written with error-first callbacks.
 * promises.c is the same job in the promise style; both print the same trace
 * (compare them side by side: what differs is only how the steps are joined).
 *
 * The job prices an order. It looks up a quantity (10 ms) and a unit price
 * (20 ms) at once, multiplies them once both are in, then asks for a
 * discount with a 15 ms deadline. The discount service takes 50 ms, so the
 * deadline passes: the error is reported and handled, and the total is
 * printed without a discount. A "lookup" is a timer standing in for I/O.
 *
 * In Node terms:
 *
 *   const [q, p] = await Promise.all([lookup(10, 3), lookup(20, 2.5)]);
 *   let rate;
 *   try { rate = await lookup(50, 0.1, AbortSignal.timeout(15)); }
 *   catch (e) { rate = 0; }
 *   console.log(q * p * (1 - rate));
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
            fprintf(stderr, "callbacks: %s: %s\n", #call, pact_err_name(rc_)); \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* The job's state: in this style, everything the steps share lives here. */
struct order {
    pact_loop *loop;
    int pending;      /* lookups still out: Promise.all, by hand */
    pact_error *err;  /* the first lookup that failed (a reference) */
    int64_t quantity; /* the results, as they come in */
    double price;
    double subtotal;
};

/* Print an error and its cause on two lines (file:line left out, so the
 * trace is the same wherever it is built). */
static void report(const char *what, const pact_error *err)
{
    printf("  %s: %s: %s\n", what, pact_err_name(pact_error_code(err)),
           pact_error_message(err));
    const pact_error *cause = pact_error_cause(err);
    if (cause)
        printf("    caused by %s: %s\n", pact_err_name(pact_error_code(cause)),
               pact_error_message(cause));
}

static void on_discount(pact_error *err, void *ud)
{
    struct order *o = ud;
    double rate = 0.10; /* what the service says, when it answers in time */
    if (err) {
        report("discount: failed", err);
        printf("  discount: none, then\n");
        rate = 0;
    } else {
        printf("  discount: %.0f%%\n", rate * 100);
    }
    printf("  total: %.2f\n", o->subtotal * (1 - rate));
}

/* Both lookups call this when they end: the last one goes on. */
static void joined(struct order *o, pact_error *err)
{
    if (err && !o->err)
        o->err = pact_error_ref(err); /* keep it past the callback */
    if (--o->pending > 0)
        return;
    if (o->err) {
        report("order failed", o->err);
        return;
    }
    o->subtotal = (double)o->quantity * o->price;
    printf("  subtotal: %lld x %.2f = %.2f\n", (long long)o->quantity, o->price,
           o->subtotal);

    /* The next step, with a deadline: a token that aborts itself in 15 ms
     * cancels the 50 ms lookup (its callback gets ECANCELED). */
    printf("  discount: asked, with a 15 ms deadline\n");
    pact_abort *deadline;
    TRY(pact_abort_timeout(o->loop, 15, &deadline));
    pact_timer_opts opts = {.delay_ms = 50, .abort = deadline};
    TRY(pact_timer_start(o->loop, &opts, on_discount, o, NULL));
    pact_abort_unref(deadline); /* the timer holds its own reference */
}

static void on_quantity(pact_error *err, void *ud)
{
    struct order *o = ud;
    if (!err) {
        o->quantity = 3;
        printf("  quantity: %lld\n", (long long)o->quantity);
    }
    joined(o, err);
}

static void on_price(pact_error *err, void *ud)
{
    struct order *o = ud;
    if (!err) {
        o->price = 2.5;
        printf("  unit price: %.2f\n", o->price);
    }
    joined(o, err);
}

int main(int argc, char **argv)
{
    struct order o = {0};
    TRY(pact_loop_new(&o.loop));
    TRY(example_debug(o.loop, argc, argv)); /* --debug */

    printf("order: quantity (10 ms) and unit price (20 ms), in parallel\n");
    o.pending = 2;
    TRY(pact_timeout(o.loop, 10, on_quantity, &o, NULL));
    TRY(pact_timeout(o.loop, 20, on_price, &o, NULL));

    int rc = pact_loop_run(o.loop, PACT_RUN_DEFAULT);
    pact_error_unref(o.err); /* NULL-safe */
    int freed = pact_loop_free(o.loop);
    printf("done: pact_loop_run %d, pact_loop_free %d\n", rc, freed);
    return rc != 0 || freed != 0;
}

/* make bench: the promise benchmarks and their Node anchors. Raw libevent
 * has no promise, so Node (whose semantics pact copies) is the one anchor.
 * Every run checks its outcome (the count of reactions that ran and the
 * values they saw) and fails loudly otherwise, so a broken build cannot
 * print a fast figure; every promise, deferred and loop is freed, and
 * pact_loop_free must succeed. README.md says what each figure measures.
 */
#include "config.h"

#include "bench.h"

#include <pact.h>
#include <stdlib.h>

#define CHAIN 1000000u   /* promise.chain: reactions in one then chain */
#define FANOUT 1000000u  /* promise.fanout: independent reactions */
#define PENDING 1000000u /* promise.pending_bytes: pending promises */
#define ALL 100000u      /* promise.all: inputs of one pact_all */

static void expect_count(const char *what, size_t got, size_t want)
{
    if (got != want)
        bench_fail("%s: %zu of %zu reactions ran", what, got, want);
}

static void expect_int(const char *what, const pact_value *v)
{
    if (!v || v->kind != PACT_INT)
        bench_fail("%s: a handler got a value of kind %d, not an int", what,
                   v ? (int)v->kind : -1);
}

/* The counters every benchmark's handlers update, and the loop of the timed
 * benchmarks: one for the warm-up and the measured runs, as a program's
 * loop lives on, so that the runs after the warm-up find its promise slabs
 * made and their pages mapped, as Node's runs find its heap grown. */
typedef struct reactions {
    pact_loop *loop;
    size_t n, count;
    int64_t sum;
    double t0, t1;
} reactions;

static double per_reaction(const reactions *r)
{
    return (r->t1 - r->t0) / (double)r->n;
}

/* Run @p fn as bench_best does, on one loop freed afterwards: it must free,
 * so every promise of every run was released. */
static void best_on_loop(bench_run_fn fn, reactions *r, void *ctx,
                         double best[BENCH_MAX_FIGS])
{
    r->loop = bench_new_loop();
    bench_best(fn, ctx, best);
    BENCH_CHECK(pact_loop_free(r->loop));
    r->loop = NULL;
}

/* ======================================================================
 * promise.chain: a chain of CHAIN thens built on a pending deferred's
 * promise; then the root is resolved with 0 and the loop run. Each handler
 * returns its value + 1, so the last promise must hold CHAIN. Figure: wall
 * ns per reaction, from making the deferred to the last handler's return
 * (build and run together, as node/promise_chain.js times it).
 * ====================================================================== */

static pact_value chain_step(const pact_value *v, void *ud)
{
    reactions *r = ud;
    expect_int("promise.chain", v);
    if (++r->count == r->n)
        r->t1 = bench_wall_ns();
    return pact_int(v->u.i + 1);
}

static void pact_chain_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    reactions *r = ctx;
    pact_promise *p = NULL;

    r->count = 0;
    r->t0 = bench_wall_ns();
    pact_deferred *d = bench_new_deferred(r->loop, &p);
    for (size_t i = 0; i < r->n; i++) {
        pact_promise *q =
            bench_must(pact_then(p, chain_step, NULL, r), "pact_then");
        pact_promise_unref(p); /* the reaction keeps what it needs */
        p = q;
    }
    BENCH_CHECK(pact_deferred_resolve(d, pact_int(0)));
    pact_deferred_unref(d);
    bench_run_loop(r->loop);

    expect_count("promise.chain", r->count, r->n);
    const pact_value *v = pact_promise_value(p);
    if (!v || v->kind != PACT_INT || v->u.i != (int64_t)r->n)
        bench_fail("promise.chain: the last promise does not hold %zu", r->n);
    figs[0] = per_reaction(r);
    pact_promise_unref(p);
}

static void bench_chain(void)
{
    reactions r = {.n = CHAIN};
    double pact[BENCH_MAX_FIGS], node = -1;

    best_on_loop(pact_chain_run, &r, &r, pact);
    bench_node("promise_chain.js", &node, 1);
    bench_anchor a[] = {{"node", node}};
    bench_print("promise.chain", "ns", pact[0], a, 1);
}

/* ======================================================================
 * promise.fanout: FANOUT independent reactions, each a then on a resolved
 * promise (pact_resolved(i), pact_then, both references dropped at once:
 * Promise.resolve(i).then(f) in Node), then the loop runs them all. The
 * handlers sum their values. Figure: wall ns per reaction, from the first
 * pact_resolved to the last handler.
 * ====================================================================== */

/* Sums the values and stops the clock at the last one. */
static pact_value sum_step(const pact_value *v, void *ud)
{
    reactions *r = ud;
    expect_int("sum_step", v);
    r->sum += v->u.i;
    if (++r->count == r->n)
        r->t1 = bench_wall_ns();
    return pact_nothing();
}

static void expect_sum(const char *what, const reactions *r)
{
    int64_t n = (int64_t)r->n;
    if (r->sum != n * (n - 1) / 2)
        bench_fail("%s: the handlers saw the wrong values (sum %lld)", what,
                   (long long)r->sum);
}

static void pact_fanout_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    reactions *r = ctx;

    r->count = 0;
    r->sum = 0;
    r->t0 = bench_wall_ns();
    for (size_t i = 0; i < r->n; i++) {
        pact_promise *p = bench_must(
            pact_resolved(r->loop, pact_int((int64_t)i)), "pact_resolved");
        pact_promise *q =
            bench_must(pact_then(p, sum_step, NULL, r), "pact_then");
        pact_promise_unref(p);
        pact_promise_unref(q);
    }
    bench_run_loop(r->loop);

    expect_count("promise.fanout", r->count, r->n);
    expect_sum("promise.fanout", r);
    figs[0] = per_reaction(r);
}

static void bench_fanout(void)
{
    reactions r = {.n = FANOUT};
    double pact[BENCH_MAX_FIGS], node = -1;

    best_on_loop(pact_fanout_run, &r, &r, pact);
    bench_node("promise_fanout.js", &node, 1);
    bench_anchor a[] = {{"node", node}};
    bench_print("promise.fanout", "ns", pact[0], a, 1);
}

/* ======================================================================
 * promise.pending_bytes: PENDING pending promises, each with its deferred
 * and one then on it, all three kept (as Node keeps the promise, its
 * resolve function and the promise then returns). Figure: bytes of heap
 * per pending promise: the allocator's count of bytes in use (mallinfo2:
 * uordblks + hblkhd, so slabs and mmap'd blocks count whole, not the
 * number of mallocs) after making them, minus before. Then every deferred
 * resolves, the loop runs the reactions and everything is freed. Each run
 * has a new loop, whose slabs are counted as they are made.
 * ====================================================================== */

typedef struct pending_ctx {
    reactions r;
    pact_deferred **d;
    pact_promise **p, **q;
} pending_ctx;

static void pact_pending_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    pending_ctx *c = ctx;
    size_t n = c->r.n;
    pact_loop *loop = bench_new_loop();

    c->r.count = 0;
    c->r.sum = 0;
    double before = bench_heap_bytes();
    for (size_t i = 0; i < n; i++) {
        c->d[i] = bench_new_deferred(loop, &c->p[i]);
        c->q[i] =
            bench_must(pact_then(c->p[i], sum_step, NULL, &c->r), "pact_then");
    }
    figs[0] = (bench_heap_bytes() - before) / (double)n;

    for (size_t i = 0; i < n; i++) {
        if (pact_promise_state(c->p[i]) != PACT_PENDING)
            bench_fail("promise.pending_bytes: a promise is not pending");
        BENCH_CHECK(pact_deferred_resolve(c->d[i], pact_int((int64_t)i)));
        pact_deferred_unref(c->d[i]);
    }
    bench_run_loop(loop);
    expect_count("promise.pending_bytes", c->r.count, n);
    expect_sum("promise.pending_bytes", &c->r);
    for (size_t i = 0; i < n; i++) {
        if (pact_promise_state(c->q[i]) != PACT_FULFILLED)
            bench_fail("promise.pending_bytes: a derived promise is %d",
                       (int)pact_promise_state(c->q[i]));
        pact_promise_unref(c->p[i]);
        pact_promise_unref(c->q[i]);
    }
    BENCH_CHECK(pact_loop_free(loop));
}

static void bench_pending(void)
{
    pending_ctx c = {.r = {.n = PENDING}};
    double pact[BENCH_MAX_FIGS], node = -1;

    /* The arrays that keep them are the program's, made beforehand. */
    c.d = malloc(PENDING * sizeof *c.d);
    c.p = malloc(PENDING * sizeof *c.p);
    c.q = malloc(PENDING * sizeof *c.q);
    if (!c.d || !c.p || !c.q)
        bench_fail("out of memory");
    bench_best(pact_pending_run, &c, pact);
    free(c.q);
    free(c.p);
    free(c.d);
    bench_node("promise_pending.js", &node, 1);
    bench_anchor a[] = {{"node", node}};
    bench_print("promise.pending_bytes", "B", pact[0], a, 1);
}

/* ======================================================================
 * promise.all: pact_all over ALL pending promises (made beforehand, with
 * their deferreds), a then on the result, then every deferred resolves
 * with its index in input order and the loop runs. Figure: wall ns per
 * input, from pact_all to the start of the all-promise's reaction; the
 * reaction then checks that the list holds every value in input order.
 * ====================================================================== */

typedef struct all_ctx {
    reactions r;
    pact_deferred **d;
    pact_promise **p;
} all_ctx;

static pact_value all_done(const pact_value *v, void *ud)
{
    all_ctx *c = ud;
    c->r.t1 = bench_wall_ns();
    c->r.count++;
    if (v->kind != PACT_LIST || pact_list_len(v->u.list) != c->r.n)
        bench_fail("promise.all: not a list of %zu values", c->r.n);
    for (size_t i = 0; i < c->r.n; i++) {
        const pact_value *e = pact_promise_value(pact_list_at(v->u.list, i));
        if (!e || e->kind != PACT_INT || e->u.i != (int64_t)i)
            bench_fail("promise.all: value %zu is wrong", i);
    }
    return pact_nothing();
}

static void pact_all_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    all_ctx *c = ctx;
    size_t n = c->r.n;
    pact_loop *loop = c->r.loop;

    c->r.count = 0;
    for (size_t i = 0; i < n; i++)
        c->d[i] = bench_new_deferred(loop, &c->p[i]);

    c->r.t0 = bench_wall_ns();
    pact_promise *all = bench_must(pact_all(loop, c->p, n), "pact_all");
    pact_promise *done =
        bench_must(pact_then(all, all_done, NULL, c), "pact_then");
    for (size_t i = 0; i < n; i++) {
        BENCH_CHECK(pact_deferred_resolve(c->d[i], pact_int((int64_t)i)));
        pact_deferred_unref(c->d[i]);
    }
    bench_run_loop(loop);

    expect_count("promise.all", c->r.count, 1);
    figs[0] = per_reaction(&c->r);
    pact_promise_unref(done);
    pact_promise_unref(all);
    for (size_t i = 0; i < n; i++)
        pact_promise_unref(c->p[i]);
}

static void bench_all(void)
{
    all_ctx c = {.r = {.n = ALL}};
    double pact[BENCH_MAX_FIGS], node = -1;

    c.d = malloc(ALL * sizeof *c.d);
    c.p = malloc(ALL * sizeof *c.p);
    if (!c.d || !c.p)
        bench_fail("out of memory");
    best_on_loop(pact_all_run, &c.r, &c, pact);
    free(c.p);
    free(c.d);
    bench_node("promise_all.js", &node, 1);
    bench_anchor a[] = {{"node", node}};
    bench_print("promise.all", "ns", pact[0], a, 1);
}

/* The registry, in the order `bench` runs them. */
const bench_def bench_promise[] = {
    {"promise.chain", bench_chain},
    {"promise.fanout", bench_fanout},
    {"promise.pending_bytes", bench_pending},
    {"promise.all", bench_all},
    {NULL, NULL},
};

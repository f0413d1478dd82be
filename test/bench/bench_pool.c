/* make bench: the offload pool against libuv's thread pool (uv_queue_work),
 * measured in the same run. Both with their default sizes. Every run counts
 * its callbacks and checks the jobs' results, so a broken build cannot print
 * a fast figure. README.md says what each measures. */
#include "config.h"

#include "bench.h"

#include <pact.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef HAVE_LIBUV
#include <uv.h>
#endif

#define ROUND_TRIPS 100000u /* pool.round_trip */
#define JOBS 1000000u       /* pool.throughput */

static void expect(const char *what, uint64_t got, uint64_t want)
{
    if (got != want)
        bench_fail("%s: got %llu, expected %llu", what, (unsigned long long)got,
                   (unsigned long long)want);
}

/* The job, the same for both: a trivial computation on its argument. */
static uint64_t work(uint64_t x)
{
    return x * 2 + 1;
}

/* The sum of work(i) for i < n. */
static uint64_t expected_sum(uint64_t n)
{
    return n * (n - 1) + n;
}

typedef struct pool_ctx {
    uint64_t n, count, sum;
    double t0, t1;
    pact_loop *loop;
#ifdef HAVE_LIBUV
    uv_loop_t uv;
    uv_work_t *reqs; /* JOBS of them, allocated once (as a program would) */
#endif
} pool_ctx;

/* ======================================================================
 * pool.round_trip: one job at a time, each submitted from the previous one's
 * callback: wall ns per round trip (loop -> pool thread -> loop).
 * pool.throughput: JOBS jobs submitted at once from one callback, then the
 * loop runs until all are called back: wall ns per job, first submission to
 * last callback.
 * ====================================================================== */

static pact_error *pact_job_fn(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    *result = pact_int((int64_t)work((uint64_t)(uintptr_t)arg));
    return NULL;
}

static void pact_rt_cb(pact_error *err, pact_value *result, void *ud)
{
    pool_ctx *c = ud;
    if (err)
        bench_fail("pact_offload: callback got an error");
    c->sum += (uint64_t)result->u.i;
    if (++c->count < c->n)
        BENCH_CHECK(pact_offload(c->loop, pact_job_fn,
                                 (void *)(uintptr_t)c->count, NULL, pact_rt_cb,
                                 c));
    else
        c->t1 = bench_wall_ns();
}

static void pact_rt_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    pool_ctx *c = ctx;
    c->n = ROUND_TRIPS;
    c->count = c->sum = 0;
    c->t0 = bench_wall_ns();
    BENCH_CHECK(
        pact_offload(c->loop, pact_job_fn, (void *)0, NULL, pact_rt_cb, c));
    BENCH_CHECK(pact_loop_run(c->loop, PACT_RUN_DEFAULT));
    expect("pact round trips", c->count, c->n);
    expect("pact round-trip results", c->sum, expected_sum(c->n));
    figs[0] = (c->t1 - c->t0) / (double)c->n;
}

static void pact_tp_cb(pact_error *err, pact_value *result, void *ud)
{
    pool_ctx *c = ud;
    if (err)
        bench_fail("pact_offload: callback got an error");
    c->sum += (uint64_t)result->u.i;
    if (++c->count == c->n)
        c->t1 = bench_wall_ns();
}

static void pact_tp_submit(pact_error *err, void *ud)
{
    pool_ctx *c = ud;
    if (err)
        bench_fail("pact_immediate: callback got an error");
    c->t0 = bench_wall_ns();
    for (uint64_t i = 0; i < c->n; i++)
        BENCH_CHECK(pact_offload(c->loop, pact_job_fn, (void *)(uintptr_t)i,
                                 NULL, pact_tp_cb, c));
}

static void pact_tp_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    pool_ctx *c = ctx;
    c->n = JOBS;
    c->count = c->sum = 0;
    BENCH_CHECK(pact_immediate(c->loop, pact_tp_submit, c, NULL));
    BENCH_CHECK(pact_loop_run(c->loop, PACT_RUN_DEFAULT));
    expect("pact jobs", c->count, c->n);
    expect("pact job results", c->sum, expected_sum(c->n));
    figs[0] = (c->t1 - c->t0) / (double)c->n;
}

#ifdef HAVE_LIBUV
static void uv_job_fn(uv_work_t *req)
{
    req->data = (void *)(uintptr_t)work((uint64_t)(uintptr_t)req->data);
}

static pool_ctx *uv_ctx; /* uv_work_t's data carries the job's value */

static void uv_rt_cb(uv_work_t *req, int status)
{
    pool_ctx *c = uv_ctx;
    BENCH_CHECK(status);
    c->sum += (uint64_t)(uintptr_t)req->data;
    if (++c->count < c->n) {
        req->data = (void *)(uintptr_t)c->count;
        BENCH_CHECK(uv_queue_work(&c->uv, req, uv_job_fn, uv_rt_cb));
    } else {
        c->t1 = bench_wall_ns();
    }
}

static void uv_rt_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    pool_ctx *c = ctx;
    c->n = ROUND_TRIPS;
    c->count = c->sum = 0;
    c->t0 = bench_wall_ns();
    c->reqs[0].data = (void *)0;
    BENCH_CHECK(uv_queue_work(&c->uv, &c->reqs[0], uv_job_fn, uv_rt_cb));
    BENCH_CHECK(uv_run(&c->uv, UV_RUN_DEFAULT));
    expect("libuv round trips", c->count, c->n);
    expect("libuv round-trip results", c->sum, expected_sum(c->n));
    figs[0] = (c->t1 - c->t0) / (double)c->n;
}

static void uv_tp_cb(uv_work_t *req, int status)
{
    pool_ctx *c = uv_ctx;
    BENCH_CHECK(status);
    c->sum += (uint64_t)(uintptr_t)req->data;
    if (++c->count == c->n)
        c->t1 = bench_wall_ns();
}

static void uv_tp_submit(uv_timer_t *t)
{
    pool_ctx *c = t->data;
    c->t0 = bench_wall_ns();
    for (uint64_t i = 0; i < c->n; i++) {
        c->reqs[i].data = (void *)(uintptr_t)i;
        BENCH_CHECK(uv_queue_work(&c->uv, &c->reqs[i], uv_job_fn, uv_tp_cb));
    }
}

static void uv_tp_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    pool_ctx *c = ctx;
    uv_timer_t start;
    c->n = JOBS;
    c->count = c->sum = 0;
    BENCH_CHECK(uv_timer_init(&c->uv, &start));
    start.data = c;
    BENCH_CHECK(uv_timer_start(&start, uv_tp_submit, 0, 0));
    BENCH_CHECK(uv_run(&c->uv, UV_RUN_DEFAULT));
    expect("libuv jobs", c->count, c->n);
    expect("libuv job results", c->sum, expected_sum(c->n));
    figs[0] = (c->t1 - c->t0) / (double)c->n;
    uv_close((uv_handle_t *)&start, NULL);
    BENCH_CHECK(uv_run(&c->uv, UV_RUN_DEFAULT));
}
#endif

/* One loop for the warm-up and the measured runs, as a program's lives on:
 * the measured runs find the pool's threads started and the jobs' slabs
 * made, as libuv's find its pool started (once per process). */
static void bench_pool_figure(const char *name, bench_run_fn pact_run,
                              bench_run_fn uv_run_fn)
{
    pool_ctx c = {0};
    double pact[BENCH_MAX_FIGS], uv[BENCH_MAX_FIGS] = {-1};

    BENCH_CHECK(pact_loop_new(&c.loop));
    BENCH_CHECK(pact_offload_set_limit(c.loop, PACT_LANE_CPU, JOBS));
    bench_best(pact_run, &c, pact);
    BENCH_CHECK(pact_loop_free(c.loop));
#ifdef HAVE_LIBUV
    c.reqs = malloc(JOBS * sizeof *c.reqs);
    if (!c.reqs)
        bench_fail("out of memory");
    uv_ctx = &c;
    BENCH_CHECK(uv_loop_init(&c.uv));
    bench_best(uv_run_fn, &c, uv);
    BENCH_CHECK(uv_loop_close(&c.uv));
    free(c.reqs);
#else
    (void)uv_run_fn;
#endif
    bench_anchor a[] = {{"libuv", uv[0]}};
    bench_print(name, "ns", pact[0], a, 1);
}

static void bench_round_trip(void)
{
#ifdef HAVE_LIBUV
    bench_pool_figure("pool.round_trip", pact_rt_run, uv_rt_run);
#else
    bench_pool_figure("pool.round_trip", pact_rt_run, NULL);
#endif
}

static void bench_throughput(void)
{
#ifdef HAVE_LIBUV
    bench_pool_figure("pool.throughput", pact_tp_run, uv_tp_run);
#else
    bench_pool_figure("pool.throughput", pact_tp_run, NULL);
#endif
}

const bench_def bench_pool[] = {
    {"pool.round_trip", bench_round_trip},
    {"pool.throughput", bench_throughput},
    {NULL, NULL},
};

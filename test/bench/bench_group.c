/* Task groups (layer 4): what a group adds to its children.
 *
 * group.spawn: N tasks that return at once, spawned into one group and
 * awaited with the group's wait, in ns per child from the first spawn to
 * the wait's callback; anchored on the same tasks spawned bare (`bare`:
 * each promise dropped, the loop run to its end), on Node's Promise.all
 * over N async functions, and on Go's errgroup pattern (sync.WaitGroup and
 * the first error kept, the standard library's shape of errgroup).
 *
 * group.cancel: N tasks suspended in pact_sleep in one group, then
 * pact_group_cancel and the loop run until the wait's callback: ns per
 * child. Anchored on the same tasks sharing one abort token that is
 * aborted (`bare`), and on Node's N async functions awaiting
 * timers/promises' setTimeout with one AbortSignal, aborted. */
#include <stdlib.h>

#include "bench.h"

#define N 100000

typedef struct grp_ctx {
    pact_loop *loop;
    size_t ran, settled;
    int code;
} grp_ctx;

static pact_error *quick(void *arg, pact_value *result)
{
    grp_ctx *c = arg;
    c->ran++;
    *result = pact_int(1);
    return NULL;
}

static pact_error *sleeper(void *arg, pact_value *result)
{
    (void)result;
    grp_ctx *c = arg;
    c->ran++;
    return pact_sleep(600000);
}

static void on_wait(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    grp_ctx *c = ud;
    c->settled++;
    c->code = err ? pact_error_code(err) : 0;
}

static void spawn_group_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    grp_ctx *c = ctx;
    c->ran = c->settled = 0;
    double t0 = bench_wall_ns();
    pact_group *g;
    BENCH_CHECK(pact_group_new(c->loop, NULL, &g));
    for (size_t i = 0; i < N; i++)
        BENCH_CHECK(pact_group_spawn(g, quick, c, NULL));
    BENCH_CHECK(pact_group_wait_cb(g, on_wait, c));
    pact_group_unref(g);
    bench_run_loop(c->loop);
    figs[0] = (bench_wall_ns() - t0) / N;
    if (c->ran != N || c->settled != 1 || c->code)
        bench_fail("group.spawn: %zu of %d ran, wait %zu (%d)", c->ran, N,
                   c->settled, c->code);
}

static void spawn_bare_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    grp_ctx *c = ctx;
    c->ran = 0;
    double t0 = bench_wall_ns();
    for (size_t i = 0; i < N; i++)
        pact_promise_unref(
            bench_must(pact_task_spawn(c->loop, quick, c, NULL), "spawn"));
    bench_run_loop(c->loop);
    figs[0] = (bench_wall_ns() - t0) / N;
    if (c->ran != N)
        bench_fail("group.spawn (bare): %zu of %d ran", c->ran, N);
}

static void cancel_group_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    grp_ctx *c = ctx;
    c->ran = c->settled = 0;
    pact_group *g;
    BENCH_CHECK(pact_group_new(c->loop, NULL, &g));
    for (size_t i = 0; i < N; i++)
        BENCH_CHECK(pact_group_spawn(g, sleeper, c, NULL));
    BENCH_CHECK(pact_group_wait_cb(g, on_wait, c));
    BENCH_CHECK(pact_loop_run(c->loop, PACT_RUN_NOWAIT));
    if (c->ran != N)
        bench_fail("group.cancel: %zu of %d suspended", c->ran, N);
    double t0 = bench_wall_ns();
    BENCH_CHECK(pact_group_cancel(g, NULL));
    bench_run_loop(c->loop);
    figs[0] = (bench_wall_ns() - t0) / N;
    pact_group_unref(g);
    if (c->settled != 1 || c->code != PACT_ECANCELED)
        bench_fail("group.cancel: wait %zu (%d)", c->settled, c->code);
}

static void cancel_bare_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    grp_ctx *c = ctx;
    c->ran = 0;
    pact_abort *a;
    BENCH_CHECK(pact_abort_new(c->loop, &a));
    for (size_t i = 0; i < N; i++)
        pact_promise_unref(bench_must(
            pact_task_spawn(c->loop, sleeper, c, &(pact_task_opts){.abort = a}),
            "spawn"));
    BENCH_CHECK(pact_loop_run(c->loop, PACT_RUN_NOWAIT));
    if (c->ran != N)
        bench_fail("group.cancel (bare): %zu of %d suspended", c->ran, N);
    double t0 = bench_wall_ns();
    BENCH_CHECK(pact_abort_abort(a, NULL));
    bench_run_loop(c->loop);
    figs[0] = (bench_wall_ns() - t0) / N;
    if (pact_loop_tasks(c->loop))
        bench_fail("group.cancel (bare): tasks left");
    pact_abort_unref(a);
}

static void on_loop(bench_run_fn fn, grp_ctx *c, double best[BENCH_MAX_FIGS])
{
    c->loop = bench_new_loop();
    /* small stacks, 100,000 of them at once, pooled after the warm-up: the
     * figure is the group's cost, not mmap's */
    BENCH_CHECK(pact_loop_set_stack_size(c->loop, 16 * 1024));
    BENCH_CHECK(pact_loop_set_stack_guard(c->loop, false));
    BENCH_CHECK(pact_loop_set_stack_pool(c->loop, N));
    bench_best(fn, c, best);
    BENCH_CHECK(pact_loop_free(c->loop));
}

static void bench_group_spawn(void)
{
    grp_ctx c = {0};
    double grp[BENCH_MAX_FIGS], bare[BENCH_MAX_FIGS];
    on_loop(spawn_group_run, &c, grp);
    on_loop(spawn_bare_run, &c, bare);
    double node = -1, go = -1;
    bench_node("group_spawn.js", &node, 1);
    bench_go("group-spawn", &go, 1);
    bench_anchor a[] = {{"bare", bare[0]}, {"node", node}, {"go", go}};
    bench_print("group.spawn", "ns", grp[0], a, 3);
}

static void bench_group_cancel(void)
{
    grp_ctx c = {0};
    double grp[BENCH_MAX_FIGS], bare[BENCH_MAX_FIGS];
    on_loop(cancel_group_run, &c, grp);
    on_loop(cancel_bare_run, &c, bare);
    double node = -1;
    bench_node("group_cancel.js", &node, 1);
    bench_anchor a[] = {{"bare", bare[0]}, {"node", node}};
    bench_print("group.cancel", "ns", grp[0], a, 2);
}

const bench_def bench_group[] = {
    {"group.spawn", bench_group_spawn},
    {"group.cancel", bench_group_cancel},
    {NULL, NULL},
};

/* make bench: the await layer's benchmarks -- the raw context switch,
 * stackful tasks (PACT_AWAIT) and stackless PACT_ASYNC functions -- with
 * their Node and Go anchors. Raw libevent and libuv have no await, so Node
 * (async functions over native promises) and Go (goroutines) are the
 * anchors. Every run checks its outcome (how many awaits ran and the values
 * they got) and fails loudly otherwise; every loop is freed with
 * pact_loop_free, which fails while a task is unfinished or a promise is
 * still referenced. README.md says what each figure measures.
 *
 * The raw switch is measured on the library's own two implementations,
 * compiled into this program (their symbols are hidden inside libpact):
 * the assembly one where the host has it, and ucontext always. */
#include "config.h"

#include "bench.h"

#include <malloc.h>
#include <pact.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "context.h"

#if defined(__x86_64__) || defined(__aarch64__)
#define HAVE_ASM_SWITCH_ 1 /* Makefile.am compiles it in: ASM_X86_64 etc. */
#endif

#define SWITCH_ASM 2000000u /* task.switch: round trips (two swaps each) */
#define SWITCH_UCTX 100000u /* task.switch_ucontext: the same */
#define AWAITS 1000000u     /* *.await_settled: awaits in one task/function */
#define ROUNDS 200000u      /* *.pingpong: round trips */
#define SUSPENDED 10000u    /* task.suspended_bytes(_noguard): tasks */
#define SUSPENDED_MANY 100000u /* task.suspended_bytes_100k_noguard, async */
#define SPAWN_BATCH 1000u      /* tasks spawned between loop runs */
#define SWITCH_STACK (64 * 1024)

static void expect_value(const char *what, const pact_value *v, int64_t want)
{
    if (v->kind != PACT_INT || v->u.i != want)
        bench_fail("%s: an await got %s %lld, expected %lld", what,
                   v->kind == PACT_INT ? "the int" : "a value of kind",
                   v->kind == PACT_INT ? (long long)v->u.i : (long long)v->kind,
                   (long long)want);
}

/* The promise of a task or function that ran to its end: it must hold the
 * int @p want (its count of awaits). Drops the reference. */
static void expect_result(const char *what, pact_promise *p, int64_t want)
{
    if (pact_promise_state(p) != PACT_FULFILLED)
        bench_fail("%s: the task's promise is %s", what,
                   pact_promise_state(p) == PACT_PENDING ? "still pending"
                                                         : "rejected");
    expect_value(what, pact_promise_value(p), want);
    pact_promise_unref(p);
}

/* Run @p fn as bench_best does, on one loop (*@p loop while it runs) freed
 * afterwards: as bench_promise.c's timed benchmarks, the runs after the
 * warm-up find the loop's promise slabs and stack pool made. */
static void best_on_loop(bench_run_fn fn, pact_loop **loop, void *ctx,
                         double best[BENCH_MAX_FIGS])
{
    *loop = bench_new_loop();
    bench_best(fn, ctx, best);
    BENCH_CHECK(pact_loop_free(*loop));
    *loop = NULL;
}

/* ======================================================================
 * task.switch, task.switch_call, task.switch_ucontext: a context on a stack
 * of its own that counts and switches back, switched to SWITCH_* times;
 * each round trip is two swaps. task.switch is the switch tasks use
 * (pact__ctx_swap: on x86-64 the inline pact__asm_switch, no call and no
 * ret; elsewhere pact__asm_swap); task.switch_call, x86-64 only, the same
 * asm called as a function, pact__asm_swap, whose ret returns to the other
 * context's call site and so mispredicts at every switch;
 * task.switch_ucontext, pact__uctx_swap. Figure: wall ns per swap.
 * ====================================================================== */

typedef struct switch_ctx {
    size_t n, count;
    char *stack;
#ifdef HAVE_ASM_SWITCH_
    pact__asm_ctx asm_main, asm_co;
#endif
    pact__uctx_ctx uctx_main, uctx_co;
} switch_ctx;

#ifdef HAVE_ASM_SWITCH_
#if defined(__x86_64__)
#define ASM_SWITCH_ pact__asm_switch /* what tasks use (context.h) */
#define HAVE_SWITCH_CALL_ 1
#else
#define ASM_SWITCH_ pact__asm_swap
#endif

static void asm_entry(void *arg)
{
    switch_ctx *c = arg;
    for (;;) { /* abandoned, suspended, at the end of the run */
        c->count++;
        ASM_SWITCH_(&c->asm_co, &c->asm_main);
    }
}

static void asm_switch_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    switch_ctx *c = ctx;
    c->count = 0;
    pact__asm_make(&c->asm_co, c->stack, SWITCH_STACK, asm_entry, c);
    double t0 = bench_wall_ns();
    for (size_t i = 0; i < c->n; i++)
        ASM_SWITCH_(&c->asm_main, &c->asm_co);
    double t1 = bench_wall_ns();
    if (c->count != c->n)
        bench_fail("task.switch: %zu of %zu switches ran", c->count, c->n);
    figs[0] = (t1 - t0) / (2.0 * (double)c->n);
}
#endif

#ifdef HAVE_SWITCH_CALL_
static void call_entry(void *arg)
{
    switch_ctx *c = arg;
    for (;;) {
        c->count++;
        pact__asm_swap(&c->asm_co, &c->asm_main);
    }
}

static void call_switch_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    switch_ctx *c = ctx;
    c->count = 0;
    pact__asm_make(&c->asm_co, c->stack, SWITCH_STACK, call_entry, c);
    double t0 = bench_wall_ns();
    for (size_t i = 0; i < c->n; i++)
        pact__asm_swap(&c->asm_main, &c->asm_co);
    double t1 = bench_wall_ns();
    if (c->count != c->n)
        bench_fail("task.switch_call: %zu of %zu switches ran", c->count, c->n);
    figs[0] = (t1 - t0) / (2.0 * (double)c->n);
}
#endif

static void uctx_entry(void *arg)
{
    switch_ctx *c = arg;
    for (;;) {
        c->count++;
        pact__uctx_swap(&c->uctx_co, &c->uctx_main);
    }
}

static void uctx_switch_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    switch_ctx *c = ctx;
    c->count = 0;
    pact__uctx_make(&c->uctx_co, c->stack, SWITCH_STACK, uctx_entry, c);
    double t0 = bench_wall_ns();
    for (size_t i = 0; i < c->n; i++)
        pact__uctx_swap(&c->uctx_main, &c->uctx_co);
    double t1 = bench_wall_ns();
    if (c->count != c->n)
        bench_fail("task.switch_ucontext: %zu of %zu switches ran", c->count,
                   c->n);
    figs[0] = (t1 - t0) / (2.0 * (double)c->n);
}

static void bench_switch(void)
{
    switch_ctx *c = calloc(1, sizeof *c);
    double uctx[BENCH_MAX_FIGS], go = -1;
    if (!c)
        bench_fail("out of memory");
    c->stack = mmap(NULL, SWITCH_STACK, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (c->stack == MAP_FAILED)
        bench_fail("mmap of a stack failed");
#ifdef HAVE_ASM_SWITCH_
    double asm_[BENCH_MAX_FIGS];
    c->n = SWITCH_ASM;
    bench_best(asm_switch_run, c, asm_);
#endif
#ifdef HAVE_SWITCH_CALL_
    double call[BENCH_MAX_FIGS];
    bench_best(call_switch_run, c, call);
#endif
    c->n = SWITCH_UCTX;
    bench_best(uctx_switch_run, c, uctx);
    munmap(c->stack, SWITCH_STACK);
    free(c);

    bench_go("switch", &go, 1);
    bench_anchor a[] = {{"go", go}};
#ifdef HAVE_ASM_SWITCH_
    bench_print("task.switch", "ns", asm_[0], a, 1);
#endif
#ifdef HAVE_SWITCH_CALL_
    bench_print("task.switch_call", "ns", call[0], a, 1);
#endif
    bench_print("task.switch_ucontext", "ns", uctx[0], a, 1);
}

/* ======================================================================
 * task.await_settled, async.await_settled: one task (PACT_AWAIT) or one
 * PACT_ASYNC function awaits one already-fulfilled promise AWAITS times
 * (a new reference each time: an await steals it). Every await suspends
 * and resumes as a microtask. Figure: wall ns per await, from the body's
 * start to the return of its last await.
 * ====================================================================== */

typedef struct await_ctx {
    pact_loop *loop;
    pact_promise *settled; /* holds the int 7 */
    size_t n, count;
    double t0, t1;
} await_ctx;

static pact_error *settled_task(void *arg, pact_value *result)
{
    await_ctx *c = arg;
    c->t0 = bench_wall_ns();
    for (size_t i = 0; i < c->n; i++) {
        pact_value v = PACT_AWAIT(pact_promise_ref(c->settled));
        expect_value("task.await_settled", &v, 7);
        c->count++;
    }
    c->t1 = bench_wall_ns();
    *result = pact_int((int64_t)c->count);
    return NULL;
}

/* task.await_queued: a no-op microtask queued before each await, so the
 * task suspends and its resume waits its turn behind it. */
static void count_noop(void *ud)
{
    (*(size_t *)ud)++;
}

static pact_error *queued_task(void *arg, pact_value *result)
{
    await_ctx *c = arg;
    size_t noops = 0;
    c->t0 = bench_wall_ns();
    for (size_t i = 0; i < c->n; i++) {
        BENCH_CHECK(pact_queue_microtask(c->loop, count_noop, &noops));
        pact_value v = PACT_AWAIT(pact_promise_ref(c->settled));
        expect_value("task.await_queued", &v, 7);
        c->count++;
    }
    c->t1 = bench_wall_ns();
    if (noops != c->n)
        bench_fail("task.await_queued: %zu of %zu no-ops ran", noops, c->n);
    *result = pact_int((int64_t)c->count);
    return NULL;
}

static void queued_task_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    await_ctx *c = ctx;
    c->count = 0;
    c->settled =
        bench_must(pact_resolved(c->loop, pact_int(7)), "pact_resolved");
    pact_promise *p =
        bench_must(pact_task_spawn(c->loop, queued_task, c, NULL), "spawn");
    bench_run_loop(c->loop);
    expect_result("task.await_queued", p, (int64_t)c->n);
    pact_promise_unref(c->settled);
    figs[0] = (c->t1 - c->t0) / (double)c->n;
}

static void settled_task_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    await_ctx *c = ctx;
    c->count = 0;
    c->settled =
        bench_must(pact_resolved(c->loop, pact_int(7)), "pact_resolved");
    pact_promise *p =
        bench_must(pact_task_spawn(c->loop, settled_task, c, NULL), "spawn");
    bench_run_loop(c->loop);
    expect_result("task.await_settled", p, (int64_t)c->n);
    pact_promise_unref(c->settled);
    figs[0] = (c->t1 - c->t0) / (double)c->n;
}

typedef struct settled_frame {
    PACT_ASYNC_FRAME;
    await_ctx *c;
    size_t i;
} settled_frame;

static pact_error *settled_body(pact_async *a, pact_value *result)
{
    settled_frame *f = (settled_frame *)a;
    await_ctx *c = f->c;
    pact_value v;
    pact_error *err;
    PACT_ASYNC_BEGIN(a);
    c->t0 = bench_wall_ns();
    for (f->i = 0; f->i < c->n; f->i++) {
        PACT_ASYNC_AWAIT_ERR(a, pact_promise_ref(c->settled), &v, err);
        if (err)
            bench_fail("async.await_settled: an await was rejected");
        expect_value("async.await_settled", &v, 7);
        c->count++;
    }
    c->t1 = bench_wall_ns();
    *result = pact_int((int64_t)c->count);
    PACT_ASYNC_END(a);
}

static void settled_async_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    await_ctx *c = ctx;
    c->count = 0;
    c->settled =
        bench_must(pact_resolved(c->loop, pact_int(7)), "pact_resolved");
    settled_frame *f = pact_async_new(c->loop, sizeof *f, settled_body);
    if (!f)
        bench_fail("pact_async_new failed");
    f->c = c;
    pact_promise *p = bench_must(pact_async_start(f), "pact_async_start");
    bench_run_loop(c->loop);
    expect_result("async.await_settled", p, (int64_t)c->n);
    pact_promise_unref(c->settled);
    figs[0] = (c->t1 - c->t0) / (double)c->n;
}

/* node/await_settled.js, measured once per run for both figures. */
static double node_await_settled(void)
{
    static double node = -2;
    if (node == -2) {
        node = -1;
        bench_node("await_settled.js", &node, 1);
    }
    return node;
}

static void bench_await_settled(const char *name, bench_run_fn fn)
{
    await_ctx c = {.n = AWAITS};
    double pact[BENCH_MAX_FIGS];

    best_on_loop(fn, &c.loop, &c, pact);
    bench_anchor a[] = {{"node", node_await_settled()}};
    bench_print(name, "ns", pact[0], a, 1);
}

static void bench_task_await_settled(void)
{
    bench_await_settled("task.await_settled", settled_task_run);
}

static void bench_task_await_queued(void)
{
    await_ctx c = {.n = AWAITS};
    double pact[BENCH_MAX_FIGS];
    best_on_loop(queued_task_run, &c.loop, &c, pact);
    double node = -1;
    bench_node("await_queued.js", &node, 1);
    bench_anchor a[] = {{"node", node}};
    bench_print("task.await_queued", "ns", pact[0], a, 1);
}

static void bench_async_await_settled(void)
{
    bench_await_settled("async.await_settled", settled_async_run);
}

/* ======================================================================
 * task.pingpong, async.pingpong: ping and pong (two tasks, or two PACT_ASYNC
 * functions) pass a number back and forth ROUNDS times through promises.
 * Each side makes a deferred, keeps it where the other side finds it, and
 * awaits its promise; the other side resolves it. Per round: ping makes its
 * deferred, resolves pong's with i and awaits; pong wakes with i, resolves
 * ping's with it, makes its next deferred and awaits again; ping wakes with
 * i. Figure: wall ns per round trip, from ping's start to its last wake.
 * ====================================================================== */

enum { PING, PONG };

typedef struct pp_ctx {
    pact_loop *loop;
    const char *name;
    size_t n, count[2];
    pact_deferred *next[2]; /* the deferred each side awaits next */
    double t0, t1;
} pp_ctx;

/* Side @p side's new deferred; @return its promise to await. */
static pact_promise *pp_wait(pp_ctx *c, int side)
{
    pact_promise *p = NULL;
    if (c->next[side])
        bench_fail("%s: a deferred is made twice", c->name);
    c->next[side] = bench_new_deferred(c->loop, &p);
    return p;
}

/* Resolve side @p side's deferred with @p i. */
static void pp_send(pp_ctx *c, int side, int64_t i)
{
    pact_deferred *d = c->next[side];
    if (!d)
        bench_fail("%s: the other side is not waiting", c->name);
    c->next[side] = NULL;
    BENCH_CHECK(pact_deferred_resolve(d, pact_int(i)));
    pact_deferred_unref(d);
}

static pact_error *ping_task(void *arg, pact_value *result)
{
    pp_ctx *c = arg;
    c->t0 = bench_wall_ns();
    for (size_t i = 0; i < c->n; i++) {
        pact_promise *p = pp_wait(c, PING);
        pp_send(c, PONG, (int64_t)i);
        pact_value v = PACT_AWAIT(p);
        expect_value(c->name, &v, (int64_t)i);
        c->count[PING]++;
    }
    c->t1 = bench_wall_ns();
    *result = pact_int((int64_t)c->count[PING]);
    return NULL;
}

static pact_error *pong_task(void *arg, pact_value *result)
{
    pp_ctx *c = arg;
    for (size_t i = 0; i < c->n; i++) {
        pact_value v = PACT_AWAIT(pp_wait(c, PONG));
        expect_value(c->name, &v, (int64_t)i);
        c->count[PONG]++;
        pp_send(c, PING, v.u.i);
    }
    *result = pact_int((int64_t)c->count[PONG]);
    return NULL;
}

typedef struct pp_frame {
    PACT_ASYNC_FRAME;
    pp_ctx *c;
    size_t i;
} pp_frame;

static pact_error *ping_body(pact_async *a, pact_value *result)
{
    pp_frame *f = (pp_frame *)a;
    pp_ctx *c = f->c;
    pact_promise *p; /* used before the await only */
    pact_value v;
    pact_error *err;
    PACT_ASYNC_BEGIN(a);
    c->t0 = bench_wall_ns();
    for (f->i = 0; f->i < c->n; f->i++) {
        p = pp_wait(c, PING);
        pp_send(c, PONG, (int64_t)f->i);
        PACT_ASYNC_AWAIT_ERR(a, p, &v, err);
        if (err)
            bench_fail("%s: an await was rejected", c->name);
        expect_value(c->name, &v, (int64_t)f->i);
        c->count[PING]++;
    }
    c->t1 = bench_wall_ns();
    *result = pact_int((int64_t)c->count[PING]);
    PACT_ASYNC_END(a);
}

static pact_error *pong_body(pact_async *a, pact_value *result)
{
    pp_frame *f = (pp_frame *)a;
    pp_ctx *c = f->c;
    pact_value v;
    pact_error *err;
    PACT_ASYNC_BEGIN(a);
    for (f->i = 0; f->i < c->n; f->i++) {
        PACT_ASYNC_AWAIT_ERR(a, pp_wait(c, PONG), &v, err);
        if (err)
            bench_fail("%s: an await was rejected", c->name);
        expect_value(c->name, &v, (int64_t)f->i);
        c->count[PONG]++;
        pp_send(c, PING, v.u.i);
    }
    *result = pact_int((int64_t)c->count[PONG]);
    PACT_ASYNC_END(a);
}

static pact_promise *pp_start(pp_ctx *c, pact_async_fn body)
{
    pp_frame *f = pact_async_new(c->loop, sizeof *f, body);
    if (!f)
        bench_fail("pact_async_new failed");
    f->c = c;
    return bench_must(pact_async_start(f), "pact_async_start");
}

static void pp_run(void *ctx, double figs[BENCH_MAX_FIGS], bool tasks)
{
    pp_ctx *c = ctx;
    pact_promise *pong, *ping;

    c->count[PING] = c->count[PONG] = 0;
    /* pong first: it waits before ping sends */
    if (tasks) {
        pong =
            bench_must(pact_task_spawn(c->loop, pong_task, c, NULL), "spawn");
        ping =
            bench_must(pact_task_spawn(c->loop, ping_task, c, NULL), "spawn");
    } else {
        pong = pp_start(c, pong_body);
        ping = pp_start(c, ping_body);
    }
    bench_run_loop(c->loop);
    expect_result(c->name, ping, (int64_t)c->n);
    expect_result(c->name, pong, (int64_t)c->n);
    if (c->next[PING] || c->next[PONG])
        bench_fail("%s: a deferred is left over", c->name);
    figs[0] = (c->t1 - c->t0) / (double)c->n;
}

static void pp_task_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    pp_run(ctx, figs, true);
}

static void pp_async_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    pp_run(ctx, figs, false);
}

/* node/pingpong.js and the Go anchor, measured once per run for both:
 * [0] node, [1] go (GOMAXPROCS=1), [2] go (GOMAXPROCS at its default). */
static const double *pingpong_anchors(void)
{
    static double a[3] = {-2, -1, -1};
    if (a[0] == -2) {
        a[0] = -1;
        bench_node("pingpong.js", &a[0], 1);
        bench_go("pingpong", &a[1], 2);
    }
    return a;
}

static void bench_pingpong(const char *name, bench_run_fn fn)
{
    pp_ctx c = {.n = ROUNDS, .name = name};
    double pact[BENCH_MAX_FIGS];

    best_on_loop(fn, &c.loop, &c, pact);
    const double *v = pingpong_anchors();
    bench_anchor a[] = {{"node", v[0]}, {"go", v[1]}, {"go_default", v[2]}};
    bench_print(name, "ns", pact[0], a, 3);
}

static void bench_task_pingpong(void)
{
    bench_pingpong("task.pingpong", pp_task_run);
}

static void bench_async_pingpong(void)
{
    bench_pingpong("async.pingpong", pp_async_run);
}

/* ======================================================================
 * chan.pingpong: task.pingpong through two unbuffered pact_chan channels,
 * as Go's anchor does: ping sends i on one and awaits it back on the
 * other, pong receives and sends it back; each side awaits the promise
 * twins (pact_chan_send_p, pact_chan_recv_p). Figure: as task.pingpong's.
 * ====================================================================== */

typedef struct chpp_ctx {
    pp_ctx pp;        /* first: bench_pingpong's context */
    pact_chan *ch[2]; /* [PING]: to pong, [PONG]: back to ping */
    bool twins;       /* through the promise twins, not pact_await_recv */
} chpp_ctx;

/* One send and one receive, by the direct awaits or the twins. Inlined,
 * so that the awaits sit in the task's own function, as Go's anchor writes
 * them: through a called helper, each switch would end in a return from
 * the helper into the other task's function, a mispredict (115 against
 * 92 ns a round trip here; doc/await.md). */
static inline __attribute__((always_inline)) void chan_send(chpp_ctx *c, int k,
                                                            pact_value v)
{
    if (c->twins) {
        PACT_AWAIT(pact_chan_send_p(c->ch[k], v, NULL));
        return;
    }
    pact_error *err = pact_await_send(c->ch[k], v);
    if (err)
        bench_fail("%s: send failed", c->pp.name);
}

static inline __attribute__((always_inline)) pact_value chan_recv(chpp_ctx *c,
                                                                  int k)
{
    if (c->twins)
        return PACT_AWAIT(pact_chan_recv_p(c->ch[k], NULL));
    pact_value v;
    pact_error *err = pact_await_recv(c->ch[k], &v);
    if (err)
        bench_fail("%s: receive failed", c->pp.name);
    return v;
}

static pact_error *chan_ping_task(void *arg, pact_value *result)
{
    chpp_ctx *c = arg;
    c->pp.t0 = bench_wall_ns();
    for (size_t i = 0; i < c->pp.n; i++) {
        chan_send(c, PING, pact_int((int64_t)i));
        pact_value v = chan_recv(c, PONG);
        expect_value(c->pp.name, &v, (int64_t)i);
        c->pp.count[PING]++;
    }
    c->pp.t1 = bench_wall_ns();
    *result = pact_int((int64_t)c->pp.count[PING]);
    return NULL;
}

static pact_error *chan_pong_task(void *arg, pact_value *result)
{
    chpp_ctx *c = arg;
    for (size_t i = 0; i < c->pp.n; i++) {
        pact_value v = chan_recv(c, PING);
        expect_value(c->pp.name, &v, (int64_t)i);
        c->pp.count[PONG]++;
        chan_send(c, PONG, v);
    }
    *result = pact_int((int64_t)c->pp.count[PONG]);
    return NULL;
}

static void chpp_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    chpp_ctx *c = ctx;
    pact_loop *loop = c->pp.loop;
    c->pp.count[PING] = c->pp.count[PONG] = 0;
    for (int k = 0; k < 2; k++)
        if (!(c->ch[k] = pact_chan_new(loop, 0)))
            bench_fail("pact_chan_new failed");
    pact_promise *pong =
        bench_must(pact_task_spawn(loop, chan_pong_task, c, NULL), "spawn");
    pact_promise *ping =
        bench_must(pact_task_spawn(loop, chan_ping_task, c, NULL), "spawn");
    bench_run_loop(loop);
    expect_result(c->pp.name, ping, (int64_t)c->pp.n);
    expect_result(c->pp.name, pong, (int64_t)c->pp.n);
    for (int k = 0; k < 2; k++)
        pact_chan_free(c->ch[k]);
    figs[0] = (c->pp.t1 - c->pp.t0) / (double)c->pp.n;
}

static void bench_chan_pingpong(void)
{
    chpp_ctx c = {.pp = {.n = ROUNDS, .name = "chan.pingpong"}};
    double direct[BENCH_MAX_FIGS], twins[BENCH_MAX_FIGS];

    best_on_loop(chpp_run, &c.pp.loop, &c, direct);
    c.twins = true;
    c.pp.name = "chan.pingpong_promise";
    best_on_loop(chpp_run, &c.pp.loop, &c, twins);
    const double *v = pingpong_anchors();
    bench_anchor a[] = {{"node", v[0]}, {"go", v[1]}, {"go_default", v[2]}};
    bench_print("chan.pingpong", "ns", direct[0], a, 3);
    bench_print("chan.pingpong_promise", "ns", twins[0], a, 3);
}

/* ======================================================================
 * task.suspended_bytes(_noguard, _100k_noguard), async.suspended_bytes:
 * N tasks or PACT_ASYNC functions, each suspended awaiting one shared
 * pending promise (a new reference each), so what is measured is each
 * one's own cost. Then the promise is fulfilled and every one must wake
 * with its value and finish. Each run has a new loop, so that its stacks
 * and slabs are counted as they are made; the least of three runs after a
 * warm-up is reported, as for times.
 * ====================================================================== */

typedef struct susp_ctx {
    const char *name;
    size_t n, count;
    bool guard;
    pact_promise *gate;
} susp_ctx;

static pact_error *susp_task(void *arg, pact_value *result)
{
    susp_ctx *c = arg;
    (void)result;
    pact_value v = PACT_AWAIT(pact_promise_ref(c->gate));
    expect_value(c->name, &v, 1);
    c->count++;
    return NULL;
}

/* Open the gate and check that all @p c->n woke; frees the loop. */
static void susp_finish(susp_ctx *c, pact_loop *loop, pact_deferred *d)
{
    BENCH_CHECK(pact_deferred_resolve(d, pact_int(1)));
    pact_deferred_unref(d);
    bench_run_loop(loop);
    if (c->count != c->n)
        bench_fail("%s: %zu of %zu woke", c->name, c->count, c->n);
    pact_promise_unref(c->gate);
    c->gate = NULL;
    BENCH_CHECK(pact_loop_free(loop));
}

/* Figure: the resident set's growth per task, from before the first spawn
 * to when all are suspended: their stacks' touched pages, their task
 * structs and promise nodes. The tasks are spawned SPAWN_BATCH at a time,
 * running the loop after each batch, so that the loop's microtask queue
 * (which holds their start jobs) stays small. malloc_trim first returns
 * what the previous run freed, so that each run's heap growth counts. */
static void susp_task_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    susp_ctx *c = ctx;
    pact_loop *loop = bench_new_loop();
    if (!c->guard)
        BENCH_CHECK(pact_loop_set_stack_guard(loop, false));
    pact_deferred *d = bench_new_deferred(loop, &c->gate);
    c->count = 0;

    malloc_trim(0);
    double before = bench_rss_bytes();
    for (size_t i = 0; i < c->n; i++) {
        pact_promise *p =
            bench_must(pact_task_spawn(loop, susp_task, c, NULL), "spawn");
        if (pact_promise_state(p) == PACT_REJECTED)
            bench_fail("%s: task %zu got no stack (vm.max_map_count?)", c->name,
                       i);
        pact_promise_unref(p); /* the task keeps it until it ends */
        if ((i + 1) % SPAWN_BATCH == 0 || i + 1 == c->n)
            bench_run_loop(loop);
    }
    figs[0] = (bench_rss_bytes() - before) / (double)c->n;
    if (pact_loop_tasks(loop) != c->n || c->count)
        bench_fail("%s: %zu of %zu tasks suspended", c->name,
                   pact_loop_tasks(loop), c->n);
    susp_finish(c, loop, d);
}

typedef struct susp_frame {
    PACT_ASYNC_FRAME;
    susp_ctx *c;
} susp_frame;

static pact_error *susp_body(pact_async *a, pact_value *result)
{
    susp_ctx *c = ((susp_frame *)a)->c;
    pact_value v;
    pact_error *err;
    (void)result;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_AWAIT_ERR(a, pact_promise_ref(c->gate), &v, err);
    if (err)
        bench_fail("%s: the await was rejected", c->name);
    expect_value(c->name, &v, 1);
    c->count++;
    PACT_ASYNC_END(a);
}

/* Figure: heap bytes per suspended function (bench_heap_bytes: mallinfo2): its
 * frame, and the promise nodes of its result and its await. Calling an
 * async function runs it to its first await, so no microtask is queued. */
static void susp_async_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    susp_ctx *c = ctx;
    pact_loop *loop = bench_new_loop();
    pact_deferred *d = bench_new_deferred(loop, &c->gate);
    c->count = 0;

    double before = bench_heap_bytes();
    for (size_t i = 0; i < c->n; i++) {
        susp_frame *f = pact_async_new(loop, sizeof *f, susp_body);
        if (!f)
            bench_fail("pact_async_new failed");
        f->c = c;
        pact_promise_unref(bench_must(pact_async_start(f), "pact_async_start"));
    }
    figs[0] = (bench_heap_bytes() - before) / (double)c->n;
    if (c->count)
        bench_fail("%s: %zu functions did not suspend", c->name, c->count);
    susp_finish(c, loop, d);
}

static double susp_best(const char *name, bench_run_fn fn, size_t n, bool guard)
{
    susp_ctx c = {.name = name, .n = n, .guard = guard};
    double best[BENCH_MAX_FIGS];
    bench_best(fn, &c, best);
    return best[0];
}

static void bench_task_suspended(void)
{
    double guard =
        susp_best("task.suspended_bytes", susp_task_run, SUSPENDED, true);
    double noguard = susp_best("task.suspended_bytes_noguard", susp_task_run,
                               SUSPENDED, false);
    double many = susp_best("task.suspended_bytes_100k_noguard", susp_task_run,
                            SUSPENDED_MANY, false);
    double go = -1, go_many = -1;
    bench_go("suspended 10000", &go, 1);
    bench_go("suspended 100000", &go_many, 1);
    bench_anchor a[] = {{"go", go}};
    bench_print("task.suspended_bytes", "B", guard, a, 1);
    bench_print("task.suspended_bytes_noguard", "B", noguard, a, 1);
    a[0].value = go_many;
    bench_print("task.suspended_bytes_100k_noguard", "B", many, a, 1);
}

static void bench_async_suspended(void)
{
    double pact = susp_best("async.suspended_bytes", susp_async_run,
                            SUSPENDED_MANY, true);
    double node = -1;
    bench_node("async_suspended.js", &node, 1);
    bench_anchor a[] = {{"node", node}};
    bench_print("async.suspended_bytes", "B", pact, a, 1);
}

/* The registry, in the order `bench` runs them. */
const bench_def bench_task[] = {
    {"task.switch", bench_switch},
    {"task.await_settled", bench_task_await_settled},
    {"task.await_queued", bench_task_await_queued},
    {"async.await_settled", bench_async_await_settled},
    {"task.pingpong", bench_task_pingpong},
    {"async.pingpong", bench_async_pingpong},
    {"chan.pingpong", bench_chan_pingpong},
    {"task.suspended_bytes", bench_task_suspended},
    {"async.suspended_bytes", bench_async_suspended},
    {NULL, NULL},
};

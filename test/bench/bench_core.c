/* make bench: the layer-1 (loop core) benchmarks and their anchors. Each
 * figure is measured for pact, for raw libevent doing the same work the way
 * libevent would (the layer pact is built on, so the ratio is pact's own
 * cost), for libuv and for Node (the peers whose semantics pact copies).
 * Every run counts its callbacks and fails loudly if one is missing, so a
 * broken build cannot print a fast figure. README.md says what each measures.
 */
#include "config.h"

#include "bench.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pact.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_LIBUV
#include <uv.h>
#endif

#define TIMERS 1000000u      /* timer.add_fire */
#define IMMEDIATES 1000000u  /* immediate.hop */
#define MICROTASKS 10000000u /* microtask.hop, tick.hop */
#define POSTS 1000000u       /* post.hop */

static void expect_count(const char *what, size_t got, size_t want)
{
    if (got != want)
        bench_fail("%s: %zu of %zu callbacks ran", what, got, want);
}

static void expect_no_error(const char *what, pact_error *err)
{
    if (err)
        bench_fail("%s: callback got an error", what);
}

static struct event_base *new_base(void)
{
    struct event_base *base = event_base_new();
    if (!base)
        bench_fail("event_base_new failed");
    return base;
}

/* A preallocated array of struct event, as a libevent program that knows
 * its event count would keep them (no per-event malloc). */
static struct event *event_at(void *events, size_t i)
{
    return (struct event *)((char *)events + i * event_get_struct_event_size());
}

/* ======================================================================
 * timer.add_fire: add TIMERS one-shot timers with the delays of
 * bench_delays and run the loop until all fired. Figures: process CPU ns
 * per timer (the headline: the run sleeps most of its second, and CPU time
 * does not count a busy neighbour's time) and wall ns per timer.
 * ====================================================================== */

typedef struct timer_ctx {
    uint32_t *delays;
    size_t fired;
    void *events; /* libevent */
#ifdef HAVE_LIBUV
    uv_timer_t *uv_timers;
#endif
} timer_ctx;

typedef struct stopwatch {
    double cpu, wall;
} stopwatch;

static stopwatch stopwatch_start(void)
{
    stopwatch s = {bench_cpu_ns(), bench_wall_ns()};
    return s;
}

static void stopwatch_per(stopwatch s, size_t n, double figs[BENCH_MAX_FIGS])
{
    figs[0] = (bench_cpu_ns() - s.cpu) / (double)n;
    figs[1] = (bench_wall_ns() - s.wall) / (double)n;
}

static void pact_timer_cb(pact_error *err, void *ud)
{
    expect_no_error("pact_timeout", err);
    ((timer_ctx *)ud)->fired++;
}

static void pact_timer_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    timer_ctx *c = ctx;
    pact_loop *loop;

    BENCH_CHECK(pact_loop_new(&loop));
    c->fired = 0;
    stopwatch s = stopwatch_start();
    for (size_t i = 0; i < TIMERS; i++)
        BENCH_CHECK(pact_timeout(loop, c->delays[i], pact_timer_cb, c, NULL));
    BENCH_CHECK(pact_loop_run(loop, PACT_RUN_DEFAULT));
    stopwatch_per(s, TIMERS, figs);
    expect_count("pact timers", c->fired, TIMERS);
    BENCH_CHECK(pact_loop_free(loop));
}

static void event_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    ((timer_ctx *)arg)->fired++;
}

static void event_timer_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    timer_ctx *c = ctx;
    struct event_base *base = new_base();

    c->fired = 0;
    stopwatch s = stopwatch_start();
    for (size_t i = 0; i < TIMERS; i++) {
        struct event *ev = event_at(c->events, i);
        struct timeval tv = {c->delays[i] / 1000, c->delays[i] % 1000 * 1000};
        BENCH_CHECK(event_assign(ev, base, -1, 0, event_timer_cb, c));
        BENCH_CHECK(event_add(ev, &tv));
    }
    BENCH_CHECK(event_base_dispatch(base));
    stopwatch_per(s, TIMERS, figs);
    expect_count("libevent timers", c->fired, TIMERS);
    event_base_free(base);
}

#ifdef HAVE_LIBUV
static void uv_timer_fire(uv_timer_t *t)
{
    ((timer_ctx *)t->data)->fired++;
}

/* Closing is bookkeeping after the measured run, not part of the figure. */
static void uv_loop_finish(uv_loop_t *loop)
{
    BENCH_CHECK(uv_run(loop, UV_RUN_DEFAULT));
    BENCH_CHECK(uv_loop_close(loop));
}

static void uv_timer_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    timer_ctx *c = ctx;
    uv_loop_t loop;

    BENCH_CHECK(uv_loop_init(&loop));
    c->fired = 0;
    stopwatch s = stopwatch_start();
    for (size_t i = 0; i < TIMERS; i++) {
        uv_timer_t *t = &c->uv_timers[i];
        BENCH_CHECK(uv_timer_init(&loop, t));
        t->data = c;
        BENCH_CHECK(uv_timer_start(t, uv_timer_fire, c->delays[i], 0));
    }
    BENCH_CHECK(uv_run(&loop, UV_RUN_DEFAULT));
    stopwatch_per(s, TIMERS, figs);
    expect_count("libuv timers", c->fired, TIMERS);
    for (size_t i = 0; i < TIMERS; i++)
        uv_close((uv_handle_t *)&c->uv_timers[i], NULL);
    uv_loop_finish(&loop);
}
#endif

static void bench_timer(void)
{
    timer_ctx c = {0};
    double pact[BENCH_MAX_FIGS], ev[BENCH_MAX_FIGS], uv[2] = {-1, -1};
    double node[2] = {-1, -1};

    c.delays = malloc(TIMERS * sizeof *c.delays);
    c.events = malloc(TIMERS * event_get_struct_event_size());
    if (!c.delays || !c.events)
        bench_fail("out of memory");
    bench_delays(c.delays, TIMERS);

    bench_best(pact_timer_run, &c, pact);
    bench_best(event_timer_run, &c, ev);
#ifdef HAVE_LIBUV
    c.uv_timers = malloc(TIMERS * sizeof *c.uv_timers);
    if (!c.uv_timers)
        bench_fail("out of memory");
    bench_best(uv_timer_run, &c, uv);
    free(c.uv_timers);
#endif
    bench_node("timer.js", node, 2);

    for (int f = 0; f < 2; f++) {
        bench_anchor a[] = {
            {"libevent", ev[f]}, {"libuv", uv[f]}, {"node", node[f]}};
        bench_print(f == 0 ? "timer.add_fire" : "timer.add_fire_wall", "ns",
                    pact[f], a, 3);
    }
    free(c.events);
    free(c.delays);
}

/* ======================================================================
 * immediate.hop: a chain of IMMEDIATES setImmediate-like callbacks, each
 * scheduling the next, so every hop is one loop iteration (with its poll).
 * Figure: wall ns per hop, from the first schedule to the loop's return.
 * ====================================================================== */

typedef struct hop_ctx {
    size_t n, count;
    double t0, t1;
    pact_loop *loop;
    int (*queue)(pact_loop *, pact_fn, void *); /* microtask or tick */
    struct event_base *base;
    struct event *ev;
#ifdef HAVE_LIBUV
    uv_check_t check;
    uv_idle_t idle;
    int uv_queued; /* the anchor's immediate queue: a chain has at most one */
#endif
} hop_ctx;

static void hop_figure(hop_ctx *c, const char *what,
                       double figs[BENCH_MAX_FIGS])
{
    expect_count(what, c->count, c->n);
    figs[0] = (c->t1 - c->t0) / (double)c->n;
}

static void pact_immediate_cb(pact_error *err, void *ud)
{
    hop_ctx *c = ud;
    expect_no_error("pact_immediate", err);
    if (++c->count < c->n)
        BENCH_CHECK(pact_immediate(c->loop, pact_immediate_cb, c, NULL));
}

static void pact_immediate_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    hop_ctx *c = ctx;

    BENCH_CHECK(pact_loop_new(&c->loop));
    c->count = 0;
    c->t0 = bench_wall_ns();
    BENCH_CHECK(pact_immediate(c->loop, pact_immediate_cb, c, NULL));
    BENCH_CHECK(pact_loop_run(c->loop, PACT_RUN_DEFAULT));
    c->t1 = bench_wall_ns();
    hop_figure(c, "pact immediates", figs);
    BENCH_CHECK(pact_loop_free(c->loop));
}

/* libevent has no check phase; an event re-added with a zero timeout is
 * what runs "on the next iteration, after a poll". */
static const struct timeval zero_tv = {0, 0};

static void event_immediate_cb(evutil_socket_t fd, short what, void *arg)
{
    hop_ctx *c = arg;
    (void)fd, (void)what;
    if (++c->count < c->n)
        BENCH_CHECK(event_add(c->ev, &zero_tv));
}

static void event_immediate_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    hop_ctx *c = ctx;

    c->base = new_base();
    BENCH_CHECK(event_assign(c->ev, c->base, -1, 0, event_immediate_cb, c));
    c->count = 0;
    c->t0 = bench_wall_ns();
    BENCH_CHECK(event_add(c->ev, &zero_tv));
    BENCH_CHECK(event_base_dispatch(c->base));
    c->t1 = bench_wall_ns();
    hop_figure(c, "libevent zero-timeout events", figs);
    event_base_free(c->base);
}

#ifdef HAVE_LIBUV
/* Node's setImmediate on libuv: a check handle runs the immediates queued
 * before it started (new ones wait for the next iteration), and an idle
 * handle is active while any is queued so that the poll does not block.
 * The check handle is unreferenced; the idle one keeps the loop alive. */
static void uv_idle_noop(uv_idle_t *idle)
{
    (void)idle;
}

static void uv_immediate_schedule(hop_ctx *c)
{
    if (c->uv_queued++ == 0)
        BENCH_CHECK(uv_idle_start(&c->idle, uv_idle_noop));
}

static void uv_immediate_check(uv_check_t *check)
{
    hop_ctx *c = check->data;
    int batch = c->uv_queued;

    c->uv_queued = 0;
    for (int i = 0; i < batch; i++)
        if (++c->count < c->n)
            uv_immediate_schedule(c);
    if (c->uv_queued == 0)
        BENCH_CHECK(uv_idle_stop(&c->idle));
}

static void uv_immediate_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    hop_ctx *c = ctx;
    uv_loop_t loop;

    BENCH_CHECK(uv_loop_init(&loop));
    BENCH_CHECK(uv_check_init(&loop, &c->check));
    BENCH_CHECK(uv_idle_init(&loop, &c->idle));
    c->check.data = c;
    BENCH_CHECK(uv_check_start(&c->check, uv_immediate_check));
    uv_unref((uv_handle_t *)&c->check);
    c->count = 0;
    c->uv_queued = 0;
    c->t0 = bench_wall_ns();
    uv_immediate_schedule(c);
    BENCH_CHECK(uv_run(&loop, UV_RUN_DEFAULT));
    c->t1 = bench_wall_ns();
    hop_figure(c, "libuv check+idle immediates", figs);
    uv_close((uv_handle_t *)&c->check, NULL);
    uv_close((uv_handle_t *)&c->idle, NULL);
    uv_loop_finish(&loop);
}
#endif

static void bench_immediate(void)
{
    hop_ctx c = {.n = IMMEDIATES};
    double pact[BENCH_MAX_FIGS], ev[BENCH_MAX_FIGS], uv[2] = {-1}, node = -1;

    c.ev = malloc(event_get_struct_event_size());
    if (!c.ev)
        bench_fail("out of memory");
    bench_best(pact_immediate_run, &c, pact);
    bench_best(event_immediate_run, &c, ev);
#ifdef HAVE_LIBUV
    bench_best(uv_immediate_run, &c, uv);
#endif
    bench_node("immediate.js", &node, 1);
    free(c.ev);

    bench_anchor a[] = {{"libevent", ev[0]}, {"libuv", uv[0]}, {"node", node}};
    bench_print("immediate.hop", "ns", pact[0], a, 3);
}

/* ======================================================================
 * microtask.hop and tick.hop: a chain of MICROTASKS jobs, each queuing the
 * next, started from an immediate so that the drain runs inside the loop.
 * Figure: wall ns per hop, from queuing the first to running the last.
 * The libevent anchor is its cheapest callback hop: one event made active
 * again from its own callback, which runs in the same pass of the loop.
 * ====================================================================== */

static void pact_job_hop(void *ud)
{
    hop_ctx *c = ud;
    if (++c->count < c->n)
        BENCH_CHECK(c->queue(c->loop, pact_job_hop, c));
    else
        c->t1 = bench_wall_ns();
}

static void pact_job_start(pact_error *err, void *ud)
{
    hop_ctx *c = ud;
    expect_no_error("pact_immediate", err);
    c->t0 = bench_wall_ns();
    BENCH_CHECK(c->queue(c->loop, pact_job_hop, c));
}

static void pact_job_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    hop_ctx *c = ctx;

    BENCH_CHECK(pact_loop_new(&c->loop));
    c->count = 0;
    BENCH_CHECK(pact_immediate(c->loop, pact_job_start, c, NULL));
    BENCH_CHECK(pact_loop_run(c->loop, PACT_RUN_DEFAULT));
    hop_figure(c, c->queue == pact_next_tick ? "pact ticks" : "pact microtasks",
               figs);
    BENCH_CHECK(pact_loop_free(c->loop));
}

static void event_active_hop(evutil_socket_t fd, short what, void *arg)
{
    hop_ctx *c = arg;
    (void)fd, (void)what;
    if (++c->count < c->n)
        event_active(c->ev, EV_TIMEOUT, 0);
    else
        c->t1 = bench_wall_ns();
}

static void event_active_start(evutil_socket_t fd, short what, void *arg)
{
    hop_ctx *c = arg;
    (void)fd, (void)what;
    c->t0 = bench_wall_ns();
    event_active(c->ev, EV_TIMEOUT, 0);
}

static void event_active_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    hop_ctx *c = ctx;

    c->base = new_base();
    BENCH_CHECK(event_assign(c->ev, c->base, -1, 0, event_active_hop, c));
    c->count = 0;
    BENCH_CHECK(event_base_once(c->base, -1, EV_TIMEOUT, event_active_start, c,
                                &zero_tv));
    BENCH_CHECK(event_base_dispatch(c->base));
    hop_figure(c, "libevent event_active chain", figs);
    event_base_free(c->base);
}

static void bench_jobs(const char *name, const char *script,
                       int (*queue)(pact_loop *, pact_fn, void *))
{
    hop_ctx c = {.n = MICROTASKS, .queue = queue};
    double pact[BENCH_MAX_FIGS], ev[BENCH_MAX_FIGS], node = -1;

    c.ev = malloc(event_get_struct_event_size());
    if (!c.ev)
        bench_fail("out of memory");
    bench_best(pact_job_run, &c, pact);
    bench_best(event_active_run, &c, ev);
    bench_node(script, &node, 1);
    free(c.ev);

    bench_anchor a[] = {{"libevent", ev[0]}, {"node", node}};
    bench_print(name, "ns", pact[0], a, 2);
}

static void bench_microtask(void)
{
    bench_jobs("microtask.hop", "microtask.js", pact_queue_microtask);
}

static void bench_tick(void)
{
    bench_jobs("tick.hop", "tick.js", pact_next_tick);
}

/* ======================================================================
 * post.hop: a producer thread posts POSTS jobs to the loop as fast as it
 * can; the loop runs each. Figure: wall ns per post, from the first post
 * until the loop ran the last job. The producer starts from a loop callback
 * so the loop is already running when the clock starts.
 * ====================================================================== */

typedef struct post_ctx {
    size_t count;
    double t0, t1;
    pthread_t producer;
    pact_loop *loop;
    struct event_base *base;
#ifdef HAVE_LIBUV
    uv_async_t async;
    uv_timer_t start;
    pthread_mutex_t lock; /* guards head and tail */
    struct post_node *head, *tail;
#endif
} post_ctx;

static void start_producer(post_ctx *c, void *(*fn)(void *))
{
    if (pthread_create(&c->producer, NULL, fn, c) != 0)
        bench_fail("pthread_create failed");
}

static void join_producer(post_ctx *c)
{
    if (pthread_join(c->producer, NULL) != 0)
        bench_fail("pthread_join failed");
}

static void post_figure(post_ctx *c, const char *what,
                        double figs[BENCH_MAX_FIGS])
{
    expect_count(what, c->count, POSTS);
    figs[0] = (c->t1 - c->t0) / POSTS;
}

static void pact_post_job(void *ud)
{
    post_ctx *c = ud;
    if (++c->count == POSTS) {
        c->t1 = bench_wall_ns();
        pact_loop_release(c->loop);
    }
}

static void *pact_producer(void *arg)
{
    post_ctx *c = arg;
    c->t0 = bench_wall_ns();
    for (size_t i = 0; i < POSTS; i++)
        BENCH_CHECK(pact_loop_post(c->loop, pact_post_job, c));
    return NULL;
}

static void pact_post_start(pact_error *err, void *ud)
{
    expect_no_error("pact_immediate", err);
    start_producer(ud, pact_producer);
}

static void pact_post_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    post_ctx *c = ctx;

    BENCH_CHECK(pact_loop_new(&c->loop));
    c->count = 0;
    pact_loop_hold(c->loop); /* released by the last job */
    BENCH_CHECK(pact_immediate(c->loop, pact_post_start, c, NULL));
    BENCH_CHECK(pact_loop_run(c->loop, PACT_RUN_DEFAULT));
    join_producer(c);
    post_figure(c, "pact posts", figs);
    BENCH_CHECK(pact_loop_free(c->loop));
}

/* libevent's door between threads: with evthread locking on, any thread may
 * add an event, and event_base_once allocates a one-shot one per call. */
static void event_post_job(evutil_socket_t fd, short what, void *arg)
{
    post_ctx *c = arg;
    (void)fd, (void)what;
    if (++c->count == POSTS) {
        c->t1 = bench_wall_ns();
        BENCH_CHECK(event_base_loopbreak(c->base));
    }
}

static void *event_producer(void *arg)
{
    post_ctx *c = arg;
    c->t0 = bench_wall_ns();
    for (size_t i = 0; i < POSTS; i++)
        BENCH_CHECK(event_base_once(c->base, -1, EV_TIMEOUT, event_post_job, c,
                                    &zero_tv));
    return NULL;
}

static void event_post_start(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    start_producer(arg, event_producer);
}

static void event_post_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    post_ctx *c = ctx;

    c->base = new_base();
    c->count = 0;
    BENCH_CHECK(event_base_once(c->base, -1, EV_TIMEOUT, event_post_start, c,
                                &zero_tv));
    /* NO_EXIT_ON_EMPTY plays the part of pact_loop_hold. */
    BENCH_CHECK(event_base_loop(c->base, EVLOOP_NO_EXIT_ON_EMPTY));
    join_producer(c);
    post_figure(c, "libevent event_base_once posts", figs);
    event_base_free(c->base);
}

#ifdef HAVE_LIBUV
/* The usual libuv door: a mutex-protected queue of malloc'd jobs, one
 * uv_async_send per job (libuv coalesces the wake-ups), and the async
 * callback drains the whole queue. */
typedef struct post_node {
    struct post_node *next;
    void (*fn)(post_ctx *);
} post_node;

static void uv_post_job(post_ctx *c)
{
    if (++c->count == POSTS) {
        c->t1 = bench_wall_ns();
        uv_close((uv_handle_t *)&c->async, NULL);
    }
}

static void uv_post_drain(uv_async_t *async)
{
    post_ctx *c = async->data;

    pthread_mutex_lock(&c->lock);
    post_node *n = c->head;
    c->head = c->tail = NULL;
    pthread_mutex_unlock(&c->lock);
    while (n) {
        post_node *next = n->next;
        n->fn(c);
        free(n);
        n = next;
    }
}

static void uv_post(post_ctx *c, void (*fn)(post_ctx *))
{
    post_node *n = malloc(sizeof *n);
    if (!n)
        bench_fail("out of memory");
    n->next = NULL;
    n->fn = fn;
    pthread_mutex_lock(&c->lock);
    if (c->tail)
        c->tail->next = n;
    else
        c->head = n;
    c->tail = n;
    pthread_mutex_unlock(&c->lock);
    BENCH_CHECK(uv_async_send(&c->async));
}

static void *uv_producer(void *arg)
{
    post_ctx *c = arg;
    c->t0 = bench_wall_ns();
    for (size_t i = 0; i < POSTS; i++)
        uv_post(c, uv_post_job);
    return NULL;
}

static void uv_post_start(uv_timer_t *t)
{
    start_producer(t->data, uv_producer);
}

static void uv_post_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    post_ctx *c = ctx;
    uv_loop_t loop;

    BENCH_CHECK(uv_loop_init(&loop));
    BENCH_CHECK(uv_async_init(&loop, &c->async, uv_post_drain));
    BENCH_CHECK(uv_timer_init(&loop, &c->start));
    c->async.data = c->start.data = c;
    c->head = c->tail = NULL;
    c->count = 0;
    BENCH_CHECK(uv_timer_start(&c->start, uv_post_start, 0, 0));
    BENCH_CHECK(uv_run(&loop, UV_RUN_DEFAULT)); /* until the async is closed */
    join_producer(c);
    post_figure(c, "libuv async posts", figs);
    uv_close((uv_handle_t *)&c->start, NULL);
    uv_loop_finish(&loop);
}
#endif

static void bench_post(void)
{
    post_ctx c = {0};
    double pact[BENCH_MAX_FIGS], ev[BENCH_MAX_FIGS], uv[2] = {-1};

    bench_best(pact_post_run, &c, pact);
    /* Locking is process-wide and cannot be undone, so it is turned on here,
     * in the last benchmark, after every other libevent anchor ran. */
    BENCH_CHECK(evthread_use_pthreads());
    bench_best(event_post_run, &c, ev);
#ifdef HAVE_LIBUV
    pthread_mutex_init(&c.lock, NULL);
    bench_best(uv_post_run, &c, uv);
    pthread_mutex_destroy(&c.lock);
#endif

    bench_anchor a[] = {{"libevent", ev[0]}, {"libuv", uv[0]}};
    bench_print("post.hop", "ns", pact[0], a, 2);
}

/* The registry, in the order `bench` runs them (post.hop last: see above). */
/* ======================================================================
 * cancel.pending: CANCELS pending timers (random delays, as timer.add_fire)
 * cancelled at once. pact: pact_loop_close_all and the run that calls each
 * callback once with ECANCELED (the rule every operation keeps); the
 * anchors: event_del of each libevent timer, uv_timer_stop of each libuv
 * timer, which call nothing. Figure: CPU ns per operation, cancelling only
 * (adding them is timer.add_fire's).
 * ====================================================================== */

#define CANCELS 100000u

static void pact_cancel_cb(pact_error *err, void *ud)
{
    timer_ctx *c = ud;
    if (pact_error_code(err) == PACT_ECANCELED)
        c->fired++;
}

static void pact_cancel_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    timer_ctx *c = ctx;
    pact_loop *loop;
    BENCH_CHECK(pact_loop_new(&loop));
    c->fired = 0;
    for (size_t i = 0; i < CANCELS; i++)
        BENCH_CHECK(
            pact_timeout(loop, 1000 + c->delays[i], pact_cancel_cb, c, NULL));
    stopwatch s = stopwatch_start();
    BENCH_CHECK(pact_loop_close_all(loop));
    BENCH_CHECK(pact_loop_run(loop, PACT_RUN_DEFAULT));
    stopwatch_per(s, CANCELS, figs);
    expect_count("pact cancellations", c->fired, CANCELS);
    BENCH_CHECK(pact_loop_free(loop));
}

static void event_cancel_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    timer_ctx *c = ctx;
    struct event_base *base = new_base();
    for (size_t i = 0; i < CANCELS; i++) {
        struct event *ev = event_at(c->events, i);
        unsigned ms = 1000 + c->delays[i];
        struct timeval tv = {ms / 1000, ms % 1000 * 1000};
        BENCH_CHECK(event_assign(ev, base, -1, 0, event_timer_cb, c));
        BENCH_CHECK(event_add(ev, &tv));
    }
    stopwatch s = stopwatch_start();
    for (size_t i = 0; i < CANCELS; i++)
        BENCH_CHECK(event_del(event_at(c->events, i)));
    stopwatch_per(s, CANCELS, figs);
    BENCH_CHECK(event_base_dispatch(base));
    event_base_free(base);
}

#ifdef HAVE_LIBUV
static void uv_cancel_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    timer_ctx *c = ctx;
    uv_loop_t loop;
    BENCH_CHECK(uv_loop_init(&loop));
    for (size_t i = 0; i < CANCELS; i++) {
        uv_timer_t *t = &c->uv_timers[i];
        BENCH_CHECK(uv_timer_init(&loop, t));
        t->data = c;
        BENCH_CHECK(uv_timer_start(t, uv_timer_fire, 1000 + c->delays[i], 0));
    }
    stopwatch s = stopwatch_start();
    for (size_t i = 0; i < CANCELS; i++)
        BENCH_CHECK(uv_timer_stop(&c->uv_timers[i]));
    stopwatch_per(s, CANCELS, figs);
    for (size_t i = 0; i < CANCELS; i++)
        uv_close((uv_handle_t *)&c->uv_timers[i], NULL);
    uv_loop_finish(&loop);
}
#endif

static void bench_cancel(void)
{
    timer_ctx c = {0};
    double pact[BENCH_MAX_FIGS], ev[BENCH_MAX_FIGS], uv[2] = {-1, -1};
    c.delays = malloc(CANCELS * sizeof *c.delays);
    c.events = malloc(CANCELS * event_get_struct_event_size());
    if (!c.delays || !c.events)
        bench_fail("out of memory");
    bench_delays(c.delays, CANCELS);
    bench_best(pact_cancel_run, &c, pact);
    bench_best(event_cancel_run, &c, ev);
#ifdef HAVE_LIBUV
    c.uv_timers = malloc(CANCELS * sizeof *c.uv_timers);
    if (!c.uv_timers)
        bench_fail("out of memory");
    bench_best(uv_cancel_run, &c, uv);
    free(c.uv_timers);
#endif
    bench_anchor a[] = {{"libevent", ev[0]}, {"libuv", uv[0]}};
    bench_print("cancel.pending", "ns", pact[0], a, 2);
    free(c.events);
    free(c.delays);
}

const bench_def bench_core[] = {
    {"timer.add_fire", bench_timer},
    {"immediate.hop", bench_immediate},
    {"microtask.hop", bench_microtask},
    {"tick.hop", bench_tick},
    {"post.hop", bench_post},
    {"cancel.pending", bench_cancel},
    {NULL, NULL},
};

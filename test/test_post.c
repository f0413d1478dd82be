/* pact_loop_post, the thread-safe door: posts from one and many threads run
 * exactly once on the loop thread in per-thread order, hold/release keep the
 * loop alive, posts arriving together share one I/O phase, and the tick and
 * microtask queues drain after each post. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "suites.h"

static pthread_t loop_thread;

static void setup(void)
{
    t_setup();
    loop_thread = pthread_self();
}

/* ---- one and many threads ---------------------------------------------- */

enum { THREADS = 4, PER_THREAD = 100000 };

struct many {
    pact_loop *loop;
    int next[THREADS]; /* the next sequence number expected per thread */
    int out_of_order, off_thread, post_failed, total;
};

struct poster {
    struct many *m;
    int index, count;
};

/* The callbacks' shared state (the ud carries the thread and sequence). */
static struct many *the_many;

static void seq_fn(void *ud)
{
    uintptr_t v = (uintptr_t)ud;
    int t = (int)(v >> 24), seq = (int)(v & 0xffffff);
    struct many *m = the_many;
    if (!pthread_equal(pthread_self(), loop_thread))
        m->off_thread++;
    if (seq != m->next[t])
        m->out_of_order++;
    m->next[t] = seq + 1;
    m->total++;
}

static void *post_many(void *p)
{
    struct poster *ps = p;
    for (int i = 0; i < ps->count; i++) {
        uintptr_t v = ((uintptr_t)ps->index << 24) | (uintptr_t)i;
        if (pact_loop_post(ps->m->loop, seq_fn, (void *)v) != 0)
            __atomic_add_fetch(&ps->m->post_failed, 1, __ATOMIC_RELAXED);
    }
    pact_loop_release(ps->m->loop);
    return NULL;
}

/* Each thread holds the loop (taken for it before it starts) until it has
 * posted everything; the loop ends once every post has run. */
static void run_posters(int nthreads, int per_thread)
{
    struct many m = {.loop = t_loop};
    struct poster ps[THREADS];
    pthread_t th[THREADS];
    the_many = &m;
    for (int i = 0; i < nthreads; i++) {
        ps[i] = (struct poster){&m, i, per_thread};
        pact_loop_hold(t_loop);
        ck_assert_int_eq(pthread_create(&th[i], NULL, post_many, &ps[i]), 0);
    }
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(m.post_failed, 0);
    ck_assert_int_eq(m.total, nthreads * per_thread);
    for (int i = 0; i < nthreads; i++)
        ck_assert_int_eq(m.next[i], per_thread);
    ck_assert_int_eq(m.out_of_order, 0);
    ck_assert_int_eq(m.off_thread, 0);
    the_many = NULL;
}

START_TEST(posts_from_one_thread)
{
    run_posters(1, 10000);
}
END_TEST

START_TEST(posts_from_four_threads)
{
    run_posters(THREADS, PER_THREAD);
}
END_TEST

/* ---- keeping the loop alive -------------------------------------------- */

START_TEST(queued_post_keeps_alive)
{
    int n = 0;
    ck_assert_int_eq(pact_loop_post(t_loop, count_fn, &n), 0);
    ck_assert_int_eq(n, 0); /* never synchronous */
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 1);
}
END_TEST

struct late {
    pact_loop *loop;
    unsigned delay_ms;
    int post;
    int n;
    uint64_t posted_us;
};

static void *post_late(void *p)
{
    struct late *l = p;
    sleep_ms(l->delay_ms);
    l->posted_us = now_us();
    if (l->post)
        pact_loop_post(l->loop, count_fn, &l->n);
    pact_loop_release(l->loop);
    return NULL;
}

START_TEST(hold_until_late_post)
{
    struct late l = {t_loop, 30, 1, 0, 0};
    pthread_t th;
    uint64_t t0 = now_us();
    pact_loop_hold(t_loop);
    ck_assert(pact_loop_alive(t_loop));
    ck_assert_int_eq(pthread_create(&th, NULL, post_late, &l), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(l.n, 1);
    ck_assert_uint_ge(now_us() - t0, 30000);
}
END_TEST

static void watchdog(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    ++*(int *)ud;
    pact_loop_stop(t_loop);
}

/* A release with nothing posted must wake the loop so it can return. An
 * unreferenced watchdog bounds the wait if it does not (it cannot keep the
 * loop alive itself). */
START_TEST(release_wakes_idle_loop)
{
    struct late l = {t_loop, 20, 0, 0, 0};
    int barked = 0;
    pact_handle dog;
    pthread_t th;
    pact_timer_opts o = {.delay_ms = 2000, .unref = true};
    ck_assert_int_eq(pact_timer_start(t_loop, &o, watchdog, &barked, &dog), 0);
    pact_loop_hold(t_loop);
    ck_assert_int_eq(pthread_create(&th, NULL, post_late, &l), 0);
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    uint64_t end = now_us();
    pthread_join(th, NULL);
    ck_assert_msg(barked == 0, "the loop slept %llu ms past the release",
                  (unsigned long long)(end - l.posted_us) / 1000);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_ge(end, l.posted_us);
    ck_assert_int_eq(pact_clear(t_loop, dog), 0);
}
END_TEST

START_TEST(hold_counts)
{
    pact_loop_hold(t_loop);
    pact_loop_hold(t_loop);
    ck_assert(pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    pact_loop_release(t_loop);
    ck_assert(pact_loop_alive(t_loop));
    pact_loop_release(t_loop);
    ck_assert(!pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}
END_TEST

/* ---- coalescing and draining ------------------------------------------- */

enum { BURST = 100 };

struct burst {
    pact_loop *loop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go, done;
    pact_fn fns[BURST];
    void *uds[BURST];
    int count;
};

static void *post_burst(void *p)
{
    struct burst *b = p;
    pthread_mutex_lock(&b->mu);
    while (!b->go)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < b->count; i++)
        pact_loop_post(b->loop, b->fns[i], b->uds[i]);
    pthread_mutex_lock(&b->mu);
    b->done = 1;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Runs on the loop thread and blocks it until the burst has been posted, so
 * every post is queued before the loop looks; the immediate queued here runs
 * in this iteration's check phase, after its I/O phase. */
static void block_during_burst(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct burst *b = ud;
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "immediate", NULL), 0);
    pthread_mutex_lock(&b->mu);
    b->go = 1;
    pthread_cond_signal(&b->cv);
    while (!b->done)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

static void run_burst(struct burst *b)
{
    pthread_t th;
    b->loop = t_loop;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    ck_assert_int_eq(pthread_create(&th, NULL, post_burst, b), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 1, block_during_burst, b, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    pthread_join(th, NULL);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
}

static void trace_index(void *ud)
{
    trace("post %d", (int)(intptr_t)ud);
}

/* One wake-up drains the whole queue: all posts, then the immediate. One
 * post per wake-up would spread them over iterations, past the immediate. */
START_TEST(posts_coalesce_into_one_io_phase)
{
    static struct burst b;
    memset(&b, 0, sizeof b);
    char want[4096] = "";
    b.count = BURST;
    for (int i = 0; i < BURST; i++) {
        b.fns[i] = trace_index;
        b.uds[i] = (void *)(intptr_t)i;
        snprintf(want + strlen(want), sizeof want - strlen(want), "post %d\n",
                 i);
    }
    strcat(want, "immediate\n");
    run_burst(&b);
    ck_assert_str_eq(trace_text(), want);
}
END_TEST

static void post_queues(void *ud)
{
    const char *name = ud;
    trace("%s", name);
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "micro"), 0);
    ck_assert_int_eq(pact_next_tick(t_loop, trace_fn, "tick"), 0);
}

START_TEST(queues_drain_after_each_post)
{
    static struct burst b;
    memset(&b, 0, sizeof b);
    b.count = 2;
    b.fns[0] = b.fns[1] = post_queues;
    b.uds[0] = "p1";
    b.uds[1] = "p2";
    run_burst(&b);
    ck_assert_str_eq(trace_text(),
                     "p1\ntick\nmicro\np2\ntick\nmicro\nimmediate\n");
}
END_TEST

struct self_post {
    int n, n_at_return;
};

static void self_post_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct self_post *s = ud;
    ck_assert_int_eq(pact_loop_post(t_loop, count_fn, &s->n), 0);
    s->n_at_return = s->n;
}

/* Posting from the loop thread is allowed and still deferred. */
START_TEST(post_from_loop_thread)
{
    struct self_post s = {0, -1};
    ck_assert_int_eq(pact_timeout(t_loop, 1, self_post_cb, &s, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(s.n_at_return, 0);
    ck_assert_int_eq(s.n, 1);
}
END_TEST

START_TEST(post_null_fn)
{
    ck_assert_int_eq(pact_loop_post(t_loop, NULL, NULL), PACT_EINVAL);
    ck_assert(!pact_loop_alive(t_loop));
}
END_TEST

Suite *suite_post(void)
{
    Suite *s = suite_create("post");
    TCase *tc = tcase_create("post");
    tcase_add_checked_fixture(tc, setup, t_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, posts_from_one_thread);
    tcase_add_test(tc, posts_from_four_threads);
    tcase_add_test(tc, queued_post_keeps_alive);
    tcase_add_test(tc, hold_until_late_post);
    tcase_add_test(tc, release_wakes_idle_loop);
    tcase_add_test(tc, hold_counts);
    tcase_add_test(tc, posts_coalesce_into_one_io_phase);
    tcase_add_test(tc, queues_drain_after_each_post);
    tcase_add_test(tc, post_from_loop_thread);
    tcase_add_test(tc, post_null_fn);
    suite_add_tcase(s, tc);
    return s;
}

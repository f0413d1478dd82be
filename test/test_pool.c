/* The offload pool: round trips under load, completions that share one
 * wake-up, the lanes (a blocked blocking lane does not starve the CPU lane),
 * lazy threads and their sizes, back-pressure, cancellation of queued and
 * running jobs, shutdown with work pending, errors and values from jobs, the
 * promise twin and awaiting it from a task, and misuse. Real threads: jobs
 * that must be held block on a gate the test opens. Job functions never
 * assert (Check's assertions belong to the test's thread); they count, and
 * the loop thread asserts. */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "suites.h"

static pthread_t loop_thread;

static void setup(void)
{
    t_setup();
    loop_thread = pthread_self();
}

static bool on_loop_thread(void)
{
    return pthread_equal(pthread_self(), loop_thread);
}

/* Threads of this process, from /proc/self/task. */
static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ---- a gate that holds jobs on their pool threads ------------------------ */

struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    atomic_int entered, left, max_inside;
    atomic_int inside;
};

static void gate_init(struct gate *g)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
}

static void gate_destroy(struct gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static bool gate_is_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    bool open = g->open;
    pthread_mutex_unlock(&g->mu);
    return open;
}

/* A job that waits at the gate until it opens. */
static pact_error *wait_at_gate(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    struct gate *g = arg;
    atomic_fetch_add(&g->entered, 1);
    int in = atomic_fetch_add(&g->inside, 1) + 1;
    int max = atomic_load(&g->max_inside);
    while (in > max && !atomic_compare_exchange_weak(&g->max_inside, &max, in))
        ;
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    atomic_fetch_sub(&g->inside, 1);
    atomic_fetch_add(&g->left, 1);
    *result = pact_int(1);
    return NULL;
}

/* Wait (on the loop thread, outside the loop) until @p n jobs are at the
 * gate; the jobs must have been handed to their lane already (a turn of the
 * loop after submission). */
static void wait_entered(struct gate *g, int n)
{
    uint64_t t0 = now_us();
    while (atomic_load(&g->entered) < n) {
        ck_assert_msg(now_us() - t0 < 10000000, "only %d of %d jobs started",
                      atomic_load(&g->entered), n);
        sleep_ms(1);
    }
}

/* Run one turn of the loop without waiting: hands submitted jobs to the
 * pool (the flush is a microtask). */
static void hand_over(void)
{
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
}

/* ---- simple jobs and callbacks ------------------------------------------- */

static atomic_int ran_off_loop, ran_on_loop;

static pact_error *twice(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    atomic_fetch_add(on_loop_thread() ? &ran_on_loop : &ran_off_loop, 1);
    *result = pact_int((intptr_t)arg * 2);
    return NULL;
}

struct tally {
    int calls, errors, off_thread;
    int64_t sum;
    int last_code;
    char *last_msg;
    int first_cause;
};

static void tally_cb(pact_error *err, pact_value *result, void *ud)
{
    struct tally *t = ud;
    t->calls++;
    if (!on_loop_thread())
        t->off_thread++;
    if (err) {
        t->errors++;
        t->last_code = pact_error_code(err);
        free(t->last_msg);
        t->last_msg = strdup(pact_error_message(err));
        pact_error *cause = pact_error_cause(err);
        t->first_cause = cause ? pact_error_code(cause) : 0;
        ck_assert_int_eq(result->kind, PACT_NOTHING);
        return;
    }
    if (result->kind == PACT_INT)
        t->sum += result->u.i;
}

static void tally_free(struct tally *t)
{
    free(t->last_msg);
    t->last_msg = NULL;
}

/* In a child of fork() (the limit is the process's): the loop's first
 * offload needs a descriptor; without one it says so, and the next, with
 * one, works. */
static void offload_without_descriptors(void *arg)
{
    (void)arg;
    struct tally t = {0};
    int lowest = t_child_fd_limit(0);
    T_CHILD_ASSERT(pact_offload(t_loop, twice, (void *)1, NULL, tally_cb, &t) ==
                   PACT_EMFILE);
    T_CHILD_ASSERT(t_child_fd_limit(0) == lowest);
    t_child_fd_limit(16);
    T_CHILD_ASSERT(pact_offload(t_loop, twice, (void *)1, NULL, tally_cb, &t) ==
                   0);
    T_CHILD_ASSERT(pact_loop_run(t_loop, PACT_RUN_DEFAULT) == 0);
    T_CHILD_ASSERT(t.calls == 1 && t.sum == 2);
    T_CHILD_ASSERT(pact_loop_free(t_loop) == 0);
}

START_TEST(descriptor_exhaustion_is_emfile)
{
    t_forked(offload_without_descriptors, NULL);
}
END_TEST

/* ---- round trips --------------------------------------------------------- */

enum { LOAD = 100000 };

START_TEST(round_trips_under_load)
{
    struct tally t = {0};
    atomic_store(&ran_off_loop, 0);
    atomic_store(&ran_on_loop, 0);
    ck_assert_int_eq(pact_offload_set_limit(t_loop, PACT_LANE_CPU, LOAD), 0);
    for (intptr_t i = 0; i < LOAD; i++)
        ck_assert_int_eq(
            pact_offload(t_loop, twice, (void *)i, NULL, tally_cb, &t), 0);
    ck_assert_uint_eq(pact_offload_pending(t_loop, PACT_LANE_CPU), LOAD);
    ck_assert_int_eq(t.calls, 0); /* never inside the submission */
    ck_assert(pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(t.calls, LOAD);
    ck_assert_int_eq(t.errors, 0);
    ck_assert_int_eq(t.off_thread, 0);
    ck_assert_int_eq(t.sum, (int64_t)LOAD * (LOAD - 1));
    ck_assert_int_eq(atomic_load(&ran_off_loop), LOAD);
    ck_assert_int_eq(atomic_load(&ran_on_loop), 0);
    ck_assert_uint_eq(pact_offload_pending(t_loop, PACT_LANE_CPU), 0);
    ck_assert(!pact_loop_alive(t_loop));
}
END_TEST

struct chain {
    int left, done;
    int64_t sum;
};

static void chain_cb(pact_error *err, pact_value *result, void *ud)
{
    struct chain *c = ud;
    ck_assert_ptr_null(err);
    c->done++;
    c->sum += result->u.i;
    if (--c->left > 0)
        ck_assert_int_eq(pact_offload(t_loop, twice, (void *)(intptr_t)c->left,
                                      NULL, chain_cb, c),
                         0);
}

/* One job at a time, each submitted from the previous one's callback. */
START_TEST(round_trips_one_at_a_time)
{
    enum { N = 20000 };
    struct chain c = {N, 0, 0};
    ck_assert_int_eq(
        pact_offload(t_loop, twice, (void *)(intptr_t)N, NULL, chain_cb, &c),
        0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.done, N);
    ck_assert_int_eq(c.sum, (int64_t)N * (N + 1));
}
END_TEST

/* ---- one wake-up for many results ---------------------------------------- */

enum { BATCH = 64 };

struct batch {
    struct gate done_gate; /* counts jobs that returned */
    atomic_int returned;
    int calls;
};

static pact_error *count_return(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    (void)result;
    struct batch *b = arg;
    atomic_fetch_add(&b->returned, 1);
    return NULL;
}

static void batch_cb(pact_error *err, pact_value *result, void *ud)
{
    (void)result;
    ck_assert_ptr_null(err);
    struct batch *b = ud;
    trace("job %d", b->calls++);
}

/* Blocks the loop until every job has returned (and a little longer, for
 * their results to be handed back), after queueing an immediate: it runs in
 * this iteration's check phase, after the I/O phase. */
static void block_until_returned(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct batch *b = ud;
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "immediate", NULL), 0);
    uint64_t t0 = now_us();
    while (atomic_load(&b->returned) < BATCH && now_us() - t0 < 10000000)
        sleep_ms(1);
    sleep_ms(50);
}

/* Results that arrive together are called back in one I/O phase: all of
 * them, then the immediate. One wake-up per result would spread them over
 * iterations, past the immediate. */
START_TEST(results_share_one_wakeup)
{
    static struct batch b;
    memset(&b, 0, sizeof b);
    char want[4096] = "";
    for (int i = 0; i < BATCH; i++) {
        ck_assert_int_eq(
            pact_offload(t_loop, count_return, &b, NULL, batch_cb, &b), 0);
        snprintf(want + strlen(want), sizeof want - strlen(want), "job %d\n",
                 i);
    }
    strcat(want, "immediate\n");
    ck_assert_int_eq(pact_timeout(t_loop, 1, block_until_returned, &b, NULL),
                     0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), want);
}
END_TEST

/* ---- lanes and threads --------------------------------------------------- */

struct starve {
    struct gate gate;
    struct tally blocked, cpu;
    int cpu_jobs;
    int cpu_done_while_blocked;
    pact_handle guard;
    bool guard_fired;
};

static void starve_cpu_cb(pact_error *err, pact_value *result, void *ud)
{
    struct starve *s = ud;
    tally_cb(err, result, &s->cpu);
    if (s->cpu.calls == s->cpu_jobs) {
        /* every CPU job is back while the blocking lane is still stuck */
        s->cpu_done_while_blocked = gate_is_open(&s->gate) ? 0 : s->cpu.calls;
        pact_clear(t_loop, s->guard);
        gate_open(&s->gate);
    }
}

static void starve_guard(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct starve *s = ud;
    s->guard_fired = true;
    gate_open(&s->gate); /* starved: let everything finish, then fail */
}

/* Many blocked blocking-lane jobs (more than the lane has threads) while
 * CPU jobs still complete: the lanes have their own threads and queues. */
START_TEST(blocking_lane_does_not_starve_cpu_lane)
{
    enum { BLOCKED = 12, LANE = 4, CPU_JOBS = 200 };
    static struct starve s;
    memset(&s, 0, sizeof s);
    gate_init(&s.gate);
    s.cpu_jobs = CPU_JOBS;
    ck_assert_int_eq(pact_pool_set_threads(PACT_LANE_BLOCKING, LANE), 0);
    pact_offload_opts blocking = {.lane = PACT_LANE_BLOCKING};
    for (int i = 0; i < BLOCKED; i++)
        ck_assert_int_eq(pact_offload(t_loop, wait_at_gate, &s.gate, &blocking,
                                      tally_cb, &s.blocked),
                         0);
    hand_over();
    wait_entered(&s.gate, LANE);
    for (intptr_t i = 0; i < CPU_JOBS; i++)
        ck_assert_int_eq(
            pact_offload(t_loop, twice, (void *)i, NULL, starve_cpu_cb, &s), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5000, starve_guard, &s, &s.guard), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(pact_pool_set_threads(PACT_LANE_BLOCKING, 0), 0);
    ck_assert_msg(!s.guard_fired, "the CPU lane starved behind blocked jobs");
    ck_assert_int_eq(s.cpu_done_while_blocked, CPU_JOBS);
    ck_assert_int_eq(s.cpu.sum, (int64_t)CPU_JOBS * (CPU_JOBS - 1));
    ck_assert_int_eq(s.blocked.calls, BLOCKED);
    ck_assert_int_eq(s.blocked.errors, 0);
    /* the blocking lane ran no more at once than its size */
    ck_assert_int_eq(atomic_load(&s.gate.max_inside), LANE);
    gate_destroy(&s.gate);
}
END_TEST

/* Threads start when jobs need them, no more than the lane's size, and stop
 * when the last loop that used the pool is freed. */
static void *nothing(void *arg)
{
    return arg;
}

START_TEST(threads_start_lazily_and_stop)
{
    /* a first thread of our own, so that a sanitizer's helper thread (made
     * with the first pthread_create) is in the count already */
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, nothing, NULL), 0);
    pthread_join(th, NULL);
    int base = thread_count();
    pact_loop *loop;
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    ck_assert_int_eq(pact_offload_set_limit(loop, PACT_LANE_CPU, 10), 0);
    ck_assert_int_eq(thread_count(), base); /* none yet */
    struct tally t = {0};
    ck_assert_int_eq(pact_offload(loop, twice, (void *)1, NULL, tally_cb, &t),
                     0);
    ck_assert_int_eq(pact_loop_run(loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(t.calls, 1);
    ck_assert_int_eq(thread_count(), base + 1); /* one job, one thread */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(
            pact_offload(loop, twice, (void *)1, NULL, tally_cb, &t), 0);
    }
    ck_assert_int_eq(pact_loop_run(loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_le(thread_count(),
                     base + (int)pact_pool_threads(PACT_LANE_CPU));
    ck_assert_int_eq(pact_loop_free(loop), 0);
    ck_assert_int_eq(thread_count(), base);
    ck_assert_int_eq(t.calls, 4);
}
END_TEST

START_TEST(pool_sizes)
{
    ck_assert_int_ge(pact_pool_threads(PACT_LANE_CPU), 2);
    ck_assert_int_ge(pact_pool_threads(PACT_LANE_BLOCKING), 8);
    ck_assert_int_le(pact_pool_threads(PACT_LANE_BLOCKING), 64);
    unsigned cpu = pact_pool_threads(PACT_LANE_CPU);
    setenv("PACT_POOL_SIZE", "3", 1);
    setenv("PACT_POOL_BLOCKING_SIZE", "17", 1);
    ck_assert_int_eq(pact_pool_threads(PACT_LANE_CPU), 3);
    ck_assert_int_eq(pact_pool_threads(PACT_LANE_BLOCKING), 17);
    ck_assert_int_eq(pact_pool_set_threads(PACT_LANE_CPU, 5), 0);
    ck_assert_int_eq(pact_pool_threads(PACT_LANE_CPU), 5); /* API wins */
    ck_assert_int_eq(pact_pool_set_threads(PACT_LANE_CPU, 0), 0);
    ck_assert_int_eq(pact_pool_threads(PACT_LANE_CPU), 3);
    setenv("PACT_POOL_SIZE", "lots", 1); /* not a number: the default */
    ck_assert_int_eq(pact_pool_threads(PACT_LANE_CPU), cpu);
    unsetenv("PACT_POOL_SIZE");
    unsetenv("PACT_POOL_BLOCKING_SIZE");
    ck_assert_int_eq(pact_pool_threads(PACT_LANE_CPU), cpu);
    ck_assert_int_eq(pact_pool_set_threads((pact_lane)2, 1), PACT_EINVAL);
    ck_assert_int_eq(pact_pool_set_threads(PACT_LANE_CPU, 5000), PACT_EINVAL);
    ck_assert_int_eq(pact_pool_threads((pact_lane)2), 0);
}
END_TEST

/* A size set by the API is what a lane grows to, and no further. */
START_TEST(cpu_lane_size_bounds_parallelism)
{
    static struct gate g;
    gate_init(&g);
    ck_assert_int_eq(pact_pool_set_threads(PACT_LANE_CPU, 3), 0);
    struct tally t = {0};
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(
            pact_offload(t_loop, wait_at_gate, &g, NULL, tally_cb, &t), 0);
    hand_over();
    wait_entered(&g, 3);
    sleep_ms(50); /* a fourth thread would have started by now */
    ck_assert_int_eq(atomic_load(&g.entered), 3);
    gate_open(&g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(pact_pool_set_threads(PACT_LANE_CPU, 0), 0);
    ck_assert_int_eq(t.calls, 8);
    ck_assert_int_eq(atomic_load(&g.max_inside), 3);
    gate_destroy(&g);
}
END_TEST

struct mixed {
    struct gate gate;
    struct tally slow, fast;
    int fast_jobs, fast_done_while_slow_ran;
    pact_handle guard;
    bool guard_fired;
};

static void mixed_fast_cb(pact_error *err, pact_value *result, void *ud)
{
    struct mixed *m = ud;
    tally_cb(err, result, &m->fast);
    if (m->fast.calls == m->fast_jobs) {
        m->fast_done_while_slow_ran = gate_is_open(&m->gate) ? 0 : 1;
        pact_clear(t_loop, m->guard);
        gate_open(&m->gate);
    }
}

static void mixed_guard(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct mixed *m = ud;
    m->guard_fired = true;
    gate_open(&m->gate);
}

/* After many short jobs (the threads take them in batches), one long job
 * and short ones submitted together: the short ones all complete while the
 * long one still runs, whichever thread took them. */
START_TEST(long_job_does_not_hold_back_short_ones)
{
    enum { WARM = 20000, FAST = 10 };
    static struct mixed m;
    memset(&m, 0, sizeof m);
    gate_init(&m.gate);
    m.fast_jobs = FAST;
    ck_assert_int_eq(pact_pool_set_threads(PACT_LANE_CPU, 2), 0);
    ck_assert_int_eq(pact_offload_set_limit(t_loop, PACT_LANE_CPU, WARM), 0);
    struct tally warm = {0};
    for (intptr_t i = 0; i < WARM; i++)
        ck_assert_int_eq(
            pact_offload(t_loop, twice, (void *)i, NULL, tally_cb, &warm), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(warm.calls, WARM);
    ck_assert_int_eq(
        pact_offload(t_loop, wait_at_gate, &m.gate, NULL, tally_cb, &m.slow),
        0);
    for (intptr_t i = 0; i < FAST; i++)
        ck_assert_int_eq(
            pact_offload(t_loop, twice, (void *)i, NULL, mixed_fast_cb, &m), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5000, mixed_guard, &m, &m.guard), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(pact_pool_set_threads(PACT_LANE_CPU, 0), 0);
    ck_assert_msg(!m.guard_fired, "short jobs waited behind a long one");
    ck_assert_int_eq(m.fast_done_while_slow_ran, 1);
    ck_assert_int_eq(m.fast.calls, FAST);
    ck_assert_int_eq(m.slow.calls, 1);
    gate_destroy(&m.gate);
}
END_TEST

/* ---- back-pressure ------------------------------------------------------- */

static void record_value(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    int *code = ud;
    *code = err ? pact_error_code(err) : 1;
}

START_TEST(full_lane_refuses_with_eagain)
{
    static struct gate g;
    gate_init(&g);
    struct tally t = {0}, other = {0};
    ck_assert_int_eq(pact_offload_set_limit(t_loop, PACT_LANE_CPU, 4), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(
            pact_offload(t_loop, wait_at_gate, &g, NULL, tally_cb, &t), 0);
    ck_assert_int_eq(pact_offload(t_loop, twice, NULL, NULL, tally_cb, &t),
                     PACT_EAGAIN);
    ck_assert_uint_eq(pact_offload_pending(t_loop, PACT_LANE_CPU), 4);
    /* the promise twin rejects with the same code */
    pact_promise *p = pact_offload_p(t_loop, twice, NULL, NULL);
    ck_assert_ptr_nonnull(p);
    int code = 0;
    ck_assert_int_eq(pact_promise_callback(p, record_value, &code), 0);
    pact_promise_unref(p);
    /* the other lane has its own limit */
    pact_offload_opts blocking = {.lane = PACT_LANE_BLOCKING};
    ck_assert_int_eq(
        pact_offload(t_loop, twice, (void *)1, &blocking, tally_cb, &other), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    ck_assert_int_eq(code, PACT_EAGAIN);
    /* room comes back as callbacks run */
    gate_open(&g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(t.calls, 4); /* the refused job was never called back */
    ck_assert_int_eq(other.calls, 1);
    ck_assert_int_eq(pact_offload(t_loop, twice, (void *)2, NULL, tally_cb, &t),
                     0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(t.calls, 5);
    ck_assert_int_eq(t.errors, 0);
    gate_destroy(&g);
}
END_TEST

/* ---- cancellation -------------------------------------------------------- */

static atomic_int never_ran;

static pact_error *must_not_run(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    (void)arg;
    (void)result;
    atomic_fetch_add(&never_ran, 1);
    return NULL;
}

struct abort_case {
    pact_abort *abort;
    struct tally t;
    bool in_abort;
    int called_in_abort;
};

static void abort_case_cb(pact_error *err, pact_value *result, void *ud)
{
    struct abort_case *c = ud;
    if (c->in_abort)
        c->called_in_abort++;
    tally_cb(err, result, &c->t);
}

static void abort_now(struct abort_case *c)
{
    pact_error *why = PACT_ERROR(PACT_ETIMEDOUT, "took too long");
    c->in_abort = true;
    ck_assert_int_eq(pact_abort_abort(c->abort, why), 0);
    c->in_abort = false;
    pact_error_unref(why);
}

/* Queued jobs, aborted before their lane got them and after: removed, never
 * run, called back with ECANCELED caused by the reason, never inside the
 * abort call. A token aborted before submission: the job never runs. */
START_TEST(abort_removes_queued_jobs)
{
    static struct gate g;
    gate_init(&g);
    atomic_store(&never_ran, 0);
    unsigned n = pact_pool_threads(PACT_LANE_CPU);
    struct tally busy = {0};
    for (unsigned i = 0; i < n; i++) /* occupy every CPU thread */
        ck_assert_int_eq(
            pact_offload(t_loop, wait_at_gate, &g, NULL, tally_cb, &busy), 0);
    hand_over();
    wait_entered(&g, (int)n);

    struct abort_case pending = {0}, queued = {0}, before = {0};
    ck_assert_int_eq(pact_abort_new(t_loop, &pending.abort), 0);
    ck_assert_int_eq(pact_abort_new(t_loop, &queued.abort), 0);
    ck_assert_int_eq(pact_abort_new(t_loop, &before.abort), 0);
    pact_offload_opts o = {.abort = queued.abort};
    ck_assert_int_eq(
        pact_offload(t_loop, must_not_run, NULL, &o, abort_case_cb, &queued),
        0);
    hand_over(); /* now in the lane's queue, behind the busy threads */
    o.abort = pending.abort;
    ck_assert_int_eq(
        pact_offload(t_loop, must_not_run, NULL, &o, abort_case_cb, &pending),
        0);
    abort_now(&pending); /* not yet handed over */
    abort_now(&queued);
    abort_now(&before);
    o.abort = before.abort;
    ck_assert_int_eq(
        pact_offload(t_loop, must_not_run, NULL, &o, abort_case_cb, &before),
        0);
    pact_abort_unref(pending.abort); /* the jobs hold their own references */
    pact_abort_unref(queued.abort);
    pact_abort_unref(before.abort);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    struct abort_case *cases[] = {&pending, &queued, &before};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(cases[i]->t.calls, 1);
        ck_assert_int_eq(cases[i]->called_in_abort, 0);
        ck_assert_int_eq(cases[i]->t.last_code, PACT_ECANCELED);
        ck_assert_int_eq(cases[i]->t.first_cause,
                         i < 2 ? PACT_ETIMEDOUT : PACT_ETIMEDOUT);
        tally_free(&cases[i]->t);
    }
    ck_assert_int_eq(busy.calls, 0); /* still at the gate */
    gate_open(&g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(busy.calls, (int)n);
    ck_assert_int_eq(atomic_load(&never_ran), 0);
    gate_destroy(&g);
}
END_TEST

struct poller {
    bool fail; /* the job fails in its own way once cancelled */
    atomic_int started, saw_cancel, returned;
    int returned_at_callback;
    struct tally t;
    pact_abort *abort;
};

/* Computes until cancelled (bounded, so a missing flag fails the test
 * instead of hanging it). */
static pact_error *poll_until_cancelled(pact_job *job, void *arg,
                                        pact_value *result)
{
    struct poller *p = arg;
    atomic_store(&p->started, 1);
    uint64_t t0 = now_us();
    /* yield as it polls: under valgrind, which runs one thread at a time,
     * a pure spin can starve the loop thread that would cancel it */
    while (!pact_job_cancelled(job) && now_us() - t0 < 10000000)
        sched_yield();
    atomic_store(&p->saw_cancel, pact_job_cancelled(job));
    *result = pact_int(42); /* released: the callback gets ECANCELED */
    atomic_store(&p->returned, 1);
    if (p->fail)
        return PACT_ERROR(PACT_EIO, "the job's own failure");
    return NULL;
}

static void poller_cb(pact_error *err, pact_value *result, void *ud)
{
    struct poller *p = ud;
    p->returned_at_callback = atomic_load(&p->returned);
    tally_cb(err, result, &p->t);
}

static void abort_when_started(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct poller *p = ud;
    uint64_t t0 = now_us();
    while (!atomic_load(&p->started) && now_us() - t0 < 10000000)
        sleep_ms(1);
    ck_assert_int_eq(pact_abort_abort(p->abort, NULL), 0);
}

/* A running job sees the flag through pact_job_cancelled; its callback comes
 * once it has returned, with ECANCELED. */
START_TEST(abort_flags_running_job)
{
    static struct poller p;
    memset(&p, 0, sizeof p);
    ck_assert_int_eq(pact_abort_new(t_loop, &p.abort), 0);
    pact_offload_opts o = {.abort = p.abort};
    ck_assert_int_eq(
        pact_offload(t_loop, poll_until_cancelled, &p, &o, poller_cb, &p), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 1, abort_when_started, &p, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(p.t.calls, 1);
    ck_assert_int_eq(p.t.last_code, PACT_ECANCELED);
    ck_assert_int_eq(p.t.first_cause, PACT_ECANCELED); /* the reason */
    ck_assert_int_eq(atomic_load(&p.saw_cancel), 1);
    ck_assert_int_eq(p.returned_at_callback, 1);
    pact_abort_unref(p.abort);
    tally_free(&p.t);
    /* a job that fails in its own way: its error is kept as the cause (it
     * was replaced by the bare 'The operation was aborted') */
    memset(&p, 0, sizeof p);
    p.fail = true;
    ck_assert_int_eq(pact_abort_new(t_loop, &p.abort), 0);
    o.abort = p.abort;
    ck_assert_int_eq(
        pact_offload(t_loop, poll_until_cancelled, &p, &o, poller_cb, &p), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 1, abort_when_started, &p, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(p.t.calls, 1);
    ck_assert_int_eq(p.t.last_code, PACT_ECANCELED);
    ck_assert_int_eq(p.t.first_cause, PACT_EIO);
    pact_abort_unref(p.abort);
    tally_free(&p.t);
}
END_TEST

struct sleeper {
    atomic_int started;
    atomic_long slept_us;
    struct tally t;
    pact_abort *abort;
    long slept_at_callback; /* the job's sleep, as the callback found it */
};

static pact_error *sleep_100ms(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    (void)result;
    struct sleeper *s = arg;
    atomic_store(&s->started, 1);
    uint64_t t0 = now_us();
    sleep_ms(100); /* a blocking call: nothing interrupts it */
    atomic_store(&s->slept_us, (long)(now_us() - t0));
    return NULL;
}

static void sleeper_cb(pact_error *err, pact_value *result, void *ud)
{
    struct sleeper *s = ud;
    s->slept_at_callback = atomic_load(&s->slept_us);
    tally_cb(err, result, &s->t);
}

static void abort_sleeper(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct sleeper *s = ud;
    while (!atomic_load(&s->started))
        sleep_ms(1);
    ck_assert_int_eq(pact_abort_abort(s->abort, NULL), 0);
}

START_TEST(abort_does_not_interrupt_blocking_call)
{
    static struct sleeper s;
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(pact_abort_new(t_loop, &s.abort), 0);
    pact_offload_opts o = {.lane = PACT_LANE_BLOCKING, .abort = s.abort};
    ck_assert_int_eq(pact_offload(t_loop, sleep_100ms, &s, &o, sleeper_cb, &s),
                     0);
    ck_assert_int_eq(pact_timeout(t_loop, 1, abort_sleeper, &s, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(s.t.calls, 1);
    ck_assert_int_eq(s.t.last_code, PACT_ECANCELED);
    /* called back only once the blocking call had returned in full */
    ck_assert_int_ge(s.slept_at_callback, 100000);
    pact_abort_unref(s.abort);
    tally_free(&s.t);
}
END_TEST

/* ---- shutdown ------------------------------------------------------------ */

struct shutdown {
    struct gate gate;
    struct tally running, queued;
    atomic_int saw_cancel;
};

static pact_error *gate_then_check(pact_job *job, void *arg, pact_value *result)
{
    struct shutdown *s = arg;
    pact_error *err = wait_at_gate(job, &s->gate, result);
    if (pact_job_cancelled(job))
        atomic_fetch_add(&s->saw_cancel, 1);
    /* an owned result: released whichever way the job ends */
    pact_value_release(result);
    *result = pact_bytes(strdup("result"), 7);
    return err;
}

static void open_gate_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    gate_open(ud);
}

/* Fill every CPU thread with jobs at the gate and queue @p queued more. */
static unsigned fill_lane(pact_loop *loop, struct shutdown *s, int queued)
{
    unsigned n = pact_pool_threads(PACT_LANE_CPU);
    gate_init(&s->gate);
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(
            pact_offload(loop, gate_then_check, s, NULL, tally_cb, &s->running),
            0);
    ck_assert_int_ge(pact_loop_run(loop, PACT_RUN_NOWAIT), 0);
    wait_entered(&s->gate, (int)n);
    for (int i = 0; i < queued; i++)
        ck_assert_int_eq(
            pact_offload(loop, must_not_run, NULL, NULL, tally_cb, &s->queued),
            0);
    ck_assert_int_ge(pact_loop_run(loop, PACT_RUN_NOWAIT), 0);
    return n;
}

/* pact_loop_free refuses while jobs are owed a callback; close_all cancels
 * them: queued ones never run, running ones see the flag; running the loop
 * then calls every one back with ECANCELED. */
START_TEST(close_all_cancels_and_loop_delivers)
{
    static struct shutdown s;
    memset(&s, 0, sizeof s);
    atomic_store(&never_ran, 0);
    unsigned n = fill_lane(t_loop, &s, 10);
    ck_assert_int_eq(pact_loop_free(t_loop), PACT_EBUSY);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    ck_assert_int_eq(s.queued.calls, 0); /* not inside close_all */
    ck_assert_int_eq(pact_timeout(t_loop, 20, open_gate_cb, &s.gate, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(s.queued.calls, 10);
    ck_assert_int_eq(s.queued.errors, 10);
    ck_assert_int_eq(s.queued.last_code, PACT_ECANCELED);
    ck_assert_int_eq(s.running.calls, (int)n);
    ck_assert_int_eq(s.running.errors, (int)n);
    ck_assert_int_eq(s.running.last_code, PACT_ECANCELED);
    ck_assert_int_eq(atomic_load(&s.saw_cancel), (int)n);
    ck_assert_int_eq(atomic_load(&never_ran), 0);
    /* the loop takes jobs again after close_all */
    struct tally t = {0};
    ck_assert_int_eq(pact_offload(t_loop, twice, (void *)4, NULL, tally_cb, &t),
                     0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(t.calls, 1);
    ck_assert_int_eq(t.sum, 8);
    tally_free(&s.queued);
    tally_free(&s.running);
    gate_destroy(&s.gate);
}
END_TEST

static void *open_later(void *g)
{
    sleep_ms(50);
    gate_open(g);
    return NULL;
}

/* close_all then pact_loop_free at once: free waits for the running jobs,
 * drops the callbacks still owed (never calling them), and leaks nothing
 * (the owned results and the promise twin's deferred are released). */
START_TEST(free_waits_for_running_jobs)
{
    static struct shutdown s;
    memset(&s, 0, sizeof s);
    pact_loop *loop;
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    fill_lane(loop, &s, 5);
    pact_promise *p = pact_offload_p(loop, must_not_run, NULL, NULL);
    ck_assert_ptr_nonnull(p);
    pact_promise_unref(p); /* only the job holds it now */
    ck_assert_int_eq(pact_loop_close_all(loop), 0);
    pthread_t th;
    uint64_t t0 = now_us(); /* before the thread that opens the gate starts */
    ck_assert_int_eq(pthread_create(&th, NULL, open_later, &s.gate), 0);
    ck_assert_int_eq(pact_loop_free(loop), 0);
    ck_assert_uint_ge(now_us() - t0, 40000); /* it waited for them */
    pthread_join(th, NULL);
    ck_assert_int_eq(s.running.calls, 0);
    ck_assert_int_eq(s.queued.calls, 0);
    gate_destroy(&s.gate);
}
END_TEST

/* A running job that does not finish within the shutdown limit: free gives
 * up with EBUSY (nothing freed) and succeeds once it has finished. */
START_TEST(free_gives_up_after_limit)
{
    static struct shutdown s;
    memset(&s, 0, sizeof s);
    pact_loop *loop;
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    fill_lane(loop, &s, 0);
    ck_assert_int_eq(pact_offload_set_shutdown_ms(loop, 30), 0);
    ck_assert_int_eq(pact_loop_close_all(loop), 0);
    uint64_t t0 = now_us();
    ck_assert_int_eq(pact_loop_free(loop), PACT_EBUSY);
    ck_assert_uint_ge(now_us() - t0, 25000);
    gate_open(&s.gate);
    ck_assert_int_eq(pact_offload_set_shutdown_ms(loop, 10000), 0);
    ck_assert_int_eq(pact_loop_free(loop), 0);
    ck_assert_int_eq(s.running.calls, 0);
    gate_destroy(&s.gate);
}
END_TEST

static pact_error *task_returns(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    return NULL;
}

/* Asking pact_loop_free whether the pool is busy changes nothing: when free
 * refuses for another reason (here a task not finished), the jobs that
 * close_all cancelled are still owed, and the loop calls them back. */
START_TEST(refused_free_keeps_cancelled_jobs)
{
    pact_loop *loop;
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    struct tally t = {0};
    atomic_store(&never_ran, 0);
    /* the pool's state first, so that free asks it before the tasks' */
    ck_assert_int_eq(pact_offload(loop, must_not_run, NULL, NULL, tally_cb, &t),
                     0);
    pact_promise *p = pact_task_spawn(loop, task_returns, NULL, NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_loop_close_all(loop), 0);
    ck_assert_int_eq(pact_loop_free(loop), PACT_EBUSY);
    ck_assert_int_eq(t.calls, 0);
    ck_assert_int_eq(pact_loop_run(loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(t.calls, 1);
    ck_assert_int_eq(t.last_code, PACT_ECANCELED);
    ck_assert_int_eq(atomic_load(&never_ran), 0);
    pact_promise_unref(p);
    ck_assert_int_eq(pact_loop_free(loop), 0);
    tally_free(&t);
}
END_TEST

/* ---- errors and values --------------------------------------------------- */

static pact_error *fail_with_eio(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    /* a result that comes with an error is released */
    *result = pact_bytes(strdup("dropped"), 8);
    return PACT_ERROR(PACT_EIO, "disk %d is on fire", (int)(intptr_t)arg);
}

static pact_error *throw_value(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    (void)arg;
    *result = pact_throw(PACT_ERROR(PACT_ERANGE));
    return NULL;
}

static atomic_int released_on_loop, released_off_loop;

static int never_then(void *obj, pact_deferred *d)
{
    (void)obj;
    (void)d;
    return 0;
}

static void count_release(void *obj)
{
    (void)obj;
    atomic_fetch_add(on_loop_thread() ? &released_on_loop : &released_off_loop,
                     1);
}

static const pact_thenable_vt loop_object = {never_then, count_release};

static pact_error *return_thenable(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    (void)arg;
    *result = pact_thenable(NULL, &loop_object);
    return NULL;
}

START_TEST(errors_from_jobs)
{
    struct tally eio = {0}, thrown = {0}, bad = {0};
    atomic_store(&released_on_loop, 0);
    atomic_store(&released_off_loop, 0);
    ck_assert_int_eq(
        pact_offload(t_loop, fail_with_eio, (void *)7, NULL, tally_cb, &eio),
        0);
    ck_assert_int_eq(
        pact_offload(t_loop, throw_value, NULL, NULL, tally_cb, &thrown), 0);
    ck_assert_int_eq(
        pact_offload(t_loop, return_thenable, NULL, NULL, tally_cb, &bad), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(eio.calls, 1);
    ck_assert_int_eq(eio.last_code, PACT_EIO);
    ck_assert_str_eq(eio.last_msg, "disk 7 is on fire");
    ck_assert_int_eq(thrown.calls, 1);
    ck_assert_int_eq(thrown.last_code, PACT_ERANGE);
    ck_assert_int_eq(bad.calls, 1);
    ck_assert_int_eq(bad.last_code, PACT_EINVAL);
    /* the loop object went back on the loop's thread */
    ck_assert_int_eq(atomic_load(&released_on_loop), 1);
    ck_assert_int_eq(atomic_load(&released_off_loop), 0);
    tally_free(&eio);
    tally_free(&thrown);
    tally_free(&bad);
}
END_TEST

static pact_error *make_bytes(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    *result = pact_bytes_copy(arg, strlen(arg) + 1);
    return NULL;
}

static pact_error *make_json(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    *result = pact_json(
        json_pack("{s:i, s:s}", "n", (int)(intptr_t)arg, "from", "pool"));
    return NULL;
}

static atomic_int owned_frees;

static void free_owned(void *p)
{
    atomic_fetch_add(&owned_frees, 1);
    free(p);
}

static pact_error *make_owned(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    (void)arg;
    *result = pact_owned(malloc(32), free_owned);
    return NULL;
}

struct values {
    char *taken;
    int json_n;
    int calls;
    char *str; /* a string result, moved out */
};

static pact_error *make_string(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    *result = pact_string_fmt("made on a pool thread: %s", (const char *)arg);
    return NULL;
}

static void take_string(pact_error *err, pact_value *result, void *ud)
{
    ck_assert_ptr_null(err);
    struct values *v = ud;
    ck_assert_int_eq(result->kind, PACT_STRING);
    v->str = result->u.str;
    *result = pact_nothing();
    v->calls++;
}

static void take_bytes(pact_error *err, pact_value *result, void *ud)
{
    ck_assert_ptr_null(err);
    struct values *v = ud;
    ck_assert_int_eq(result->kind, PACT_BYTES);
    v->taken = result->u.bytes.data; /* moved out: ours to free */
    *result = pact_nothing();
    v->calls++;
}

static void read_json(pact_error *err, pact_value *result, void *ud)
{
    ck_assert_ptr_null(err);
    struct values *v = ud;
    ck_assert_int_eq(result->kind, PACT_JSON);
    v->json_n = (int)json_integer_value(json_object_get(result->u.json, "n"));
    v->calls++;
}

static void leave_owned(pact_error *err, pact_value *result, void *ud)
{
    ck_assert_ptr_null(err);
    struct values *v = ud;
    ck_assert_int_eq(result->kind, PACT_OWNED);
    ck_assert_int_eq(atomic_load(&owned_frees), 0);
    v->calls++; /* not taken: released after this returns */
}

START_TEST(values_move_to_the_callback)
{
    struct values v = {0};
    atomic_store(&owned_frees, 0);
    ck_assert_int_eq(
        pact_offload(t_loop, make_bytes, "hello", NULL, take_bytes, &v), 0);
    ck_assert_int_eq(
        pact_offload(t_loop, make_json, (void *)5, NULL, read_json, &v), 0);
    ck_assert_int_eq(
        pact_offload(t_loop, make_owned, NULL, NULL, leave_owned, &v), 0);
    ck_assert_int_eq(
        pact_offload(t_loop, make_string, "x", NULL, take_string, &v), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(v.calls, 4);
    ck_assert_str_eq(v.str, "made on a pool thread: x");
    free(v.str);
    ck_assert_str_eq(v.taken, "hello");
    ck_assert_int_eq(v.json_n, 5);
    ck_assert_int_eq(atomic_load(&owned_frees), 1);
    free(v.taken);
}
END_TEST

/* ---- the promise twin and await ------------------------------------------ */

static pact_value check_bytes(const pact_value *v, void *ud)
{
    int *seen = ud;
    ck_assert_int_eq(v->kind, PACT_BYTES); /* moved in, not copied */
    ck_assert_str_eq(v->u.bytes.data, "twin");
    (*seen)++;
    return pact_nothing();
}

static pact_value check_eio(pact_error *err, void *ud)
{
    int *seen = ud;
    ck_assert_int_eq(pact_error_code(err), PACT_EIO);
    (*seen)++;
    return pact_nothing();
}

START_TEST(promise_twin)
{
    int seen = 0;
    pact_promise *ok = pact_offload_p(t_loop, make_bytes, "twin", NULL);
    pact_promise *bad = pact_offload_p(t_loop, fail_with_eio, (void *)1, NULL);
    ck_assert_ptr_nonnull(ok);
    ck_assert_ptr_nonnull(bad);
    ck_assert_int_eq(pact_promise_state(ok), PACT_PENDING);
    pact_promise *a = pact_then(ok, check_bytes, NULL, &seen);
    pact_promise *b = pact_catch(bad, check_eio, &seen);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(seen, 2);
    ck_assert_int_eq(pact_promise_state(ok), PACT_FULFILLED);
    ck_assert_int_eq(pact_promise_state(bad), PACT_REJECTED);
    pact_promise_unref(a);
    pact_promise_unref(b);
    pact_promise_unref(ok);
    pact_promise_unref(bad);
}
END_TEST

static pact_error *square(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    intptr_t x = (intptr_t)arg;
    *result = pact_int(x * x);
    return NULL;
}

/* A task awaits offloaded jobs as any promise: in sequence, at any depth,
 * and an error comes back through PACT_AWAIT_ERR. */
static int64_t sum_of_squares(pact_loop *loop, int n)
{
    int64_t sum = 0;
    for (intptr_t i = 1; i <= n; i++)
        sum += PACT_AWAIT(pact_offload_p(loop, square, (void *)i, NULL)).u.i;
    return sum;
}

static pact_error *offloading_task(void *arg, pact_value *result)
{
    pact_loop *loop = arg;
    int64_t sum = sum_of_squares(loop, 10);
    pact_value v;
    pact_error *err = PACT_AWAIT_ERR(
        pact_offload_p(loop, fail_with_eio, (void *)3, NULL), &v);
    if (!err || pact_error_code(err) != PACT_EIO)
        return err ? err : PACT_ERROR(PACT_EUNKNOWN, "no error came back");
    pact_error_unref(err);
    pact_offload_opts blocking = {.lane = PACT_LANE_BLOCKING};
    PACT_AWAIT_TRY(pact_offload_p(loop, make_bytes, "awaited", &blocking), &v);
    ck_assert_int_eq(v.kind, PACT_BYTES);
    ck_assert_str_eq(v.u.bytes.data, "awaited");
    pact_value_release(&v);
    *result = pact_int(sum);
    return NULL;
}

START_TEST(await_from_task)
{
    pact_promise *p = pact_task_spawn(t_loop, offloading_task, t_loop, NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(pact_promise_value(p)->u.i, 385);
    pact_promise_unref(p);
}
END_TEST

/* ---- misuse -------------------------------------------------------------- */

struct off_thread {
    int rc;
    pact_promise *p;
};

static void *offload_from_thread(void *arg)
{
    struct off_thread *o = arg;
    o->rc = pact_offload(t_loop, twice, NULL, NULL, tally_cb, NULL);
    o->p = pact_offload_p(t_loop, twice, NULL, NULL);
    return NULL;
}

static atomic_int nested_rc;

static pact_error *offload_inside_job(pact_job *job, void *arg,
                                      pact_value *result)
{
    (void)job;
    (void)result;
    atomic_store(&nested_rc,
                 pact_offload(arg, twice, NULL, NULL, tally_cb, NULL));
    return NULL;
}

START_TEST(misuse)
{
    struct tally t = {0};
    struct capture cap;
    capture_begin(&cap);
    ck_assert_int_eq(pact_offload(t_loop, NULL, NULL, NULL, tally_cb, &t),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_offload(t_loop, twice, NULL, NULL, NULL, &t),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_offload(NULL, twice, NULL, NULL, tally_cb, &t),
                     PACT_EINVAL);
    pact_offload_opts bad_lane = {.lane = (pact_lane)9};
    ck_assert_int_eq(pact_offload(t_loop, twice, NULL, &bad_lane, tally_cb, &t),
                     PACT_EINVAL);
    pact_promise *p = pact_offload_p(t_loop, NULL, NULL, NULL);
    int code = 0;
    ck_assert_int_eq(pact_promise_callback(p, record_value, &code), 0);
    pact_promise_unref(p);
    ck_assert_int_eq(pact_offload_set_limit(t_loop, PACT_LANE_CPU, 0),
                     PACT_EINVAL);
    ck_assert(!pact_job_cancelled(NULL));
    /* from another thread */
    struct off_thread o = {0, NULL};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, offload_from_thread, &o), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(o.rc, PACT_ETHREAD);
    ck_assert_ptr_null(o.p);
    ck_assert_int_eq(pact_offload_pending(t_loop, PACT_LANE_CPU), 0);
    /* from a pool thread, inside a job */
    atomic_store(&nested_rc, 0);
    ck_assert_int_eq(
        pact_offload(t_loop, offload_inside_job, t_loop, NULL, tally_cb, &t),
        0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    char *out = capture_end(&cap);
    ck_assert_int_eq(code, PACT_EINVAL); /* the twin rejects as cb returns */
    ck_assert_int_eq(atomic_load(&nested_rc), PACT_ETHREAD);
    ck_assert_int_eq(t.calls, 1); /* only the job that was accepted */
    /* thread misuse is printed in every build, naming the function */
    ck_assert_int_eq(t_count(out, "pact_offload(): called off the loop"), 2);
    ck_assert_int_eq(t_count(out, "pact_offload_p(): called off the loop"), 1);
    free(out);
}
END_TEST

/* ---- many loops share the pool ------------------------------------------- */

struct loop_thread {
    int calls;
    int64_t sum;
    int rc;
};

static void own_loop_cb(pact_error *err, pact_value *result, void *ud)
{
    struct loop_thread *lt = ud;
    if (!err) {
        lt->calls++;
        lt->sum += result->u.i;
    }
}

static void *run_own_loop(void *arg)
{
    enum { N = 20000 };
    struct loop_thread *lt = arg;
    pact_loop *loop;
    if ((lt->rc = pact_loop_new(&loop)) < 0)
        return NULL;
    for (intptr_t i = 0; i < N && lt->rc == 0; i++) {
        pact_offload_opts o = {.lane = (pact_lane)(i & 1)};
        lt->rc = pact_offload(loop, twice, (void *)i, &o, own_loop_cb, lt);
    }
    if (lt->rc == 0)
        lt->rc = pact_loop_run(loop, PACT_RUN_DEFAULT);
    int rc = pact_loop_free(loop);
    if (lt->rc == 0)
        lt->rc = rc;
    return NULL;
}

START_TEST(loops_share_the_pool)
{
    enum { LOOPS = 3 };
    struct loop_thread lt[LOOPS];
    pthread_t th[LOOPS];
    memset(lt, 0, sizeof lt);
    for (int i = 0; i < LOOPS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, run_own_loop, &lt[i]), 0);
    for (int i = 0; i < LOOPS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < LOOPS; i++) {
        ck_assert_int_eq(lt[i].rc, 0);
        ck_assert_int_eq(lt[i].calls, 20000);
        ck_assert_int_eq(lt[i].sum, (int64_t)20000 * 19999);
    }
}
END_TEST

/* A stop in the middle of a batch of results leaves the rest for the next
 * run, in order, once each. */
struct stopper {
    int calls;
};

static void stop_at_third(pact_error *err, pact_value *result, void *ud)
{
    (void)result;
    ck_assert_ptr_null(err);
    struct stopper *s = ud;
    if (++s->calls == 3)
        pact_loop_stop(t_loop);
}

START_TEST(stop_inside_a_batch)
{
    struct stopper s = {0};
    static struct batch b;
    memset(&b, 0, sizeof b);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(
            pact_offload(t_loop, count_return, &b, NULL, stop_at_third, &s), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 1);
    ck_assert_int_eq(s.calls, 3);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(s.calls, 10);
}
END_TEST

/* A loop on a base the program dispatches itself: the job is handed to the
 * pool and its result comes back through the base's own dispatch. */
struct external {
    pact_loop *loop;
    struct tally t;
};

static void external_cb(pact_error *err, pact_value *result, void *ud)
{
    struct external *x = ud;
    tally_cb(err, result, &x->t);
    ck_assert_int_eq(pact_loop_stop(x->loop), 0); /* ends the dispatch */
}

START_TEST(base_dispatched_by_program)
{
    struct event_base *base = event_base_new();
    ck_assert_ptr_nonnull(base);
    struct external x = {NULL, {0}};
    ck_assert_int_eq(pact_loop_from_base(base, &x.loop), 0);
    ck_assert_int_eq(
        pact_offload(x.loop, twice, (void *)21, NULL, external_cb, &x), 0);
    ck_assert_int_eq(event_base_dispatch(base), 0);
    ck_assert_int_eq(x.t.calls, 1);
    ck_assert_int_eq(x.t.errors, 0);
    ck_assert_int_eq(x.t.sum, 42);
    ck_assert_int_eq(pact_loop_free(x.loop), 0);
    event_base_free(base);
}
END_TEST

/* ---- fork ---------------------------------------------------------------- */

struct child_run {
    int64_t offloaded; /* the job's result */
    int read_code;     /* the fs read's code, 1 until it comes */
    size_t read_len;
};

static void child_job_cb(pact_error *err, pact_value *result, void *ud)
{
    ((struct child_run *)ud)->offloaded = err ? -1 : result->u.i;
}

static void child_read_cb(pact_error *err, pact_value *data, void *ud)
{
    struct child_run *c = ud;
    c->read_code = pact_error_code(err);
    c->read_len = err ? 0 : data->u.bytes.len;
}

/* The child of a fork: a fresh loop offloads a job and reads a file (fs
 * shares the pool). @return the exit status: 0, or which step failed. */
static int child_main(const char *path)
{
    alarm(120); /* a hang ends as SIGALRM, which the parent reports */
    pact_loop *loop = NULL;
    if (pact_loop_new(&loop) != 0)
        return 2;
    struct child_run c = {0, 1, 0};
    if (pact_offload(loop, twice, (void *)21, NULL, child_job_cb, &c) != 0 ||
        pact_fs_read_file(loop, path, NULL, child_read_cb, &c) != 0)
        return 3;
    if (pact_loop_run(loop, PACT_RUN_DEFAULT) != 0)
        return 4;
    if (c.offloaded != 42)
        return 5;
    if (c.read_code != 0 || c.read_len != 5)
        return 6;
    return pact_loop_free(loop) == 0 ? 0 : 7;
}

static void run_child(void *path)
{
    _exit(child_main(path));
}

/* After fork the child had the parent's thread count but none of its
 * threads: its first offload never ran. The pool now starts afresh there. */
START_TEST(pool_works_in_a_forked_child)
{
    if (T_TSAN) /* TSan kills a child that starts threads after a fork */
        return;
    char path[] = "/tmp/pact-fork-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "hello", 5), 5);
    close(fd);
    /* the parent's pool has threads (and a loop using it) at the fork */
    struct tally t = {0};
    for (intptr_t i = 1; i <= 8; i++)
        ck_assert_int_eq(
            pact_offload(t_loop, twice, (void *)i, NULL, tally_cb, &t), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(t.calls, 8);
#ifdef PACT__ASAN_BUILD
    /* ASan's allocator (GCC 12's) is not locked across fork: a pool thread
     * still freeing its job's memory at the fork leaves the child's malloc
     * blocked for good (seen once on a loaded machine). glibc's malloc, the
     * one a program really forks with, is; let the threads go idle first. */
    sleep_ms(50);
#endif
    t_forked(run_child, path);
    unlink(path);
    /* and the parent's pool still works */
    ck_assert_int_eq(pact_offload(t_loop, twice, (void *)5, NULL, tally_cb, &t),
                     0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(t.calls, 9);
    free(t.last_msg);
}
END_TEST

/* ---- where the program started a failed job ------------------------------ */

static void ignore_value(pact_error *err, const pact_value *v, void *ud)
{
    (void)err;
    (void)v;
    (void)ud;
}

static void keep_job_err(pact_error *err, pact_value *result, void *ud)
{
    (void)result;
    *(pact_error **)ud = pact_error_ref(err);
}

/* Whether @p err's printed form says it was started in this file (always
 * "started at" when the build records call sites). */
static void check_site(const pact_error *err)
{
    char *text = t_error_text(err);
#ifdef HAVE_BUILTIN_RETURN_ADDRESS
    const char *at = strstr(text, ", started at ");
    ck_assert_msg(at, "%s", text);
#ifdef HAVE_LIBDW
    ck_assert_msg(strstr(at, "test/test_pool.c:") &&
                      strstr(at, "(errors_started_at_the_call"),
                  "%s", text);
#endif
#else
    ck_assert_msg(!strstr(text, "started at"), "%s", text);
#endif
    free(text);
}

/* A job cancelled by a token aborted before it was submitted (an error made
 * by pact), a job's own error, and the promise twin's rejection: each says
 * where the program called pact_offload(_p). */
START_TEST(errors_started_at_the_call)
{
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    ck_assert_int_eq(pact_abort_abort(a, NULL), 0);
    pact_offload_opts o = {.abort = a};
    pact_error *cancelled = NULL, *failed = NULL;
    ck_assert_int_eq(
        pact_offload(t_loop, must_not_run, NULL, &o, keep_job_err, &cancelled),
        0);
    ck_assert_int_eq(pact_offload(t_loop, fail_with_eio, (void *)1, NULL,
                                  keep_job_err, &failed),
                     0);
    pact_promise *p = pact_offload_p(t_loop, fail_with_eio, (void *)2, NULL);
    ck_assert_int_eq(pact_promise_callback(p, ignore_value, NULL), 0);
    pact_abort_unref(a);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(pact_error_code(cancelled), PACT_ECANCELED);
    check_site(cancelled);
    ck_assert_int_eq(pact_error_code(failed), PACT_EIO);
    check_site(failed);
    ck_assert_int_eq(pact_error_code(pact_promise_error(p)), PACT_EIO);
    check_site(pact_promise_error(p));
    pact_error_unref(cancelled);
    pact_error_unref(failed);
    pact_promise_unref(p);
}
END_TEST

Suite *suite_pool(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_add_checked_fixture(tc, setup, t_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trips_under_load);
    tcase_add_test(tc, descriptor_exhaustion_is_emfile);
    tcase_add_test(tc, pool_works_in_a_forked_child);
    tcase_add_test(tc, round_trips_one_at_a_time);
    tcase_add_test(tc, results_share_one_wakeup);
    tcase_add_test(tc, blocking_lane_does_not_starve_cpu_lane);
    tcase_add_test(tc, threads_start_lazily_and_stop);
    tcase_add_test(tc, pool_sizes);
    tcase_add_test(tc, cpu_lane_size_bounds_parallelism);
    tcase_add_test(tc, long_job_does_not_hold_back_short_ones);
    tcase_add_test(tc, full_lane_refuses_with_eagain);
    tcase_add_test(tc, abort_removes_queued_jobs);
    tcase_add_test(tc, abort_flags_running_job);
    tcase_add_test(tc, abort_does_not_interrupt_blocking_call);
    tcase_add_test(tc, close_all_cancels_and_loop_delivers);
    tcase_add_test(tc, refused_free_keeps_cancelled_jobs);
    tcase_add_test(tc, free_waits_for_running_jobs);
    tcase_add_test(tc, free_gives_up_after_limit);
    tcase_add_test(tc, errors_from_jobs);
    tcase_add_test(tc, errors_started_at_the_call);
    tcase_add_test(tc, values_move_to_the_callback);
    tcase_add_test(tc, promise_twin);
    tcase_add_test(tc, await_from_task);
    tcase_add_test(tc, misuse);
    tcase_add_test(tc, loops_share_the_pool);
    tcase_add_test(tc, stop_inside_a_batch);
    tcase_add_test(tc, base_dispatched_by_program);
    suite_add_tcase(s, tc);
    return s;
}

/* The offload pool's threads: two process-wide lanes (CPU and blocking),
 * each a FIFO of jobs under its own lock with the threads that run them.
 * Every loop shares them (as libuv's one pool), so a program with many loops
 * does not multiply its threads; each job carries its loop's side (offload.c)
 * to hand its result back to.
 *
 * Threads start one at a time, when a job is queued that no idle thread can
 * take, up to the lane's size; they stop when the last loop that used the
 * pool is freed. A thread with nothing to do spins briefly before it sleeps
 * on the lane's condition variable -- one spinner per lane, as Go's
 * scheduler keeps one spinning thread: a futex wake-up costs microseconds,
 * a job handed to a spinning thread well under one. A thread that takes a job
 * while more wait and nobody spins wakes the next sleeper, so the loop thread
 * pays at most one wake-up per batch of jobs it queues.
 * The lock order is in pool_internal.h. */
#include "pool_internal.h"

#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_VALGRIND_MEMCHECK_H
#include <valgrind/memcheck.h>
#endif

#define MAX_THREADS 1024
/* How long an idle thread spins for work before sleeping. A round trip to a
 * spinning thread costs well under a microsecond, to a sleeping one a futex
 * wake-up and a reschedule (several). */
#define WORKER_SPIN_NS 50000

#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
/* spins briefly before sleeping: the critical sections are a few loads */
#define LANE_LOCK_INIT PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
#else
#define LANE_LOCK_INIT PTHREAD_MUTEX_INITIALIZER
#endif

struct lane {
    pthread_mutex_t lock;
    pthread_cond_t work;  /* idle threads sleep here */
    struct jlist q;       /* queued jobs, oldest first */
    atomic_size_t queued; /* q.len, for a spinning thread to read unlocked */
    unsigned max;         /* threads it may have */
    unsigned nthreads;    /* started */
    unsigned sleeping;    /* waiting on work */
    unsigned starting;    /* started, not yet looking for work */
    bool spinner;         /* a thread spins for work (one at a time) */
    bool stop;            /* the last loop left: threads exit */
    pthread_t *threads;
    unsigned cap;
};

static struct {
    pthread_mutex_t lock;      /* users and sizes; taken before a lane's lock */
    unsigned users;            /* loops with offload state */
    unsigned size[PACT_LANES]; /* pact_pool_set_threads; 0: the default */
    struct lane lanes[PACT_LANES];
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .lanes = {{.lock = LANE_LOCK_INIT, .work = PTHREAD_COND_INITIALIZER},
              {.lock = LANE_LOCK_INIT, .work = PTHREAD_COND_INITIALIZER}},
};

/* ---- spinning ------------------------------------------------------------ */

void pact__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

uint64_t pact__spin_ns(uint64_t ns)
{
#ifdef RUNNING_ON_VALGRIND
    /* valgrind runs one thread at a time: a spinner only holds up the
     * thread it waits for */
    if (RUNNING_ON_VALGRIND)
        return 0;
#endif
    return ns;
}

/* Spin until a job is queued or @p ns have passed. */
static void spin_for_work(struct lane *ln, uint64_t ns)
{
    uint64_t end = pact__now_ns() + ns;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&ln->queued, memory_order_relaxed))
            return;
        pact__cpu_relax();
        if (!(i & 63) && pact__now_ns() >= end)
            return;
    }
}

/* ---- sizes --------------------------------------------------------------- */

static unsigned ncpu(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static unsigned env_size(const char *name)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return 0;
    char *end;
    unsigned long n = strtoul(s, &end, 10);
    return *end || n > MAX_THREADS ? 0 : (unsigned)n;
}

/* The size of @p lane as pact_pool_set_threads documents it; pool.lock. */
static unsigned resolve(int lane)
{
    if (pool.size[lane])
        return pool.size[lane];
    unsigned n = env_size(lane == PACT_LANE_CPU ? "PACT_POOL_SIZE"
                                                : "PACT_POOL_BLOCKING_SIZE");
    if (n)
        return n;
    unsigned cores = ncpu();
    if (lane == PACT_LANE_CPU)
        return cores < 2 ? 2 : cores;
    n = 4 * cores;
    return n < 8 ? 8 : n > 64 ? 64 : n;
}

int pact_pool_set_threads(pact_lane lane, unsigned n)
{
    static const char fn[] = "pact_pool_set_threads";
    if ((unsigned)lane >= PACT_LANES)
        return pact__misuse(fn, PACT_EINVAL, "no such lane");
    if (n > MAX_THREADS)
        return pact__misuse(fn, PACT_EINVAL, "more than 1024 threads");
    pthread_mutex_lock(&pool.lock);
    pool.size[lane] = n;
    struct lane *ln = &pool.lanes[lane];
    pthread_mutex_lock(&ln->lock);
    ln->max = resolve(lane);
    pthread_mutex_unlock(&ln->lock);
    pthread_mutex_unlock(&pool.lock);
    return 0;
}

unsigned pact_pool_threads(pact_lane lane)
{
    if ((unsigned)lane >= PACT_LANES)
        return 0;
    pthread_mutex_lock(&pool.lock);
    unsigned n = resolve(lane);
    pthread_mutex_unlock(&pool.lock);
    return n;
}

/* ---- the threads --------------------------------------------------------- */

static void *worker(void *arg)
{
    struct lane *ln = arg;
    bool spun = false; /* spun since the last job: sleep next time */
    pthread_mutex_lock(&ln->lock);
    ln->starting--;
    for (;;) {
        pact_job *j = jlist_pop(&ln->q);
        if (!j) {
            if (ln->stop)
                break;
            uint64_t ns = pact__spin_ns(WORKER_SPIN_NS);
            if (!spun && !ln->spinner && ns) {
                ln->spinner = true;
                pthread_mutex_unlock(&ln->lock);
                spin_for_work(ln, ns);
                pthread_mutex_lock(&ln->lock);
                ln->spinner = false;
                spun = true;
            } else {
                ln->sleeping++;
                pthread_cond_wait(&ln->work, &ln->lock);
                ln->sleeping--;
            }
            continue;
        }
        spun = false;
        atomic_store_explicit(&ln->queued, ln->q.len, memory_order_relaxed);
        job_set_state(j, J_RUNNING);
        /* more waiting and nobody spinning for them: pass the wake-up on */
        if (ln->q.head && ln->sleeping && !ln->spinner)
            pthread_cond_signal(&ln->work);
        pthread_mutex_unlock(&ln->lock);
        j->err = j->fn(j, j->arg, &j->result);
        pact__offq_publish(j);
        pthread_mutex_lock(&ln->lock);
    }
    pthread_mutex_unlock(&ln->lock);
    return NULL;
}

/* Start one more thread in @p ln (its lock held). Pool threads take no
 * signals: those are the loop's. */
static int grow(struct lane *ln)
{
    if (ln->nthreads == ln->cap) {
        unsigned cap = ln->cap ? ln->cap * 2 : 8;
        pthread_t *v = realloc(ln->threads, cap * sizeof *v);
        if (!v)
            return PACT_ENOMEM;
        ln->threads = v;
        ln->cap = cap;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&ln->threads[ln->nthreads], NULL, worker, ln);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        return -rc;
    ln->nthreads++;
    ln->starting++;
    return 0;
}

int pact__lane_ready(int lane)
{
    struct lane *ln = &pool.lanes[lane];
    pthread_mutex_lock(&ln->lock);
    int rc = ln->nthreads ? 0 : grow(ln);
    pthread_mutex_unlock(&ln->lock);
    return rc;
}

void pact__lane_push(int lane, struct jlist *jobs)
{
    struct lane *ln = &pool.lanes[lane];
    for (pact_job *j = jobs->head; j; j = j->next)
        job_set_state(j, J_QUEUED);
    pthread_mutex_lock(&ln->lock);
    jlist_append(&ln->q, jobs);
    atomic_store_explicit(&ln->queued, ln->q.len, memory_order_relaxed);
    /* a spinning thread takes the first job and wakes a sleeper if more
     * wait; else wake one here (it passes the wake-up on) */
    if (!ln->spinner && ln->sleeping)
        pthread_cond_signal(&ln->work);
    /* start threads for the jobs no idle one can take (a failure is
     * harmless: the lane has a thread already, see pact__lane_ready) */
    size_t idle = ln->sleeping + ln->spinner + ln->starting;
    for (size_t excess = ln->q.len > idle ? ln->q.len - idle : 0;
         excess && ln->nthreads < ln->max; excess--)
        if (grow(ln) < 0)
            break;
    pthread_mutex_unlock(&ln->lock);
}

bool pact__lane_cancel(pact_job *j)
{
    struct lane *ln = &pool.lanes[j->lane];
    pthread_mutex_lock(&ln->lock);
    bool took = job_state(j) == J_QUEUED;
    if (took) {
        jlist_unlink(&ln->q, j);
        atomic_store_explicit(&ln->queued, ln->q.len, memory_order_relaxed);
        job_set_state(j, J_CANCELLED);
    }
    pthread_mutex_unlock(&ln->lock);
    return took;
}

void pact__lane_cancel_all(int lane, struct offq *q, struct jlist *out)
{
    struct lane *ln = &pool.lanes[lane];
    pthread_mutex_lock(&ln->lock);
    for (pact_job *j = ln->q.head, *next; j; j = next) {
        next = j->next;
        if (j->q != q)
            continue;
        jlist_unlink(&ln->q, j);
        job_set_state(j, J_CANCELLED);
        jlist_push(out, j);
    }
    atomic_store_explicit(&ln->queued, ln->q.len, memory_order_relaxed);
    pthread_mutex_unlock(&ln->lock);
}

/* ---- users --------------------------------------------------------------- */

void pact__pool_enter(void)
{
    pthread_mutex_lock(&pool.lock);
    if (pool.users++ == 0) {
        /* jansson's hash seed must be set before threads use it (its
         * doc/threadsafety.rst); a no-op once seeded */
        json_object_seed(0);
        for (int i = 0; i < PACT_LANES; i++) {
            pthread_mutex_lock(&pool.lanes[i].lock);
            pool.lanes[i].max = resolve(i);
            pthread_mutex_unlock(&pool.lanes[i].lock);
        }
    }
    pthread_mutex_unlock(&pool.lock);
}

/* No loop uses the pool (so no job is queued or running): join every
 * thread of @p ln. */
static void stop_lane(struct lane *ln)
{
    pthread_mutex_lock(&ln->lock);
    ln->stop = true;
    pthread_cond_broadcast(&ln->work);
    unsigned n = ln->nthreads;
    pthread_mutex_unlock(&ln->lock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(ln->threads[i], NULL);
    pthread_mutex_lock(&ln->lock);
    ln->nthreads = 0;
    ln->stop = false;
    free(ln->threads);
    ln->threads = NULL;
    ln->cap = 0;
    pthread_mutex_unlock(&ln->lock);
}

void pact__pool_leave(void)
{
    pthread_mutex_lock(&pool.lock);
    if (--pool.users == 0)
        for (int i = 0; i < PACT_LANES; i++)
            stop_lane(&pool.lanes[i]);
    pthread_mutex_unlock(&pool.lock);
}

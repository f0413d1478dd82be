/* The offload pool's threads: two process-wide lanes (CPU and blocking),
 * each a FIFO of jobs under its own lock with the threads that run them.
 * Every loop shares them (as libuv's one pool), so a program with many loops
 * does not multiply its threads; each job carries its loop's side (offload.c)
 * to hand its result back to.
 *
 * Threads start one at a time, when jobs are queued that no thread will come
 * for, up to the lane's size; they stop when the last loop that used the
 * pool is freed. A CPU thread takes several short jobs at once (one lock for
 * many, their results handed back together), one as soon as they are not
 * short. A thread with nothing to do sleeps on the lane's condition
 * variable, but first spins briefly when the loop it served was waiting on
 * its results (a round trip: the next job follows at once) and a core is
 * free for it: a futex wake-up costs microseconds, a job handed to a
 * spinning thread well under one, and a spinner on a core a busy thread
 * needs only slows that thread down. Sleepers are woken one at a time, and
 * only while the work waiting is worth a wake-up; the thread woken passes
 * the wake-up on, so the loop thread pays at most one per batch it queues.
 * The lock order is in pool_internal.h. */
#include "pool_internal.h"

#include <jansson.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 1024
/* How long an idle thread spins for work before sleeping. A round trip to a
 * spinning thread costs well under a microsecond, to a sleeping one a futex
 * wake-up and a reschedule (several). */
#define WORKER_SPIN_NS 50000
/* A CPU thread takes up to MAX_BATCH jobs at once while they average under
 * SHORT_JOB_NS each: one lock for many trivial jobs, and their results go
 * back together. */
#define MAX_BATCH 32
#define SHORT_JOB_NS 2000
/* What waking a sleeping thread costs (the futex, the reschedule, the
 * competition for a core): more work than this per thread already coming
 * for it pays for one more. Until jobs have been timed, each counts as
 * JOB_NS_GUESS. */
#define WAKE_WORTH_NS 20000
#define JOB_NS_GUESS 1000000

/* A spinner that finds this long between two looks at the clock (normally
 * about a microsecond) lost its core to another thread: the machine has
 * more runnable threads than cores, where a thread asleep in the kernel is
 * woken sooner than a spinner gets its core back. Spinning is then off for
 * NOSPIN_NS. */
#define PREEMPTED_NS 40000
#define NOSPIN_NS 20000000

#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
/* spins briefly before sleeping: the critical sections are a few loads */
#define LANE_LOCK_INIT PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
#else
#define LANE_LOCK_INIT PTHREAD_MUTEX_INITIALIZER
#endif

struct lane {
    pthread_mutex_t lock;
    pthread_cond_t work;     /* idle threads sleep here */
    struct jlist q;          /* queued jobs, oldest first */
    atomic_size_t queued;    /* q.len, for a spinning thread to read unlocked */
    unsigned max;            /* threads it may have */
    unsigned nthreads;       /* started */
    unsigned sleeping;       /* waiting on work */
    unsigned starting;       /* started, not yet looking for work */
    atomic_uint running;     /* running jobs (raised under the lock) */
    _Atomic uint64_t job_ns; /* a job's running time, moving average */
    bool spinner;            /* a thread spins for work (one at a time) */
    bool stop;               /* the last loop left: threads exit */
    struct worker **workers; /* nthreads of them */
    unsigned cap;
};

/* A thread, and the jobs it took at once. They stay visible: a thread with
 * nothing to do claims the ones not started yet (steals them), so a long job
 * holds back no job taken with it while another thread is free. */
struct worker {
    struct lane *ln;
    pthread_t tid;
    pact_job *v[MAX_BATCH]; /* the batch (written under ln->lock) */
    unsigned n;             /* its size (likewise) */
    atomic_uint next;       /* the next to start, claimed by fetch_add: by
                               this thread, or one that steals it */
};

static struct {
    unsigned ncpu;                 /* cores we may run on (at the first user) */
    _Atomic uint64_t nospin_until; /* spinning is off until then (ns) */
    pthread_mutex_t lock;      /* users and sizes; taken before a lane's lock */
    unsigned users;            /* loops with offload state */
    unsigned size[PACT_LANES]; /* pact_pool_set_threads; 0: the default */
    struct lane lanes[PACT_LANES];
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .lanes = {{.lock = LANE_LOCK_INIT,
               .work = PTHREAD_COND_INITIALIZER,
               .job_ns = JOB_NS_GUESS},
              {.lock = LANE_LOCK_INIT,
               .work = PTHREAD_COND_INITIALIZER,
               .job_ns = JOB_NS_GUESS}},
};

/* ---- spinning ------------------------------------------------------------ */

uint64_t pact__spin_ns(uint64_t ns, unsigned spinners)
{
    /* valgrind runs one thread at a time: a spinner only holds up the
     * thread it waits for */
    if (pact__on_valgrind())
        return 0;
    /* not for a while after a spinner found it had lost its core */
    if (!pact__deadline_passed(
            atomic_load_explicit(&pool.nospin_until, memory_order_relaxed),
            pact__now_ns()))
        return 0;
    /* a core for each thread running CPU jobs, one for the loop (taken to
     * be busy) and one for each spinner, or spinning steals the time of the
     * very threads it waits for (blocking jobs mostly wait: not counted) */
    unsigned busy = atomic_load_explicit(&pool.lanes[PACT_LANE_CPU].running,
                                         memory_order_relaxed);
    return busy + spinners <= pool.ncpu ? ns : 0;
}

bool pact__spin_on(const atomic_size_t *word, uint64_t ns)
{
    uint64_t last = pact__now_ns(), end = pact__ns_after(last, ns);
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(word, memory_order_relaxed))
            return true;
        pact__cpu_relax();
        if (i & 15)
            continue;
        uint64_t now = pact__now_ns();
        if (now - last > PREEMPTED_NS) {
            atomic_store_explicit(&pool.nospin_until,
                                  pact__ns_after(now, NOSPIN_NS),
                                  memory_order_relaxed);
            return false;
        }
        if (pact__deadline_passed(end, now))
            return false;
        last = now;
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

/* Threads that will look for work without being woken (ln's lock held):
 * starting, spinning, or back from running jobs and about to look. */
static size_t coming(struct lane *ln)
{
    unsigned running = atomic_load_explicit(&ln->running, memory_order_relaxed);
    return ln->nthreads - ln->sleeping - running;
}

/* Wake a sleeper when jobs wait and no thread is coming for them, or when
 * the work waiting, shared among the threads coming (plus @p self: the
 * caller, which comes back for more), is worth more than a wake-up: for
 * trivial jobs one thread keeps up and a second only competes for the cores
 * (ln's lock held). The thread woken does the same when it takes jobs, so
 * one wake-up is passed on rather than many made at once. */
static void wake_one(struct lane *ln, size_t self)
{
    if (!ln->sleeping || !ln->q.len)
        return;
    size_t c = coming(ln) + self;
    uint64_t ns = atomic_load_explicit(&ln->job_ns, memory_order_relaxed);
    if (!c || ln->q.len * ns > WAKE_WORTH_NS * c)
        pthread_cond_signal(&ln->work);
}

/* Take up to @p want jobs (ln's lock held), fewer when other threads could
 * share them, as @p w's batch. @return how many. */
static unsigned take(struct lane *ln, struct worker *w, unsigned want)
{
    size_t fair = ln->q.len / ln->nthreads;
    size_t n = fair < want ? (fair ? fair : 1) : want;
    if (n > ln->q.len)
        n = ln->q.len;
    /* through next alone: only the new head's second line is written */
    pact_job *j = ln->q.head;
    for (size_t i = 0; i < n; i++, j = j->next) {
        job_set_state(j, J_RUNNING);
        w->v[i] = j;
    }
    ln->q.head = j;
    ln->q.len -= n;
    if (j)
        j->prev = NULL;
    else
        ln->q.tail = NULL;
    w->n = (unsigned)n;
    atomic_store_explicit(&w->next, 0, memory_order_relaxed);
    atomic_store_explicit(&ln->queued, ln->q.len, memory_order_relaxed);
    if (n) {
        atomic_fetch_add_explicit(&ln->running, 1, memory_order_relaxed);
        wake_one(ln, 0); /* the rest is for other threads */
    }
    return (unsigned)n;
}

/* Claim a job that another thread took and has not started (ln's lock
 * held: batches are refilled under it). */
static pact_job *steal(struct lane *ln, struct worker *self)
{
    for (unsigned i = 0; i < ln->nthreads; i++) {
        struct worker *w = ln->workers[i];
        if (w == self ||
            atomic_load_explicit(&w->next, memory_order_relaxed) >= w->n)
            continue;
        unsigned k =
            atomic_fetch_add_explicit(&w->next, 1, memory_order_relaxed);
        if (k < w->n)
            return w->v[k];
    }
    return NULL;
}

/* Run @p j (unless it was cancelled while it waited) and add it to @p done,
 * linked through next only: a pool thread does not touch the second line. */
static void run(pact_job *j, struct jlist *done)
{
    if (!pact_job_cancelled(j)) {
        pact_error *err = j->fn(j, j->arg, &j->result);
        if (err) /* the second line is touched only for a failure */
            j->err = err;
    }
    j->next = NULL;
    if (done->tail)
        done->tail->next = j;
    else
        done->head = j;
    done->tail = j;
    done->len++;
}

/* Run what is left of @p w's batch, claiming each job first (an idle thread
 * may claim some too). @return how many it ran. */
static size_t run_batch(struct worker *w, struct jlist *done)
{
    size_t ran = 0;
    for (;;) {
        unsigned k =
            atomic_fetch_add_explicit(&w->next, 1, memory_order_relaxed);
        if (k >= w->n)
            return ran;
        run(w->v[k], done);
        ran++;
    }
}

/* Hand the jobs in @p done back, each run of jobs of one loop under one
 * lock. @return whether a loop was spinning for them. */
static bool publish(struct jlist *done)
{
    bool awaited = false;
    while (done->head) {
        struct offq *q = done->head->q;
        struct jlist run = {done->head, done->head, 1};
        while (run.tail->next && run.tail->next->q == q) {
            run.tail = run.tail->next;
            run.len++;
        }
        done->head = run.tail->next;
        done->len -= run.len;
        run.tail->next = NULL;
        awaited |= pact__offq_publish(q, &run);
    }
    done->tail = NULL;
    return awaited;
}

/* How many jobs a CPU thread takes at once: doubled while jobs are short,
 * back to one as soon as they are not. */
static unsigned next_batch(unsigned batch, size_t ran, uint64_t ns)
{
    if (ns > ran * SHORT_JOB_NS)
        return 1;
    return batch < MAX_BATCH ? batch * 2 : MAX_BATCH;
}

/* Fold a job's running time into the lane's average. */
static void measured(struct lane *ln, uint64_t ns)
{
    uint64_t avg = atomic_load_explicit(&ln->job_ns, memory_order_relaxed);
    atomic_store_explicit(&ln->job_ns, avg - avg / 8 + ns / 8,
                          memory_order_relaxed);
}

/* Nothing to take or steal: spin for work once, if the last results went to
 * a loop that was spinning for them (it waits on each result, so its next
 * job comes at once: a round trip) and a core is free and nobody else spins;
 * else sleep. A loop busy submitting is not spun for: the spinner would only
 * take a core from it. ln's lock held. */
static void idle(struct lane *ln, bool *spun, bool awaited)
{
    uint64_t ns = awaited ? pact__spin_ns(WORKER_SPIN_NS, 2) : 0;
    if (!*spun && !ln->spinner && ns) {
        ln->spinner = true;
        pthread_mutex_unlock(&ln->lock);
        pact__spin_on(&ln->queued, ns);
        pthread_mutex_lock(&ln->lock);
        ln->spinner = false;
        *spun = true;
    } else {
        ln->sleeping++;
        pthread_cond_wait(&ln->work, &ln->lock);
        ln->sleeping--;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct lane *ln = w->ln;
    bool cpu = ln == &pool.lanes[PACT_LANE_CPU];
    bool spun = false;    /* spun since the last job: sleep next time */
    bool awaited = false; /* a loop spun for the last results */
    unsigned batch = 1;   /* the blocking lane takes one job at a time */
    struct jlist done = {0};
    pthread_mutex_lock(&ln->lock);
    ln->starting--;
    for (;;) {
        pact_job *stolen = NULL;
        unsigned n = take(ln, w, batch);
        if (!n && (stolen = steal(ln, w)))
            atomic_fetch_add_explicit(&ln->running, 1, memory_order_relaxed);
        if (!n && !stolen) {
            if (ln->stop)
                break;
            idle(ln, &spun, awaited);
            continue;
        }
        spun = false;
        pthread_mutex_unlock(&ln->lock);
        uint64_t t0 = pact__now_ns();
        size_t ran = 1;
        if (stolen)
            run(stolen, &done);
        else
            ran = run_batch(w, &done);
        uint64_t ns = pact__now_ns() - t0;
        if (ran) {
            if (cpu && !stolen)
                batch = next_batch(batch, ran, ns);
            measured(ln, ns / ran);
        }
        atomic_fetch_sub_explicit(&ln->running, 1, memory_order_relaxed);
        awaited = publish(&done);
        pthread_mutex_lock(&ln->lock);
    }
    pthread_mutex_unlock(&ln->lock);
    return NULL;
}

/* Start one more thread in @p ln (its lock held). Pool threads take none of
 * the program's signals: those are its own threads' (pact__thread_start). */
static int grow(struct lane *ln)
{
    if (ln->nthreads == ln->cap) {
        unsigned cap = ln->cap ? ln->cap * 2 : 8;
        struct worker **v = realloc(ln->workers, cap * sizeof *v);
        if (!v)
            return PACT_ENOMEM;
        ln->workers = v;
        ln->cap = cap;
    }
    struct worker *w = malloc(sizeof *w);
    if (!w)
        return PACT_ENOMEM;
    w->ln = ln;
    w->n = 0;
    atomic_init(&w->next, 0);
    int rc = pact__thread_start(&w->tid, NULL, worker_main, w, false);
    if (rc < 0) {
        free(w);
        return rc;
    }
    ln->workers[ln->nthreads++] = w;
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
    wake_one(ln, 0);
    /* start threads for the jobs no thread will come for (a failure is
     * harmless: the lane has a thread already, see pact__lane_ready) */
    size_t reach = coming(ln) + ln->sleeping;
    for (size_t excess = ln->q.len > reach ? ln->q.len - reach : 0;
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

/* ---- fork ---------------------------------------------------------------- */

/* A child of fork has only the thread that forked: the pool's threads are
 * gone, but their count, batches and queue were copied. So the pool's locks
 * are held across fork (the copy is consistent: lock order, pool before
 * lanes), and the child starts from an empty pool whose threads are made on
 * its first job. The jobs queued in the parent belong to the parent's loops,
 * which the child must not use (doc/offload.md): their records are left
 * unfreed in the child, never run. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&pool.lock);
    for (int i = 0; i < PACT_LANES; i++)
        pthread_mutex_lock(&pool.lanes[i].lock);
}

static void fork_parent(void)
{
    for (int i = PACT_LANES; i-- > 0;)
        pthread_mutex_unlock(&pool.lanes[i].lock);
    pthread_mutex_unlock(&pool.lock);
}

static void fork_child(void)
{
    for (int i = 0; i < PACT_LANES; i++) {
        struct lane *ln = &pool.lanes[i];
        for (unsigned k = 0; k < ln->nthreads; k++)
            free(ln->workers[k]);
        free(ln->workers);
        pthread_mutex_t lock = LANE_LOCK_INIT;
        pthread_cond_t work = PTHREAD_COND_INITIALIZER;
        ln->lock = lock; /* fresh: no thread of the parent holds it here */
        ln->work = work;
        ln->q = (struct jlist){0};
        atomic_store_explicit(&ln->queued, 0, memory_order_relaxed);
        atomic_store_explicit(&ln->running, 0, memory_order_relaxed);
        ln->nthreads = ln->sleeping = ln->starting = 0;
        ln->spinner = ln->stop = false;
        ln->workers = NULL;
        ln->cap = 0;
    }
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pool.lock = lock;
}

static void register_fork(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ---- users --------------------------------------------------------------- */

void pact__pool_enter(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_fork);
    pthread_mutex_lock(&pool.lock);
    if (pool.users++ == 0) {
        /* jansson's hash seed must be set before threads use it (its
         * doc/threadsafety.rst); a no-op once seeded */
        json_object_seed(0);
        pool.ncpu = ncpu();
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
    /* every thread first: until the last exits, one may look at the others'
     * batches to steal from them */
    for (unsigned i = 0; i < n; i++)
        pthread_join(ln->workers[i]->tid, NULL);
    for (unsigned i = 0; i < n; i++)
        free(ln->workers[i]);
    pthread_mutex_lock(&ln->lock);
    ln->nthreads = 0;
    ln->stop = false;
    free(ln->workers);
    ln->workers = NULL;
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

/* The supervisor of a cluster (pact/cluster.h): no loop, one thread. It
 * blocks SIGCHLD, SIGTERM and SIGINT and takes them with sigtimedwait, the
 * timeout being the next restart or the stop's deadline; each SIGCHLD reaps
 * every worker that ended (signals of one kind coalesce). A worker is a
 * slot: its index, its pid while it runs, when it started (for the
 * back-off), when it is to be started again. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "internal.h"
#include "pact/cluster.h"

struct worker_slot {
    pid_t pid;        /* 0: not running */
    uint64_t started; /* ms */
    uint64_t delay;   /* the next restart's back-off */
    uint64_t restart; /* ms when to start it again, 0: not due */
    bool done;        /* exited with 0: not restarted */
};

struct sup {
    const pact_cluster_opts *o;
    unsigned n;
    struct worker_slot *slots;
    pact_cluster_main fn;
    void *arg;
    sigset_t old; /* the caller's mask, the workers' */
    bool stopping;
    uint64_t deadline; /* ms: SIGKILL then */
    int failed;        /* a worker failed during the stop, or was killed */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void say(const struct sup *sp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const struct sup *sp, const char *fmt, ...)
{
    if (sp->o->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pact cluster[%ld]: ", (long)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* In the child: the caller's signals back, then the worker. */
static void child(struct sup *sp, unsigned i)
{
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* the supervisor's death ends it */
#endif
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, &sp->old, NULL);
    int rc = sp->fn(i, sp->arg);
    fflush(NULL);
    _exit(rc & 0xff);
}

/* Start worker @p i. @return 0 or the fork's error. */
static int spawn(struct sup *sp, unsigned i)
{
    fflush(NULL); /* no buffered output printed twice */
    pid_t pid = fork();
    if (pid < 0)
        return errno ? -errno : PACT_EUNKNOWN;
    if (pid == 0)
        child(sp, i);
    sp->slots[i].pid = pid;
    sp->slots[i].started = now_ms();
    sp->slots[i].restart = 0;
    return 0;
}

/* Worker @p i ended with @p status. */
static void ended(struct sup *sp, unsigned i, int status)
{
    struct worker_slot *s = &sp->slots[i];
    pid_t pid = s->pid;
    s->pid = 0;
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (sp->stopping) {
        if (!clean && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM))
            sp->failed = 1;
        s->done = true;
        return;
    }
    if (clean) {
        s->done = true;
        say(sp, "worker %u (pid %ld) exited", i, (long)pid);
        return;
    }
    uint64_t max = sp->o->restart_max_ms ? sp->o->restart_max_ms : 10000;
    uint64_t first = sp->o->restart_ms ? sp->o->restart_ms : 100;
    uint64_t lived = now_ms() - s->started;
    s->delay = !s->delay || lived > max ? first
               : s->delay * 2 > max     ? max
                                        : s->delay * 2;
    s->restart = now_ms() + s->delay;
    if (WIFSIGNALED(status))
        say(sp,
            "worker %u (pid %ld) killed by signal %d; restarting in %llu ms", i,
            (long)pid, WTERMSIG(status), (unsigned long long)s->delay);
    else
        say(sp, "worker %u (pid %ld) exited with %d; restarting in %llu ms", i,
            (long)pid, WEXITSTATUS(status), (unsigned long long)s->delay);
}

/* The workers that ended (only ours: a child the program made before is
 * left to it). */
static void reap(struct sup *sp)
{
    for (unsigned i = 0; i < sp->n; i++) {
        int status;
        if (sp->slots[i].pid &&
            waitpid(sp->slots[i].pid, &status, WNOHANG) == sp->slots[i].pid)
            ended(sp, i, status);
    }
}

static void signal_all(struct sup *sp, int sig)
{
    for (unsigned i = 0; i < sp->n; i++)
        if (sp->slots[i].pid)
            kill(sp->slots[i].pid, sig);
}

/* @return whether a worker runs or is to be restarted. */
static bool alive(const struct sup *sp)
{
    for (unsigned i = 0; i < sp->n; i++)
        if (sp->slots[i].pid || (!sp->stopping && sp->slots[i].restart))
            return true;
    return false;
}

/* The restarts due, and the next one's time (or the stop's deadline). */
static uint64_t due(struct sup *sp)
{
    uint64_t now = now_ms(), next = UINT64_MAX;
    if (sp->stopping) {
        if (now >= sp->deadline) {
            signal_all(sp, SIGKILL);
            sp->failed = 1;
            return UINT64_MAX;
        }
        return sp->deadline;
    }
    for (unsigned i = 0; i < sp->n; i++) {
        struct worker_slot *s = &sp->slots[i];
        if (!s->restart)
            continue;
        if (s->restart <= now && spawn(sp, i) < 0)
            s->restart = now + (s->delay ? s->delay : 100); /* again */
        if (s->restart && s->restart < next)
            next = s->restart;
    }
    return next;
}

static void supervise(struct sup *sp, const sigset_t *set)
{
    while (alive(sp)) {
        uint64_t next = due(sp), now = now_ms();
        uint64_t wait = next == UINT64_MAX ? 1000 : next > now ? next - now : 0;
        struct timespec ts = {(time_t)(wait / 1000),
                              (long)(wait % 1000) * 1000000};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGCHLD) {
            reap(sp);
        } else if (sig == SIGTERM || sig == SIGINT) {
            if (!sp->stopping) {
                sp->stopping = true;
                sp->deadline =
                    now_ms() + (sp->o->stop_ms ? sp->o->stop_ms : 30000);
                say(sp, "signal %d: stopping the workers", sig);
            }
            signal_all(sp, SIGTERM);
        }
        reap(sp); /* a SIGCHLD taken with another signal */
    }
}

int pact_cluster_run(const pact_cluster_opts *opts, pact_cluster_main worker,
                     void *arg)
{
    static const pact_cluster_opts defaults = {0};
    if (!worker)
        return pact__misuse("pact_cluster_run", PACT_EINVAL, "worker is NULL");
    struct sup sp = {.o = opts ? opts : &defaults, .fn = worker, .arg = arg};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    sp.n = sp.o->workers ? sp.o->workers : cpus > 0 ? (unsigned)cpus : 1;
    sp.slots = calloc(sp.n, sizeof *sp.slots);
    if (!sp.slots)
        return PACT_ENOMEM;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, &sp.old);
    int rc = 0;
    for (unsigned i = 0; i < sp.n && rc == 0; i++)
        rc = spawn(&sp, i);
    if (rc < 0) { /* none runs: stop those that did start */
        signal_all(&sp, SIGKILL);
        for (unsigned i = 0; i < sp.n; i++)
            if (sp.slots[i].pid)
                waitpid(sp.slots[i].pid, NULL, 0);
    } else {
        supervise(&sp, &set);
        rc = sp.failed;
    }
    /* a signal still pending goes away with the mask: take it first */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) > 0)
        ;
    sigprocmask(SIG_SETMASK, &sp.old, NULL);
    free(sp.slots);
    return rc;
}

/* The loop-stall detector: a watchdog thread per watched loop that samples
 * the loop thread's step record (internal.h) four times per threshold, and
 * reports a step that is still the same one after the threshold -- with its
 * label, the callback's symbol, what the thread is doing (Linux /proc) and,
 * if asked, its stack -- then again at each doubling, and once it ended.
 *
 * The loop thread never waits for the watchdog, except when it leaves a
 * reported step (to stamp the end) or pops a task label the watchdog is
 * copying the name of. Lock order: a watchdog's lock, then grab.lock (the
 * stack capture); no callback of the program runs under either. */
#include "internal.h"
#include "symbol.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_EXECINFO_H
#include <execinfo.h>
#endif
#ifdef __linux__
#include <semaphore.h>
#include <sys/syscall.h>
#define STALL_PROC 1
#endif

#define MS 1000000ull
#define STACK_MAX 48
#define NAME_MAX_ 128

/* A label as the watchdog copied it. */
struct snap {
    int kind;
    void (*fn)(void);
    void *ud;
    bool named;
    char name[NAME_MAX_];
    const char *file, *at_file;
    int line, at_line;
};

/* What the watchdog knows of the step it watches (its thread's only). */
struct track {
    uint64_t outer; /* the record's outer when last sampled */
    uint64_t first; /* when that value was first seen (ns) */
    uint64_t next;  /* report when it has run this long (ns) */
    bool reported;
    int nth; /* reports made of it */
    uint64_t id;
    struct snap snap;
    char state[64];
    void *stack[STACK_MAX];
    int depth;
};

struct watchdog {
    struct pact__stall s; /* first: loop->stall points here */
    pact_loop *loop;
    pthread_t thread;
    pid_t pid; /* the process it runs in (a fork's child has no watchdog) */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* under lock */
    bool quit;
    bool kick;          /* a reported step ended: sample now */
    uint64_t end_outer; /* ... which one */
    uint64_t end_ns;    /* ... and when */
    bool have_thread;   /* the loop thread's identity, for its stack */
    pthread_t loop_thread;
    long loop_tid;
    /* set before the thread starts */
    pact_stall_opts opts;
    uint64_t period; /* ns */
    /* the watchdog thread's own */
    struct track t;
};

static _Atomic uint64_t next_id = 1;

static const char *const kind_names[] = {
    [PACT_STEP_NONE] = "step",
    [PACT_STEP_TIMER] = "timer callback",
    [PACT_STEP_IMMEDIATE] = "immediate callback",
    [PACT_STEP_POLL] = "fd poller callback",
    [PACT_STEP_SIGNAL] = "signal callback",
    [PACT_STEP_POST] = "posted callback",
    [PACT_STEP_CLOSE] = "close callback",
    [PACT_STEP_TICK] = "nextTick callback",
    [PACT_STEP_MICROTASK] = "microtask",
    [PACT_STEP_REACTION] = "promise reaction",
    [PACT_STEP_TASK] = "task step",
    [PACT_STEP_ASYNC] = "async function step",
    [PACT_STEP_HOOK] = "unhandled-rejection hook",
};

static const char *kind_name(int kind)
{
    if (kind < 0 || kind > PACT_STEP_HOOK)
        kind = PACT_STEP_NONE;
    return kind_names[kind];
}

static struct watchdog *of(struct pact__stall *s)
{
    return (struct watchdog *)s;
}

/* ---- the loop thread's calls into the watchdog --------------------------- */

static void ended(struct pact__stall *s, uint64_t outer)
{
    struct watchdog *wd = of(s);
    uint64_t now = pact__now_ns();
    pthread_mutex_lock(&wd->lock);
    wd->end_outer = outer;
    wd->end_ns = now;
    wd->kick = true;
    pthread_cond_signal(&wd->cond);
    pthread_mutex_unlock(&wd->lock);
}

/* A task label's pop: the watchdog pinned it before seeing nest move, so
 * wait until it has copied the name (it copies under its lock). */
static void wait_copy(struct pact__stall *s)
{
    struct watchdog *wd = of(s);
    pthread_mutex_lock(&wd->lock);
    pthread_mutex_unlock(&wd->lock);
}

/* ---- sampling (the watchdog thread, under its lock) ---------------------- */

/* Copy the label of outermost step @p outer. @return false if it moved. */
static bool snapshot(struct watchdog *wd, uint64_t outer, struct snap *out)
{
    struct pact__stall *s = &wd->s;
    uint64_t n = atomic_load_explicit(&s->nest, memory_order_acquire);
    if (n & 1)
        return false;
    atomic_store_explicit(&s->pinned, n, memory_order_seq_cst);
    if (atomic_load_explicit(&s->nest, memory_order_seq_cst) != n)
        return false;
    uintptr_t w[PACT__LW_N];
    for (int i = 0; i < PACT__LW_N; i++)
        w[i] = atomic_load_explicit(&s->label[i], memory_order_acquire);
    if (atomic_load_explicit(&s->nest, memory_order_acquire) != n ||
        atomic_load_explicit(&s->outer, memory_order_acquire) != outer)
        return false;
    /* consistent, and pinned: a pop of this label waits for our lock */
    out->kind = (int)w[PACT__LW_KIND];
    out->fn = (void (*)(void))w[PACT__LW_FN];
    out->ud = (void *)w[PACT__LW_UD];
    bool nested = out->kind == PACT_STEP_TASK || out->kind == PACT_STEP_ASYNC;
    const char *name = nested ? (const char *)w[PACT__LW_NAME] : NULL;
    out->named = name != NULL;
    if (name)
        snprintf(out->name, sizeof out->name, "%s", name);
    out->file = nested ? (const char *)w[PACT__LW_FILE] : NULL;
    out->at_file = nested ? (const char *)w[PACT__LW_AT_FILE] : NULL;
    uint64_t lines = nested ? (uint64_t)w[PACT__LW_LINES] : 0;
    out->line = (int)(uint32_t)lines;
    out->at_line = (int)(uint32_t)(lines >> 32);
    return true;
}

/* ---- what the loop thread is doing (Linux) ------------------------------- */

#ifdef STALL_PROC
static const struct {
    long nr;
    const char *name;
} syscalls[] = {
#define SC(x)                                                                  \
    {                                                                          \
        SYS_##x, #x                                                            \
    }
#ifdef SYS_read
    SC(read),
#endif
#ifdef SYS_write
    SC(write),
#endif
#ifdef SYS_pread64
    SC(pread64),
#endif
#ifdef SYS_pwrite64
    SC(pwrite64),
#endif
#ifdef SYS_readv
    SC(readv),
#endif
#ifdef SYS_writev
    SC(writev),
#endif
#ifdef SYS_openat
    SC(openat),
#endif
#ifdef SYS_open
    SC(open),
#endif
#ifdef SYS_close
    SC(close),
#endif
#ifdef SYS_fsync
    SC(fsync),
#endif
#ifdef SYS_fdatasync
    SC(fdatasync),
#endif
#ifdef SYS_nanosleep
    SC(nanosleep),
#endif
#ifdef SYS_clock_nanosleep
    SC(clock_nanosleep),
#endif
#ifdef SYS_futex
    SC(futex),
#endif
#ifdef SYS_poll
    SC(poll),
#endif
#ifdef SYS_ppoll
    SC(ppoll),
#endif
#ifdef SYS_select
    SC(select),
#endif
#ifdef SYS_pselect6
    SC(pselect6),
#endif
#ifdef SYS_epoll_wait
    SC(epoll_wait),
#endif
#ifdef SYS_epoll_pwait
    SC(epoll_pwait),
#endif
#ifdef SYS_connect
    SC(connect),
#endif
#ifdef SYS_accept
    SC(accept),
#endif
#ifdef SYS_accept4
    SC(accept4),
#endif
#ifdef SYS_recvfrom
    SC(recvfrom),
#endif
#ifdef SYS_sendto
    SC(sendto),
#endif
#ifdef SYS_recvmsg
    SC(recvmsg),
#endif
#ifdef SYS_sendmsg
    SC(sendmsg),
#endif
#ifdef SYS_wait4
    SC(wait4),
#endif
#ifdef SYS_waitid
    SC(waitid),
#endif
#ifdef SYS_flock
    SC(flock),
#endif
#ifdef SYS_fcntl
    SC(fcntl),
#endif
#ifdef SYS_pause
    SC(pause),
#endif
#ifdef SYS_rt_sigtimedwait
    SC(rt_sigtimedwait),
#endif
#ifdef SYS_getrandom
    SC(getrandom),
#endif
#undef SC
};

static bool read_proc(long tid, const char *what, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/%s", tid, what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* Write what thread @p tid is doing into @p out. @return true when it is on
 * a CPU (or ready to be), i.e. not waiting in the kernel. */
static bool thread_state(long tid, char *out, size_t cap)
{
    char buf[512];
    out[0] = '\0';
    if (!read_proc(tid, "stat", buf, sizeof buf))
        return false;
    const char *p = strrchr(buf, ')'); /* the name may hold anything */
    char st = p && p[1] == ' ' ? p[2] : '?';
    if (st == 'R') {
        snprintf(out, cap, "running");
        return true;
    }
    long nr = -1;
    if (read_proc(tid, "syscall", buf, sizeof buf) && buf[0] >= '0' &&
        buf[0] <= '9')
        nr = strtol(buf, NULL, 10);
    const char *name = NULL;
    for (size_t i = 0; i < sizeof syscalls / sizeof syscalls[0]; i++)
        if (syscalls[i].nr == nr)
            name = syscalls[i].name;
    const char *how = st == 'S'                ? "sleeping"
                      : st == 'D'              ? "waiting (uninterruptibly)"
                      : st == 'T' || st == 't' ? "stopped"
                                               : "not running";
    if (name)
        snprintf(out, cap, "%s in system call %s", how, name);
    else if (nr >= 0)
        snprintf(out, cap, "%s in system call %ld", how, nr);
    else
        snprintf(out, cap, "%s (state %c)", how, st);
    return false;
}
#endif

/* ---- the loop thread's stack, by a signal -------------------------------- */

#if defined(STALL_PROC) && defined(HAVE_BACKTRACE)
#define STALL_GRAB 1
enum { G_IDLE, G_ASKED, G_TAKING, G_DONE, G_CANCELLED };

/* One capture at a time, process-wide (lock); the handler writes the
 * frames only after winning ASKED -> TAKING. */
static struct {
    pthread_mutex_t lock;
    pthread_once_t once;
    bool usable;
    sem_t done;
    _Atomic int state;
    _Atomic long tid;
    int depth;
    void *frames[STACK_MAX + 2];
} grab = {.lock = PTHREAD_MUTEX_INITIALIZER, .once = PTHREAD_ONCE_INIT};

static void on_grab(int sig, siginfo_t *info, void *uctx)
{
    (void)sig;
    (void)info;
    (void)uctx;
    int saved = errno;
    int asked = G_ASKED;
    if (syscall(SYS_gettid) ==
            atomic_load_explicit(&grab.tid, memory_order_acquire) &&
        atomic_compare_exchange_strong(&grab.state, &asked, G_TAKING)) {
        /* async-signal-safe once libgcc's unwinder is loaded (grab_init) */
        grab.depth = backtrace(grab.frames, STACK_MAX + 2);
        atomic_store_explicit(&grab.state, G_DONE, memory_order_release);
        sem_post(&grab.done);
    }
    errno = saved;
}

static bool ours(void)
{
    struct sigaction cur;
    return sigaction(SIGURG, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
           cur.sa_sigaction == on_grab;
}

static void grab_init(void)
{
    void *warm[4];
    backtrace(warm, 4); /* loads the unwinder now, not in the handler */
    struct sigaction old, sa;
    if (sigaction(SIGURG, NULL, &old) != 0)
        return;
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL &&
        old.sa_handler != SIG_IGN)
        return; /* the program's own: leave it be */
    if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction != on_grab)
        return;
    if (sem_init(&grab.done, 0, 0) != 0)
        return;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_grab;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    grab.usable = sigaction(SIGURG, &sa, NULL) == 0;
}

/* Whether @p pc is in a sanitizer's runtime: TSan runs a signal handler
 * from its interceptors, below frames not worth naming -- and naming them
 * from their large debug information held the watchdog for over a second,
 * blind to the steps that stalled meanwhile. */
static bool in_sanitizer(void *pc)
{
#if defined(PACT__TSAN_BUILD) || defined(PACT__ASAN_BUILD)
    Dl_info info;
    if (!dladdr(pc, &info) || !info.dli_fname)
        return false;
    const char *base = strrchr(info.dli_fname, '/');
    base = base ? base + 1 : info.dli_fname;
    return !strncmp(base, "libtsan", 7) || !strncmp(base, "libasan", 7) ||
           !strncmp(base, "libubsan", 8) || !strncmp(base, "liblsan", 7);
#else
    (void)pc;
    return false;
#endif
}

/* Take @p thread's (@p tid's) stack into @p t. */
static void take_stack(pthread_t thread, long tid, struct track *t)
{
    pthread_once(&grab.once, grab_init);
    if (!grab.usable)
        return;
    pthread_mutex_lock(&grab.lock);
    if (!ours()) { /* the program put its own handler there since */
        pthread_mutex_unlock(&grab.lock);
        return;
    }
    atomic_store_explicit(&grab.tid, tid, memory_order_release);
    atomic_store_explicit(&grab.state, G_ASKED, memory_order_release);
    if (pthread_kill(thread, SIGURG) == 0) {
        /* a sanitizer may defer it */
        struct timespec until = pact__timespec_in_ms(CLOCK_REALTIME, 100);
        while (sem_timedwait(&grab.done, &until) != 0 && errno == EINTR)
            ;
    }
    int asked = G_ASKED;
    if (!atomic_compare_exchange_strong(&grab.state, &asked, G_CANCELLED) &&
        atomic_load_explicit(&grab.state, memory_order_acquire) != G_DONE) {
        /* the handler is writing: it posts when done */
        while (sem_wait(&grab.done) != 0 && errno == EINTR)
            ;
    }
    if (atomic_load_explicit(&grab.state, memory_order_acquire) == G_DONE) {
        /* drop the handler's frame and the signal trampoline, and a
         * sanitizer's frames that delivered the signal late */
        int skip = grab.depth > 2 ? 2 : 0;
        while (skip < grab.depth && in_sanitizer(grab.frames[skip]))
            skip++;
        t->depth = grab.depth - skip;
        memcpy(t->stack, grab.frames + skip, (size_t)t->depth * sizeof(void *));
    }
    atomic_store_explicit(&grab.state, G_IDLE, memory_order_relaxed);
    pthread_mutex_unlock(&grab.lock);
}
#endif

/* ---- reports (the watchdog thread, unlocked) ----------------------------- */

static void emit(struct watchdog *wd, const struct track *t, bool ended,
                 uint64_t ns)
{
    const struct snap *sn = &t->snap;
    pact_stall r = {
        .loop = wd->loop,
        .id = t->id,
        .ended = ended,
        .nth = t->nth,
        .ms = ns / MS,
        .threshold_ms = wd->opts.threshold_ms,
        .kind = (pact_step_kind)sn->kind,
        .what = kind_name(sn->kind),
        .fn = sn->fn,
        .ud = sn->ud,
        .file = sn->file,
        .line = sn->line,
        .at_file = sn->at_file,
        .at_line = sn->at_line,
    };
    char label[NAME_MAX_ + 32];
    if (sn->kind == PACT_STEP_TASK) {
        if (sn->named) {
            r.task = sn->name;
        } else if (sn->file) {
            snprintf(label, sizeof label, "%s:%d", sn->file, sn->line);
            r.task = label;
        }
    }
    /* named here, on the watchdog thread: never in the loop thread's
     * signal handler, which only records addresses */
    struct pact__codeloc where;
    if (sn->fn &&
        pact__symbolize((const void *)(uintptr_t)sn->fn, false, &where)) {
        r.fn_file = where.obj[0] ? where.obj : NULL;
        r.fn_offset = where.off;
        if (where.fn[0] && where.fn_exact)
            r.fn_name = where.fn;
        if (where.src[0]) {
            r.fn_source = where.src;
            r.fn_line = where.line;
        }
    }
    if (!ended) {
        r.state = t->state[0] ? t->state : NULL;
        r.stack = t->depth ? t->stack : NULL;
        r.stack_depth = t->depth;
    }
    if (wd->opts.hook)
        wd->opts.hook(&r, wd->opts.ud);
    else
        pact_stall_print(&r, stderr);
}

/* What the loop thread is doing, and on the first report its stack. */
static void describe_thread(struct watchdog *wd, struct track *t, bool first,
                            pthread_t thread, long tid)
{
    t->state[0] = '\0';
    t->depth = 0;
#ifdef STALL_PROC
    bool running = tid > 0 && thread_state(tid, t->state, sizeof t->state);
#ifdef STALL_GRAB
    if (first && running && wd->opts.stack) {
        take_stack(thread, tid, t);
        /* a stack taken after the step ended belongs to something else */
        if (atomic_load_explicit(&wd->s.outer, memory_order_acquire) !=
            t->outer)
            t->depth = 0;
    }
#endif
    (void)running;
#endif
    (void)wd;
    (void)first;
    (void)thread;
    (void)tid;
}

/* One look at the record; called and returning with the lock held, which
 * it lets go of to report. */
static void sample(struct watchdog *wd, uint64_t now, bool final)
{
    struct track *t = &wd->t;
    uint64_t o = atomic_load_explicit(&wd->s.outer, memory_order_acquire);
    if (o != t->outer) {
        bool ended = t->reported;
        /* exact if the loop thread stamped it, else by now */
        uint64_t end = wd->end_outer == t->outer ? wd->end_ns : now;
        uint64_t first = t->first;
        t->reported = false;
        t->outer = o;
        t->first = now;
        t->next = wd->opts.threshold_ms * MS;
        if (ended) {
            t->nth++;
            pthread_mutex_unlock(&wd->lock);
            emit(wd, t, true, end > first ? end - first : 0);
            pthread_mutex_lock(&wd->lock);
            return; /* the new step is looked at next time */
        }
    }
    if (final || !(o & 1) || now - t->first < t->next)
        return;
    /* ask for the end stamp before looking, so that the loop thread's check
     * at the step's end more likely sees it */
    atomic_store_explicit(&wd->s.stalled, o, memory_order_relaxed);
    /* a step's reports, its end's too, describe it as first reported: later
     * in the same step the loop thread may already be past the part that
     * stalled (a task's step done, its microtask still settling) */
    bool first = !t->reported;
    struct snap later;
    if (!snapshot(wd, o, first ? &t->snap : &later))
        return; /* it moved meanwhile: look again next time */
    if (first) {
        t->id = atomic_fetch_add(&next_id, 1);
        t->nth = 0;
    }
    t->nth++;
    t->reported = true;
    while (t->next <= now - t->first)
        t->next *= 2;
    bool known = wd->have_thread;
    pthread_t thread = wd->loop_thread;
    long tid = known ? wd->loop_tid : 0;
    pthread_mutex_unlock(&wd->lock); /* a pinned label is copied: let go */
    describe_thread(wd, t, first, thread, tid);
    emit(wd, t, false, now - t->first);
    pthread_mutex_lock(&wd->lock);
}

static void *watch(void *arg)
{
    struct watchdog *wd = arg;
    pthread_mutex_lock(&wd->lock);
    uint64_t now = pact__now_ns();
    wd->t.outer = atomic_load_explicit(&wd->s.outer, memory_order_acquire);
    wd->t.first = now;
    wd->t.next = wd->opts.threshold_ms * MS;
    uint64_t due = now + wd->period;
    while (!wd->quit) {
        if (!wd->kick) {
            struct timespec ts = pact__timespec(due);
            pthread_cond_timedwait(&wd->cond, &wd->lock, &ts);
            if (wd->quit)
                break;
        }
        now = pact__now_ns();
        if (!wd->kick && now < due)
            continue; /* spurious */
        wd->kick = false;
        sample(wd, now, false);
        if (now >= due)
            due = now + wd->period;
    }
    /* a reported step that ended just before: report its end too */
    sample(wd, pact__now_ns(), true);
    pthread_mutex_unlock(&wd->lock);
    return NULL;
}

/* ---- starting and stopping ----------------------------------------------- */

static void record_thread(struct watchdog *wd)
{
    pthread_mutex_lock(&wd->lock);
    wd->loop_thread = pthread_self();
#ifdef STALL_PROC
    wd->loop_tid = (long)syscall(SYS_gettid);
#endif
    wd->have_thread = true;
    pthread_mutex_unlock(&wd->lock);
}

static void stop(pact_loop *loop)
{
    struct watchdog *wd = loop->stall ? of(loop->stall) : NULL;
    if (!wd)
        return;
    loop->stall = NULL; /* marks from now on cost a branch again */
    if (wd->pid != getpid())
        return; /* a child of fork(): no thread to stop, its lock unusable */
    pthread_mutex_lock(&wd->lock);
    wd->quit = true;
    pthread_cond_signal(&wd->cond);
    pthread_mutex_unlock(&wd->lock);
    pthread_join(wd->thread, NULL);
    pthread_cond_destroy(&wd->cond);
    pthread_mutex_destroy(&wd->lock);
    free(wd);
}

/* The service's hooks; its state is the loop itself (the watchdog, which
 * may be replaced, hangs off loop->stall). */

/* pact_loop_run: the thread that runs the loop now (for its stack) */
static void svc_run(pact_loop *loop, void *state)
{
    (void)state;
    if (loop->stall)
        record_thread(of(loop->stall));
}

/* pact_loop_free: stop the watchdog */
static void svc_free(pact_loop *loop, void *state)
{
    (void)state;
    stop(loop);
}

static const struct pact__service_ops stall_ops = {
    .free = svc_free,
    .run = svc_run,
};

static void *svc_make(pact_loop *loop)
{
    return loop;
}

static int start(pact_loop *loop, const pact_stall_opts *opts)
{
    void *mem;
    if (posix_memalign(&mem, 64, sizeof(struct watchdog)) != 0)
        return PACT_ENOMEM;
    struct watchdog *wd = memset(mem, 0, sizeof *wd);
    wd->loop = loop;
    wd->pid = getpid();
    wd->opts = *opts;
    wd->period = opts->threshold_ms * MS / 4;
    if (wd->period < MS)
        wd->period = MS;
    atomic_init(&wd->s.outer, 0);
    atomic_init(&wd->s.nest, 0);
    for (int i = 0; i < PACT__LW_N; i++)
        atomic_init(&wd->s.label[i], 0);
    atomic_init(&wd->s.stalled, UINT64_MAX);
    atomic_init(&wd->s.pinned, UINT64_MAX);
    wd->s.ended = ended;
    wd->s.wait_copy = wait_copy;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&wd->lock, NULL);
    record_thread(wd);
    /* the watchdog needs no signals: the program's go to other threads */
    int rc = pact__thread_start(&wd->thread, NULL, watch, wd, false);
    if (rc < 0) {
        pthread_cond_destroy(&wd->cond);
        pthread_mutex_destroy(&wd->lock);
        free(wd);
        return rc;
    }
    loop->stall = &wd->s;
    pact__service(loop, PACT__SVC_STALL, &stall_ops, svc_make); /* no fail */
    return 0;
}

int pact_loop_watch_stalls_opts(pact_loop *loop, const pact_stall_opts *opts)
{
    static const char fn[] = "pact_loop_watch_stalls";
    PACT_CHECK_LOOP(loop, fn);
    PACT_CHECK_ARG(opts, fn);
    if (opts->threshold_ms > PACT_TIMEOUT_MAX)
        return pact__misuse(fn, PACT_ERANGE,
                            "threshold above PACT_TIMEOUT_MAX");
    stop(loop);
    return opts->threshold_ms ? start(loop, opts) : 0;
}

int pact_loop_watch_stalls(pact_loop *loop, uint64_t threshold_ms,
                           pact_stall_hook hook, void *ud)
{
    pact_stall_opts o = {.threshold_ms = threshold_ms, .hook = hook, .ud = ud};
    return pact_loop_watch_stalls_opts(loop, &o);
}

uint64_t pact_loop_stall_threshold(pact_loop *loop)
{
    if (!loop || pact__misuse_thread(loop, "pact_loop_stall_threshold"))
        return 0;
    return loop->stall ? of(loop->stall)->opts.threshold_ms : 0;
}

/* PACT_STALL_MS and PACT_STALL_STACK, read when each loop is made (a hook
 * the core runs). @return 0: a watchdog that cannot start is reported. */
static int env_watch(pact_loop *loop)
{
    const char *ms = getenv("PACT_STALL_MS");
    if (!ms || !*ms)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(ms, &end, 10);
    if (errno || *end || ms[0] == '-' || v > PACT_TIMEOUT_MAX) {
        fprintf(stderr,
                "pact: PACT_STALL_MS=%s is not a number of milliseconds; "
                "the stall detector stays off\n",
                ms);
        return 0;
    }
    const char *stack = getenv("PACT_STALL_STACK");
    pact_stall_opts o = {.threshold_ms = v,
                         .stack = stack && *stack && strcmp(stack, "0")};
    if (v && start(loop, &o) < 0)
        fputs("pact: PACT_STALL_MS: could not start the stall watchdog\n",
              stderr);
    return 0;
}

/* The service's part of every new loop, registered before main. */
__attribute__((constructor)) static void register_env_watch(void)
{
    pact__on_loop_new(PACT__SVC_STALL, env_watch);
}

/* ---- the default report -------------------------------------------------- */

static void print_fn(const pact_stall *s, FILE *f, const char *role)
{
    if (!s->fn)
        return;
    fprintf(f, "pact: stall:   %s: ", role);
    if (s->fn_name)
        fputs(s->fn_name, f);
    else
        fprintf(f, "%p", (void *)(uintptr_t)s->fn);
    if (s->fn_source)
        fprintf(f, " at %s:%d", s->fn_source, s->fn_line);
    if (s->fn_file)
        fprintf(f, " (%s+0x%" PRIxPTR ")", s->fn_file, s->fn_offset);
    if (!s->fn_name && !s->fn_source && s->fn_file)
        fprintf(f,
                ", no symbol for it (a static function, or an executable "
                "linked without -rdynamic; configure pact with libdw to "
                "name it): try addr2line -f -e %s 0x%" PRIxPTR,
                s->fn_file, s->fn_offset);
    fputc('\n', f);
}

/* One frame of the stack: by function and file:line when the debug
 * information says (libdw), else as backtrace_symbols has it. */
static void print_frame(FILE *f, int i, void *pc, const char *sym)
{
    struct pact__codeloc w;
    /* the innermost frame is where the signal stopped the thread; the
     * others are return addresses */
    if (pact__symbolize(pc, i > 0, &w) && w.src[0]) {
        fprintf(f, "pact: stall:     #%-2d %s at %s:%d (%s+0x%" PRIxPTR ")\n",
                i, w.fn[0] ? w.fn : "?", w.src, w.line, w.obj[0] ? w.obj : "?",
                w.off);
    } else if (sym) {
        fprintf(f, "pact: stall:     #%-2d %s\n", i, sym);
    } else {
        fprintf(f, "pact: stall:     #%-2d %p\n", i, pc);
    }
}

void pact_stall_print(const pact_stall *s, FILE *f)
{
    if (!s || !f)
        return;
    const char *what = s->what ? s->what : kind_name(s->kind);
    const char *role = s->kind == PACT_STEP_TASK || s->kind == PACT_STEP_ASYNC
                           ? "body"
                       : s->kind == PACT_STEP_REACTION ? "handler"
                                                       : "callback";
    if (s->ended) {
        fprintf(f, "pact: stall #%" PRIu64 ": the %s ", s->id, what);
        if (s->task)
            fprintf(f, "of task '%s' ", s->task);
        else if (s->fn_name)
            fprintf(f, "%s ", s->fn_name);
        fprintf(f, "returned after %" PRIu64 " ms\n", s->ms);
        return;
    }
    if (s->nth > 1) { /* said in full the first time */
        fprintf(f,
                "pact: stall #%" PRIu64 ": still in the %s after %" PRIu64
                " ms\n",
                s->id, what, s->ms);
        return;
    }
    fprintf(f,
            "pact: stall #%" PRIu64 ": the loop thread has been in %s %s for "
            "%" PRIu64 " ms (threshold %" PRIu64 " ms)\n",
            s->id, strchr("aeiou", what[0]) ? "an" : "a", what, s->ms,
            s->threshold_ms);
    if (s->kind == PACT_STEP_TASK) {
        fprintf(f, "pact: stall:   task '%s', spawned at %s:%d",
                s->task ? s->task : "?", s->file ? s->file : "?", s->line);
        if (s->at_file)
            fprintf(f, ", resumed from the await at %s:%d\n", s->at_file,
                    s->at_line);
        else
            fputs(", in its first step\n", f);
    } else if (s->kind == PACT_STEP_ASYNC) {
        if (s->at_line)
            fprintf(f, "pact: stall:   resumed from the await at line %d\n",
                    s->at_line);
        else
            fputs("pact: stall:   in its first step\n", f);
    }
    print_fn(s, f, role);
    if (s->state)
        fprintf(f, "pact: stall:   the loop thread is %s\n", s->state);
    if (s->stack && s->stack_depth > 0) {
        fputs("pact: stall:   its stack, innermost first:\n", f);
#ifdef HAVE_BACKTRACE
        char **sym = backtrace_symbols(s->stack, s->stack_depth);
#else
        char **sym = NULL;
#endif
        pact__symbolize_hold(true); /* one reading for the whole stack */
        for (int i = 0; i < s->stack_depth; i++)
            print_frame(f, i, s->stack[i], sym ? sym[i] : NULL);
        pact__symbolize_hold(false);
        free(sym);
    }
}

/* Task stacks: mmap'd, a PROT_NONE guard page below each, kept in a per-loop
 * pool for reuse; and the SIGSEGV handler that turns a fault in a guard page
 * into a report naming the task, instead of silent corruption. */
#include "task_internal.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(PACT__ASAN_BUILD) && defined(HAVE_SANITIZER_ASAN_INTERFACE_H)
#include <sanitizer/asan_interface.h>
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#ifdef PACT__TSAN_BUILD
#include <sanitizer/tsan_interface.h>
#endif

#define MIN_STACK (16 * 1024)

_Thread_local const struct pact__where *pact__where_now PACT_TLS_MODEL;

/* Cached on first use; loops on several threads (workers) may race to fill
 * it with the same value, hence the atomic. */
static size_t page_size(void)
{
    static atomic_size_t cached;
    size_t page = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!page) {
        long p = sysconf(_SC_PAGESIZE);
        page = p > 0 ? (size_t)p : 4096;
        atomic_store_explicit(&cached, page, memory_order_relaxed);
    }
    return page;
}

size_t pact__stack_round(size_t size)
{
    size_t page = page_size();
    if (size < MIN_STACK)
        size = MIN_STACK;
    if (size > SIZE_MAX / 2)
        size = SIZE_MAX / 2;
    return (size + page - 1) / page * page;
}

static struct pact__stack *stack_map(size_t size, bool guard)
{
    size_t page = page_size();
    size_t len = size + (guard ? page : 0);
    /* the header lives apart: below an unguarded stack is the top of the
     * next one, and an overflow must reach a canary, not our bookkeeping */
    struct pact__stack *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    char *map =
        mmap(NULL, len, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED) {
        free(s);
        return NULL;
    }
    if (guard && mprotect(map, page, PROT_NONE) != 0) {
        int e = errno; /* ENOMEM: vm.max_map_count is reached */
        munmap(map, len);
        free(s);
        errno = e;
        return NULL;
    }
    s->map = map;
    s->len = len;
    s->lo = map + (guard ? page : 0);
    s->size = size;
    s->guard = guard;
    pact__list_init(&s->link);
    s->freed = 0;
    s->vg = VALGRIND_STACK_REGISTER(s->lo, s->lo + size);
#ifdef PACT__TSAN_BUILD
    s->fiber = __tsan_create_fiber(0);
#endif
    return s;
}

static void stack_unmap(struct pact__stack *s)
{
    VALGRIND_STACK_DEREGISTER(s->vg);
#ifdef PACT__TSAN_BUILD
    __tsan_destroy_fiber(s->fiber);
#endif
    UNPOISON(s->lo, s->size);
    munmap(s->map, s->len);
    free(s);
}

/* ---- the pool ------------------------------------------------------------
 *
 * The pool_max most recently freed stacks are kept indefinitely. Beyond
 * them a freed stack is kept too, as surplus, up to SURPLUS_MAX of them, and
 * unmapped once it has been idle for PACT__STACK_LINGER_MS: a daemon whose
 * connections (one task each) come and go, or rise to a thousand and fall
 * back, reuses stacks instead of paying mmap + mprotect at each start and a
 * munmap at each end (which, once the process has a second thread, is a TLB
 * shootdown: ~27 us here). Go keeps freed stacks the same way until its next
 * GC. The pool is LIFO (the stack reused is the one whose pages are warm),
 * so it is also sorted by age: the trim unmaps from its tail.
 *
 * The trim runs on a timer of its own (a bare libevent timer, counted as
 * one of pact's own events so it never keeps pact_loop_run going, nor is a
 * handle that pact_loop_free or pact_loop_close_all would see), armed when a
 * surplus appears and re-armed only while one is left. With pool_max 0
 * nothing is kept at all, surplus included. */

/* How long a surplus stack stays mapped after its task ended: long enough
 * for a burst of connections ending and the next burst starting, short
 * enough that a daemon's memory falls back within a second or two of a
 * peak. */
#define PACT__STACK_LINGER_MS 1000

/* The surplus's hard cap, in stacks and bytes of mappings. 4096 stacks of
 * the default 256 KiB are about 1 GiB of address space (MAP_NORESERVE: no
 * commit charge) but only the pages their tasks touched are resident, a few
 * each for a connection's handler; and 8192 mappings (a guard page makes two
 * per stack), far below vm.max_map_count (65530 by default), which the
 * program's own stacks and mappings share. Under TSan each pooled stack also
 * keeps a fiber (TSan's thread state, several mappings of its own), hence
 * the lower cap there. */
#ifdef PACT__TSAN_BUILD
#define SURPLUS_MAX 512
#else
#define SURPLUS_MAX 4096
#endif
#define SURPLUS_MAX_BYTES                                                      \
    (sizeof(void *) >= 8 ? (size_t)4 << 30 : (size_t)256 << 20)

static struct pact__stack *pool_newest(struct pact__tasks *ts)
{
    struct pact__list *n = pact__list_first(&ts->pool);
    return n ? pact__list_entry(n, struct pact__stack, link) : NULL;
}

static struct pact__stack *pool_oldest(struct pact__tasks *ts)
{
    if (pact__list_empty(&ts->pool))
        return NULL;
    return pact__list_entry(ts->pool.prev, struct pact__stack, link);
}

static void pool_take(struct pact__tasks *ts, struct pact__stack *s)
{
    pact__list_remove(&s->link);
    ts->pooled--;
}

static void on_trim(evutil_socket_t fd, short what, void *ud);

/* Ring the trim timer in @p ms (the loop thread; idle: nothing to do). */
static void trim_arm(struct pact__tasks *ts, uint64_t ms)
{
    if (ts->trim_armed)
        return;
    if (!ts->trim_ev &&
        !(ts->trim_ev = evtimer_new(ts->loop->base, on_trim, ts)))
        return; /* no memory: the surplus waits for the next put */
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
                         .tv_usec = (suseconds_t)(ms % 1000 * 1000)};
    if (evtimer_add(ts->trim_ev, &tv) == 0) {
        ts->trim_armed = true;
        pact__own_event_added(ts->loop);
    }
}

static void trim_disarm(struct pact__tasks *ts)
{
    if (!ts->trim_armed)
        return;
    evtimer_del(ts->trim_ev);
    ts->trim_armed = false;
    pact__own_event_removed(ts->loop);
}

/* Unmap the surplus that has been idle long enough; wait for the rest. */
static void on_trim(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    struct pact__tasks *ts = ud;
    ts->trim_armed = false; /* one-shot: fired, so no longer added */
    pact__own_event_removed(ts->loop);
    /* the real time: the loop's cached one may be a poll behind */
    uint64_t now = pact__now_ns() / 1000000;
    struct pact__stack *s;
    while (ts->pooled > ts->pool_max && (s = pool_oldest(ts))) {
        if (now - s->freed < PACT__STACK_LINGER_MS) {
            trim_arm(ts, s->freed + PACT__STACK_LINGER_MS - now);
            return;
        }
        pool_take(ts, s);
        stack_unmap(s);
    }
}

struct pact__stack *pact__stack_get(struct pact__tasks *ts, size_t size)
{
    struct pact__stack *s = pool_newest(ts);
    if (s && size == ts->stack_size && s->guard == ts->guard) {
        pool_take(ts, s);
        return s;
    }
    /* a pool of the other guard setting is of no use any more */
    if (s && s->guard != ts->guard)
        pact__stack_trim(ts, 0);
    struct pact__stack *m = stack_map(size, ts->guard);
    /* out of mappings (vm.max_map_count) or address space: the surplus is
     * only a cache, let it go and try once more */
    if (!m && ts->pooled > ts->pool_max) {
        pact__stack_trim(ts, ts->pool_max);
        m = stack_map(size, ts->guard);
    }
    return m;
}

void pact__stack_put(struct pact__tasks *ts, struct pact__stack *s)
{
    /* frames that never returned (the task's entry) leave poisoned bytes
     * that the next task's frames would trip on */
    UNPOISON(s->lo, s->size);
    if (s->size != ts->stack_size || s->guard != ts->guard || !ts->pool_max) {
        stack_unmap(s);
        return;
    }
    if (ts->pooled >= ts->pool_max) {
        size_t surplus = ts->pooled - ts->pool_max;
        if (surplus >= SURPLUS_MAX || surplus >= SURPLUS_MAX_BYTES / s->len) {
            stack_unmap(s);
            return;
        }
        trim_arm(ts, PACT__STACK_LINGER_MS);
    }
    s->freed = ts->loop->now;
    pact__list_push_front(&ts->pool, &s->link);
    ts->pooled++;
}

void pact__stack_trim(struct pact__tasks *ts, size_t keep)
{
    struct pact__stack *s;
    while (ts->pooled > keep && (s = pool_oldest(ts))) {
        pool_take(ts, s);
        stack_unmap(s);
    }
    if (ts->pooled <= ts->pool_max)
        trim_disarm(ts);
}

void pact__stack_pool_free(struct pact__tasks *ts)
{
    pact__stack_trim(ts, 0);
    trim_disarm(ts);
    if (ts->trim_ev)
        event_free(ts->trim_ev);
    ts->trim_ev = NULL;
}

/* ---- overflow reports ---------------------------------------------------- */

static struct sigaction prev_segv;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static pthread_key_t altstack_key;
static _Thread_local bool watching;

#define ALTSTACK_SIZE (64 * 1024)

/* Async-signal-safe formatting: the handler may not call stdio. */
static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
    while (s && *s && at + 1 < cap)
        buf[at++] = *s++;
    return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, unsigned long n)
{
    char digits[24];
    int k = 0;
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n && k < (int)sizeof digits);
    while (k && at + 1 < cap)
        buf[at++] = digits[--k];
    return at;
}

static void report(const struct pact__where *w)
{
    char msg[512];
    size_t n = put_str(msg, 0, sizeof msg, "pact: task '");
    if (w->name) {
        n = put_str(msg, n, sizeof msg, w->name);
    } else {
        n = put_str(msg, n, sizeof msg, w->file);
        n = put_str(msg, n, sizeof msg, ":");
        n = put_num(msg, n, sizeof msg, (unsigned long)w->line);
    }
    n = put_str(msg, n, sizeof msg, "' (spawned at ");
    n = put_str(msg, n, sizeof msg, w->file);
    n = put_str(msg, n, sizeof msg, ":");
    n = put_num(msg, n, sizeof msg, (unsigned long)w->line);
    n = put_str(msg, n, sizeof msg, ") overflowed its stack of ");
    n = put_num(msg, n, sizeof msg, (unsigned long)w->stack->size);
    n = put_str(msg, n, sizeof msg,
                " bytes; give it a larger one (pact_task_opts.stack_size or "
                "pact_loop_set_stack_size)\n");
    ssize_t r = write(STDERR_FILENO, msg, n);
    (void)r;
}

static void on_segv(int sig, siginfo_t *info, void *uctx)
{
    const struct pact__where *w = pact__where_now;
    const char *addr = info ? (const char *)info->si_addr : NULL;
    if (w && w->stack && w->stack->guard && addr >= w->stack->map &&
        addr < w->stack->lo) {
        report(w);
        /* the stack is gone: die of the fault, as without us */
        signal(SIGSEGV, SIG_DFL);
        return;
    }
    /* not ours: whoever was there before us decides */
    if (prev_segv.sa_flags & SA_SIGINFO) {
        prev_segv.sa_sigaction(sig, info, uctx);
    } else if (prev_segv.sa_handler == SIG_DFL ||
               prev_segv.sa_handler == SIG_IGN) {
        signal(SIGSEGV, SIG_DFL); /* the fault repeats and ends the process */
    } else {
        prev_segv.sa_handler(sig);
    }
}

static void altstack_free(void *p)
{
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
    munmap(p, ALTSTACK_SIZE);
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &prev_segv);
    pthread_key_create(&altstack_key, altstack_free);
}

void pact__stack_watch(void)
{
    if (watching)
        return;
    watching = true;
    pthread_once(&handler_once, install_handler);
    /* a fault in a guard page has no stack left to run the handler on */
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
        return; /* the thread has one (ASan's, or the program's) */
    void *p = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return; /* no report then; the fault still ends the process */
    stack_t ss = {.ss_sp = p, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(p, ALTSTACK_SIZE);
        return;
    }
    pthread_setspecific(altstack_key, p);
}

/* Stackful tasks: spawn, the switch in and out, and await.
 *
 * A task runs on its own stack (stack.c) and is resumed from whatever stack
 * runs the microtask that wakes it -- a loop's own, in practice -- and goes
 * back there when it awaits or ends. Await attaches one callback node to the
 * promise (no derived promise); the node's wake-up switches into the task.
 *
 * A task is freed once it has finished and no wake-up still names it: an
 * await_any leaves its losers' nodes on their promises, and a cancelled
 * await its node, so each node holds a reference (refs), and a stale one --
 * its await number (gen) is not the task's current one -- only drops it. */
#include "task_internal.h"

#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "promise_internal.h"

#if defined(PACT__ASAN_BUILD) && defined(HAVE_SANITIZER_ASAN_INTERFACE_H)
#include <sanitizer/common_interface_defs.h>
#define PACT_ASAN 1
#endif
#if defined(PACT__TSAN_BUILD) && defined(HAVE_SANITIZER_TSAN_INTERFACE_H)
#include <sanitizer/tsan_interface.h>
#define PACT_TSAN 1
#endif

#if (defined(PACT__ASAN_BUILD) && !defined(PACT_ASAN)) ||                      \
    (defined(PACT__TSAN_BUILD) && !defined(PACT_TSAN))
#error                                                                         \
    "a sanitizer build without its <sanitizer/*_interface.h>: task switches could not be announced to it"
#endif

#define DEFAULT_STACK (256 * 1024)
#define DEFAULT_POOL 64

enum task_state {
    T_NEW,       /* queued to start */
    T_RUNNING,   /* on the CPU, or suspended inside a nested resume */
    T_SUSPENDED, /* in an await */
    T_DONE,      /* its body returned: to be settled and unmapped */
};

/* The fields every await and wake-up touch come first, in one cache line
 * (the asm context is a stack pointer), and the wake-up node next to it: at
 * a thousand tasks each line a message touches is a cache miss. */
struct pact_task {
    _Alignas(64) pact__ctx ctx; /* saved while not running */
    pact__ctx *back;            /* the resumer's, while running */
    struct pact__tasks *ts;
    /* its token (a reference), aborted or not: the spawn's, or the scope's
     * it is in (pact__task_swap_token); the loop's ambient one while it
     * runs, so that what it starts is cancelled with it */
    pact_abort *abort;
    pact_promise *settled;  /* handed over by the wake-up (a reference) */
    const char *await_file; /* the await it is suspended in */
    uint32_t refs;          /* 1 until finished, +1 per wake-up naming it */
    uint32_t gen;           /* the current await's number */
    uint32_t index;         /* await_any's winner */
    uint8_t state;          /* task_state */
    bool cancelled; /* closed, or its token aborted: awaits fail at once */
    bool guard;     /* its stack has a guard page (the stack's, at hand) */
    bool closed;    /* by pact_loop_close_all */
    /* the wake-up node of its awaits while idle (one await in flight, the
     * usual case): no slab node per await; a stale one still attached
     * (await_any's loser, a cancelled await) makes the next take a slab's */
    pact_promise node;
    int await_line;
    struct pact__stack *stack;
    pact_task_fn fn;
    void *arg;
    void (*show_fn)(void); /* what reports name instead (pact__task_show) */
    void *show_ud;
    pact_promise *promise;   /* its result: a reference until settled */
    pact__task_done_fn done; /* or, without a promise, who takes it */
    void *done_ud;
    pact_value result;
    pact_error *err;
    struct pact__where where; /* name and spawn site for overflow reports */
    char *label;              /* "file:line" once asked for, without a name */
    uint64_t abort_id;        /* its listener on `abort`, while not aborted */
    pact_error *aborted;      /* the token's cancellation, once aborted */
    /* a park (pact__task_park): the await it is in, and its outcome */
    uint32_t park_gen;
    bool parking;   /* between park_begin and park_wait */
    bool park_done; /* its outcome is in */
    pact_error *park_err;
    pact_value park_v;
    pact_error *fail; /* or why it woke without one */
    jmp_buf *unwind;  /* where a throwing await lands */
    pact_error *thrown;
    struct pact__list link; /* in ts->live until finished */
#ifdef PACT_ASAN
    void *fake;          /* ASan's fake stack while switched out */
    const void *back_lo; /* the resumer's stack, as ASan reported it */
    size_t back_size;
#endif
#ifdef PACT_TSAN
    void *back_fiber;
#endif
};

#if PACT_CONTEXT_ASM
_Static_assert(offsetof(struct pact_task, node) == 64,
               "the fields of every await fill the task's first cache line");
#endif

/* A zeroed task, on its own cache lines (see struct pact_task). */
static pact_task *task_alloc(void)
{
    pact_task *t = aligned_alloc(_Alignof(pact_task), sizeof *t);
    if (t)
        memset(t, 0, sizeof *t);
    return t;
}

/* initial-exec where configure found it: no __tls_get_addr per switch */
static _Thread_local pact_task *current PACT_TLS_MODEL;

/* ---- per-loop state ------------------------------------------------------ */

static const char *tasks_busy(pact_loop *loop, void *state)
{
    (void)loop;
    struct pact__tasks *ts = state;
    if (!ts->nlive)
        return NULL;
    pact_task *t = pact__list_entry(ts->live.next, pact_task, link);
    snprintf(ts->why, sizeof ts->why,
             "%zu task(s) not finished (one spawned at %s:%d); "
             "pact_loop_close_all cancels their awaits",
             ts->nlive, t->where.file, t->where.line);
    return ts->why;
}

static int tasks_close_all(pact_loop *loop, void *state);

static void tasks_free(pact_loop *loop, void *state)
{
    (void)loop;
    struct pact__tasks *ts = state;
    assert(pact__list_empty(&ts->live) && !ts->nlive);
    struct pact__list *n; /* frames left suspended forever: unlink them */
    while ((n = pact__list_first(&ts->asyncs))) {
        pact__list_remove(n);
        pact__list_init(n);
    }
    pact__stack_pool_free(ts);
    free(ts);
}

/* pact_loop_print_pending: each task not finished, with its spawn site and
 * where it waits. */
static size_t tasks_print(pact_loop *loop, void *state, FILE *out)
{
    (void)loop;
    struct pact__tasks *ts = state;
    size_t n = 0;
    struct pact__list *l, *tmp;
    pact__list_each(l, tmp, &ts->live) {
        const pact_task *t = pact__list_entry(l, pact_task, link);
        static const char *const state_name[] = {
            [T_NEW] = "queued to start",
            [T_RUNNING] = "running",
            [T_SUSPENDED] = "awaiting",
        };
        fprintf(out, "  task %s: spawned at %s:%d, %s", pact_task_name(t),
                t->where.file, t->where.line,
                t->state <= T_SUSPENDED ? state_name[t->state] : "ending");
        if (t->state == T_SUSPENDED && t->await_file)
            fprintf(out, " at %s:%d", t->await_file, t->await_line);
        fputc('\n', out);
        n++;
    }
    return n;
}

static const struct pact__service_ops tasks_ops = {
    .close_all = tasks_close_all,
    .busy = tasks_busy,
    .free = tasks_free,
    .print = tasks_print,
};

static void *tasks_make(pact_loop *loop)
{
    struct pact__tasks *ts = calloc(1, sizeof *ts);
    if (ts) {
        ts->loop = loop;
        pact__list_init(&ts->live);
        pact__list_init(&ts->asyncs);
        pact__list_init(&ts->pool);
        ts->stack_size = pact__stack_round(DEFAULT_STACK);
        ts->pool_max = DEFAULT_POOL;
        ts->guard = true;
    }
    return ts;
}

static struct pact__tasks *tasks_of(pact_loop *loop)
{
    return pact__service(loop, PACT__SVC_TASKS, &tasks_ops, tasks_make);
}

struct pact__tasks *pact__tasks_get(pact_loop *loop)
{
    return tasks_of(loop);
}

void pact__tasks_each(pact_loop *loop,
                      void (*fn)(const struct pact__task_view *v, void *ud),
                      void *ud)
{
    struct pact__tasks *ts = pact__service_find(loop, PACT__SVC_TASKS);
    if (!ts)
        return;
    struct pact__list *l, *tmp;
    pact__list_each(l, tmp, &ts->live) {
        const pact_task *t = pact__list_entry(l, pact_task, link);
        static const char *const state_name[] = {
            [T_NEW] = "queued to start",
            [T_RUNNING] = "running",
            [T_SUSPENDED] = "awaiting",
        };
        struct pact__task_view v = {
            .id = t,
            .task = t,
            .name = t->where.name,
            .file = t->where.file,
            .line = t->where.line,
            .state = t->state <= T_SUSPENDED ? state_name[t->state] : "ending",
            .await_file = t->state == T_SUSPENDED ? t->await_file : NULL,
            .await_line = t->await_line,
            .token = t->abort,
        };
        fn(&v, ud);
    }
    pact__async_each(ts, fn, ud);
}

/* ---- switching ----------------------------------------------------------- */

static void task_unref(pact_task *t)
{
    assert(t->refs > 0);
    if (--t->refs)
        return;
    free(t->label);
    free(t);
}

/* Sanitizers must hear of every switch, or they take the task's stack for a
 * wild one (ASan) or its accesses for another thread's (TSan). */
static inline void san_to_task(pact_task *t, void **fake)
{
#ifdef PACT_ASAN
    __sanitizer_start_switch_fiber(fake, t->stack->lo, t->stack->size);
#else
    (void)fake;
#endif
#ifdef PACT_TSAN
    t->back_fiber = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(t->stack->fiber, 0);
#else
    (void)t;
#endif
}

static inline void san_in_task(pact_task *t)
{
#ifdef PACT_ASAN
    __sanitizer_finish_switch_fiber(t->fake, &t->back_lo, &t->back_size);
#else
    (void)t;
#endif
}

static inline void san_from_task(pact_task *t, bool for_good)
{
#ifdef PACT_ASAN
    /* NULL: the task's fake stack can go, it never comes back */
    __sanitizer_start_switch_fiber(for_good ? NULL : &t->fake, t->back_lo,
                                   t->back_size);
#else
    (void)for_good;
#endif
#ifdef PACT_TSAN
    __tsan_switch_to_fiber(t->back_fiber, 0);
#else
    (void)t;
#endif
}

static inline void san_back(void *fake)
{
#ifdef PACT_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    (void)fake;
#endif
}

static void overflowed(pact_task *t)
{
    fprintf(stderr,
            "pact: task '%s' (spawned at %s:%d) overflowed its stack of %zu "
            "bytes (its canary is overwritten); give it a larger one\n",
            pact_task_name(t), t->where.file, t->where.line, t->stack->size);
    abort();
}

static void finish(pact_task *t);
static void abort_off(pact_task *t);

/* Tell a stall watchdog which task step runs: its name, spawn site and the
 * await it resumes from. */
static void label(pact_task *t, struct pact__label_save *save)
{
    struct pact__label l = {
        .kind = PACT_STEP_TASK,
        .fn = t->show_fn ? t->show_fn : (void (*)(void))t->fn,
        .ud = t->show_fn ? t->show_ud : t->arg,
        .name = t->where.name,
        .file = t->where.file,
        .line = t->where.line,
        .at_file = t->await_file,
        .at_line = t->await_file ? t->await_line : 0,
    };
    pact__label_push(t->ts->loop, &l, save);
}

void pact__task_show(void (*fn)(void), void *ud)
{
    pact_task *t = current;
    if (!t)
        return;
    t->show_fn = fn;
    t->show_ud = ud;
    pact__label_refine(t->ts->loop, PACT_STEP_TASK, fn, ud);
}

/* Continue @p t until it awaits or ends (on the resumer's stack). */
static PACT__ALWAYS_INLINE void run(pact_task *t)
{
    pact__ctx back;
    void *fake = NULL;
    pact_task *outer = current;
    const struct pact__where *outer_where = pact__where_now;
    pact_loop *loop = t->ts->loop;
    struct pact__label_save save;
    save.on = false;
    if (PACT__UNLIKELY(loop->stall != NULL))
        label(t, &save);
    t->back = &back;
    t->state = T_RUNNING;
    current = t;
    struct pact__ambient outer_ambient = pact__ambient_enter(loop, t->abort, t);
    pact__where_now = &t->where;
    san_to_task(t, &fake);
    pact__ctx_swap(&back, &t->ctx);
    san_back(fake);
    t = current; /* who gave the thread back: t, or a task it passed it to */
    pact__label_pop(loop, &save); /* before finish() can end the task */
    pact__ambient_leave(loop, outer_ambient);
    current = outer;
    pact__where_now = outer_where;
    /* The canary's page is apart from the frames: reading it at every
     * switch was a TLB miss a message with a thousand tasks. A guard page
     * catches an overflow as it happens, so behind one it is read when
     * the task ends. */
    if ((!t->guard || t->state == T_DONE) && !pact__stack_ok(t->stack))
        overflowed(t);
    if (t->state == T_DONE)
        finish(t);
}

static void wake(pact_promise *src, void *ud, uintptr_t aux);
static void resume_job(void *ud);

#if !defined(PACT_ASAN) && !defined(PACT_TSAN)
/* The task the drain would run next, made ready to run, if the next job is
 * the wake-up of another suspended task's await; else NULL. Only with
 * nothing watching the steps (the stall detector labels each), and not
 * under a sanitizer, which is told of every switch as to and from the
 * resumer's stack. */
static pact_task *next_woken(pact_task *t)
{
    pact_loop *loop = t->ts->loop;
    if (PACT__UNLIKELY(loop->stall != NULL || !loop->draining))
        return NULL;
    const struct job *j = pact__micro_peek(loop);
    if (j && j->fn == resume_job) { /* a channel's hand-off, a cancel */
        pact_task *u = j->ud;
        if (u == t || u->state != T_SUSPENDED)
            return NULL;
        struct job popped;
        pact__jobq_pop(&loop->micro, &popped);
        task_unref(u); /* the job's; live, it holds its own */
        return u;
    }
    pact_task *u = pact__micro_peek_reaction(loop, wake);
    if (!u || u == t || u->state != T_SUSPENDED)
        return NULL;
    pact_promise *src;
    uintptr_t aux;
    pact__micro_take_reaction(loop, &src, &aux);
    /* wake()'s, up to its run() */
    if ((uint32_t)(aux >> 32) != u->gen) {
        pact__unref(src); /* stale: the drain goes on with the next job */
        task_unref(u);
        return NULL;
    }
    u->gen++;
    u->index = (uint32_t)aux;
    u->settled = src;
    task_unref(u); /* the node's; live, it holds its own */
    return u;
}
#endif

/* Whether a task's await may switch inline in its own function
 * (pact/task_switch.h): the halves pact_await_enter_ and _leave_. */
#if PACT_CONTEXT_ASM && defined(__x86_64__) && !defined(PACT_ASAN) &&          \
    !defined(PACT_TSAN)
#define PACT__AWAIT_INLINE 1
#else
#define PACT__AWAIT_INLINE 0
#endif

#if !defined(PACT_ASAN) && !defined(PACT_TSAN)
/* The context suspend() switches to: the next woken task's, made current
 * (a hand-off), or the resumer's. Not under a sanitizer, which is told of
 * every switch as to and from the resumer's stack (suspend() does it). */
static PACT__ALWAYS_INLINE pact__ctx *suspend_to(pact_task *t)
{
    t->state = T_SUSPENDED;
    pact_task *u = next_woken(t);
    if (u) {
        u->back = t->back;
        u->state = T_RUNNING;
        current = u;
        (void)pact__ambient_enter(u->ts->loop, u->abort, u);
        pact__where_now = &u->where;
        return &u->ctx;
    }
    return t->back;
}
#endif

#if PACT__AWAIT_INLINE
/* suspend() up to its switch, which the caller makes inline (the first
 * half of an await: see pact_await_enter_): the contexts in @p sw. */
static PACT__ALWAYS_INLINE void switch_out(pact_task *t, const char *file,
                                           int line, void *sw[2])
{
    t->await_file = file;
    t->await_line = line;
    sw[1] = &suspend_to(t)->sp;
    sw[0] = &t->ctx.sp;
}
#endif

/* Give the thread back to the resumer until a wake-up runs us again --
 * or, when the next microtask would only resume another task, switch to
 * that one at once: it returns to our resumer in our place (run() finds
 * it in `current`), one switch instead of two and the same order. */
static void suspend(pact_task *t)
{
#if !defined(PACT_ASAN) && !defined(PACT_TSAN)
    pact__ctx_swap(&t->ctx, suspend_to(t));
#else
    t->state = T_SUSPENDED;
    san_from_task(t, false);
    pact__ctx_swap(&t->ctx, t->back);
    san_in_task(t);
#endif
}

static void entry(void *arg)
{
    pact_task *t = arg;
    san_in_task(t);
    jmp_buf jb;
    pact_error *err;
    t->unwind = &jb;
    if (setjmp(jb) == 0) {
        err = t->fn(t->arg, &t->result);
    } else {
        err = t->thrown; /* a throwing await unwound the body */
        t->thrown = NULL;
    }
    t->unwind = NULL;
    t->err = err;
    t->state = T_DONE;
    san_from_task(t, true);
    pact__ctx_swap(&t->ctx, t->back);
    abort(); /* a finished task is never resumed */
}

/* Settle its promise and let go of its stack (back on the resumer's). */
static void finish(pact_task *t)
{
    struct pact__tasks *ts = t->ts;
    abort_off(t); /* a token that outlives the task never names it */
    pact__task_done_fn done = t->done;
    void *done_ud = t->done_ud;
    pact_error *err = t->err;
    pact_value result = t->result;
    if (done) {
        pact__micro_unreserve(ts->loop);
    } else if (t->err) {
        pact_value_release(&t->result);
        /* ended by pact_loop_close_all: not an unhandled failure */
        if (t->cancelled && pact_error_code(t->err) == PACT_ECANCELED)
            t->promise->flags |= P_HANDLED;
        pact__reject(t->promise, t->err);
    } else {
        pact__resolve(t->promise, t->result);
    }
    t->err = NULL;
    t->result = pact_nothing();
    if (t->promise)
        pact__unref(t->promise);
    t->promise = NULL;
    pact_error_unref(t->aborted);
    t->aborted = NULL;
    pact__stack_put(ts, t->stack);
    t->stack = NULL;
    t->where.stack = NULL;
    assert(pact__list_linked(&t->link) && ts->nlive > 0);
    pact__list_remove(&t->link);
    ts->nlive--;
    task_unref(t);
    if (done)
        done(done_ud, err, &result); /* it takes both */
}

/* ---- spawning ------------------------------------------------------------ */

static void start_job(void *ud)
{
    pact_task *t = ud;
    if (t->state == T_NEW && t->aborted) {
        /* aborted before it started: the body never runs */
        t->err = pact_error_ref(t->aborted);
        t->state = T_DONE;
        finish(t);
    } else if (t->state == T_NEW) {
        run(t);
    }
    task_unref(t);
}

/* Its token aborted: as tasks_close_all, for this task alone. Its suspended
 * await resumes with the cancellation as a microtask (never inside
 * pact_abort_abort), and every later await fails with it. */
static void on_task_abort(pact_error *reason, void *ud)
{
    pact_task *t = ud;
    t->abort_id = 0; /* an aborted token drops its listeners */
    t->aborted = pact__aborted_error(reason);
    t->cancelled = true;
    if (t->state != T_SUSPENDED || t->fail || t->park_done || t->settled)
        return; /* not started (start_job), running, or already resuming */
    t->gen++;   /* its node, when it fires, is stale */
    t->fail = pact_error_ref(t->aborted);
    t->refs++;
    pact__micro_must(t->ts->loop, resume_job, t);
}

static void abort_off(pact_task *t)
{
    if (!t->abort)
        return;
    if (t->abort_id)
        pact_abort_off(t->abort, t->abort_id);
    pact_abort_unref(t->abort);
    t->abort = NULL;
}

pact_task *pact__task_current(void)
{
    return current;
}

int pact__task_swap_token(pact_task *t, pact_abort *a, pact_abort **old)
{
    uint64_t id = 0;
    if (a && !pact_abort_aborted(a)) {
        int rc = pact_abort_on(a, on_task_abort, t, &id);
        if (rc < 0)
            return rc;
    }
    if (t->abort && t->abort_id)
        pact_abort_off(t->abort, t->abort_id);
    *old = t->abort; /* the task's reference moves to the caller */
    t->abort = pact_abort_ref(a);
    t->abort_id = id;
    pact_error_unref(t->aborted);
    t->aborted = a && pact_abort_aborted(a)
                     ? pact__aborted_error(pact_abort_reason(a))
                     : NULL;
    t->cancelled = t->closed || t->aborted;
    if (t == current)
        (void)pact__ambient_enter(t->ts->loop, a, t);
    return 0;
}

/* Set up @p t (zeroed) to run @p fn(@p arg) following @p a (may be NULL).
 * @return 0, or a code with *@p why (a reference) saying why not; then
 * nothing is held and @p t is the caller's to free. */
static int setup(struct pact__tasks *ts, pact_task *t, pact_task_fn fn,
                 void *arg, const pact_task_opts *opts, pact_abort *a,
                 const char *file, int line, pact_error **why)
{
    pact__stack_watch();
    t->node.state = PACT__NODE_IDLE;
    t->ts = ts;
    t->fn = fn;
    t->arg = arg;
    t->show_fn = NULL;
    t->show_ud = NULL;
    t->where.name = opts ? opts->name : NULL;
    t->where.file = file ? file : "?";
    t->where.line = line;
    size_t size = opts && opts->stack_size ? pact__stack_round(opts->stack_size)
                                           : ts->stack_size;
    t->stack = pact__stack_get(ts, size);
    if (!t->stack) {
        *why = PACT_ERROR(PACT_ENOMEM,
                          "no stack for a task of %zu bytes: mmap failed "
                          "(%s); with guard pages, live tasks are bounded by "
                          "vm.max_map_count / 2",
                          size, strerror(errno));
        return PACT_ENOMEM;
    }
    t->where.stack = t->stack;
    t->guard = t->stack->guard;
    pact__ctx_make(&t->ctx, t->stack->lo, t->stack->size, entry, t);
    if (a) {
        int rc = pact_abort_on(a, on_task_abort, t, &t->abort_id);
        if (rc < 0) {
            pact__stack_put(ts, t->stack);
            *why = PACT_ERROR(rc, "pact_task_spawn: the abort token "
                                  "refused a listener");
            return rc;
        }
        t->abort = pact_abort_ref(a);
    }
    return 0;
}

/* Queue its start. A task has at most one job queued at a time (start, or
 * a resume), and only while unfinished: its promise is pending then, never
 * queued, so the job takes that node's microtask slot (a task without a
 * promise reserved one of its own). */
static void queue_start(pact_loop *loop, pact_task *t)
{
    struct pact__tasks *ts = t->ts;
    t->refs = 2; /* until finished, and the start job's */
    pact__list_push_front(&ts->live, &t->link);
    ts->nlive++;
    pact__micro_must(loop, start_job, t);
    pact__kick(loop);
}

pact_promise *pact_task_spawn_at(pact_loop *loop, pact_task_fn fn, void *arg,
                                 const pact_task_opts *opts, const char *file,
                                 int line)
{
    if (!loop || !fn) {
        pact__misuse("pact_task_spawn", PACT_EINVAL,
                     loop ? "fn is NULL" : "loop is NULL");
        return NULL;
    }
    if (pact__misuse_thread(loop, "pact_task_spawn"))
        return NULL;
    struct pact__tasks *ts = tasks_of(loop);
    pact_task *t = ts ? task_alloc() : NULL;
    pact_promise *p = t ? pact__promise_new(loop) : NULL;
    if (!p) {
        free(t);
        return NULL;
    }
    /* no token of its own: the scope's it is spawned in, if any */
    pact_abort *a = opts && opts->abort ? opts->abort : pact__ambient(loop);
    if (a && pact_abort_aborted(a)) {
        /* aborted already: no stack, the body never runs */
        free(t);
        p->flags |= P_HANDLED;
        pact__reject(p, pact__aborted_error(pact_abort_reason(a)));
        return p;
    }
    pact_error *why;
    if (setup(ts, t, fn, arg, opts, a, file, line, &why) < 0) {
        free(t);
        pact__reject(p, why ? why : pact__enomem());
        return p;
    }
    p->refs++; /* the caller's */
    t->promise = p;
    queue_start(loop, t);
    return p;
}

int pact__task_spawn_done(pact_loop *loop, pact_task_fn fn, void *arg,
                          const pact_task_opts *opts, const char *file,
                          int line, pact__task_done_fn done, void *ud)
{
    pact_abort *a = opts && opts->abort ? opts->abort : pact__ambient(loop);
    if (a && pact_abort_aborted(a))
        return PACT_ECANCELED;
    struct pact__tasks *ts = tasks_of(loop);
    pact_task *t = ts ? task_alloc() : NULL;
    if (!t || pact__micro_reserve(loop) < 0) {
        free(t);
        return PACT_ENOMEM;
    }
    pact_error *why;
    int rc = setup(ts, t, fn, arg, opts, a, file, line, &why);
    if (rc < 0) {
        pact__micro_unreserve(loop);
        pact_error_unref(why);
        free(t);
        return rc;
    }
    t->done = done;
    t->done_ud = ud;
    queue_start(loop, t);
    return 0;
}

/* ---- awaiting ------------------------------------------------------------ */

/* Resume a task whose await ended without a settled promise (cancelled,
 * or the promise can never settle). */
static void resume_job(void *ud)
{
    pact_task *t = ud;
    if (t->state == T_SUSPENDED)
        run(t);
    task_unref(t);
}

/* A promise a task awaits settled (src), or can never settle (NULL). */
static void wake(pact_promise *src, void *ud, uintptr_t aux)
{
    pact_task *t = ud;
    uint32_t gen = (uint32_t)(aux >> 32);
    if (gen != t->gen || t->state == T_DONE) {
        pact__unref(src); /* a loser of await_any, or a cancelled await */
        task_unref(t);
        return;
    }
    t->gen++; /* the await's other nodes are stale now */
    t->index = (uint32_t)aux;
    if (src) {
        t->settled = src; /* the job's reference (P_TAKE) */
        run(t);
        task_unref(t);
        return;
    }
    /* called from inside a promise's destruction, maybe while the task is
     * still on its way to suspending: continue it later */
    t->fail = PACT_ERROR(PACT_ECANCELED, "the awaited promise can never "
                                         "settle: nothing holds it");
    pact__micro_must(t->ts->loop, resume_job, t); /* the node's ref moves */
}

static pact_error *not_in_task(const char *fn)
{
    pact__misuse_always(fn, PACT_ENOTASK,
                        "called outside a task (on a loop's own stack): "
                        "spawn a task with pact_task_spawn");
    return PACT_ERROR(PACT_ENOTASK, "%s outside a task", fn);
}

/* What @p t, back from an await's suspension, was woken with. */
static PACT__ALWAYS_INLINE pact_error *woken(pact_task *t, pact_value *out)
{
    t->await_file = NULL;
    pact_promise *src = t->settled;
    t->settled = NULL;
    if (!src) {
        pact_error *err = t->fail;
        t->fail = NULL;
        return err ? err : pact__enomem();
    }
    return pact__await_take(src, out);
}

/* Suspend @p t until a wake-up; what it was woken with, as an await. */
static pact_error *wait_woken(pact_task *t, pact_value *out, const char *file,
                              int line)
{
    t->await_file = file;
    t->await_line = line;
    suspend(t);
    return woken(t, out);
}

/* Attach a wake-up for the current await to @p p. */
static bool attach(pact_task *t, pact_promise *p, size_t index)
{
    uintptr_t aux = ((uintptr_t)t->gen << 32) | index;
    pact_promise *n = &t->node;
    if (n->state == PACT__NODE_IDLE) {
        if (pact__node_embed(t->ts->loop, n, wake, t, aux) < 0)
            return false;
    } else if (!(n = pact__node_cb(t->ts->loop, wake, t, aux))) {
        return false;
    }
    n->flags |= P_TAKE;
    t->refs++;
    pact__attach(p, n);
    return true;
}

static pact_error *cancelled(const pact_task *t)
{
    if (t && t->aborted)
        return pact_error_ref(t->aborted);
    return PACT_ERROR(PACT_ECANCELED, "the task's awaits were cancelled "
                                      "(pact_loop_close_all)");
}

/* An await up to its suspension: the outcome when there is none to wait
 * for (*@p waiter NULL), else NULL with the task to suspend in *@p waiter
 * (its wake-up attached or queued). */
static PACT__ALWAYS_INLINE pact_error *
await_start(pact_promise *p, pact_value *out, pact_task **waiter)
{
    *waiter = NULL;
    if (out)
        *out = pact_nothing();
    if (!p) {
        pact__misuse("PACT_AWAIT", PACT_EINVAL, "promise is NULL");
        return PACT_ERROR(PACT_EINVAL, "await of a NULL promise");
    }
    pact_task *t = current;
    if (!t) {
        pact_promise_unref(p);
        return not_in_task("PACT_AWAIT");
    }
    if (p->loop != t->ts->loop) {
        pact__misuse_always("PACT_AWAIT", PACT_EINVAL,
                            "the promise belongs to another loop");
        pact_promise_unref(p);
        return PACT_ERROR(PACT_EINVAL, "await of another loop's promise");
    }
    if (t->cancelled) {
        /* awaited, so handled: an operation it started in the cancelled
         * scope rejects it later */
        p->flags |= P_HANDLED;
        pact__unref(p);
        return cancelled(t);
    }
    if (p->state != PACT_PENDING) {
        /* settled already: its reaction would be queued at once, so queue
         * the resume itself, with no node (the same turn as Node's) */
        pact_loop *loop = t->ts->loop;
        bool had = p->flags & P_HANDLED;
        p->flags |= P_HANDLED;
        if (p->state == PACT_REJECTED && !had)
            pact__rejection_handled(p);
        if (!loop->micro.len && !loop->uncaught)
            /* and nothing else is queued before that resume: its turn would
             * run it next, so go on without leaving (tasks run only inside
             * the microtask drain, which runs every microtask before any
             * tick queued meanwhile, as V8's checkpoint) */
            return pact__await_take(p, out);
        t->settled = p; /* the await's reference */
        t->refs++;
        pact__micro_must(loop, resume_job, t);
        *waiter = t;
        return NULL;
    }
    bool ok = attach(t, p, 0);
    /* With nothing else holding @p p it can never settle: the drop then
     * discards the node, whose wake-up resumes us with PACT_ECANCELED. */
    pact__unref(p);
    if (!ok)
        return pact__enomem();
    *waiter = t;
    return NULL;
}

static PACT__ALWAYS_INLINE pact_error *
await_impl(pact_promise *p, pact_value *out, const char *file, int line)
{
    pact_task *t;
    pact_error *err = await_start(p, out, &t);
    return t ? wait_woken(t, out, file, line) : err;
}

pact_error *pact_await_at(pact_promise *p, pact_value *out, const char *file,
                          int line)
{
    return await_impl(p, out, file, line);
}

pact_value pact_await_throw_(pact_error *err)
{
    pact_task *t = current;
    if (!t || !t->unwind)
        return pact_throw(err);
    t->thrown = err;
    longjmp(*t->unwind, 1);
}

pact_value pact_await_value_at(pact_promise *p, const char *file, int line)
{
    pact_value v;
    pact_error *err = await_impl(p, &v, file, line);
    if (!err)
        return v;
    return pact_await_throw_(err);
}

/* PACT_AWAIT's halves around the switch it makes inline in the task's own
 * function (pact/task_switch.h): no return then crosses from one task's
 * stack into another's code. Under a sanitizer, which must hear of each
 * switch, and with ucontext, the first half does the whole await. */
int pact_await_enter_(pact_promise *p, pact_value *out, const char *file,
                      int line, void *sw[2], pact_error **err)
{
#if PACT__AWAIT_INLINE
    pact_task *t;
    *err = await_start(p, out, &t);
    if (!t)
        return 0;
    switch_out(t, file, line, sw);
    return 1;
#else
    (void)sw;
    *err = await_impl(p, out, file, line);
    return 0;
#endif
}

pact_error *pact_await_leave_(pact_value *out)
{
    return woken(current, out);
}

pact_error *pact_await_any_at(pact_promise *const *ps, size_t n, size_t *index,
                              pact_value *out, const char *file, int line)
{
    if (out)
        *out = pact_nothing();
    if (index)
        *index = 0;
    pact_task *t = current;
    if (!t)
        return not_in_task("pact_await_any");
    if (!ps || !n || n > UINT32_MAX) {
        pact__misuse("pact_await_any", PACT_EINVAL, "no promises to await");
        return PACT_ERROR(PACT_EINVAL, "pact_await_any of %zu promises", n);
    }
    for (size_t i = 0; i < n; i++)
        if (!ps[i] || ps[i]->loop != t->ts->loop) {
            pact__misuse("pact_await_any", PACT_EINVAL,
                         "a promise is NULL or another loop's");
            return PACT_ERROR(PACT_EINVAL,
                              "pact_await_any: promise %zu is "
                              "NULL or another loop's",
                              i);
        }
    if (t->cancelled)
        return cancelled(t);
    for (size_t i = 0; i < n; i++)
        if (!attach(t, ps[i], i)) {
            t->gen++; /* the nodes attached so far are stale */
            return pact__enomem();
        }
    pact_error *err = wait_woken(t, out, file, line);
    if (index)
        *index = t->index;
    return err;
}

/* ---- parking: an await without a promise (a channel's) ------------------- */

pact_error *pact__task_park_begin(pact_task **out, const char *fn)
{
    pact_task *t = current;
    *out = t;
    if (!t)
        return not_in_task(fn);
    if (t->cancelled)
        return cancelled(t);
    t->parking = true;
    t->park_done = false;
    t->park_gen = t->gen;
    t->refs++; /* the wake's */
    return NULL;
}

pact_error *pact__task_await_check(const char *fn)
{
    pact_task *t = current;
    if (!t)
        return not_in_task(fn);
    return t->cancelled ? cancelled(t) : NULL;
}

void pact__task_wake(void *ud, pact_error *err, pact_value *v)
{
    pact_task *t = ud;
    if (t->state == T_DONE || t->park_gen != t->gen || t->park_done) {
        if (v) /* a stale wake-up: cancelled, the await is over */
            pact_value_release(v);
        task_unref(t);
        return;
    }
    t->gen++;
    t->park_done = true;
    t->park_err = pact_error_ref(err);
    if (v) {
        t->park_v = *v;
        *v = pact_nothing();
    }
    if (t->parking) { /* done inside the call: no suspension */
        task_unref(t);
        return;
    }
    pact__micro_must(t->ts->loop, resume_job, t); /* the wake's ref moves */
}

/* What a parked await of @p t came to (after its suspension, if any). */
static pact_error *park_outcome(pact_task *t, pact_value *out)
{
    if (!t->park_done) { /* cancelled: the wake comes later, stale */
        pact_error *err = t->fail;
        t->fail = NULL;
        return err ? err : pact__enomem();
    }
    t->park_done = false;
    pact_error *err = t->park_err;
    t->park_err = NULL;
    if (out)
        *out = t->park_v;
    else
        pact_value_release(&t->park_v);
    t->park_v = pact_nothing();
    return err;
}

pact_error *pact__task_park_wait(pact_task *t, pact_value *out,
                                 const char *file, int line)
{
    t->parking = false;
    if (!t->park_done) {
        t->await_file = file;
        t->await_line = line;
        suspend(t);
        t->await_file = NULL;
    }
    return park_outcome(t, out);
}

int pact__task_park_enter(pact_task *t, pact_value *out, const char *file,
                          int line, void *sw[2], pact_error **err)
{
#if PACT__AWAIT_INLINE
    t->parking = false;
    if (!t->park_done) {
        switch_out(t, file, line, sw);
        return 1;
    }
    *err = park_outcome(t, out);
#else
    (void)sw;
    *err = pact__task_park_wait(t, out, file, line);
#endif
    return 0;
}

pact_error *pact_await_park_leave_(pact_value *out)
{
    pact_task *t = current;
    t->await_file = NULL;
    return park_outcome(t, out);
}

void pact__task_park_abandon(pact_task *t)
{
    t->parking = false;
    t->gen++; /* a wake-up that comes anyway is stale */
    task_unref(t);
}

pact_error *pact_sleep_at(int64_t ms, const char *file, int line)
{
    pact_task *t = current;
    if (!t)
        return not_in_task("pact_sleep");
    pact_promise *p = pact_delay(t->ts->loop, ms, NULL);
    return p ? pact_await_at(p, NULL, file, line) : pact__enomem();
}

pact_error *pact_yield_at(const char *file, int line)
{
    pact_task *t = current;
    if (!t)
        return not_in_task("pact_yield");
    pact_promise *p = pact_immediate_p(t->ts->loop, NULL);
    return p ? pact_await_at(p, NULL, file, line) : pact__enomem();
}

/* ---- cancellation at pact_loop_close_all --------------------------------- */

static int tasks_close_all(pact_loop *loop, void *state)
{
    struct pact__tasks *ts = state;
    struct pact__list *n, *tmp;
    pact__list_each(n, tmp, &ts->live) {
        pact_task *t = pact__list_entry(n, pact_task, link);
        t->cancelled = t->closed = true;
        if (t->state != T_SUSPENDED || t->fail || t->park_done || t->settled)
            continue;
        t->gen++; /* its node, when it fires, is stale */
        t->fail = cancelled(NULL);
        t->refs++;
        pact__micro_must(loop, resume_job, t);
    }
    pact__kick(loop);
    return 0;
}

/* ---- introspection and settings ------------------------------------------ */

pact_task *pact_task_current(void)
{
    return current;
}

pact_loop *pact_task_loop(const pact_task *t)
{
    return t ? t->ts->loop : NULL;
}

const char *pact_task_name(const pact_task *t)
{
    if (!t)
        return NULL;
    if (t->where.name)
        return t->where.name;
    if (!t->label) {
        pact_task *m = (pact_task *)t; /* a cache, not a change */
        size_t len = strlen(t->where.file) + 16;
        if ((m->label = malloc(len)))
            snprintf(m->label, len, "%s:%d", t->where.file, t->where.line);
    }
    return t->label ? t->label : t->where.file;
}

const char *pact_task_file(const pact_task *t)
{
    return t ? t->where.file : NULL;
}

int pact_task_line(const pact_task *t)
{
    return t ? t->where.line : 0;
}

size_t pact_task_stack_size(const pact_task *t)
{
    return t && t->stack ? t->stack->size : 0;
}

size_t pact_loop_tasks(pact_loop *loop)
{
    if (!loop)
        return 0;
    struct pact__tasks *ts = pact__service_find(loop, PACT__SVC_TASKS);
    return ts ? ts->nlive : 0;
}

int pact_loop_set_stack_size(pact_loop *loop, size_t bytes)
{
    PACT_CHECK_LOOP(loop, "pact_loop_set_stack_size");
    PACT_CHECK_ARG(bytes > 0, "pact_loop_set_stack_size");
    struct pact__tasks *ts = tasks_of(loop);
    if (!ts)
        return PACT_ENOMEM;
    size_t size = pact__stack_round(bytes);
    if (size != ts->stack_size) {
        pact__stack_trim(ts, 0); /* pooled stacks are the old size */
        ts->stack_size = size;
    }
    return 0;
}

int pact_loop_set_stack_pool(pact_loop *loop, size_t stacks)
{
    PACT_CHECK_LOOP(loop, "pact_loop_set_stack_pool");
    struct pact__tasks *ts = tasks_of(loop);
    if (!ts)
        return PACT_ENOMEM;
    ts->pool_max = stacks;
    pact__stack_trim(ts, stacks); /* the surplus too */
    return 0;
}

int pact_loop_set_stack_guard(pact_loop *loop, bool guard)
{
    PACT_CHECK_LOOP(loop, "pact_loop_set_stack_guard");
    struct pact__tasks *ts = tasks_of(loop);
    if (!ts)
        return PACT_ENOMEM;
    if (guard != ts->guard)
        pact__stack_trim(ts, 0); /* pooled stacks are of the old setting */
    ts->guard = guard;
    return 0;
}

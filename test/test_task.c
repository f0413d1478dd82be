/* Stackful tasks (pact/task.h): deep recursion up to the stack size, the
 * overflow reports (guard page and canary, each in a child process that is
 * meant to die), 10,000 concurrent tasks, awaits from plain helper functions
 * at any depth, the three await forms and how errors travel, lifetimes of a
 * task's promise, ping-pong between tasks, microtask ordering of spawn and
 * await, value ownership through await, pact_await_any, sleep and yield,
 * misuse outside a task, cancellation by pact_loop_close_all, the stack
 * options and pool, and the floating-point control state each task keeps. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <fenv.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sys.h" /* RUNNING_ON_VALGRIND, VALGRIND_MAKE_MEM_DEFINED */

#include "helpers.h"
#include "suites.h"

/* ThreadSanitizer makes every live task's stack a fiber of its own (pooled
 * with the stack): about nine more mappings per live task (11 in all, not
 * 2) and some 8 ms of a loaded machine per fiber made. Under it the mass
 * tests are scaled to fit vm.max_map_count (65530 by default) and a run
 * time that a loaded machine keeps within the case's limit (T_TSAN, from
 * helpers.h): 4,000 live tasks took over 300 s there. */

/* ---- shared helpers ------------------------------------------------------ */

static void run_ok(void)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static size_t round_pages(size_t n)
{
    size_t page = page_size();
    return (n + page - 1) / page * page;
}

static pact_promise *spawn(pact_task_fn fn, void *arg)
{
    pact_promise *p = pact_task_spawn(t_loop, fn, arg, NULL);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* What a task's promise delivered to pact_promise_callback. */
struct got {
    int calls;
    pact_error *err; /* borrowed pointer: compared only */
    int code;
    pact_kind kind;
    int64_t i;
};

static void got_cb(pact_error *err, const pact_value *v, void *ud)
{
    struct got *g = ud;
    g->calls++;
    if (err) {
        g->err = err;
        g->code = pact_error_code(err);
        return;
    }
    g->kind = v->kind;
    g->i = v->kind == PACT_INT ? v->u.i : 0;
}

/* Observe @p p (which also marks a rejection handled). */
static void watch(pact_promise *p, struct got *g)
{
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_promise_callback(p, got_cb, g), 0);
}

static int64_t int_value(const pact_promise *p)
{
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    const pact_value *v = pact_promise_value(p);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->kind, PACT_INT);
    return v->u.i;
}

/* Owned values whose destructor counts. */
static int freed;

static void counted_free(void *p)
{
    freed++;
    free(p);
}

static int *new_int(int v)
{
    int *p = malloc(sizeof *p);
    ck_assert_ptr_nonnull(p);
    *p = v;
    return p;
}

/* A task body that returns pact_int(arg as an integer). */
static pact_error *int_task(void *arg, pact_value *result)
{
    *result = pact_int((int64_t)(intptr_t)arg);
    return NULL;
}

/* ---- deep recursion and overflow --------------------------------------- */

enum { DIVE_PAD = 256 };

struct dive {
    bool measure;         /* record the frames of levels 1 and 0 */
    uintptr_t fp[2];      /* ...here */
    uintptr_t lowest;     /* the deepest frame seen */
    bool yield_at_bottom; /* suspend in the deepest frame */
    int yielded;          /* how often that came back without an error */
};

/* Recursion that cannot be flattened: each level keeps a buffer that it
 * reads after the call below returns. @return the sum over the levels n..0
 * of (n & 0xff) + ((n >> 8) & 0xff). */
static __attribute__((noinline)) uint64_t dive(unsigned n, struct dive *d)
{
    volatile unsigned char buf[DIVE_PAD];
    buf[0] = (unsigned char)n;
    buf[DIVE_PAD - 1] = (unsigned char)(n >> 8);
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    if (fp < d->lowest)
        d->lowest = fp;
    if (d->measure && n < 2)
        d->fp[n] = fp;
    uint64_t below = 0;
    if (n) {
        below = dive(n - 1, d);
    } else if (d->yield_at_bottom) {
        pact_error *err = pact_yield();
        if (!err)
            d->yielded++;
        pact_error_unref(err);
    }
    return below + buf[0] + buf[DIVE_PAD - 1];
}

static uint64_t dive_expected(unsigned n)
{
    uint64_t s = 0;
    for (unsigned k = 0; k <= n; k++)
        s += (k & 0xffu) + ((k >> 8) & 0xffu);
    return s;
}

struct deep {
    size_t size;    /* the task's stack */
    size_t frame;   /* one level of dive, measured */
    size_t used;    /* from the body's frame to the deepest one */
    unsigned depth; /* levels for 75% of the stack */
    uint64_t sum;
    int yielded;
};

static pact_error *deep_task(void *arg, pact_value *result)
{
    struct deep *dp = arg;
    dp->size = pact_task_stack_size(pact_task_current());
    struct dive d = {.measure = true, .lowest = UINTPTR_MAX};
    dive(1, &d);
    dp->frame = (size_t)(d.fp[1] - d.fp[0]);
    if (dp->frame == 0 || dp->frame > dp->size)
        return PACT_ERROR(PACT_EINVAL, "frame of %zu bytes", dp->frame);
    dp->depth = (unsigned)(dp->size * 3 / 4 / dp->frame);
    uintptr_t top = (uintptr_t)__builtin_frame_address(0);
    struct dive deep = {.lowest = UINTPTR_MAX, .yield_at_bottom = true};
    dp->sum = dive(dp->depth, &deep);
    dp->used = (size_t)(top - deep.lowest);
    dp->yielded = deep.yielded;
    *result = pact_int((int64_t)dp->sum);
    return NULL;
}

static void check_deep(size_t stack_size)
{
    struct deep dp = {0};
    pact_task_opts o = {.stack_size = stack_size};
    pact_promise *p = pact_task_spawn(t_loop, deep_task, &dp, &o);
    ck_assert_ptr_nonnull(p);
    struct got g = {0};
    watch(p, &g);
    /* other work runs while the task sits at the bottom of its stack */
    int timers = 0;
    ck_assert_int_eq(pact_timeout(t_loop, 1, count_cb, &timers, NULL), 0);
    run_ok();
    ck_assert_int_eq(g.calls, 1);
    ck_assert_ptr_null(g.err);
    ck_assert_uint_eq(dp.size, stack_size ? round_pages(stack_size)
                                          : (size_t)256 * 1024);
    ck_assert_uint_gt(dp.frame, DIVE_PAD);
    ck_assert_uint_gt(dp.depth, 10);
    /* the recursion really went three quarters of the way down */
    ck_assert_uint_ge(dp.used, dp.size * 7 / 10);
    ck_assert_uint_lt(dp.used, dp.size);
    ck_assert_uint_eq(dp.sum, dive_expected(dp.depth));
    ck_assert_int_eq(int_value(p), (int64_t)dp.sum);
    ck_assert_int_eq(dp.yielded, 1);
    ck_assert_int_eq(timers, 1);
    pact_promise_unref(p);
}

START_TEST(deep_recursion_small_stack)
{
    check_deep(64 * 1024);
}
END_TEST

START_TEST(deep_recursion_default_stack)
{
    check_deep(0);
}
END_TEST

/* What a child process printed and how it ended. */
struct child {
    int status;
    char out[8192];
};

/* Run @p fn(@p arg) in a child process with its stderr piped back into
 * @p c; the child ends by a signal or _exit, never back in Check. */
static void in_child(void (*fn)(void *), void *arg, struct child *c)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        alarm(120); /* a child that hangs dies of SIGALRM: a clear failure */
        close(fds[0]);
        dup2(fds[1], 2);
        close(fds[1]);
        fn(arg);
        _exit(97);
    }
    close(fds[1]);
    size_t n = 0;
    for (;;) {
        char sink[512];
        ssize_t r = n + 1 < sizeof c->out
                        ? read(fds[0], c->out + n, sizeof c->out - 1 - n)
                        : read(fds[0], sink, sizeof sink);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (n + 1 < sizeof c->out)
            n += (size_t)r;
    }
    c->out[n] = '\0';
    close(fds[0]);
    while (waitpid(pid, &c->status, 0) < 0)
        ck_assert_int_eq(errno, EINTR);
}

static pact_error *dive_forever(void *arg, pact_value *result)
{
    (void)arg;
    struct dive d = {.lowest = UINTPTR_MAX};
    *result = pact_int((int64_t)dive(UINT_MAX, &d));
    return NULL;
}

/* Spawn the overflowing task on @p loop; with a NULL loop only tell the
 * spawn line, so the parent knows what the child's report must say. */
static pact_promise *spawn_diver(pact_loop *loop, const pact_task_opts *o,
                                 int *line)
{
    *line = __LINE__ + 1;
    return loop ? pact_task_spawn(loop, dive_forever, NULL, o) : NULL;
}

struct overflow_case {
    const char *name; /* NULL: the default name */
    bool guard;
    pact_task_fn body; /* NULL: dive_forever via spawn_diver */
};

static void overflow_child(void *arg)
{
    const struct overflow_case *oc = arg;
    pact_loop *loop;
    if (pact_loop_new(&loop) != 0)
        _exit(90);
    if (!oc->guard && pact_loop_set_stack_guard(loop, false) != 0)
        _exit(91);
    pact_task_opts o = {.name = oc->name, .stack_size = 64 * 1024};
    int line;
    pact_promise *p = oc->body ? pact_task_spawn(loop, oc->body, NULL, &o)
                               : spawn_diver(loop, &o, &line);
    if (!p)
        _exit(92);
    pact_loop_run(loop, PACT_RUN_DEFAULT);
    _exit(98); /* the task should have ended the process */
}

static void check_guard_report(const char *name)
{
    int line;
    spawn_diver(NULL, NULL, &line);
    struct overflow_case oc = {.name = name, .guard = true};
    struct child c;
    in_child(overflow_child, &oc, &c);
    ck_assert_msg(WIFSIGNALED(c.status),
                  "child status %#x, not killed by a signal; stderr: '%s'",
                  c.status, c.out);
    ck_assert_int_eq(WTERMSIG(c.status), SIGSEGV);
    char want[512], label[256];
    if (name)
        snprintf(label, sizeof label, "%s", name);
    else
        snprintf(label, sizeof label, "%s:%d", __FILE__, line);
    snprintf(want, sizeof want,
             "pact: task '%s' (spawned at %s:%d) overflowed its stack", label,
             __FILE__, line);
    ck_assert_msg(strstr(c.out, want), "stderr '%s' lacks '%s'", c.out, want);
    ck_assert_msg(strstr(c.out, "overflowed its stack of 65536 bytes"),
                  "stderr: '%s'", c.out);
    ck_assert_int_eq(t_count(c.out, "overflowed its stack"), 1);
}

/* Unbounded recursion hits the guard page: the report names the task and
 * where it was spawned, and the process dies of SIGSEGV (only the child). */
START_TEST(overflow_guard_page_named)
{
    check_guard_report("deep-diver");
}
END_TEST

START_TEST(overflow_guard_page_default_name)
{
    check_guard_report(NULL);
}
END_TEST

/* Descend in 1 KiB frames to within 12 KiB of @p lo, then write over the
 * lowest bytes of the stack (where its canary sits), as a frame that ran
 * just past the end would; nothing below @p lo is touched (without guard
 * pages, that may be another stack). */
static __attribute__((noinline)) void sink_to(uintptr_t lo)
{
    volatile unsigned char buf[1024];
    buf[0] = 1;
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    if (fp > lo + 12 * 1024) {
        sink_to(lo);
        buf[1] = buf[0];
        return;
    }
    volatile unsigned char *bottom = (volatile unsigned char *)lo;
    for (int i = 0; i < 16; i++)
        bottom[i] = 0xee;
}

static pact_error *smash_canary(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    /* the body's frame is within the top page of the usable stack, and the
     * usable stack starts on a page boundary */
    size_t size = pact_task_stack_size(pact_task_current());
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    uintptr_t lo = (uintptr_t)round_pages((size_t)(fp - size));
    sink_to(lo);
    return pact_yield(); /* the canary is checked at the switch */
}

/* Without guard pages an overflow is found at the next switch, by the
 * canary, and aborts with a report. */
START_TEST(overflow_canary_without_guard)
{
    struct overflow_case oc = {.name = "canary-task", .body = smash_canary};
    struct child c;
    in_child(overflow_child, &oc, &c);
    ck_assert_msg(WIFSIGNALED(c.status),
                  "child status %#x, not killed by a signal; stderr: '%s'",
                  c.status, c.out);
    ck_assert_int_eq(WTERMSIG(c.status), SIGABRT);
    char want[512];
    snprintf(want, sizeof want,
             "pact: task 'canary-task' (spawned at %s:", __FILE__);
    ck_assert_msg(strstr(c.out, want), "stderr '%s' lacks '%s'", c.out, want);
    ck_assert_msg(strstr(c.out, "overflowed its stack of 65536 bytes"),
                  "stderr: '%s'", c.out);
    ck_assert_msg(strstr(c.out, "canary"), "stderr: '%s'", c.out);
}
END_TEST

/* ---- many tasks --------------------------------------------------------- */

enum { MANY = T_TSAN ? 1000 : 10000 };

struct many {
    int started, woke, errors;
    size_t tasks_at_first_wake, tasks_at_check;
    int started_at_check;
};

struct many_slot {
    struct many *m;
    int i;
};

static pact_error *sleeper(void *arg, pact_value *result)
{
    struct many_slot *s = arg;
    s->m->started++;
    pact_error *err = s->i % 2
                          ? pact_sleep(10)
                          : PACT_AWAIT_ERR(pact_delay(t_loop, 10, NULL), NULL);
    if (err) {
        s->m->errors++;
        return err;
    }
    if (s->m->woke++ == 0)
        s->m->tasks_at_first_wake = pact_loop_tasks(t_loop);
    *result = pact_int(3 * (int64_t)s->i);
    return NULL;
}

static void many_check_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct many *m = ud;
    m->tasks_at_check = pact_loop_tasks(t_loop);
    m->started_at_check = m->started;
}

/* 10,000 tasks (1,000 under TSan, see T_TSAN) asleep at once, half in
 * pact_sleep, half in PACT_AWAIT_ERR(pact_delay()): all counted live while
 * they sleep, none after, every result in place. */
START_TEST(ten_thousand_sleeping_tasks)
{
    struct many m = {0};
    struct many_slot *slots = calloc(MANY, sizeof *slots);
    pact_promise **ps = calloc(MANY, sizeof *ps);
    ck_assert_ptr_nonnull(slots);
    ck_assert_ptr_nonnull(ps);
    /* set before the tasks' timers, so it fires first */
    ck_assert_int_eq(pact_timeout(t_loop, 1, many_check_cb, &m, NULL), 0);
    for (int i = 0; i < MANY; i++) {
        slots[i].m = &m;
        slots[i].i = i;
        ps[i] = spawn(sleeper, &slots[i]);
    }
    ck_assert_int_eq(m.started, 0); /* tasks start as microtasks */
    pact_promise *all = pact_all(t_loop, ps, MANY);
    struct got g = {0};
    watch(all, &g);
    run_ok();
    ck_assert_int_eq(g.calls, 1);
    ck_assert_ptr_null(g.err);
    ck_assert_int_eq(m.started, MANY);
    ck_assert_int_eq(m.started_at_check, MANY);
    ck_assert_uint_eq(m.tasks_at_check, MANY);
    ck_assert_uint_eq(m.tasks_at_first_wake, MANY);
    ck_assert_int_eq(m.woke, MANY);
    ck_assert_int_eq(m.errors, 0);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    const pact_value *v = pact_promise_value(all);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->kind, PACT_LIST);
    ck_assert_uint_eq(pact_list_len(v->u.list), MANY);
    for (int i = 0; i < MANY; i++) {
        ck_assert_ptr_eq(pact_list_at(v->u.list, (size_t)i), ps[i]);
        ck_assert_int_eq(int_value(ps[i]), 3 * (int64_t)i);
    }
    pact_promise_unref(all);
    for (int i = 0; i < MANY; i++)
        pact_promise_unref(ps[i]);
    free(ps);
    free(slots);
}
END_TEST

/* ---- awaits at any depth ------------------------------------------------ */

static int64_t level3(int64_t x)
{
    trace("level3 sleeps");
    pact_value v = PACT_AWAIT(pact_delay(t_loop, 20, NULL));
    trace("level3 woke (kind %d)", (int)v.kind);
    v = PACT_AWAIT(pact_resolved(t_loop, pact_int(x * 2)));
    return v.u.i;
}

static int64_t level2(int64_t x)
{
    int64_t r = level3(x + 1);
    trace("level2 got %lld", (long long)r);
    pact_value v = PACT_AWAIT(pact_resolved(t_loop, pact_int(r + 100)));
    return v.u.i;
}

static int64_t level1(int64_t x)
{
    int64_t r = level2(x);
    trace("level1 got %lld", (long long)r);
    return r;
}

static pact_error *deep_await_task(void *arg, pact_value *result)
{
    (void)arg;
    *result = pact_int(level1(5));
    return NULL;
}

/* Plain C functions three calls down await: the task suspends inside
 * level3 (a timer runs meanwhile) and comes back up with the values. */
START_TEST(await_from_helpers_three_deep)
{
    pact_promise *p = spawn(deep_await_task, NULL);
    ck_assert_int_eq(pact_timeout(t_loop, 5, trace_cb, "timer", NULL), 0);
    run_ok();
    ck_assert_str_eq(trace_text(), "level3 sleeps\n"
                                   "timer\n"
                                   "level3 woke (kind 0)\n"
                                   "level2 got 12\n"
                                   "level1 got 112\n");
    ck_assert_int_eq(int_value(p), 112);
    pact_promise_unref(p);
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

struct try_ctx {
    pact_promise *failing; /* handed to the innermost await */
};

static pact_error *try_level3(void *arg, pact_value *result)
{
    struct try_ctx *c = arg;
    pact_value v;
    PACT_AWAIT_TRY(pact_resolved(t_loop, pact_int(3)), &v);
    trace("level3 awaits the failing promise");
    PACT_AWAIT_TRY(c->failing, &v);
    trace("level3 after TRY (must not run)");
    *result = pact_int(-3);
    return NULL;
}

static pact_error *try_level2(void *arg, pact_value *result)
{
    pact_value v;
    PACT_AWAIT_TRY(pact_task_spawn(t_loop, try_level3, arg, NULL), &v);
    trace("level2 after TRY (must not run)");
    *result = pact_int(-2);
    return NULL;
}

static pact_error *try_level1(void *arg, pact_value *result)
{
    pact_value v;
    PACT_AWAIT_TRY(pact_task_spawn(t_loop, try_level2, arg, NULL), &v);
    trace("level1 after TRY (must not run)");
    *result = pact_int(-1);
    return NULL;
}

/* A rejection travels up three tasks, each `return`ing it from
 * PACT_AWAIT_TRY: the outer promise rejects with the very error object. */
START_TEST(try_through_three_levels)
{
    int line = __LINE__ + 1;
    pact_error *e = PACT_ERROR(PACT_EIO, "disk on fire");
    pact_deferred *d;
    struct try_ctx c = {t_pending(&d)};
    t_settle_later(d, 2, pact_throw(pact_error_ref(e)), "rejected");
    pact_promise *p = spawn(try_level1, &c);
    struct got g = {0};
    watch(p, &g);
    run_ok();
    ck_assert_str_eq(trace_text(), "level3 awaits the failing promise\n"
                                   "rejected\n");
    ck_assert_int_eq(g.calls, 1);
    ck_assert_ptr_eq(g.err, e);
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    pact_error *got = pact_promise_error(p);
    ck_assert_ptr_eq(got, e);
    ck_assert_int_eq(pact_error_code(got), PACT_EIO);
    ck_assert_str_eq(pact_error_message(got), "disk on fire");
    ck_assert_str_eq(pact_error_file(got), __FILE__);
    ck_assert_int_eq(pact_error_line(got), line);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_promise_unref(p);
    pact_error_unref(e);
}
END_TEST

/* The same with plain functions between: the innermost TRY returns the
 * error, the levels above pass it on, the task rejects with it. The
 * rejection is scheduled only once plain3 is about to await it (after a real
 * macrotask): started beside the task, its timer could come due before a
 * slow start-up (TSan) let plain3 attach, and the rejection would go
 * unhandled. */
struct plain_ctx {
    pact_promise *failing;
    pact_deferred *d;
    pact_error *e;
};

static pact_error *plain3(struct plain_ctx *c)
{
    PACT_AWAIT_TRY(pact_delay(t_loop, 1, NULL), NULL);
    trace("plain3 awaits");
    t_settle_later(c->d, 1, pact_throw(pact_error_ref(c->e)), NULL);
    PACT_AWAIT_TRY(c->failing, NULL);
    trace("plain3 after TRY (must not run)");
    return NULL;
}

static pact_error *plain2(struct plain_ctx *c)
{
    pact_value v;
    PACT_AWAIT_TRY(pact_resolved(t_loop, pact_int(2)), &v);
    pact_error *err = plain3(c);
    if (err)
        return err;
    trace("plain2 after error (must not run)");
    return NULL;
}

static pact_error *plain1_task(void *arg, pact_value *result)
{
    (void)result;
    pact_error *err = plain2(arg);
    if (err)
        return err;
    trace("plain1 after error (must not run)");
    return NULL;
}

START_TEST(try_through_plain_calls)
{
    int line = __LINE__ + 1;
    pact_error *e = PACT_ERROR(PACT_EPIPE, "pipe gone");
    struct plain_ctx c = {.e = e};
    c.failing = t_pending(&c.d);
    pact_promise *p = spawn(plain1_task, &c);
    struct got g = {0};
    watch(p, &g);
    run_ok();
    ck_assert_str_eq(trace_text(), "plain3 awaits\n");
    ck_assert_int_eq(g.calls, 1);
    ck_assert_ptr_eq(pact_promise_error(p), e);
    ck_assert_int_eq(g.code, PACT_EPIPE);
    ck_assert_str_eq(pact_error_file(g.err), __FILE__);
    ck_assert_int_eq(pact_error_line(g.err), line);
    pact_promise_unref(p);
    pact_error_unref(e);
}
END_TEST

struct err_ctx {
    pact_promise *failing;
    pact_error *got; /* a reference */
    pact_kind kind_after;
    int64_t later;
};

static pact_error *err_form_task(void *arg, pact_value *result)
{
    struct err_ctx *c = arg;
    pact_value v = pact_int(99);
    c->got = PACT_AWAIT_ERR(c->failing, &v);
    c->kind_after = v.kind;
    trace("after the failed await");
    pact_value w;
    pact_error *err = PACT_AWAIT_ERR(pact_resolved(t_loop, pact_int(8)), &w);
    if (err)
        return err;
    c->later = w.u.i;
    *result = pact_int(w.u.i + 1);
    return NULL;
}

/* PACT_AWAIT_ERR hands the rejection over (a reference, the value left as
 * nothing) and the task goes on. */
START_TEST(await_err_form)
{
    pact_error *e = PACT_ERROR(PACT_ETIMEDOUT, "late");
    pact_deferred *d;
    struct err_ctx c = {.failing = t_pending(&d)};
    t_settle_later(d, 2, pact_throw(pact_error_ref(e)), "rejected");
    pact_promise *p = spawn(err_form_task, &c);
    run_ok();
    ck_assert_str_eq(trace_text(), "rejected\nafter the failed await\n");
    ck_assert_ptr_eq(c.got, e);
    ck_assert_int_eq(c.kind_after, PACT_NOTHING);
    ck_assert_int_eq(c.later, 8);
    ck_assert_int_eq(int_value(p), 9);
    pact_error_unref(c.got);
    pact_error_unref(e);
    pact_promise_unref(p);
}
END_TEST

static int thrower_inner(pact_promise *failing)
{
    pact_value ok = PACT_AWAIT(pact_resolved(t_loop, pact_int(1)));
    trace("inner got %lld", (long long)ok.u.i);
    PACT_AWAIT(failing);
    trace("inner after throw (must not run)");
    return 1;
}

static int thrower_middle(pact_promise *failing)
{
    int r = thrower_inner(failing);
    trace("middle after throw (must not run)");
    return r;
}

static pact_error *thrower_task(void *arg, pact_value *result)
{
    int r = thrower_middle(arg);
    trace("body after throw (must not run)");
    *result = pact_int(r);
    return NULL;
}

/* The throwing PACT_AWAIT unwinds the task from two calls down: nothing
 * after it runs in any frame, and the promise rejects with the error. */
START_TEST(await_throw_unwinds)
{
    pact_error *e = PACT_ERROR(PACT_ECONNRESET, "peer left");
    pact_deferred *d;
    pact_promise *failing = t_pending(&d);
    t_settle_later(d, 2, pact_throw(pact_error_ref(e)), "rejected");
    pact_promise *p = spawn(thrower_task, failing);
    struct got g = {0};
    watch(p, &g);
    run_ok();
    ck_assert_str_eq(trace_text(), "inner got 1\nrejected\n");
    ck_assert_int_eq(g.calls, 1);
    ck_assert_ptr_eq(g.err, e);
    ck_assert_ptr_eq(pact_promise_error(p), e);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_promise_unref(p);
    pact_error_unref(e);
}
END_TEST

/* ---- lifetimes ---------------------------------------------------------- */

static int steps;

static pact_error *stepping_task(void *arg, pact_value *result)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        pact_error *err = pact_sleep(2);
        if (err)
            return err;
        steps++;
    }
    *result = pact_owned(new_int(7), counted_free);
    return NULL;
}

/* Nobody holds the task's promise: it still runs to the end, and its value
 * is released once (valgrind: nothing leaks). */
START_TEST(dropped_promise_still_runs)
{
    steps = 0;
    freed = 0;
    pact_promise_unref(spawn(stepping_task, NULL));
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 1);
    run_ok();
    ck_assert_int_eq(steps, 3);
    ck_assert_int_eq(freed, 1);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
}
END_TEST

static pact_value record_then(const pact_value *v, void *ud)
{
    struct got *g = ud;
    g->calls++;
    g->kind = v->kind;
    g->i = v->kind == PACT_INT ? v->u.i : 0;
    return pact_nothing();
}

static pact_error *await_given_task(void *arg, pact_value *result)
{
    pact_value v;
    pact_error *err = PACT_AWAIT_ERR(arg, &v);
    if (err)
        return err;
    *result = pact_int(v.u.i + 1);
    return NULL;
}

/* A task that finished before anyone looked: pact_then and another task's
 * await still get its value later. */
START_TEST(finished_before_awaited)
{
    pact_promise *p = spawn(int_task, (void *)(intptr_t)42);
    run_ok();
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    ck_assert_int_eq(int_value(p), 42);
    struct got g = {0};
    pact_promise *q = pact_then(p, record_then, NULL, &g);
    ck_assert_ptr_nonnull(q);
    pact_promise *r = spawn(await_given_task, pact_promise_ref(p));
    ck_assert_int_eq(g.calls, 0);
    run_ok();
    ck_assert_int_eq(g.calls, 1);
    ck_assert_int_eq(g.i, 42);
    ck_assert_int_eq(int_value(r), 43);
    ck_assert_int_eq(int_value(p), 42); /* the test's reference kept it */
    pact_promise_unref(q);
    pact_promise_unref(r);
    pact_promise_unref(p);
}
END_TEST

/* ---- ping-pong ---------------------------------------------------------- */

enum { ROUNDS = 1000, TRACED = 2 };

struct pingpong {
    pact_deferred *to_a, *to_b; /* each side's next inbox */
    int a_rounds, b_rounds, bad;
};

static pact_error *pong_task(void *arg, pact_value *result)
{
    struct pingpong *pp = arg;
    for (;;) {
        pact_promise *p;
        pp->to_b = pact_deferred_new(t_loop, &p);
        if (pp->b_rounds < TRACED)
            trace("B waits");
        pact_value v = PACT_AWAIT(p);
        if (v.kind != PACT_INT) {
            pp->bad++;
            break;
        }
        if (v.u.i < 0)
            break;
        if (pp->b_rounds < TRACED)
            trace("B got ping %lld", (long long)v.u.i);
        pp->b_rounds++;
        pact_deferred *d = pp->to_a;
        pp->to_a = NULL;
        if (!d || pact_deferred_resolve(d, pact_int(v.u.i + 1)) != 0)
            pp->bad++;
        pact_deferred_unref(d);
    }
    *result = pact_int(pp->b_rounds);
    return NULL;
}

static pact_error *ping_task(void *arg, pact_value *result)
{
    struct pingpong *pp = arg;
    for (int i = 0; i < ROUNDS; i++) {
        pact_promise *p;
        pp->to_a = pact_deferred_new(t_loop, &p);
        pact_deferred *d = pp->to_b; /* B is waiting on it */
        pp->to_b = NULL;
        if (!d) {
            pp->bad++;
            pact_promise_unref(p);
            break;
        }
        if (i < TRACED)
            trace("A ping %d", 2 * i);
        pact_deferred_resolve(d, pact_int(2 * i));
        pact_deferred_unref(d);
        pact_value v = PACT_AWAIT(p);
        if (v.kind != PACT_INT || v.u.i != 2 * i + 1)
            pp->bad++;
        if (i < TRACED)
            trace("A got pong %lld", (long long)v.u.i);
        pp->a_rounds++;
    }
    pact_deferred *d = pp->to_b;
    pp->to_b = NULL;
    pact_deferred_resolve(d, pact_int(-1)); /* stop */
    pact_deferred_unref(d);
    *result = pact_int(pp->a_rounds);
    return NULL;
}

/* PACT_AWAIT's halves (pact/task_switch.h): where the switch is inline
 * (x86-64's asm context, no sanitizer), the library names the contexts and
 * the caller switches; elsewhere enter does the whole await. Either way a
 * settled promise with nothing queued needs no switch. */
#if PACT_SWITCH_INLINE && PACT_CONTEXT_ASM && !defined(PACT__ASAN_BUILD) &&    \
    !defined(PACT__TSAN_BUILD)
#define T_INLINE_SWITCH 1
#else
#define T_INLINE_SWITCH 0
#endif

struct halves {
    pact_deferred *d;
    int entered, settled_entered;
    int64_t got, settled_got;
};

static pact_error *halves_task(void *arg, pact_value *result)
{
    struct halves *h = arg;
    pact_promise *p;
    h->d = pact_deferred_new(t_loop, &p);
    pact_value v = pact_nothing();
    void *sw[2] = {NULL, NULL};
    pact_error *err = NULL;
    h->entered = pact_await_enter_(p, &v, __FILE__, __LINE__, sw, &err);
    if (h->entered) {
#if PACT_SWITCH_INLINE
        ck_assert_ptr_nonnull(sw[0]);
        ck_assert_ptr_nonnull(sw[1]);
        pact_switch_((void **)sw[0], (void *const *)sw[1]);
        err = pact_await_leave_(&v);
#endif
    }
    ck_assert_ptr_null(err);
    h->got = v.u.i;
    h->settled_entered = pact_await_enter_(pact_resolved(t_loop, pact_int(7)),
                                           &v, __FILE__, __LINE__, sw, &err);
    ck_assert_ptr_null(err);
    h->settled_got = v.u.i;
    *result = pact_nothing();
    return NULL;
}

static void halves_resolve(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct halves *h = ud;
    ck_assert_int_eq(pact_deferred_resolve(h->d, pact_int(42)), 0);
    pact_deferred_unref(h->d);
    h->d = NULL;
}

START_TEST(await_halves)
{
    struct halves h = {0};
    pact_promise *t = spawn(halves_task, &h);
    /* after the task has suspended: it starts as a microtask */
    ck_assert_int_eq(pact_immediate(t_loop, halves_resolve, &h, NULL), 0);
    run_ok();
    ck_assert_ptr_null(h.d);
    ck_assert_int_eq(h.entered, T_INLINE_SWITCH);
    ck_assert_int_eq(h.got, 42);
    ck_assert_int_eq(h.settled_entered, 0);
    ck_assert_int_eq(h.settled_got, 7);
    pact_promise_unref(t);
}
END_TEST

/* pact_await_recv's and pact_await_send's halves, as PACT_AWAIT's: a
 * receive on an empty channel parks (the caller switches where it can),
 * the sender finds it parked and hands over without parking. */
struct chan_halves {
    pact_chan *ch;
    int recv_entered, send_entered;
    int64_t got;
};

static pact_error *chan_halves_recv(void *arg, pact_value *result)
{
    struct chan_halves *h = arg;
    pact_value v = pact_nothing();
    void *sw[2] = {NULL, NULL};
    pact_error *err = NULL;
    h->recv_entered =
        pact_await_recv_enter_(h->ch, &v, __FILE__, __LINE__, sw, &err);
#if PACT_SWITCH_INLINE
    if (h->recv_entered) {
        pact_switch_((void **)sw[0], (void *const *)sw[1]);
        err = pact_await_park_leave_(&v);
    }
#endif
    ck_assert_ptr_null(err);
    h->got = v.u.i;
    *result = pact_nothing();
    return NULL;
}

static pact_error *chan_halves_send(void *arg, pact_value *result)
{
    struct chan_halves *h = arg;
    void *sw[2] = {NULL, NULL};
    pact_error *err = NULL;
    h->send_entered = pact_await_send_enter_(h->ch, pact_int(5), __FILE__,
                                             __LINE__, sw, &err);
    ck_assert_ptr_null(err);
    *result = pact_nothing();
    return NULL;
}

START_TEST(chan_await_halves)
{
    struct chan_halves h = {.ch = pact_chan_new(t_loop, 0)};
    ck_assert_ptr_nonnull(h.ch);
    pact_promise *r = spawn(chan_halves_recv, &h); /* parks first */
    pact_promise *w = spawn(chan_halves_send, &h);
    run_ok();
    ck_assert_int_eq(h.recv_entered, T_INLINE_SWITCH);
    ck_assert_int_eq(h.send_entered, 0); /* a hand-off to the parked one */
    ck_assert_int_eq(h.got, 5);
    pact_promise_unref(r);
    pact_promise_unref(w);
    pact_chan_free(h.ch);
}
END_TEST

START_TEST(ping_pong)
{
    struct pingpong pp = {0};
    pact_promise *b = spawn(pong_task, &pp);
    pact_promise *a = spawn(ping_task, &pp);
    run_ok();
    ck_assert_str_eq(trace_text(), "B waits\n"
                                   "A ping 0\n"
                                   "B got ping 0\n"
                                   "B waits\n"
                                   "A got pong 1\n"
                                   "A ping 2\n"
                                   "B got ping 2\n"
                                   "A got pong 3\n");
    ck_assert_int_eq(pp.bad, 0);
    ck_assert_int_eq(pp.a_rounds, ROUNDS);
    ck_assert_int_eq(pp.b_rounds, ROUNDS);
    ck_assert_int_eq(int_value(a), ROUNDS);
    ck_assert_int_eq(int_value(b), ROUNDS);
    ck_assert_ptr_null(pp.to_a);
    ck_assert_ptr_null(pp.to_b);
    pact_promise_unref(a);
    pact_promise_unref(b);
}
END_TEST

/* A suspending task switches straight to the task its next microtask would
 * wake: here a ring of three, each waking the next and awaiting; the last
 * hand-off goes to tasks that then end (on the resumer's stack, as if the
 * drain had run them), and an await of a timer goes back to the loop. */
struct ring {
    pact_deferred *d[3]; /* what wakes each task, while it waits */
    int rounds[3];
};

static pact_error *ring_task(void *arg, pact_value *result)
{
    struct ring *r = ((void **)arg)[0];
    int me = (int)(intptr_t)((void **)arg)[1], next = (me + 1) % 3;
    for (int i = 0;; i++) {
        pact_deferred *d = r->d[next];
        r->d[next] = NULL;
        if (d) {
            trace("%d wakes %d", me, next);
            T_MUST(pact_deferred_resolve(d, pact_int(i)));
            pact_deferred_unref(d);
        }
        if (i == 100)
            break;
        pact_promise *p;
        r->d[me] = pact_deferred_new(t_loop, &p);
        pact_value v = PACT_AWAIT(p);
        ck_assert_int_eq(v.kind, PACT_INT);
        r->rounds[me]++;
    }
    PACT_AWAIT(pact_delay(t_loop, 1, NULL)); /* back to the loop */
    *result = pact_int(r->rounds[me]);
    return NULL;
}

START_TEST(handed_over_tasks_end)
{
    struct ring r = {0};
    void *args[3][2];
    pact_promise *t[3];
    for (int i = 0; i < 3; i++) {
        args[i][0] = &r;
        args[i][1] = (void *)(intptr_t)i;
        t[i] = spawn(ring_task, args[i]);
    }
    run_ok();
    /* the three took turns in ring order, 100 rounds each */
    ck_assert_int_eq(strncmp(trace_text(),
                             "2 wakes 0\n0 wakes 1\n1 wakes 2\n2 wakes 0\n",
                             40),
                     0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(pact_promise_state(t[i]), PACT_FULFILLED);
        ck_assert_int_eq(int_value(t[i]), 100);
        pact_promise_unref(t[i]);
        ck_assert_ptr_null(r.d[i]);
    }
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
}
END_TEST

/* ---- ordering ----------------------------------------------------------- */

static pact_error *trace_task(void *arg, pact_value *result)
{
    (void)result;
    trace("%s", (const char *)arg);
    return NULL;
}

/* A task begins as a microtask, in order with the others, never inside
 * pact_task_spawn. */
START_TEST(spawn_starts_as_microtask)
{
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "m1"), 0);
    pact_promise *p = spawn(trace_task, "task runs");
    ck_assert_str_eq(trace_text(), "");
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "m2"), 0);
    trace("after spawn");
    run_ok();
    ck_assert_str_eq(trace_text(), "after spawn\nm1\ntask runs\nm2\n");
    pact_promise_unref(p);
}
END_TEST

static void m1_fn(void *ud)
{
    trace("m1");
    ck_assert_int_eq(pact_queue_microtask(ud, trace_fn, "m1b"), 0);
}

static pact_value trace_then(const pact_value *v, void *ud)
{
    (void)v;
    trace("%s", (const char *)ud);
    return pact_nothing();
}

static pact_error *settled_await_task(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    trace("task start");
    pact_queue_microtask(t_loop, m1_fn, t_loop);
    pact_promise *one = pact_resolved(t_loop, pact_int(1));
    pact_promise_unref(pact_then(one, trace_then, NULL, "then1"));
    pact_promise_unref(one);
    pact_value v = PACT_AWAIT(pact_resolved(t_loop, pact_int(7)));
    trace("after await %lld", (long long)v.u.i);
    return NULL;
}

/* Awaiting a settled promise still suspends: what was queued before the
 * await (a microtask, a then reaction) runs first, what they queue runs
 * after, as Node's
 *   queueMicrotask(async () => { trace('task start');
 *     queueMicrotask(() => { trace('m1'); queueMicrotask(() =>
 *       trace('m1b')); });
 *     Promise.resolve(1).then(() => trace('then1'));
 *     trace('after await ' + await Promise.resolve(7)); });
 *   queueMicrotask(() => trace('m0')); trace('main'); */
START_TEST(await_settled_still_suspends)
{
    pact_promise *p = spawn(settled_await_task, NULL);
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "m0"), 0);
    trace("main");
    run_ok();
    ck_assert_str_eq(trace_text(), "main\n"
                                   "task start\n"
                                   "m0\n"
                                   "m1\n"
                                   "then1\n"
                                   "after await 7\n"
                                   "m1b\n");
    pact_promise_unref(p);
}
END_TEST

/* ---- values ------------------------------------------------------------- */

struct val_ctx {
    pact_promise *p; /* the promise to await (the task's reference) */
    void *ptr;       /* what it was fulfilled with */
    pact_value got;
    pact_error *err; /* a reference */
    int freed_at_await;
};

static pact_error *take_owned_task(void *arg, pact_value *result)
{
    struct val_ctx *c = arg;
    int *x = new_int(5);
    c->ptr = x;
    pact_value v =
        PACT_AWAIT(pact_resolved(t_loop, pact_owned(x, counted_free)));
    c->got = v;
    c->freed_at_await = freed;
    *result = v; /* moves on to the task's promise */
    return NULL;
}

/* The task held the only reference: the owned value moves out (same
 * pointer, no copy), then into the task's promise; freed once, at the end. */
START_TEST(owned_value_moves_out)
{
    freed = 0;
    struct val_ctx c = {0};
    pact_promise *p = spawn(take_owned_task, &c);
    run_ok();
    ck_assert_int_eq(c.got.kind, PACT_OWNED);
    ck_assert_ptr_eq(c.got.u.owned.ptr, c.ptr);
    ck_assert_int_eq(c.freed_at_await, 0);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    const pact_value *v = pact_promise_value(p);
    ck_assert_int_eq(v->kind, PACT_OWNED);
    ck_assert_ptr_eq(v->u.owned.ptr, c.ptr);
    ck_assert_int_eq(*(int *)v->u.owned.ptr, 5);
    ck_assert_int_eq(freed, 0);
    pact_promise_unref(p);
    ck_assert_int_eq(freed, 1);
}
END_TEST

static pact_error *await_ctx_task(void *arg, pact_value *result)
{
    (void)result;
    struct val_ctx *c = arg;
    c->err = PACT_AWAIT_ERR(c->p, &c->got);
    c->freed_at_await = freed;
    return NULL;
}

/* Fulfilled from outside by a deferred the test drops: the task's is the
 * only reference left, so the value moves out; the task frees it itself. */
START_TEST(owned_value_from_deferred_moves_out)
{
    freed = 0;
    int *x = new_int(6);
    pact_deferred *d;
    struct val_ctx c = {.p = t_pending(&d), .ptr = x};
    t_settle_later(d, 2, pact_owned(x, counted_free), NULL);
    pact_promise *p = spawn(await_ctx_task, &c);
    run_ok();
    ck_assert_ptr_null(c.err);
    ck_assert_int_eq(c.got.kind, PACT_OWNED);
    ck_assert_ptr_eq(c.got.u.owned.ptr, x);
    ck_assert_int_eq(c.freed_at_await, 0);
    ck_assert_int_eq(freed, 0);
    pact_value_release(&c.got);
    ck_assert_int_eq(freed, 1);
    pact_promise_unref(p);
    ck_assert_int_eq(freed, 1);
}
END_TEST

/* The test still holds the promise: an owned value cannot be copied, so the
 * await fails with PACT_EINVAL and the value stays with the promise. */
START_TEST(owned_value_shared_is_einval)
{
    freed = 0;
    int *x = new_int(9);
    pact_promise *q = pact_resolved(t_loop, pact_owned(x, counted_free));
    struct val_ctx c = {.p = pact_promise_ref(q)};
    pact_promise *p = spawn(await_ctx_task, &c);
    run_ok();
    ck_assert_ptr_nonnull(c.err);
    ck_assert_int_eq(pact_error_code(c.err), PACT_EINVAL);
    ck_assert_int_eq(c.got.kind, PACT_NOTHING);
    ck_assert_int_eq(freed, 0);
    ck_assert_ptr_eq(pact_promise_value(q)->u.owned.ptr, x);
    pact_error_unref(c.err);
    pact_promise_unref(p);
    pact_promise_unref(q);
    ck_assert_int_eq(freed, 1);
}
END_TEST

/* JSON: the only holder gets the very reference; a shared promise gives a
 * new reference to the same object. Bytes: moved, or copied. */
START_TEST(json_and_bytes_values)
{
    /* JSON, only holder */
    json_t *j = json_pack("{si}", "a", 1);
    ck_assert_ptr_nonnull(j);
    struct val_ctx c1 = {.p = pact_resolved(t_loop, pact_json(j))};
    pact_promise *p1 = spawn(await_ctx_task, &c1);
    /* JSON, shared */
    json_t *k = json_pack("{si}", "b", 2);
    pact_promise *kq = pact_resolved(t_loop, pact_json(k));
    struct val_ctx c2 = {.p = pact_promise_ref(kq)};
    pact_promise *p2 = spawn(await_ctx_task, &c2);
    /* bytes, only holder */
    void *data = malloc(5);
    ck_assert_ptr_nonnull(data);
    memcpy(data, "hello", 5);
    struct val_ctx c3 = {.p = pact_resolved(t_loop, pact_bytes(data, 5))};
    pact_promise *p3 = spawn(await_ctx_task, &c3);
    /* bytes, shared */
    pact_promise *bq = pact_resolved(t_loop, pact_bytes_copy("world", 5));
    struct val_ctx c4 = {.p = pact_promise_ref(bq)};
    pact_promise *p4 = spawn(await_ctx_task, &c4);
    run_ok();

    ck_assert_ptr_null(c1.err);
    ck_assert_int_eq(c1.got.kind, PACT_JSON);
    ck_assert_ptr_eq(c1.got.u.json, j);
    ck_assert_uint_eq(j->refcount, 1);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "a")), 1);

    ck_assert_ptr_null(c2.err);
    ck_assert_int_eq(c2.got.kind, PACT_JSON);
    ck_assert_ptr_eq(c2.got.u.json, k);
    ck_assert_uint_eq(k->refcount, 2);

    ck_assert_ptr_null(c3.err);
    ck_assert_int_eq(c3.got.kind, PACT_BYTES);
    ck_assert_ptr_eq(c3.got.u.bytes.data, data);
    ck_assert_uint_eq(c3.got.u.bytes.len, 5);

    ck_assert_ptr_null(c4.err);
    ck_assert_int_eq(c4.got.kind, PACT_BYTES);
    const pact_value *shared = pact_promise_value(bq);
    ck_assert_ptr_ne(c4.got.u.bytes.data, shared->u.bytes.data);
    ck_assert_uint_eq(c4.got.u.bytes.len, 5);
    ck_assert_mem_eq(c4.got.u.bytes.data, "world", 5);

    pact_value_release(&c1.got);
    pact_value_release(&c2.got);
    ck_assert_uint_eq(k->refcount, 1);
    pact_value_release(&c3.got);
    pact_value_release(&c4.got);
    pact_promise *ps[] = {p1, p2, p3, p4, kq, bq};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        pact_promise_unref(ps[i]);
}
END_TEST

struct result_case {
    int which;
    pact_promise *adopt; /* case 3: the promise to adopt (a reference) */
};

static pact_error *result_task(void *arg, pact_value *result)
{
    struct result_case *rc = arg;
    switch (rc->which) {
    case 0:
        *result = pact_double(2.5);
        return NULL;
    case 1:
        *result = pact_json(json_string("out"));
        return NULL;
    case 2:
        *result = pact_bytes_copy("abc", 3);
        return NULL;
    case 3:
        *result = pact_promise_v(rc->adopt);
        return NULL;
    default:
        /* an error wins: the result is released */
        *result = pact_owned(new_int(1), counted_free);
        return PACT_ERROR(PACT_ERANGE, "no result after all");
    }
}

/* What a task stores in *result is its promise's value: scalars, JSON,
 * bytes, a promise to adopt; a returned error rejects and releases it. */
START_TEST(task_result_values)
{
    freed = 0;
    struct result_case rcs[5];
    pact_promise *ps[5];
    pact_deferred *d;
    pact_promise *later = t_pending(&d);
    t_settle_later(d, 3, pact_int(77), NULL);
    for (int i = 0; i < 5; i++) {
        rcs[i].which = i;
        rcs[i].adopt = i == 3 ? later : NULL;
        ps[i] = spawn(result_task, &rcs[i]);
    }
    struct got g = {0};
    watch(ps[4], &g);
    run_ok();
    const pact_value *v = pact_promise_value(ps[0]);
    ck_assert_int_eq(v->kind, PACT_DOUBLE);
    ck_assert_double_eq(v->u.d, 2.5);
    v = pact_promise_value(ps[1]);
    ck_assert_int_eq(v->kind, PACT_JSON);
    ck_assert_str_eq(json_string_value(v->u.json), "out");
    v = pact_promise_value(ps[2]);
    ck_assert_int_eq(v->kind, PACT_BYTES);
    ck_assert_uint_eq(v->u.bytes.len, 3);
    ck_assert_mem_eq(v->u.bytes.data, "abc", 3);
    ck_assert_int_eq(int_value(ps[3]), 77);
    ck_assert_int_eq(g.calls, 1);
    ck_assert_int_eq(g.code, PACT_ERANGE);
    ck_assert_int_eq(freed, 1);
    for (int i = 0; i < 5; i++)
        pact_promise_unref(ps[i]);
}
END_TEST

/* ---- pact_await_any ----------------------------------------------------- */

struct any_ctx {
    pact_promise *ps[2]; /* the task's references */
    size_t index;
    pact_error *err; /* a reference */
    pact_value v;
    int64_t loser; /* the other one, awaited afterwards */
    pact_state loser_state;
};

static pact_error *any_task(void *arg, pact_value *result)
{
    (void)result;
    struct any_ctx *c = arg;
    c->index = 99;
    c->err = pact_await_any(c->ps, 2, &c->index, &c->v);
    trace("any: index %zu", c->index);
    size_t other = c->index == 0 ? 1 : 0;
    c->loser_state = pact_promise_state(c->ps[other]);
    pact_value v = PACT_AWAIT(c->ps[other]); /* steals the reference */
    c->ps[other] = NULL;
    c->loser = v.kind == PACT_INT ? v.u.i : -1;
    trace("loser: %lld", (long long)c->loser);
    pact_promise_unref(c->ps[c->index]);
    c->ps[c->index] = NULL;
    return NULL;
}

/* The first to settle wins with its index and value; the other is still
 * ours, still pending, and can be awaited after. */
START_TEST(await_any_first_wins)
{
    pact_deferred *d0, *d1;
    struct any_ctx c = {.ps = {t_pending(&d0), t_pending(&d1)}};
    t_settle_later(d0, 30, pact_int(10), "settle 0");
    t_settle_later(d1, 5, pact_int(11), "settle 1");
    pact_promise *p = spawn(any_task, &c);
    run_ok();
    ck_assert_str_eq(trace_text(), "settle 1\nany: index 1\nsettle 0\n"
                                   "loser: 10\n");
    ck_assert_ptr_null(c.err);
    ck_assert_uint_eq(c.index, 1);
    ck_assert_int_eq(c.v.kind, PACT_INT);
    ck_assert_int_eq(c.v.u.i, 11);
    ck_assert_int_eq(c.loser_state, PACT_PENDING);
    ck_assert_int_eq(c.loser, 10);
    pact_promise_unref(p);
}
END_TEST

/* A rejected winner gives its error (the very object). */
START_TEST(await_any_rejected_winner)
{
    pact_error *e = PACT_ERROR(PACT_EACCES, "no entry");
    pact_deferred *d0, *d1;
    struct any_ctx c = {.ps = {t_pending(&d0), t_pending(&d1)}};
    t_settle_later(d0, 20, pact_int(20), "settle 0");
    t_settle_later(d1, 5, pact_throw(pact_error_ref(e)), "reject 1");
    pact_promise *p = spawn(any_task, &c);
    run_ok();
    ck_assert_str_eq(trace_text(), "reject 1\nany: index 1\nsettle 0\n"
                                   "loser: 20\n");
    ck_assert_ptr_eq(c.err, e);
    ck_assert_int_eq(c.v.kind, PACT_NOTHING);
    ck_assert_int_eq(c.loser, 20);
    pact_error_unref(c.err);
    pact_error_unref(e);
    pact_promise_unref(p);
}
END_TEST

/* Both settled already: the first in array order wins. */
START_TEST(await_any_both_settled)
{
    struct any_ctx c = {.ps = {pact_resolved(t_loop, pact_int(1)),
                               pact_resolved(t_loop, pact_int(2))}};
    pact_promise *p = spawn(any_task, &c);
    run_ok();
    ck_assert_ptr_null(c.err);
    ck_assert_uint_eq(c.index, 0);
    ck_assert_int_eq(c.v.u.i, 1);
    ck_assert_int_eq(c.loser_state, PACT_FULFILLED);
    ck_assert_int_eq(c.loser, 2);
    pact_promise_unref(p);
}
END_TEST

struct any_empty {
    pact_error *err;
    size_t index;
};

static pact_error *any_empty_task(void *arg, pact_value *result)
{
    (void)result;
    struct any_empty *c = arg;
    pact_promise *none[1] = {NULL};
    c->index = 5;
    pact_value v = pact_int(3);
    c->err = pact_await_any(none, 0, &c->index, &v);
    if (v.kind != PACT_NOTHING)
        c->index = 77;
    return NULL;
}

START_TEST(await_any_none_is_einval)
{
    struct any_empty c = {0};
    pact_promise *p = spawn(any_empty_task, &c);
    struct capture cap;
    capture_begin(&cap);
    run_ok();
    char *out = capture_end(&cap);
    ck_assert_ptr_nonnull(c.err);
    ck_assert_int_eq(pact_error_code(c.err), PACT_EINVAL);
    ck_assert_uint_eq(c.index, 0);
#ifdef PACT_DEBUG
    ck_assert_msg(strstr(out, "pact_await_any"), "stderr: '%s'", out);
#endif
    free(out);
    pact_error_unref(c.err);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    pact_promise_unref(p);
}
END_TEST

/* ---- sleep and yield ---------------------------------------------------- */

static pact_error *sleep_task(void *arg, pact_value *result)
{
    (void)arg;
    uint64_t t0 = now_us();
    pact_error *err = pact_sleep(25);
    if (err)
        return err;
    *result = pact_int((int64_t)(now_us() - t0));
    return NULL;
}

START_TEST(sleep_waits_at_least)
{
    pact_promise *p = spawn(sleep_task, NULL);
    uint64_t t0 = now_us();
    run_ok();
    ck_assert_int_ge(int_value(p), 25000);
    ck_assert_uint_ge(now_us() - t0, 25000);
    pact_promise_unref(p);
}
END_TEST

static void queue_imm2(void *ud)
{
    (void)ud;
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "imm2", NULL), 0);
}

static pact_error *yield_task(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    T_MUST(pact_timeout(t_loop, 1, trace_cb, "timer", NULL));
    T_MUST(pact_immediate(t_loop, trace_cb, "imm", NULL));
    pact_queue_microtask(t_loop, queue_imm2, NULL);
    t_spin_ms(3); /* the timer is due at the loop's next look */
    trace("yield");
    pact_error *err = pact_yield();
    trace("after yield");
    return err;
}

/* pact_yield resumes in the next check phase, as `await setImmediate()`:
 * a due timer and an immediate queued before it run first, an immediate
 * queued after it runs after. */
START_TEST(yield_lets_the_loop_turn)
{
    pact_promise *p = spawn(yield_task, NULL);
    struct got g = {0};
    watch(p, &g);
    run_ok();
    ck_assert_str_eq(trace_text(), "yield\ntimer\nimm\nafter yield\nimm2\n");
    ck_assert_int_eq(g.calls, 1);
    ck_assert_ptr_null(g.err);
    pact_promise_unref(p);
}
END_TEST

/* ---- misuse outside a task ---------------------------------------------- */

static pact_error *try_outside(void)
{
    PACT_AWAIT_TRY(pact_resolved(t_loop, pact_int(1)), NULL);
    return PACT_ERROR(PACT_EIO, "TRY went on (must not happen)");
}

START_TEST(await_outside_a_task)
{
    ck_assert_ptr_null(pact_task_current());
    pact_deferred *d;
    pact_promise *held = t_pending(&d);
    struct capture cap;
    capture_begin(&cap);
    pact_value v = pact_int(4);
    pact_error *e1 =
        PACT_AWAIT_ERR(pact_resolved(t_loop, pact_owned(new_int(1), free)), &v);
    pact_value w = PACT_AWAIT(held); /* steals: the deferred keeps its own */
    pact_error *e3 = pact_sleep(5);
    pact_error *e4 = pact_yield();
    pact_promise *ps[1] = {pact_resolved(t_loop, pact_int(2))};
    size_t idx = 9;
    pact_error *e5 = pact_await_any(ps, 1, &idx, NULL);
    pact_error *e6 = try_outside();
    char *out = capture_end(&cap);

    ck_assert_int_eq(pact_error_code(e1), PACT_ENOTASK);
    ck_assert_int_eq(v.kind, PACT_NOTHING);
    ck_assert_int_eq(w.kind, PACT_ERROR);
    ck_assert_int_eq(pact_error_code(w.u.error), PACT_ENOTASK);
    ck_assert_int_eq(pact_error_code(e3), PACT_ENOTASK);
    ck_assert_int_eq(pact_error_code(e4), PACT_ENOTASK);
    ck_assert_int_eq(pact_error_code(e5), PACT_ENOTASK);
    ck_assert_uint_eq(idx, 0);
    ck_assert_int_eq(pact_error_code(e6), PACT_ENOTASK);
    ck_assert_int_eq(t_count(out, "outside a task"), 6);
    ck_assert_msg(strstr(out, "PACT_AWAIT"), "stderr: '%s'", out);
    ck_assert_msg(strstr(out, "pact_sleep"), "stderr: '%s'", out);
    ck_assert_msg(strstr(out, "pact_yield"), "stderr: '%s'", out);
    ck_assert_msg(strstr(out, "pact_await_any"), "stderr: '%s'", out);
    free(out);
    /* the promise handed to await_any is still ours */
    ck_assert_int_eq(int_value(ps[0]), 2);
    pact_promise_unref(ps[0]);
    pact_value_release(&w);
    pact_error_unref(e1);
    pact_error_unref(e3);
    pact_error_unref(e4);
    pact_error_unref(e5);
    pact_error_unref(e6);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_int(0)), 0);
    pact_deferred_unref(d);
    run_ok();
    /* t_teardown: pact_loop_free fails if a promise was leaked */
}
END_TEST

/* ---- cancellation ------------------------------------------------------- */

struct cancel_ctx {
    pact_promise *never; /* the task's reference */
    int first, second, third;
};

static pact_error *cancel_task(void *arg, pact_value *result)
{
    (void)result;
    struct cancel_ctx *c = arg;
    trace("task waits");
    pact_error *err = PACT_AWAIT_ERR(c->never, NULL);
    c->first = err ? pact_error_code(err) : 0;
    trace("first await: %s", err ? pact_err_name(c->first) : "ok");
    pact_error_unref(err);
    pact_queue_microtask(t_loop, trace_fn, "microtask");
    err = pact_sleep(50);
    c->second = err ? pact_error_code(err) : 0;
    trace("second await: %s", err ? pact_err_name(c->second) : "ok");
    pact_error_unref(err);
    err = PACT_AWAIT_ERR(pact_resolved(t_loop, pact_int(1)), NULL);
    c->third = err ? pact_error_code(err) : 0;
    trace("third await: %s", err ? pact_err_name(c->third) : "ok");
    return err;
}

/* ---- cancellation by an abort token (pact_task_opts.abort) -------------- */

/* A body that awaits @p wait (a pending promise, borrowed), then yields;
 * it ends with the first await's error. @p self: abort it first. */
struct ab_body {
    pact_promise *wait;
    pact_abort *self;
    pact_error *reason;
    int runs, first, second;
    bool first_cause_ok;
};

static pact_error *ab_task(void *arg, pact_value *result)
{
    (void)result;
    struct ab_body *b = arg;
    b->runs++;
    if (b->self)
        T_MUST(pact_abort_abort(b->self, b->reason));
    pact_error *e = PACT_AWAIT_ERR(pact_promise_ref(b->wait), NULL);
    b->first = e ? pact_error_code(e) : 0;
    b->first_cause_ok = e && pact_error_cause(e) == b->reason;
    pact_error *e2 = pact_yield();
    b->second = e2 ? pact_error_code(e2) : 0;
    pact_error_unref(e2);
    return e;
}

/* Awaits a task's promise (stolen) and records how it settled. */
struct ab_check {
    pact_promise *p;
    pact_error *reason;
    int done, code;
    bool cause_ok;
};

static pact_error *ab_checker(void *arg, pact_value *result)
{
    (void)result;
    struct ab_check *c = arg;
    pact_error *e = PACT_AWAIT_ERR(c->p, NULL);
    c->p = NULL;
    c->done++;
    c->code = e ? pact_error_code(e) : 0;
    c->cause_ok = e && pact_error_cause(e) == c->reason;
    pact_error_unref(e);
    return NULL;
}

static pact_promise *ab_spawn(struct ab_body *b, pact_abort *a)
{
    pact_task_opts o = {.abort = a};
    pact_promise *p = pact_task_spawn(t_loop, ab_task, b, &o);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void ab_check_start(struct ab_check *c, pact_promise *task)
{
    c->p = task;
    pact_promise_unref(spawn(ab_checker, c));
}

static pact_error *ab_reason(void)
{
    pact_error *r = PACT_ERROR(PACT_ETIMEDOUT, "the test gave up");
    ck_assert_ptr_nonnull(r);
    return r;
}

/* Aborted already at spawn: the body never runs, no task is live. */
START_TEST(abort_token_aborted_at_spawn)
{
    pact_deferred *d;
    pact_error *reason = ab_reason();
    pact_abort *a;
    T_MUST(pact_abort_new(t_loop, &a));
    T_MUST(pact_abort_abort(a, reason));
    struct ab_body b = {.wait = t_pending(&d), .reason = reason};
    struct ab_check c = {.reason = reason};
    ab_check_start(&c, ab_spawn(&b, a));
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 1); /* the checker only */
    run_ok();
    ck_assert_int_eq(b.runs, 0);
    ck_assert_int_eq(c.done, 1);
    ck_assert_int_eq(c.code, PACT_ECANCELED);
    ck_assert(c.cause_ok);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_abort_unref(a);
    pact_error_unref(reason);
    pact_promise_unref(b.wait);
    pact_deferred_unref(d);
}
END_TEST

/* Aborted after spawn but before the microtask that starts it. */
START_TEST(abort_token_before_start)
{
    pact_deferred *d;
    pact_error *reason = ab_reason();
    pact_abort *a;
    T_MUST(pact_abort_new(t_loop, &a));
    struct ab_body b = {.wait = t_pending(&d), .reason = reason};
    struct ab_check c = {.reason = reason};
    ab_check_start(&c, ab_spawn(&b, a));
    T_MUST(pact_abort_abort(a, reason));
    run_ok();
    ck_assert_int_eq(b.runs, 0);
    ck_assert_int_eq(c.done, 1);
    ck_assert_int_eq(c.code, PACT_ECANCELED);
    ck_assert(c.cause_ok);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_abort_unref(a);
    pact_error_unref(reason);
    pact_promise_unref(b.wait);
    pact_deferred_unref(d);
}
END_TEST

/* Aborted while suspended: the await resumes later (not inside the abort)
 * with ECANCELED caused by the reason, and so does the next one; the
 * task's rejection is not reported as unhandled. */
START_TEST(abort_token_while_suspended)
{
    pact_deferred *d;
    pact_error *reason = ab_reason();
    pact_abort *a;
    T_MUST(pact_abort_new(t_loop, &a));
    struct ab_body b = {.wait = t_pending(&d), .reason = reason};
    pact_promise *p = ab_spawn(&b, a);
    run_ok(); /* suspended on a promise that never settles */
    ck_assert_int_eq(b.runs, 1);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 1);
    T_MUST(pact_abort_abort(a, reason));
    ck_assert_int_eq(b.first, 0); /* not resumed inside the abort */
    struct ab_check c = {.reason = reason};
    ab_check_start(&c, pact_promise_ref(p));
    struct capture cap;
    capture_begin(&cap);
    run_ok();
    char *out = capture_end(&cap);
    ck_assert_msg(!strstr(out, "nhandled"), "stderr: '%s'", out);
    free(out);
    ck_assert_int_eq(b.first, PACT_ECANCELED);
    ck_assert(b.first_cause_ok);
    ck_assert_int_eq(b.second, PACT_ECANCELED);
    ck_assert_int_eq(c.done, 1);
    ck_assert_int_eq(c.code, PACT_ECANCELED);
    ck_assert(c.cause_ok);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_promise_unref(p);
    pact_abort_unref(a);
    pact_error_unref(reason);
    pact_promise_unref(b.wait);
    pact_deferred_unref(d);
}
END_TEST

/* Unhandled: nothing awaits the cancelled task, and nothing is reported. */
START_TEST(abort_token_not_unhandled)
{
    pact_deferred *d;
    pact_abort *a;
    T_MUST(pact_abort_new(t_loop, &a));
    struct ab_body b = {.wait = t_pending(&d)};
    pact_promise_unref(ab_spawn(&b, a));
    run_ok();
    T_MUST(pact_abort_abort(a, NULL));
    struct capture cap;
    capture_begin(&cap);
    run_ok();
    char *out = capture_end(&cap);
    ck_assert_msg(!strstr(out, "nhandled"), "stderr: '%s'", out);
    free(out);
    ck_assert_int_eq(b.first, PACT_ECANCELED);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_abort_unref(a);
    pact_promise_unref(b.wait);
    pact_deferred_unref(d);
}
END_TEST

/* A token that outlives the finished task: aborting it later leaves that
 * one alone (it stopped listening when it ended) and cancels the task still
 * suspended with the same token. */
START_TEST(abort_token_after_finish)
{
    pact_deferred *d, *d2;
    pact_abort *a;
    T_MUST(pact_abort_new(t_loop, &a));
    struct ab_body b = {.wait = t_pending(&d)};
    struct ab_body b2 = {.wait = t_pending(&d2)};
    struct ab_check c = {0}, c2 = {0};
    ab_check_start(&c, ab_spawn(&b, a));
    ab_check_start(&c2, ab_spawn(&b2, a));
    run_ok();
    T_MUST(pact_deferred_resolve(d, pact_int(1)));
    pact_deferred_unref(d);
    run_ok();
    ck_assert_int_eq(b.runs, 1);
    ck_assert_int_eq(b.first, 0);
    ck_assert_int_eq(c.done, 1);
    ck_assert_int_eq(c.code, 0);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 2);
    T_MUST(pact_abort_abort(a, NULL));
    run_ok();
    ck_assert_int_eq(c.done, 1);
    ck_assert_int_eq(c.code, 0);
    ck_assert_int_eq(b2.first, PACT_ECANCELED);
    ck_assert_int_eq(c2.code, PACT_ECANCELED);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_abort_unref(a);
    pact_promise_unref(b.wait);
    pact_promise_unref(b2.wait);
    pact_deferred_unref(d2);
}
END_TEST

/* One token shared by 1,000 suspended tasks (250 under TSan, whose fibers
 * a loaded machine made too slow for the case's minute), aborted once. */
#define AB_MANY (T_TSAN ? 250 : 1000)
START_TEST(abort_token_shared_by_many)
{
    pact_deferred *d;
    pact_error *reason = ab_reason();
    pact_abort *a;
    T_MUST(pact_abort_new(t_loop, &a));
    pact_promise *wait = t_pending(&d);
    struct ab_body *b = calloc(AB_MANY, sizeof *b);
    struct ab_check *c = calloc(AB_MANY, sizeof *c);
    ck_assert(b && c);
    for (int i = 0; i < AB_MANY; i++) {
        b[i] = (struct ab_body){.wait = wait, .reason = reason};
        c[i] = (struct ab_check){.reason = reason};
        ab_check_start(&c[i], ab_spawn(&b[i], a));
    }
    run_ok();
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 2 * AB_MANY);
    T_MUST(pact_abort_abort(a, reason));
    run_ok();
    for (int i = 0; i < AB_MANY; i++) {
        ck_assert_int_eq(b[i].first, PACT_ECANCELED);
        ck_assert_int_eq(b[i].second, PACT_ECANCELED);
        ck_assert_int_eq(c[i].code, PACT_ECANCELED);
        ck_assert(c[i].cause_ok);
    }
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    free(b);
    free(c);
    pact_abort_unref(a);
    pact_error_unref(reason);
    pact_promise_unref(wait);
    pact_deferred_unref(d);
}
END_TEST

/* Another task aborts the token of a suspended one. */
struct ab_killer {
    pact_abort *a;
    pact_error *reason;
};

static pact_error *ab_killer_task(void *arg, pact_value *result)
{
    (void)result;
    struct ab_killer *k = arg;
    pact_error *e = pact_yield(); /* after the victim has suspended */
    ck_assert_ptr_null(e);
    T_MUST(pact_abort_abort(k->a, k->reason));
    return NULL;
}

START_TEST(abort_token_from_another_task)
{
    pact_deferred *d;
    pact_error *reason = ab_reason();
    pact_abort *a;
    T_MUST(pact_abort_new(t_loop, &a));
    struct ab_body b = {.wait = t_pending(&d), .reason = reason};
    struct ab_check c = {.reason = reason};
    ab_check_start(&c, ab_spawn(&b, a));
    struct ab_killer k = {a, reason};
    pact_promise_unref(spawn(ab_killer_task, &k));
    run_ok();
    ck_assert_int_eq(b.runs, 1);
    ck_assert_int_eq(b.first, PACT_ECANCELED);
    ck_assert(b.first_cause_ok);
    ck_assert_int_eq(b.second, PACT_ECANCELED);
    ck_assert_int_eq(c.code, PACT_ECANCELED);
    ck_assert(c.cause_ok);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_abort_unref(a);
    pact_error_unref(reason);
    pact_promise_unref(b.wait);
    pact_deferred_unref(d);
}
END_TEST

/* The task aborts its own token: its next await fails at once. */
START_TEST(abort_token_inside_the_task)
{
    pact_deferred *d;
    pact_error *reason = ab_reason();
    pact_abort *a;
    T_MUST(pact_abort_new(t_loop, &a));
    struct ab_body b = {.wait = t_pending(&d), .self = a, .reason = reason};
    struct ab_check c = {.reason = reason};
    ab_check_start(&c, ab_spawn(&b, a));
    run_ok();
    ck_assert_int_eq(b.runs, 1);
    ck_assert_int_eq(b.first, PACT_ECANCELED);
    ck_assert(b.first_cause_ok);
    ck_assert_int_eq(b.second, PACT_ECANCELED);
    ck_assert_int_eq(c.code, PACT_ECANCELED);
    ck_assert(c.cause_ok);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_abort_unref(a);
    pact_error_unref(reason);
    pact_promise_unref(b.wait);
    pact_deferred_unref(d);
}
END_TEST

/* A task suspended on a promise that nothing will settle keeps
 * pact_loop_free from freeing; pact_loop_close_all cancels its await, and
 * every later one, so it can end. */
START_TEST(close_all_cancels_suspended_task)
{
    pact_deferred *d;
    struct cancel_ctx c = {.never = t_pending(&d)};
    pact_promise *p = spawn(cancel_task, &c);
    struct got g = {0};
    watch(p, &g);
    run_ok(); /* returns: a suspended task is not work */
    ck_assert_str_eq(trace_text(), "task waits\n");
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 1);

    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_free(t_loop);
    char *out = capture_end(&cap);
    ck_assert_int_eq(rc, PACT_EBUSY);
#ifdef PACT_DEBUG
    ck_assert_msg(strstr(out, "task"), "stderr: '%s'", out);
    ck_assert_msg(strstr(out, "pact_loop_close_all"), "stderr: '%s'", out);
#endif
    free(out);

    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    run_ok();
    ck_assert_str_eq(trace_text(), "task waits\n"
                                   "first await: ECANCELED\n"
                                   "second await: ECANCELED\n"
                                   "third await: ECANCELED\n"
                                   "microtask\n");
    ck_assert_int_eq(c.first, PACT_ECANCELED);
    ck_assert_int_eq(c.second, PACT_ECANCELED);
    ck_assert_int_eq(c.third, PACT_ECANCELED);
    ck_assert_int_eq(g.calls, 1);
    ck_assert_int_eq(g.code, PACT_ECANCELED);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_deferred_unref(d); /* breaks the promise nobody waits on now */
    run_ok();
    pact_promise_unref(p);
}
END_TEST

/* The same, freed right after the task ends: whatever the cancelled await
 * left on the deferred's promise goes with the loop. */
START_TEST(close_all_then_free_at_once)
{
    pact_deferred *d;
    struct cancel_ctx c = {.never = t_pending(&d)};
    pact_promise *p = spawn(cancel_task, &c);
    struct got g = {0};
    watch(p, &g);
    run_ok();
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    run_ok();
    ck_assert_int_eq(g.code, PACT_ECANCELED);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_int(1)), 0);
    pact_deferred_unref(d);
    pact_promise_unref(p);
    /* no run: the stale wake-up is dropped by pact_loop_free */
}
END_TEST

struct cycle_ctx {
    pact_promise *p; /* the await takes it */
    int first, second;
};

static pact_error *cycle_task(void *arg, pact_value *result)
{
    (void)result;
    struct cycle_ctx *c = arg;
    pact_error *err = PACT_AWAIT_ERR(c->p, NULL);
    c->first = err ? pact_error_code(err) : 0;
    pact_error_unref(err);
    err = PACT_AWAIT_ERR(pact_resolved(t_loop, pact_int(1)), NULL);
    c->second = err ? pact_error_code(err) : 0;
    return err;
}

/* A task awaiting a promise of a cycle (two promises resolved with each
 * other) waits on it with the node it keeps for its awaits, which is in no
 * slab: pact_loop_close_all's search for cycles must cancel that await as
 * well, and the loop then frees (the teardown asserts it). */
START_TEST(close_all_cancels_await_on_cycle)
{
    pact_promise *p1 = t_promise_cycle(NULL);
    struct cycle_ctx c = {.p = p1, .first = -1, .second = -1};
    pact_promise *p = spawn(cycle_task, &c);
    struct got g = {0};
    watch(p, &g);
    run_ok();
    ck_assert_int_eq(c.first, -1);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 1);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    run_ok();
    ck_assert_int_eq(c.first, PACT_ECANCELED);
    ck_assert_int_eq(c.second, PACT_ECANCELED);
    ck_assert_int_eq(g.calls, 1);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_promise_unref(p);
}
END_TEST

struct orphan_ctx {
    int code;
    char msg[128];
    int after;
};

static pact_error *orphan_task(void *arg, pact_value *result)
{
    struct orphan_ctx *c = arg;
    pact_error *err = PACT_AWAIT_ERR(pact_race(t_loop, NULL, 0), NULL);
    c->code = err ? pact_error_code(err) : 0;
    snprintf(c->msg, sizeof c->msg, "%s", err ? pact_error_message(err) : "");
    pact_error_unref(err);
    err = pact_sleep(1); /* the task is not cancelled: it goes on */
    c->after = err ? pact_error_code(err) : 1;
    pact_error_unref(err);
    *result = pact_int(1);
    return NULL;
}

/* A promise nobody else holds can never settle: awaiting it gives
 * PACT_ECANCELED instead of suspending forever. */
START_TEST(await_unheld_promise_cancelled)
{
    struct orphan_ctx c = {0};
    pact_promise *p = spawn(orphan_task, &c);
    run_ok();
    ck_assert_int_eq(c.code, PACT_ECANCELED);
    ck_assert_msg(strstr(c.msg, "never settle"), "message: '%s'", c.msg);
    ck_assert_int_eq(c.after, 1);
    ck_assert_int_eq(int_value(p), 1);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_promise_unref(p);
}
END_TEST

/* When no stack can be mapped (here: more address space than a process
 * has; in practice vm.max_map_count or memory), the promise comes back
 * already rejected with PACT_ENOMEM naming the likely ceiling, and the body
 * never runs. */
static int nostack_runs;

static pact_error *nostack_body(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    nostack_runs++;
    return NULL;
}

static void nostack_seen(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    ck_assert_int_eq(pact_error_code(err), PACT_ENOMEM);
    ++*(int *)ud;
}

START_TEST(no_stack_rejects_at_once)
{
    nostack_runs = 0;
    pact_task_opts o = {.name = "huge", .stack_size = (size_t)1 << 60};
    pact_promise *p = pact_task_spawn(t_loop, nostack_body, NULL, &o);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    pact_error *e = pact_promise_error(p);
    ck_assert_int_eq(pact_error_code(e), PACT_ENOMEM);
    ck_assert_msg(strstr(pact_error_message(e), "vm.max_map_count"),
                  "message: %s", pact_error_message(e));
    ck_assert_int_eq(pact_loop_tasks(t_loop), 0);
    int handled = 0;
    ck_assert_int_eq(pact_promise_callback(p, nostack_seen, &handled), 0);
    pact_promise_unref(p);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(handled, 1);
    ck_assert_int_eq(nostack_runs, 0);
    /* the loop still spawns tasks of a possible size */
    p = pact_task_spawn(t_loop, nostack_body, NULL, NULL);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(nostack_runs, 1);
    pact_promise_unref(p);
}
END_TEST

/* ---- options and introspection ------------------------------------------ */

struct seen_task {
    pact_task *self;
    pact_loop *loop;
    char name[256];
    const char *file;
    int line;
    size_t stack;
    size_t tasks;
};

static pact_error *introspect_task(void *arg, pact_value *result)
{
    (void)result;
    struct seen_task *s = arg;
    pact_task *t = pact_task_current();
    s->self = t;
    s->loop = pact_task_loop(t);
    snprintf(s->name, sizeof s->name, "%s", pact_task_name(t));
    s->file = pact_task_file(t);
    s->line = pact_task_line(t);
    s->stack = pact_task_stack_size(t);
    s->tasks = pact_loop_tasks(s->loop);
    return pact_yield();
}

struct in_cb {
    int calls;
    pact_task *current;
};

static void current_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct in_cb *c = ud;
    c->calls++;
    c->current = pact_task_current();
}

START_TEST(options_and_introspection)
{
    ck_assert_ptr_null(pact_task_current());
    struct seen_task named = {0}, plain = {0}, sized = {0}, tiny = {0};
    pact_task_opts o1 = {.name = "worker-7"};
    pact_promise *p1 = pact_task_spawn(t_loop, introspect_task, &named, &o1);
    int line = __LINE__ + 1;
    pact_promise *p2 = pact_task_spawn(t_loop, introspect_task, &plain, NULL);
    pact_task_opts o3 = {.stack_size = 100000};
    pact_promise *p3 = pact_task_spawn(t_loop, introspect_task, &sized, &o3);
    pact_task_opts o4 = {.stack_size = 1};
    pact_promise *p4 = pact_task_spawn(t_loop, introspect_task, &tiny, &o4);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 4);
    struct in_cb in_timer = {0};
    ck_assert_int_eq(pact_timeout(t_loop, 1, current_cb, &in_timer, NULL), 0);
    run_ok();
    ck_assert_ptr_null(pact_task_current());
    /* a timer runs on the loop's stack, while the tasks are suspended */
    ck_assert_int_eq(in_timer.calls, 1);
    ck_assert_ptr_null(in_timer.current);

    ck_assert_ptr_nonnull(named.self);
    ck_assert_ptr_nonnull(plain.self);
    ck_assert_ptr_ne(named.self, plain.self);
    ck_assert_ptr_eq(named.loop, t_loop);
    ck_assert_ptr_eq(plain.loop, t_loop);
    ck_assert_str_eq(named.name, "worker-7");
    char want[512];
    snprintf(want, sizeof want, "%s:%d", __FILE__, line);
    ck_assert_str_eq(plain.name, want);
    ck_assert_str_eq(plain.file, __FILE__);
    ck_assert_int_eq(plain.line, line);
    ck_assert_str_eq(named.file, __FILE__);
    ck_assert_int_eq(named.line, line - 2);
    ck_assert_uint_eq(named.tasks, 4);
    /* sizes: at least what was asked (exact figures: stack_size_rounding) */
    ck_assert_uint_ge(named.stack, 256 * 1024);
    ck_assert_uint_ge(sized.stack, 100000);
    ck_assert_uint_lt(sized.stack, named.stack);
    ck_assert_uint_ge(tiny.stack, 1);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_promise_unref(p1);
    pact_promise_unref(p2);
    pact_promise_unref(p3);
    pact_promise_unref(p4);

    /* NULL-safe introspection */
    ck_assert_ptr_null(pact_task_name(NULL));
    ck_assert_ptr_null(pact_task_loop(NULL));
    ck_assert_uint_eq(pact_task_stack_size(NULL), 0);
    ck_assert_uint_eq(pact_loop_tasks(NULL), 0);
}
END_TEST

/* The loop's default stack size: rounded up to pages, at least 16 KiB; 0 is
 * EINVAL. */
START_TEST(loop_stack_size_setting)
{
    struct seen_task a = {0}, b = {0}, c = {0};
    ck_assert_int_eq(pact_loop_set_stack_size(t_loop, 70000), 0);
    pact_promise *pa = spawn(introspect_task, &a);
    run_ok();
    ck_assert_int_eq(pact_loop_set_stack_size(t_loop, 1), 0);
    pact_promise *pb = spawn(introspect_task, &b);
    /* a task's own size still wins over the loop's */
    pact_task_opts o = {.stack_size = 128 * 1024};
    pact_promise *pc = pact_task_spawn(t_loop, introspect_task, &c, &o);
    run_ok();
    ck_assert_uint_eq(a.stack, round_pages(70000));
    ck_assert_uint_eq(b.stack, round_pages(16 * 1024));
    ck_assert_uint_eq(c.stack, 128 * 1024);
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_set_stack_size(t_loop, 0);
    char *out = capture_end(&cap);
    ck_assert_int_eq(rc, PACT_EINVAL);
    free(out);
    pact_promise_unref(pa);
    pact_promise_unref(pb);
    pact_promise_unref(pc);
}
END_TEST

/* The exact sizes task.h promises for a task: its own size rounded up to
 * whole pages, else the default of 256 KiB, and pact_task_stack_size
 * reports that usable size (the loop's setting: loop_stack_size_setting). */
START_TEST(stack_size_rounding)
{
    struct seen_task dflt = {0}, sized = {0}, paged = {0};
    pact_promise *p1 = spawn(introspect_task, &dflt);
    pact_task_opts o2 = {.stack_size = 100000};
    pact_promise *p2 = pact_task_spawn(t_loop, introspect_task, &sized, &o2);
    pact_task_opts o3 = {.stack_size = 64 * 1024};
    pact_promise *p3 = pact_task_spawn(t_loop, introspect_task, &paged, &o3);
    run_ok();
    pact_promise_unref(p1);
    pact_promise_unref(p2);
    pact_promise_unref(p3);
    ck_assert_uint_eq(dflt.stack, 256 * 1024);
    ck_assert_uint_eq(sized.stack, round_pages(100000));
    ck_assert_uint_eq(paged.stack, 64 * 1024);
}
END_TEST

/* ---- the stack pool ----------------------------------------------------- */

enum { PROBE = 256 };

struct probe {
    bool write;
    uintptr_t addr; /* the probe buffer's */
    int marked;     /* bytes found holding the mark */
};

/* A stack that is reused keeps what the last task left on it; a fresh
 * mapping is zeros. */
static __attribute__((noinline)) void probe_stack(struct probe *pr)
{
    volatile unsigned char buf[PROBE];
    VALGRIND_MAKE_MEM_DEFINED((void *)buf, sizeof buf);
    pr->addr = (uintptr_t)buf;
    if (pr->write) {
        for (int i = 0; i < PROBE; i++)
            buf[i] = 0xa5;
        return;
    }
    pr->marked = 0;
    for (int i = 0; i < PROBE; i++)
        pr->marked += buf[i] == 0xa5;
}

/* One frame of padding between the body and the probe: a task's last
 * switch saves registers just below its entry frame, over what was there. */
static __attribute__((noinline)) void probe_deeper(struct probe *pr)
{
    volatile unsigned char pad[512];
    pad[0] = 1;
    probe_stack(pr);
    pad[1] = pad[0];
}

static pact_error *probe_task(void *arg, pact_value *result)
{
    (void)result;
    probe_deeper(arg);
    return NULL;
}

/* Run one probe task to the end (write or read). */
static void probe_run(struct probe *pr)
{
    pact_promise *p = spawn(probe_task, pr);
    run_ok();
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    pact_promise_unref(p);
}

START_TEST(stack_pool_reuse)
{
    /* pooled (the default): the next task runs on the same stack */
    struct probe w = {.write = true}, r = {0};
    probe_run(&w);
    probe_run(&r);
    ck_assert_uint_eq(r.addr, w.addr);
    ck_assert_int_eq(r.marked, PROBE);

    /* trimming the pool to 0 unmaps the kept stack: the next one is new */
    struct probe w2 = {.write = true}, r2 = {0};
    probe_run(&w2);
    ck_assert_int_eq(pact_loop_set_stack_pool(t_loop, 0), 0);
    probe_run(&r2);
    ck_assert_int_eq(r2.marked, 0);

    /* with no pool, every stack is new */
    struct probe w3 = {.write = true}, r3 = {0};
    probe_run(&w3);
    probe_run(&r3);
    ck_assert_int_eq(r3.marked, 0);

    /* back on: reused again */
    ck_assert_int_eq(pact_loop_set_stack_pool(t_loop, 4), 0);
    struct probe w4 = {.write = true}, r4 = {0};
    probe_run(&w4);
    probe_run(&r4);
    ck_assert_int_eq(r4.marked, PROBE);

    /* a new default size: the pooled stacks are the old size, not reused */
    ck_assert_int_eq(pact_loop_set_stack_size(t_loop, 128 * 1024), 0);
    struct probe r5 = {0};
    probe_run(&r5);
    ck_assert_int_eq(r5.marked, 0);
}
END_TEST

/* ---- the pool's surplus ---------------------------------------------------
 * A stack is seen from outside by the page of its task's frame (the real
 * frame, not a sanitizer's fake one) and whether that page is still mapped
 * (mincore fails with ENOMEM on an unmapped range): nothing here touches
 * the pool to look at it. */

#define BURST 12

struct burst {
    uintptr_t page[BURST];
    int reused[BURST]; /* found the marks a task before left */
    int started;
};

static pact_error *burst_task(void *arg, pact_value *result)
{
    (void)result;
    struct burst *b = arg;
    int i = b->started++;
    uintptr_t at = (uintptr_t)__builtin_frame_address(0);
    b->page[i] = at / page_size() * page_size();
    /* suspended: every task of the burst holds its stack at once */
    pact_error *err = pact_yield();
    /* then, as the probe tasks do, read what a task before left on this
     * stack, and leave the marks for the next */
    struct probe r = {0}, w = {.write = true};
    probe_deeper(&r);
    probe_deeper(&w);
    b->reused[i] = r.marked == PROBE;
    return err;
}

static int burst_reused(const struct burst *b)
{
    int n = 0;
    for (int i = 0; i < BURST; i++)
        n += b->reused[i];
    return n;
}

/* Run BURST tasks that all live at the same time, to the end. */
static void burst_run(pact_loop *loop, struct burst *b)
{
    b->started = 0;
    pact_promise *p[BURST];
    for (int i = 0; i < BURST; i++) {
        p[i] = pact_task_spawn(loop, burst_task, b, NULL);
        ck_assert_ptr_nonnull(p[i]);
    }
    ck_assert_int_eq(pact_loop_run(loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(b->started, BURST);
    for (int i = 0; i < BURST; i++) {
        ck_assert_int_eq(pact_promise_state(p[i]), PACT_FULFILLED);
        pact_promise_unref(p[i]);
    }
}

static bool page_mapped(uintptr_t page)
{
    unsigned char v;
    return mincore((void *)page, page_size(), &v) == 0;
}

static int burst_mapped(const struct burst *b)
{
    int n = 0;
    for (int i = 0; i < BURST; i++)
        n += page_mapped(b->page[i]);
    return n;
}

static bool burst_has(const struct burst *b, uintptr_t page)
{
    for (int i = 0; i < BURST; i++)
        if (b->page[i] == page)
            return true;
    return false;
}

START_TEST(stack_surplus_reused)
{
    /* a pool of 2, a burst of 12: the 10 beyond it are kept as surplus
     * (without it they would be unmapped as each task ends) */
    ck_assert_int_eq(pact_loop_set_stack_pool(t_loop, 2), 0);
    struct burst a, b;
    burst_run(t_loop, &a);
    /* pact_loop_run returned with the surplus held: its trim timer does not
     * keep the loop alive (had it, the run would have lasted until the
     * trim, and the stacks would be gone) */
    ck_assert_int_eq(burst_mapped(&a), BURST);
    /* the next burst runs on the very same stacks, none newly mapped */
    burst_run(t_loop, &b);
    for (int i = 0; i < BURST; i++)
        ck_assert_msg(burst_has(&a, b.page[i]), "task %d got a new stack", i);
    ck_assert_int_eq(burst_reused(&b), BURST);
    ck_assert_int_eq(burst_mapped(&b), BURST);
    /* the trim timer is no handle: pact_loop_close_all leaves it be, and
     * the fixture's pact_loop_free does not refuse for it */
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(burst_mapped(&b), BURST);
}
END_TEST

static int trim_ticks;
static void trim_check(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    const struct burst *b = ud;
    /* done when only the pool is left, or after a generous bound */
    if (burst_mapped(b) <= 2 || ++trim_ticks >= 300)
        pact_loop_stop(t_loop);
}

START_TEST(stack_surplus_trimmed)
{
    ck_assert_int_eq(pact_loop_set_stack_pool(t_loop, 2), 0);
    struct burst a;
    burst_run(t_loop, &a);
    ck_assert_int_eq(burst_mapped(&a), BURST);
    /* keep the loop running (a referenced timer) until the trim has
     * happened: 300 ticks of 100 ms bound it, far past the linger */
    trim_ticks = 0;
    pact_handle h;
    ck_assert_int_eq(pact_interval(t_loop, 100, trim_check, &a, &h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 1); /* stopped */
    ck_assert_int_eq(pact_clear(t_loop, h), 0);
    ck_assert_int_lt(trim_ticks, 300);
    /* the pool's two are kept indefinitely: the last two tasks' */
    ck_assert_int_eq(burst_mapped(&a), 2);
    /* the next burst finds the marks on those two only (a new mapping may
     * land where an old one was, but it is zeros) */
    struct burst b;
    burst_run(t_loop, &b);
    ck_assert_int_eq(burst_reused(&b), 2);
}
END_TEST

START_TEST(stack_surplus_none_without_pool)
{
    /* pool 0: nothing kept, surplus included */
    ck_assert_int_eq(pact_loop_set_stack_pool(t_loop, 0), 0);
    struct burst a;
    burst_run(t_loop, &a);
    ck_assert_int_eq(burst_mapped(&a), 0);
}
END_TEST

START_TEST(stack_surplus_settings_changed)
{
    struct burst a;
    /* the pool shrunk while a surplus is held: cut to the new size now */
    ck_assert_int_eq(pact_loop_set_stack_pool(t_loop, 2), 0);
    burst_run(t_loop, &a);
    ck_assert_int_eq(burst_mapped(&a), BURST);
    ck_assert_int_eq(pact_loop_set_stack_pool(t_loop, 1), 0);
    ck_assert_int_eq(burst_mapped(&a), 1);
    ck_assert_int_eq(pact_loop_set_stack_pool(t_loop, 0), 0);
    ck_assert_int_eq(burst_mapped(&a), 0);

    /* a new stack size: every pooled stack is released */
    ck_assert_int_eq(pact_loop_set_stack_pool(t_loop, 2), 0);
    burst_run(t_loop, &a);
    ck_assert_int_eq(burst_mapped(&a), BURST);
    ck_assert_int_eq(pact_loop_set_stack_size(t_loop, 128 * 1024), 0);
    ck_assert_int_eq(burst_mapped(&a), 0);

    /* guard pages off, then on: released each time */
    burst_run(t_loop, &a);
    ck_assert_int_eq(burst_mapped(&a), BURST);
    ck_assert_int_eq(pact_loop_set_stack_guard(t_loop, false), 0);
    ck_assert_int_eq(burst_mapped(&a), 0);
    burst_run(t_loop, &a);
    ck_assert_int_eq(burst_mapped(&a), BURST);
    ck_assert_int_eq(pact_loop_set_stack_guard(t_loop, true), 0);
    ck_assert_int_eq(burst_mapped(&a), 0);

    /* the same settings again release nothing */
    burst_run(t_loop, &a);
    ck_assert_int_eq(pact_loop_set_stack_guard(t_loop, true), 0);
    ck_assert_int_eq(pact_loop_set_stack_size(t_loop, 128 * 1024), 0);
    ck_assert_int_eq(burst_mapped(&a), BURST);
    /* a larger pool takes the surplus in; the loop still ends with it */
    ck_assert_int_eq(pact_loop_set_stack_pool(t_loop, 100), 0);
    burst_run(t_loop, &a);
    ck_assert_int_eq(burst_mapped(&a), BURST);
}
END_TEST

START_TEST(stack_surplus_released_on_map_failure)
{
    /* a stack that cannot be mapped (here: too large for the address
     * space; in a daemon: vm.max_map_count reached) lets the surplus go
     * before it gives up, the pool's own stacks stay */
    ck_assert_int_eq(pact_loop_set_stack_pool(t_loop, 2), 0);
    struct burst a;
    burst_run(t_loop, &a);
    ck_assert_int_eq(burst_mapped(&a), BURST);
    pact_task_opts o = {.stack_size = (size_t)1 << 60};
    pact_promise *p = pact_task_spawn(t_loop, nostack_body, NULL, &o);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    ck_assert_int_eq(pact_error_code(pact_promise_error(p)), PACT_ENOMEM);
    int handled = 0;
    ck_assert_int_eq(pact_promise_callback(p, nostack_seen, &handled), 0);
    pact_promise_unref(p);
    ck_assert_int_eq(burst_mapped(&a), 2);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(handled, 1);
}
END_TEST

START_TEST(stack_surplus_freed_with_loop)
{
    /* a loop of its own, freed with a surplus and its trim timer pending:
     * everything is unmapped (valgrind and ASan see the headers freed) */
    pact_loop *loop;
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    ck_assert_int_eq(pact_loop_set_stack_pool(loop, 2), 0);
    struct burst a;
    burst_run(loop, &a);
    ck_assert_int_eq(burst_mapped(&a), BURST);
    ck_assert_int_eq(pact_loop_free(loop), 0);
    ck_assert_int_eq(burst_mapped(&a), 0);
}
END_TEST

struct seq {
    int n, done;
    int64_t sum;
    uintptr_t first_frame;
    int moved; /* children whose stack was not the first one's */
};

static pact_error *seq_child(void *arg, pact_value *result)
{
    struct seq *s = arg;
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    if (!s->first_frame)
        s->first_frame = fp;
    else if (fp != s->first_frame)
        s->moved++;
    *result = pact_int(s->done);
    return NULL;
}

static pact_error *seq_driver(void *arg, pact_value *result)
{
    struct seq *s = arg;
    for (int i = 0; i < s->n; i++) {
        pact_value v;
        pact_error *err =
            PACT_AWAIT_ERR(pact_task_spawn(t_loop, seq_child, s, NULL), &v);
        if (err)
            return err;
        s->sum += v.u.i;
        s->done++;
    }
    *result = pact_int(s->done);
    return NULL;
}

/* Short tasks one after another run on one pooled stack (how fast: make
 * bench's task figures, never a timed test). */
START_TEST(many_sequential_tasks)
{
    struct seq s = {.n = RUNNING_ON_VALGRIND || T_TSAN ? 10000 : 100000};
    pact_promise *p = spawn(seq_driver, &s);
    run_ok();
    ck_assert_int_eq(int_value(p), s.n);
    ck_assert_int_eq(s.done, s.n);
    ck_assert_int_eq(s.sum, (int64_t)s.n * (s.n - 1) / 2);
    ck_assert_int_eq(s.moved, 0);
    pact_promise_unref(p);
}
END_TEST

/* ---- floating-point control state --------------------------------------- */

static volatile double fp_one = 1.0, fp_three = 3.0;

static __attribute__((noinline)) double third(void)
{
    return fp_one / fp_three; /* SSE on x86-64: MXCSR's rounding */
}

#if defined(__x86_64__) || defined(__i386__)
static volatile long double fp_one_l = 1.0L, fp_three_l = 3.0L;

static __attribute__((noinline)) long double third_x87(void)
{
    return fp_one_l / fp_three_l; /* x87: its control word's rounding */
}
#endif

struct fp_state {
    int mode;       /* what the task sets */
    int seen_mode;  /* fegetround after it resumed */
    double q;       /* third() after it resumed */
    long double ql; /* third_x87() after it resumed */
    int set_rc;
};

static pact_error *rounding_task(void *arg, pact_value *result)
{
    (void)result;
    struct fp_state *s = arg;
    s->set_rc = fesetround(s->mode);
    pact_error *err = pact_sleep(5);
    s->seen_mode = fegetround();
    s->q = third();
#if defined(__x86_64__) || defined(__i386__)
    s->ql = third_x87();
#endif
    fesetround(FE_TONEAREST);
    return err;
}

struct fp_loop {
    int calls;
    int mode;
    double q;
};

static void fp_loop_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct fp_loop *l = ud;
    l->calls++;
    l->mode = fegetround();
    l->q = third();
}

/* Each task keeps its own rounding mode across a suspension, and the
 * loop's stack keeps its own while the tasks are suspended (the switch saves
 * MXCSR and the x87 control word, or FPCR). */
START_TEST(rounding_mode_per_task)
{
    ck_assert_int_eq(fegetround(), FE_TONEAREST);
    /* what each mode gives, measured here */
    double q_near = third();
    ck_assert_int_eq(fesetround(FE_UPWARD), 0);
    double q_up = third();
#if defined(__x86_64__) || defined(__i386__)
    long double ql_up = third_x87();
#endif
    ck_assert_int_eq(fesetround(FE_DOWNWARD), 0);
    double q_down = third();
#if defined(__x86_64__) || defined(__i386__)
    long double ql_down = third_x87();
#endif
    ck_assert_int_eq(fesetround(FE_TONEAREST), 0);
    if (!RUNNING_ON_VALGRIND) /* its FPU rounds every mode alike */
        ck_assert(q_up > q_down);

    struct fp_state up = {.mode = FE_UPWARD}, down = {.mode = FE_DOWNWARD};
    pact_promise *pu = spawn(rounding_task, &up);
    pact_promise *pd = spawn(rounding_task, &down);
    struct fp_loop l = {0};
    ck_assert_int_eq(pact_timeout(t_loop, 1, fp_loop_cb, &l, NULL), 0);
    run_ok();
    ck_assert_int_eq(up.set_rc, 0);
    ck_assert_int_eq(down.set_rc, 0);
    ck_assert_int_eq(up.seen_mode, FE_UPWARD);
    ck_assert_int_eq(down.seen_mode, FE_DOWNWARD);
    ck_assert(up.q == q_up);
    ck_assert(down.q == q_down);
#if defined(__x86_64__) || defined(__i386__)
    ck_assert(up.ql == ql_up);
    ck_assert(down.ql == ql_down);
#endif
    ck_assert_int_eq(l.calls, 1);
    ck_assert_int_eq(l.mode, FE_TONEAREST);
    ck_assert(l.q == q_near);
    ck_assert_int_eq(fegetround(), FE_TONEAREST);
    ck_assert(third() == q_near);
    ck_assert_int_eq(pact_promise_state(pu), PACT_FULFILLED);
    ck_assert_int_eq(pact_promise_state(pd), PACT_FULFILLED);
    pact_promise_unref(pu);
    pact_promise_unref(pd);
}
END_TEST

/* ---- nested spawn -------------------------------------------------------- */

struct nest {
    pact_task *parent, *child, *parent_after;
    size_t tasks_in_child;
};

static pact_error *nested_child(void *arg, pact_value *result)
{
    struct nest *n = arg;
    n->child = pact_task_current();
    n->tasks_in_child = pact_loop_tasks(t_loop);
    pact_error *err = pact_sleep(2);
    if (err)
        return err;
    *result = pact_int(21);
    return NULL;
}

static pact_error *nested_parent(void *arg, pact_value *result)
{
    struct nest *n = arg;
    n->parent = pact_task_current();
    pact_value v = PACT_AWAIT(pact_task_spawn(t_loop, nested_child, n, NULL));
    n->parent_after = pact_task_current();
    *result = pact_int(v.u.i * 2);
    return NULL;
}

START_TEST(nested_spawn)
{
    struct nest n = {0};
    pact_promise *p = spawn(nested_parent, &n);
    run_ok();
    ck_assert_int_eq(int_value(p), 42);
    ck_assert_ptr_nonnull(n.parent);
    ck_assert_ptr_nonnull(n.child);
    ck_assert_ptr_ne(n.parent, n.child);
    ck_assert_ptr_eq(n.parent_after, n.parent);
    ck_assert_uint_eq(n.tasks_in_child, 2);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_promise_unref(p);
}
END_TEST

Suite *suite_task(void)
{
    Suite *s = suite_create("task");

    TCase *stack = tcase_create("stack");
    tcase_add_checked_fixture(stack, t_setup, t_teardown);
    tcase_set_timeout(stack, 120);
    tcase_add_test(stack, deep_recursion_small_stack);
    tcase_add_test(stack, deep_recursion_default_stack);
    tcase_add_test(stack, overflow_guard_page_named);
    tcase_add_test(stack, overflow_guard_page_default_name);
    tcase_add_test(stack, overflow_canary_without_guard);
    suite_add_tcase(s, stack);

    TCase *many = tcase_create("many");
    tcase_add_checked_fixture(many, t_setup, t_teardown);
    tcase_set_timeout(many, 300);
    tcase_add_test(many, ten_thousand_sleeping_tasks);
    tcase_add_test(many, many_sequential_tasks);
    tcase_add_test(many, ping_pong);
    tcase_add_test(many, await_halves);
    tcase_add_test(many, chan_await_halves);
    tcase_add_test(many, handed_over_tasks_end);
    suite_add_tcase(s, many);

    TCase *aw = tcase_create("await");
    tcase_add_checked_fixture(aw, t_setup, t_teardown);
    tcase_add_test(aw, await_from_helpers_three_deep);
    tcase_add_test(aw, try_through_three_levels);
    tcase_add_test(aw, try_through_plain_calls);
    tcase_add_test(aw, await_err_form);
    tcase_add_test(aw, await_throw_unwinds);
    tcase_add_test(aw, dropped_promise_still_runs);
    tcase_add_test(aw, finished_before_awaited);
    tcase_add_test(aw, nested_spawn);
    suite_add_tcase(s, aw);

    TCase *ord = tcase_create("order");
    tcase_add_checked_fixture(ord, t_setup, t_teardown);
    tcase_add_test(ord, spawn_starts_as_microtask);
    tcase_add_test(ord, await_settled_still_suspends);
    tcase_add_test(ord, sleep_waits_at_least);
    tcase_add_test(ord, yield_lets_the_loop_turn);
    suite_add_tcase(s, ord);

    TCase *val = tcase_create("values");
    tcase_add_checked_fixture(val, t_setup, t_teardown);
    tcase_add_test(val, owned_value_moves_out);
    tcase_add_test(val, owned_value_from_deferred_moves_out);
    tcase_add_test(val, owned_value_shared_is_einval);
    tcase_add_test(val, json_and_bytes_values);
    tcase_add_test(val, task_result_values);
    suite_add_tcase(s, val);

    TCase *any = tcase_create("await_any");
    tcase_add_checked_fixture(any, t_setup, t_teardown);
    tcase_add_test(any, await_any_first_wins);
    tcase_add_test(any, await_any_rejected_winner);
    tcase_add_test(any, await_any_both_settled);
    tcase_add_test(any, await_any_none_is_einval);
    suite_add_tcase(s, any);

    TCase *mis = tcase_create("misuse_cancel");
    tcase_add_checked_fixture(mis, t_setup, t_teardown);
    tcase_add_test(mis, await_outside_a_task);
    tcase_add_test(mis, close_all_cancels_suspended_task);
    tcase_add_test(mis, close_all_then_free_at_once);
    tcase_add_test(mis, close_all_cancels_await_on_cycle);
    tcase_add_test(mis, await_unheld_promise_cancelled);
    suite_add_tcase(s, mis);

    TCase *ab = tcase_create("abort");
    tcase_add_checked_fixture(ab, t_setup, t_teardown);
    tcase_set_timeout(ab, 60);
    tcase_add_test(ab, abort_token_aborted_at_spawn);
    tcase_add_test(ab, abort_token_before_start);
    tcase_add_test(ab, abort_token_while_suspended);
    tcase_add_test(ab, abort_token_not_unhandled);
    tcase_add_test(ab, abort_token_after_finish);
    tcase_add_test(ab, abort_token_shared_by_many);
    tcase_add_test(ab, abort_token_from_another_task);
    tcase_add_test(ab, abort_token_inside_the_task);
    suite_add_tcase(s, ab);

    TCase *opt = tcase_create("options");
    tcase_add_checked_fixture(opt, t_setup, t_teardown);
    tcase_set_timeout(opt, 60);
    tcase_add_test(opt, options_and_introspection);
    tcase_add_test(opt, loop_stack_size_setting);
    tcase_add_test(opt, stack_size_rounding);
    tcase_add_test(opt, stack_pool_reuse);
    tcase_add_test(opt, stack_surplus_reused);
    tcase_add_test(opt, stack_surplus_trimmed);
    tcase_add_test(opt, stack_surplus_none_without_pool);
    tcase_add_test(opt, stack_surplus_settings_changed);
    tcase_add_test(opt, stack_surplus_released_on_map_failure);
    tcase_add_test(opt, stack_surplus_freed_with_loop);
    tcase_add_test(opt, rounding_mode_per_task);
    tcase_add_test(opt, no_stack_rejects_at_once);
    suite_add_tcase(s, opt);

    return s;
}

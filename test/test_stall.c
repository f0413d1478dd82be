/* The loop-stall detector (pact/stall.h), with its real watchdog thread:
 * deliberately blocking steps of each kind -- a timer callback, a promise
 * reaction, a task step (its name, spawn site and await line), an async
 * function step, immediates, ticks, microtasks, posts, close callbacks --
 * are reported with their kind, their callback's name where it resolves
 * (the runner is linked -export-dynamic; static functions are not) and a
 * duration of at least the threshold, then once more when they end. A loop
 * that only waits, and steps under the threshold, are not reported. The
 * environment variable, turning it off (also from inside a step), the hook
 * and the default report, the loop thread's state and stack, a fork's
 * child, and task names freed as soon as their tasks end while a 1 ms
 * watchdog copies them.
 *
 * Timings are for a loaded 2-core machine and valgrind: blocking steps run
 * three to four times the threshold, and only lower bounds are asserted. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "suites.h"
#include "sys.h" /* RUNNING_ON_VALGRIND */

enum {
    THRESHOLD = 100, /* ms */
    BLOCK = 400,     /* ms: a blocking step */
    MAX_REPORTS = 64
};

/* ---- the reports, as a hook on the watchdog thread receives them -------- */

struct rep {
    pact_stall s; /* its strings point into the fields below */
    char what[64], fn_name[128], fn_file[512], task[256], file[256];
    char fn_source[512];
    char at_file[256], state[64];
    bool stack_has_spin; /* a frame of the stack is in stall_block_ms */
};

static struct {
    pthread_mutex_t lock;
    int n;
    int on_loop_thread; /* hook calls made on the loop thread (must be 0) */
    struct rep r[MAX_REPORTS];
} got = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_t loop_thread;

static const char *keep(char *buf, size_t cap, const char *s)
{
    if (!s)
        return NULL;
    snprintf(buf, cap, "%s", s);
    return buf;
}

static void collect(const pact_stall *s, void *ud)
{
    (void)ud;
    pthread_mutex_lock(&got.lock);
    if (pthread_equal(pthread_self(), loop_thread))
        got.on_loop_thread++;
    if (got.n < MAX_REPORTS) {
        struct rep *r = &got.r[got.n++];
        r->s = *s;
        r->s.what = keep(r->what, sizeof r->what, s->what);
        r->s.fn_name = keep(r->fn_name, sizeof r->fn_name, s->fn_name);
        r->s.fn_file = keep(r->fn_file, sizeof r->fn_file, s->fn_file);
        r->s.fn_source = keep(r->fn_source, sizeof r->fn_source, s->fn_source);
        r->s.task = keep(r->task, sizeof r->task, s->task);
        r->s.file = keep(r->file, sizeof r->file, s->file);
        r->s.at_file = keep(r->at_file, sizeof r->at_file, s->at_file);
        r->s.state = keep(r->state, sizeof r->state, s->state);
        r->s.stack = NULL;
        r->stack_has_spin = false;
        for (int i = 0; i < s->stack_depth; i++) {
            Dl_info info;
            if (dladdr(s->stack[i], &info) && info.dli_sname &&
                strcmp(info.dli_sname, "stall_block_ms") == 0)
                r->stack_has_spin = true;
        }
    }
    pthread_mutex_unlock(&got.lock);
}

static void setup(void)
{
    t_setup();
    loop_thread = pthread_self();
    pthread_mutex_lock(&got.lock);
    got.n = 0;
    got.on_loop_thread = 0;
    pthread_mutex_unlock(&got.lock);
}

static void watch(uint64_t ms)
{
    ck_assert_int_eq(pact_loop_watch_stalls(t_loop, ms, collect, NULL), 0);
    ck_assert_uint_eq(pact_loop_stall_threshold(t_loop), ms);
}

/* Stop watching, which delivers what is pending; @return the reports. */
static int unwatch(void)
{
    ck_assert_int_eq(pact_loop_watch_stalls(t_loop, 0, NULL, NULL), 0);
    ck_assert_uint_eq(pact_loop_stall_threshold(t_loop), 0);
    ck_assert_int_eq(got.on_loop_thread, 0);
    return got.n;
}

static void run_ok(void)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = s ? strlen(s) : 0, k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* The reports of one stalled step: the first one, and its end. Asserts
 * that there is exactly one stalled step, reported while it ran (at least
 * @p min_ms in) and once when it ended (at least @p min_ms in all), the
 * running reports growing. */
static void one_stall(const struct rep **first, const struct rep **end,
                      uint64_t min_ms)
{
    *first = *end = NULL;
    uint64_t last_ms = 0;
    for (int i = 0; i < got.n; i++) {
        const struct rep *r = &got.r[i];
        if (!*first)
            *first = r;
        ck_assert_uint_eq(r->s.id, (*first)->s.id);
        ck_assert_int_eq(r->s.nth, i + 1);
        ck_assert_uint_ge(r->s.ms, last_ms);
        last_ms = r->s.ms;
        if (r->s.ended) {
            ck_assert_ptr_null(*end);
            *end = r;
        } else {
            ck_assert_ptr_null(*end); /* nothing after the end */
            ck_assert_uint_ge(r->s.ms, min_ms);
        }
    }
    ck_assert_msg(*first && !(*first)->s.ended, "no report while it ran");
    ck_assert_msg(*end, "no report of its end");
    ck_assert_uint_ge((*end)->s.ms, min_ms);
    ck_assert_uint_ge((*first)->s.threshold_ms, min_ms);
}

/* ---- blocking steps of each kind ----------------------------------------- */

/* Global, not static: the runner exports them, so dladdr names them. */
void stall_block_ms(int ms);
void stall_spin_timer(pact_error *err, void *ud);
void stall_sleep_timer(pact_error *err, void *ud);
pact_value stall_spin_reaction(const pact_value *v, void *ud);
void stall_spin_fn(void *ud);
void stall_spin_cb(pact_error *err, void *ud);

/* Busy for @p ms: the loop thread never gets back to the loop. Valgrind
 * runs one thread at a time and hands over only at system calls or after
 * a long slice, which a spinning thread may never give up in time: there it
 * yields at each turn, still busy as far as the loop can tell. */
void stall_block_ms(int ms)
{
    uint64_t until = now_us() + (uint64_t)ms * 1000;
    while (now_us() < until)
        if (RUNNING_ON_VALGRIND)
            sched_yield();
}

void stall_spin_timer(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    ++*(int *)ud;
    stall_block_ms(BLOCK);
}

START_TEST(timer_callback_reported)
{
    int calls = 0;
    watch(THRESHOLD);
    ck_assert_int_eq(pact_timeout(t_loop, 1, stall_spin_timer, &calls, NULL),
                     0);
    run_ok();
    ck_assert_int_eq(calls, 1);
    unwatch();
    const struct rep *first, *end;
    one_stall(&first, &end, THRESHOLD);
    ck_assert_int_eq(first->s.kind, PACT_STEP_TIMER);
    ck_assert_str_eq(first->s.what, "timer callback");
    ck_assert_ptr_eq(first->s.loop, t_loop);
    ck_assert_ptr_eq((void *)(uintptr_t)first->s.fn,
                     (void *)(uintptr_t)stall_spin_timer);
    ck_assert_ptr_eq(first->s.ud, &calls);
    ck_assert_str_eq(first->s.fn_name, "stall_spin_timer");
    ck_assert_ptr_nonnull(first->s.fn_file);
    ck_assert_ptr_null(first->s.task);
#ifdef __linux__
    /* under valgrind it waits for valgrind's lock as the watchdog looks */
    if (!RUNNING_ON_VALGRIND)
        ck_assert_str_eq(first->s.state, "running");
#endif
    ck_assert_int_eq(end->s.kind, PACT_STEP_TIMER);
    ck_assert_uint_ge(end->s.ms, first->s.ms);
}
END_TEST

void stall_sleep_timer(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    sleep_ms(BLOCK);
}

/* Blocked in the kernel: the report says so (Linux). */
START_TEST(sleeping_callback_reported)
{
    watch(THRESHOLD);
    ck_assert_int_eq(pact_timeout(t_loop, 1, stall_sleep_timer, NULL, NULL), 0);
    run_ok();
    unwatch();
    const struct rep *first, *end;
    one_stall(&first, &end, THRESHOLD);
    ck_assert_str_eq(first->s.fn_name, "stall_sleep_timer");
#ifdef __linux__
    ck_assert_ptr_nonnull(first->s.state);
    ck_assert_msg(strstr(first->s.state, "in system call"), "state: %s",
                  first->s.state);
#endif
}
END_TEST

enum { STATIC_SPIN_LINE = __LINE__ + 1 };
static void static_spin(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    stall_block_ms(BLOCK);
}

/* pact_stall_print's text for @p s (malloc'd). */
static char *print_text(const pact_stall *s)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    pact_stall_print(s, f);
    long n = ftell(f);
    char *text = calloc(1, (size_t)n + 1);
    ck_assert_ptr_nonnull(text);
    rewind(f);
    ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return text;
}

/* A static function has no dynamic symbol. Built with libdw, the report
 * names it anyway, with its file:line from the debug information (the
 * tests are built with -g); without, it gives the address and its file for
 * addr2line. */
START_TEST(static_callback_named)
{
    watch(THRESHOLD);
    ck_assert_int_eq(pact_timeout(t_loop, 1, static_spin, NULL, NULL), 0);
    run_ok();
    unwatch();
    const struct rep *first, *end;
    one_stall(&first, &end, THRESHOLD);
    ck_assert_ptr_nonnull(first->s.fn_file);
    ck_assert_uint_ne(first->s.fn_offset, 0);
    char *text = print_text(&first->s);
#ifdef HAVE_LIBDW
    ck_assert_str_eq(first->s.fn_name, "static_spin");
    ck_assert_ptr_nonnull(first->s.fn_source);
    size_t n = strlen(first->s.fn_source);
    ck_assert_msg(n >= 17 && strcmp(first->s.fn_source + n - 17,
                                    "test/test_stall.c") == 0,
                  "%s", first->s.fn_source);
    /* the line of its first instruction: the declarator or the brace */
    ck_assert_int_ge(first->s.fn_line, STATIC_SPIN_LINE);
    ck_assert_int_le(first->s.fn_line, STATIC_SPIN_LINE + 1);
    char want[64];
    snprintf(want, sizeof want, "test_stall.c:%d", first->s.fn_line);
    ck_assert_msg(strstr(text, "callback: static_spin at ") &&
                      strstr(text, want) && !strstr(text, "no symbol for it"),
                  "%s", text);
    /* the end is reported by name too */
    ck_assert_str_eq(end->s.fn_name, "static_spin");
#else
    ck_assert_ptr_null(first->s.fn_name);
    ck_assert_ptr_null(first->s.fn_source);
    ck_assert_msg(strstr(text, "no symbol for it") && strstr(text, "addr2line"),
                  "%s", text);
#endif
    free(text);
}
END_TEST

pact_value stall_spin_reaction(const pact_value *v, void *ud)
{
    (void)ud;
    stall_block_ms(BLOCK);
    return pact_int(v->u.i + 1);
}

START_TEST(promise_reaction_reported)
{
    watch(THRESHOLD);
    pact_promise *p = pact_resolved(t_loop, pact_int(41));
    pact_promise *q = pact_then(p, stall_spin_reaction, NULL, &got);
    run_ok();
    ck_assert_int_eq(pact_promise_state(q), PACT_FULFILLED);
    ck_assert_int_eq(pact_promise_value(q)->u.i, 42);
    pact_promise_unref(p);
    pact_promise_unref(q);
    unwatch();
    const struct rep *first, *end;
    one_stall(&first, &end, THRESHOLD);
    ck_assert_int_eq(first->s.kind, PACT_STEP_REACTION);
    ck_assert_str_eq(first->s.what, "promise reaction");
    ck_assert_str_eq(first->s.fn_name, "stall_spin_reaction");
    ck_assert_ptr_eq(first->s.ud, &got);
}
END_TEST

/* ---- a task step --------------------------------------------------------- */

static int spawn_line, await_line;

static pact_error *cruncher(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    await_line = __LINE__ + 1;
    pact_error *err = PACT_AWAIT_ERR(pact_delay(t_loop, 1, NULL), NULL);
    ck_assert_ptr_null(err);
    stall_block_ms(BLOCK); /* runs blocking: the step from that await on */
    return NULL;
}

START_TEST(task_step_reported)
{
    watch(THRESHOLD);
    pact_task_opts o = {.name = "cruncher"};
    spawn_line = __LINE__ + 1;
    pact_promise *p = pact_task_spawn(t_loop, cruncher, NULL, &o);
    ck_assert_ptr_nonnull(p);
    run_ok();
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    pact_promise_unref(p);
    unwatch();
    const struct rep *first, *end;
    one_stall(&first, &end, THRESHOLD);
    ck_assert_int_eq(first->s.kind, PACT_STEP_TASK);
    ck_assert_str_eq(first->s.what, "task step");
    ck_assert_str_eq(first->s.task, "cruncher");
    ck_assert_msg(ends_with(first->s.file, "test_stall.c"), "%s",
                  first->s.file);
    ck_assert_int_eq(first->s.line, spawn_line);
    ck_assert_msg(ends_with(first->s.at_file, "test_stall.c"), "%s",
                  first->s.at_file);
    ck_assert_int_eq(first->s.at_line, await_line);
    ck_assert_ptr_eq((void *)(uintptr_t)first->s.fn,
                     (void *)(uintptr_t)cruncher);
    ck_assert_str_eq(end->s.task, "cruncher");
}
END_TEST

static pact_error *first_step_spinner(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    stall_block_ms(BLOCK);
    return NULL;
}

/* Unnamed, blocking in its first step: named by its spawn site. */
START_TEST(task_first_step_reported)
{
    watch(THRESHOLD);
    spawn_line = __LINE__ + 1;
    pact_promise *p = pact_task_spawn(t_loop, first_step_spinner, NULL, NULL);
    run_ok();
    pact_promise_unref(p);
    unwatch();
    const struct rep *first, *end;
    one_stall(&first, &end, THRESHOLD);
    ck_assert_int_eq(first->s.kind, PACT_STEP_TASK);
    char want[64];
    snprintf(want, sizeof want, "test_stall.c:%d", spawn_line);
    ck_assert_msg(ends_with(first->s.task, want), "%s", first->s.task);
    ck_assert_int_eq(first->s.line, spawn_line);
    ck_assert_ptr_null(first->s.at_file);
    ck_assert_int_eq(first->s.at_line, 0);
}
END_TEST

/* Names in the program's memory, freed as soon as each task ends, while a
 * 1 ms watchdog keeps copying them: a task label's pop waits for a copy in
 * progress, so the sanitizers see no use after free and every name read is
 * whole. */
enum { NAMED_TASKS = 100 };

static int names_seen, names_bad;

static void check_name(const pact_stall *s, void *ud)
{
    (void)ud;
    if (s->kind != PACT_STEP_TASK)
        return;
    pthread_mutex_lock(&got.lock);
    names_seen++;
    if (!s->task || strncmp(s->task, "named-task-", 11) != 0)
        names_bad++;
    pthread_mutex_unlock(&got.lock);
}

static pact_error *named_body(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    stall_block_ms(2);
    pact_error *err = PACT_AWAIT_ERR(pact_immediate_p(t_loop, NULL), NULL);
    pact_error_unref(err);
    stall_block_ms(2);
    return NULL;
}

static void free_name(pact_error *err, const pact_value *v, void *ud)
{
    (void)err;
    (void)v;
    memset(ud, 'x', 12); /* a read of it now would not pass check_name */
    free(ud);
}

START_TEST(task_names_freed_meanwhile)
{
    ck_assert_int_eq(pact_loop_watch_stalls(t_loop, 1, check_name, NULL), 0);
    names_seen = names_bad = 0;
    for (int i = 0; i < NAMED_TASKS; i++) {
        char *name = malloc(32);
        ck_assert_ptr_nonnull(name);
        snprintf(name, 32, "named-task-%d", i);
        pact_task_opts o = {.name = name};
        pact_promise *p = pact_task_spawn(t_loop, named_body, NULL, &o);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(pact_promise_callback(p, free_name, name), 0);
        pact_promise_unref(p);
    }
    run_ok();
    ck_assert_int_eq(pact_loop_watch_stalls(t_loop, 0, NULL, NULL), 0);
    ck_assert_int_eq(names_bad, 0);
}
END_TEST

/* ---- an async function step ---------------------------------------------- */

struct spinner {
    PACT_ASYNC_FRAME;
};

static int resume_line;

static pact_error *spinner_body(pact_async *a, pact_value *result)
{
    (void)result;
    PACT_ASYNC_BEGIN(a);
    resume_line = __LINE__ + 1;
    PACT_ASYNC_TRY(a, pact_delay(pact_async_loop(a), 1, NULL), NULL);
    stall_block_ms(BLOCK);
    PACT_ASYNC_END(a);
}

START_TEST(async_step_reported)
{
    watch(THRESHOLD);
    struct spinner *f = pact_async_new(t_loop, sizeof *f, spinner_body);
    ck_assert_ptr_nonnull(f);
    pact_promise *p = pact_async_start(f);
    run_ok();
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    pact_promise_unref(p);
    unwatch();
    const struct rep *first, *end;
    one_stall(&first, &end, THRESHOLD);
    ck_assert_int_eq(first->s.kind, PACT_STEP_ASYNC);
    ck_assert_str_eq(first->s.what, "async function step");
    ck_assert_int_eq(first->s.at_line, resume_line);
    ck_assert_ptr_eq((void *)(uintptr_t)first->s.fn,
                     (void *)(uintptr_t)spinner_body);
    ck_assert_ptr_null(first->s.task);
}
END_TEST

/* ---- the other kinds ----------------------------------------------------- */

enum { SHORT_THRESHOLD = 60, SHORT_BLOCK = 240 };

void stall_spin_fn(void *ud)
{
    (void)ud;
    stall_block_ms(SHORT_BLOCK);
}

void stall_spin_cb(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    stall_block_ms(SHORT_BLOCK);
}

static void check_kind(pact_step_kind kind, const char *fn_name)
{
    run_ok();
    unwatch();
    const struct rep *first, *end;
    one_stall(&first, &end, SHORT_THRESHOLD);
    ck_assert_int_eq(first->s.kind, kind);
    ck_assert_str_eq(first->s.fn_name, fn_name);
}

START_TEST(immediate_reported)
{
    watch(SHORT_THRESHOLD);
    ck_assert_int_eq(pact_immediate(t_loop, stall_spin_cb, NULL, NULL), 0);
    check_kind(PACT_STEP_IMMEDIATE, "stall_spin_cb");
}
END_TEST

START_TEST(tick_reported)
{
    watch(SHORT_THRESHOLD);
    ck_assert_int_eq(pact_next_tick(t_loop, stall_spin_fn, NULL), 0);
    check_kind(PACT_STEP_TICK, "stall_spin_fn");
}
END_TEST

START_TEST(microtask_reported)
{
    watch(SHORT_THRESHOLD);
    ck_assert_int_eq(pact_queue_microtask(t_loop, stall_spin_fn, NULL), 0);
    check_kind(PACT_STEP_MICROTASK, "stall_spin_fn");
}
END_TEST

static void *post_from_thread(void *arg)
{
    (void)arg;
    ck_assert_int_eq(pact_loop_post(t_loop, stall_spin_fn, NULL), 0);
    return NULL;
}

START_TEST(post_reported)
{
    watch(SHORT_THRESHOLD);
    pthread_t th;
    pact_loop_hold(t_loop);
    ck_assert_int_eq(pthread_create(&th, NULL, post_from_thread, NULL), 0);
    pthread_join(th, NULL);
    pact_loop_release(t_loop);
    check_kind(PACT_STEP_POST, "stall_spin_fn");
}
END_TEST

START_TEST(close_reported)
{
    watch(SHORT_THRESHOLD);
    pact_handle h;
    ck_assert_int_eq(pact_timeout(t_loop, 10000, count_cb, NULL, &h), 0);
    ck_assert_int_eq(pact_close(t_loop, h, stall_spin_fn, NULL), 0);
    check_kind(PACT_STEP_CLOSE, "stall_spin_fn");
}
END_TEST

/* ---- what is not a stall ------------------------------------------------- */

/* Waiting in epoll for a timer is not a stall, however long. */
START_TEST(waiting_loop_not_reported)
{
    int calls = 0;
    watch(50);
    ck_assert_int_eq(pact_timeout(t_loop, 400, count_cb, &calls, NULL), 0);
    run_ok();
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(unwatch(), 0);
}
END_TEST

static void short_spin(pact_error *err, void *ud)
{
    (void)err;
    ++*(int *)ud;
    stall_block_ms(15);
}

/* Many short steps back to back: each is under the threshold. */
START_TEST(short_steps_not_reported)
{
    int calls = 0;
    watch(300);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(pact_immediate(t_loop, short_spin, &calls, NULL), 0);
    run_ok();
    ck_assert_int_eq(calls, 20);
    ck_assert_int_eq(unwatch(), 0);
}
END_TEST

/* ---- turning it on and off ----------------------------------------------- */

START_TEST(off_not_reported)
{
    int calls = 0;
    ck_assert_int_eq(
        pact_loop_watch_stalls(t_loop, PACT_TIMEOUT_MAX + 1ull, collect, NULL),
        PACT_ERANGE);
    ck_assert_int_eq(pact_loop_watch_stalls_opts(t_loop, NULL), PACT_EINVAL);
    ck_assert_uint_eq(pact_loop_stall_threshold(t_loop), 0);
    watch(THRESHOLD);
    ck_assert_int_eq(pact_loop_watch_stalls(t_loop, 0, collect, NULL), 0);
    ck_assert_uint_eq(pact_loop_stall_threshold(t_loop), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 1, stall_spin_timer, &calls, NULL),
                     0);
    run_ok();
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(got.n, 0);
}
END_TEST

static void off_inside(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    stall_block_ms(BLOCK / 2);
    /* reported by now; the watchdog stops from inside the stalled step */
    ck_assert_int_eq(pact_loop_watch_stalls(t_loop, 0, NULL, NULL), 0);
    stall_block_ms(BLOCK / 2);
}

static void on_inside(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    ck_assert_int_eq(pact_loop_watch_stalls(t_loop, THRESHOLD, collect, NULL),
                     0);
    stall_block_ms(BLOCK / 2); /* began before the watchdog: not watched */
}

/* Turned off inside a reported step: no end report; turned on inside a
 * step: that step is not watched, later ones are. */
START_TEST(toggled_inside_steps)
{
    watch(THRESHOLD / 2);
    ck_assert_int_eq(pact_timeout(t_loop, 1, off_inside, NULL, NULL), 0);
    run_ok();
    ck_assert_uint_eq(pact_loop_stall_threshold(t_loop), 0);
    ck_assert_int_ge(got.n, 1);
    for (int i = 0; i < got.n; i++)
        ck_assert(!got.r[i].s.ended);
    got.n = 0;

    int calls = 0;
    ck_assert_int_eq(pact_timeout(t_loop, 1, on_inside, NULL, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 50, stall_spin_timer, &calls, NULL),
                     0);
    run_ok();
    unwatch();
    const struct rep *first, *end;
    one_stall(&first, &end, THRESHOLD);
    ck_assert_str_eq(first->s.fn_name, "stall_spin_timer");
}
END_TEST

/* A child of fork() has the loop but not the watchdog thread: freeing the
 * loop there must not wait for that thread. (Not under valgrind, which
 * counts the watchdog the child cannot free as a leak.) */
START_TEST(freed_in_forked_child)
{
    if (RUNNING_ON_VALGRIND)
        return;
    watch(THRESHOLD);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(10); /* a hang ends the child with a signal */
        _exit(pact_loop_free(t_loop) == 0 ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child status %d", status);
    ck_assert_int_eq(unwatch(), 0);
}
END_TEST

/* ---- the environment and the default report ------------------------------ */

START_TEST(environment_variable)
{
    pact_loop *loop;
    setenv("PACT_STALL_MS", "100", 1);
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    unsetenv("PACT_STALL_MS");
    ck_assert_uint_eq(pact_loop_stall_threshold(loop), 100);
    int calls = 0;
    struct capture c;
    capture_begin(&c);
    ck_assert_int_eq(pact_timeout(loop, 1, stall_spin_timer, &calls, NULL), 0);
    ck_assert_int_eq(pact_loop_run(loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(pact_loop_free(loop), 0); /* delivers the end too */
    char *text = capture_end(&c);
    ck_assert_int_eq(calls, 1);
    ck_assert_msg(strstr(text, "pact: stall #") &&
                      strstr(text, "has been in a timer callback for") &&
                      strstr(text, "(threshold 100 ms)") &&
                      strstr(text, "callback: stall_spin_timer") &&
                      strstr(text, "returned after"),
                  "%s", text);
    free(text);

    setenv("PACT_STALL_MS", "soon", 1);
    capture_begin(&c);
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    text = capture_end(&c);
    unsetenv("PACT_STALL_MS");
    ck_assert_uint_eq(pact_loop_stall_threshold(loop), 0);
    ck_assert_msg(strstr(text, "PACT_STALL_MS=soon is not a number"), "%s",
                  text);
    free(text);
    ck_assert_int_eq(pact_loop_free(loop), 0);

    setenv("PACT_STALL_MS", "0", 1);
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    unsetenv("PACT_STALL_MS");
    ck_assert_uint_eq(pact_loop_stall_threshold(loop), 0);
    ck_assert_int_eq(pact_loop_free(loop), 0);
}
END_TEST

START_TEST(default_report_text)
{
    pact_stall s = {
        .id = 7,
        .ms = 250,
        .threshold_ms = 100,
        .kind = PACT_STEP_TASK,
        .task = "fetcher",
        .file = "app.c",
        .line = 12,
        .at_file = "app.c",
        .at_line = 40,
        .state = "running",
    };
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    pact_stall_print(&s, f);
    s.ended = true;
    s.ms = 420;
    pact_stall_print(&s, f);
    long n = ftell(f);
    char *text = calloc(1, (size_t)n + 1);
    rewind(f);
    ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    ck_assert_str_eq(text,
                     "pact: stall #7: the loop thread has been in a task step "
                     "for 250 ms (threshold 100 ms)\n"
                     "pact: stall:   task 'fetcher', spawned at app.c:12, "
                     "resumed from the await at app.c:40\n"
                     "pact: stall:   the loop thread is running\n"
                     "pact: stall #7: the task step of task 'fetcher' "
                     "returned after 420 ms\n");
    free(text);
}
END_TEST

/* ---- the loop thread's stack --------------------------------------------- */

static int own_sigurg;
static void own_handler(int sig)
{
    (void)sig;
    own_sigurg++;
}

START_TEST(stack_taken)
{
    pact_stall_opts o = {
        .threshold_ms = THRESHOLD, .hook = collect, .stack = true};
    ck_assert_int_eq(pact_loop_watch_stalls_opts(t_loop, &o), 0);
    int calls = 0;
    ck_assert_int_eq(pact_timeout(t_loop, 1, stall_spin_timer, &calls, NULL),
                     0);
    run_ok();
    unwatch();
    const struct rep *first, *end;
    one_stall(&first, &end, THRESHOLD);
#ifdef __linux__
    /* under TSan the signal waits for a point TSan delivers it at, which a
     * spinning thread may not reach in time: then there is no stack */
    if (!T_TSAN && first->s.state && !strcmp(first->s.state, "running")) {
        ck_assert_int_gt(first->s.stack_depth, 0);
        ck_assert_msg(first->stack_has_spin, "no stall_block_ms frame");
    }
#endif
    ck_assert_int_eq(end->s.stack_depth, 0);
}
END_TEST

/* The program's own SIGURG handler is left alone: no stack, and it never
 * hears of the detector. */
START_TEST(own_sigurg_respected)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = own_handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGURG, &sa, &old), 0);
    pact_stall_opts o = {
        .threshold_ms = THRESHOLD, .hook = collect, .stack = true};
    ck_assert_int_eq(pact_loop_watch_stalls_opts(t_loop, &o), 0);
    int calls = 0;
    ck_assert_int_eq(pact_timeout(t_loop, 1, stall_spin_timer, &calls, NULL),
                     0);
    run_ok();
    unwatch();
    ck_assert_int_eq(sigaction(SIGURG, &old, NULL), 0);
    const struct rep *first, *end;
    one_stall(&first, &end, THRESHOLD);
    ck_assert_int_eq(first->s.stack_depth, 0);
    ck_assert_int_eq(own_sigurg, 0);
}
END_TEST

Suite *suite_stall(void)
{
    Suite *s = suite_create("stall");
    TCase *tc = tcase_create("stall");
    tcase_add_checked_fixture(tc, setup, t_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, timer_callback_reported);
    tcase_add_test(tc, sleeping_callback_reported);
    tcase_add_test(tc, static_callback_named);
    tcase_add_test(tc, promise_reaction_reported);
    tcase_add_test(tc, task_step_reported);
    tcase_add_test(tc, task_first_step_reported);
    tcase_add_test(tc, task_names_freed_meanwhile);
    tcase_add_test(tc, async_step_reported);
    tcase_add_test(tc, immediate_reported);
    tcase_add_test(tc, tick_reported);
    tcase_add_test(tc, microtask_reported);
    tcase_add_test(tc, post_reported);
    tcase_add_test(tc, close_reported);
    tcase_add_test(tc, waiting_loop_not_reported);
    tcase_add_test(tc, short_steps_not_reported);
    tcase_add_test(tc, off_not_reported);
    tcase_add_test(tc, toggled_inside_steps);
    tcase_add_test(tc, freed_in_forked_child);
    tcase_add_test(tc, environment_variable);
    tcase_add_test(tc, default_report_text);
    tcase_add_test(tc, stack_taken);
    tcase_add_test(tc, own_sigurg_respected);
    suite_add_tcase(s, tc);
    return s;
}

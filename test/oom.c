/* Fault injection: a representative program (timers, one cancelled through
 * an abort token, a promise chain, pact_all, a task, an offload, an fs read,
 * a worker message) run once for each N with the Nth allocation failing,
 * each run in a child process, until a run makes fewer than N allocations.
 * Every run must end cleanly: no signal, no abort, no hang, every callback
 * called exactly once, every error one that an allocation failure may honestly
 * give, pact_loop_free succeeding, and no block left allocated that the run
 * made.
 *
 * The allocator is replaced by this program's malloc family (glibc allows
 * it; each forwards to __libc_*): the library and everything under it
 * (libevent, jansson, glibc's own callers) come here. The sanitizers replace
 * malloc themselves, so their builds skip this test (77); the main build
 * runs it. `test/oom N` runs the one case N in-process, with its stderr,
 * the failing allocation's stack and the stacks of the blocks it leaked. */
#include <errno.h>
#include <execinfo.h>
#include <jansson.h>
#include <link.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pact.h"

#include "sys.h"

#if defined(PACT__ASAN_BUILD) || defined(PACT__TSAN_BUILD)
#define OOM_SKIP 1
#endif

#ifndef OOM_SKIP
/* ---- the allocator ------------------------------------------------------- */

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);
/* glibc's own, declared by no header of C11 */
void *memalign(size_t align, size_t n);
void *pvalloc(size_t n);

static atomic_long live;    /* blocks allocated and not freed */
static atomic_long calls;   /* allocations asked for while armed */
static atomic_long fail_at; /* the call that fails (1-based), 0: none */
static atomic_bool armed, injected;
static void *fault_at[24]; /* the failed allocation's stack, when asked for */
static int nwhere;
static bool show_where;

/* Whether this allocation is the one to fail. */
static int fails(void)
{
    if (!atomic_load(&armed))
        return 0;
    long n = atomic_fetch_add(&calls, 1) + 1;
    if (n != atomic_load(&fail_at))
        return 0;
    atomic_store(&injected, true);
    if (show_where) { /* backtrace_symbols_fd allocates nothing */
        nwhere = backtrace(fault_at, 24);
        fprintf(stderr, "oom: allocation %ld fails:\n", n);
        backtrace_symbols_fd(fault_at, nwhere, 2);
    }
    errno = ENOMEM;
    return 1;
}

/* In `test/oom N`: the blocks made while armed, with their stacks, to name
 * what leaked. */
#define TRACK 8192
static struct {
    void *p;
    void *bt[10];
    int n;
} track[TRACK];
static atomic_flag track_lock = ATOMIC_FLAG_INIT;

static void track_set(void *p, void *old)
{
    while (atomic_flag_test_and_set(&track_lock))
        ;
    size_t h = ((uintptr_t)(old ? old : p) >> 4) % TRACK;
    for (size_t i = 0; i < TRACK; i++, h = (h + 1) % TRACK) {
        if (old && track[h].p == old) {
            track[h].p = p;
            break;
        }
        if (!old && !track[h].p) {
            track[h].p = p;
            track[h].n = backtrace(track[h].bt, 10);
            break;
        }
    }
    atomic_flag_clear(&track_lock);
}

static void *counted(void *p);

/* The dynamic loader's blocks (a thread's TLS vector, kept with its stack in
 * glibc's cache of thread stacks for the next thread) live as long as that
 * cache does: they are not counted, and remembered so that their free is
 * not either. */
static uintptr_t ld_lo, ld_hi;
#define FOREIGN 1024
static void *foreign[FOREIGN];

static int find_ld(struct dl_phdr_info *info, size_t size, void *ud)
{
    (void)size;
    (void)ud;
    if (!strstr(info->dlpi_name, "ld-linux"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            ld_lo = info->dlpi_addr + ph->p_vaddr;
            ld_hi = ld_lo + ph->p_memsz;
        }
    }
    return 1;
}

static bool by_loader(void *ra)
{
    return (uintptr_t)ra >= ld_lo && (uintptr_t)ra < ld_hi;
}

/* Replace @p old by @p p in the loader's blocks: @return whether found. */
static bool foreign_swap(void *old, void *p)
{
    bool found = false;
    while (atomic_flag_test_and_set(&track_lock))
        ;
    for (size_t i = 0; i < FOREIGN; i++)
        if (foreign[i] == old) {
            foreign[i] = p;
            found = true;
            break;
        }
    atomic_flag_clear(&track_lock);
    return found;
}

static void *counted_by(void *p, void *ra)
{
    if (p && by_loader(ra) && foreign_swap(NULL, p))
        return p;
    return counted(p);
}

static void *counted(void *p)
{
    if (p) {
        atomic_fetch_add(&live, 1);
        if (show_where && atomic_load(&armed))
            track_set(p, NULL);
    }
    return p;
}

void *malloc(size_t n)
{
    return fails() ? NULL
                   : counted_by(__libc_malloc(n), __builtin_return_address(0));
}

void *calloc(size_t n, size_t size)
{
    return fails() ? NULL
                   : counted_by(__libc_calloc(n, size),
                                __builtin_return_address(0));
}

void *realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    if (fails())
        return NULL;
    void *q = __libc_realloc(p, n);
    if (q && foreign_swap(p, q))
        return q;
    if (q && show_where)
        track_set(q, p);
    return q;
}

void free(void *p)
{
    if (p && foreign_swap(p, NULL)) {
        __libc_free(p);
        return;
    }
    if (p)
        atomic_fetch_sub(&live, 1);
    if (p && show_where)
        track_set(NULL, p);
    __libc_free(p);
}

void *memalign(size_t align, size_t n)
{
    return fails() ? NULL : counted(__libc_memalign(align, n));
}

void *aligned_alloc(size_t align, size_t n)
{
    return memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    void *p = memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *valloc(size_t n)
{
    return memalign((size_t)sysconf(_SC_PAGESIZE), n);
}

void *pvalloc(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return memalign(page, (n + page - 1) / page * page);
}

/* ---- the program ---------------------------------------------------------
 */

static const char *file_path;
static int bad;        /* an error no allocation failure should give */
static int want, got;  /* callbacks owed, callbacks run */
static int counts[16]; /* per callback, how many times it ran */

enum {
    C_TIMER,
    C_ABORTED,
    C_CHAIN,
    C_ALL,
    C_TASK,
    C_OFFLOAD,
    C_FS,
    C_MSG,
    C_EXIT,
    C_GROUP
};

/* An error seen: the honest ones for a failed allocation are these. */
static void note(int code, const char *where)
{
    /* and what follows from a worker that failed for want of memory */
    if (code == 0 || code == PACT_ENOMEM || code == PACT_ECANCELED ||
        code == PACT_EAGAIN || code == PACT_EPIPE || code == PACT_EOF)
        return;
    fprintf(stderr, "oom: %s: unexpected %s\n", where, pact_err_name(code));
    bad = code;
}

/* A call that starts callback @p which: 0 means it is owed. */
static void started(int rc, const char *where)
{
    note(rc, where);
    if (rc == 0)
        want++;
}

static void ran(int which, pact_error *err, const char *where)
{
    counts[which]++;
    got++;
    note(pact_error_code(err), where);
}

static void on_timer(pact_error *err, void *ud)
{
    (void)ud;
    ran(C_TIMER, err, "timer");
}

static void on_aborted(pact_error *err, void *ud)
{
    (void)ud;
    ran(C_ABORTED, err, "aborted timer");
}

/* A long timer watching a token that aborts first. */
static void aborted_timer(pact_loop *loop)
{
    pact_abort *a;
    int rc = pact_abort_timeout(loop, 1, &a);
    note(rc, "pact_abort_timeout");
    if (rc < 0)
        return;
    pact_timer_opts o = {.delay_ms = 100000, .abort = a};
    started(pact_timer_start(loop, &o, on_aborted, NULL, NULL),
            "pact_timer_start");
    pact_abort_unref(a);
}

static pact_value add_one(const pact_value *v, void *ud)
{
    (void)ud;
    return pact_int(v->u.i + 1);
}

static pact_value noop_finally(void *ud)
{
    (void)ud;
    return pact_nothing();
}

static void on_value(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    ran((int)(intptr_t)ud, err, "promise callback");
}

/* Track @p p's outcome with callback @p which, then drop it. */
static void watch(pact_promise *p, int which)
{
    if (!p) {
        note(PACT_ENOMEM, "promise");
        return;
    }
    started(pact_promise_callback(p, on_value, (void *)(intptr_t)which),
            "pact_promise_callback");
    pact_promise_unref(p);
}

static pact_error *square(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    (void)arg;
    json_t *j = json_pack("{si}", "n", 49);
    if (!j)
        return PACT_ERROR(PACT_ENOMEM, "json_pack");
    *result = pact_json(j);
    return NULL;
}

static void on_offload(pact_error *err, pact_value *result, void *ud)
{
    (void)result;
    (void)ud;
    ran(C_OFFLOAD, err, "offload");
}

static pact_error *task_body(void *arg, pact_value *result)
{
    pact_loop *loop = arg;
    /* an await of NULL is misuse (PACT_EINVAL): a call that returns NULL
     * without memory is checked first */
    pact_promise *p = pact_delay(loop, 1, NULL);
    if (!p)
        return PACT_ERROR(PACT_ENOMEM, "pact_delay");
    pact_error *err = PACT_AWAIT_ERR(p, NULL);
    if (!err && !(p = pact_offload_p(loop, square, NULL, NULL)))
        return PACT_ERROR(PACT_ENOMEM, "pact_offload_p");
    return err ? err : PACT_AWAIT_ERR(p, result);
}

static void on_file(pact_error *err, pact_value *data, void *ud)
{
    (void)data;
    (void)ud;
    ran(C_FS, err, "fs read");
}

static void echo(pact_error *err, pact_value *msg, void *ud)
{
    /* unanswered, the parent would wait for ever: end instead */
    if (err || pact_port_post(ud, msg) < 0)
        pact_worker_exit(ud, 1);
}

static pact_error *worker_main(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop;
    (void)arg;
    int rc = pact_port_recv(port, NULL, echo, port);
    return rc < 0 ? PACT_ERROR(rc, "pact_port_recv") : NULL;
}

static void on_msg(pact_error *err, pact_value *msg, void *ud)
{
    (void)msg;
    (void)ud;
    /* the worker failed (its error), or ended before replying */
    int code = pact_error_code(err);
    ran(C_MSG, code == PACT_EOF ? NULL : err, "message");
}

static void on_exit_worker(pact_error *err, int code, void *ud)
{
    (void)code;
    (void)ud;
    ran(C_EXIT, err, "worker exit");
}

/* A group child: a delay inside a cancel scope with a deadline. */
static pact_error *group_kid(void *arg, pact_value *result)
{
    pact_loop *loop = arg;
    pact_scope *s;
    int rc = pact_scope_enter(&(pact_scope_opts){.timeout_ms = 5000}, &s);
    if (rc < 0)
        return PACT_ERROR(rc, "pact_scope_enter");
    pact_promise *p = pact_delay(loop, 1, NULL);
    pact_error *err =
        p ? PACT_AWAIT_ERR(p, result) : PACT_ERROR(PACT_ENOMEM, "pact_delay");
    pact_error *late = pact_scope_leave(s, NULL);
    if (late && !err)
        return late;
    pact_error_unref(late);
    return err;
}

static pact_promise *group_go(pact_loop *loop, pact_error *cancelled, void *ud)
{
    (void)ud;
    return cancelled ? NULL : pact_offload_p(loop, square, NULL, NULL);
}

static void on_group(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    /* the children's failures, each one honest */
    for (size_t i = 0; i < pact_error_count(err); i++)
        note(pact_error_code(pact_error_at(err, i)), "group child");
    ran(C_GROUP, pact_error_count(err) ? NULL : err, "group");
}

static void group(pact_loop *loop)
{
    pact_group *g;
    int rc = pact_group_new(
        loop, &(pact_group_opts){.limit = 1, .timeout_ms = 5000}, &g);
    note(rc, "pact_group_new");
    if (rc < 0)
        return;
    note(pact_group_spawn(g, group_kid, loop, NULL), "pact_group_spawn");
    note(pact_group_spawn(g, group_kid, loop, NULL), "pact_group_spawn");
    note(pact_group_go(g, group_go, NULL), "pact_group_go");
    rc = pact_group_wait_cb(g, on_group, NULL);
    started(rc, "pact_group_wait_cb");
    if (rc < 0) /* nobody waits: cancel first, so no misuse is reported */
        pact_group_cancel(g, NULL);
    pact_group_unref(g);
}

static void chain(pact_loop *loop)
{
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(loop, &p);
    if (!d) {
        note(PACT_ENOMEM, "pact_deferred_new");
        return;
    }
    pact_promise *q = pact_then(p, add_one, NULL, NULL);
    pact_promise *r = q ? pact_then(q, add_one, NULL, NULL) : NULL;
    pact_promise *f = r ? pact_finally(r, noop_finally, NULL) : NULL;
    note(pact_deferred_resolve(d, pact_int(1)), "pact_deferred_resolve");
    pact_deferred_unref(d);
    /* enough settled inputs that their reactions, queued at once, outgrow
     * the microtask ring's first size */
    enum { IN = 100 };
    pact_promise *in[IN] = {p, pact_delay(loop, 2, NULL)};
    bool made = in[1] != NULL;
    for (int i = 2; i < IN; i++)
        made &= (in[i] = pact_resolved(loop, pact_int(i))) != NULL;
    pact_promise *all = made ? pact_all(loop, in, IN) : NULL;
    for (int i = 1; i < IN; i++)
        pact_promise_unref(in[i]);
    watch(all, C_ALL);
    watch(f, C_CHAIN);
    pact_promise_unref(p);
    pact_promise_unref(q);
    pact_promise_unref(r);
}

static void worker(pact_loop *loop, pact_worker **w)
{
    note(pact_worker_new(loop, worker_main, NULL, NULL, w), "pact_worker_new");
    if (!*w)
        return;
    pact_port *port = pact_worker_port(*w);
    json_t *j = json_pack("{si}", "n", 1);
    int rc = j ? pact_port_post_json(port, j) : PACT_ENOMEM;
    note(rc, "pact_port_post_json");
    if (rc < 0)
        json_decref(j); /* still ours */
    if (rc < 0)         /* unasked, the worker would wait for ever */
        note(pact_worker_terminate(*w), "pact_worker_terminate");
    started(pact_port_recv(port, NULL, on_msg, NULL), "pact_port_recv");
    started(pact_worker_wait(*w, NULL, on_exit_worker, NULL),
            "pact_worker_wait");
}

/* The program; 0 when it ended cleanly. */
static int program(void)
{
    pact_loop *loop;
    int rc = pact_loop_new(&loop);
    if (rc < 0) {
        note(rc, "pact_loop_new");
        return bad;
    }
    pact_loop_set_unhandled(loop, PACT_UNHANDLED_NONE);
    want = got = 0;
    memset(counts, 0, sizeof counts);
    started(pact_timeout(loop, 1, on_timer, NULL, NULL), "pact_timeout");
    aborted_timer(loop);
    chain(loop);
    watch(pact_task_spawn(loop, task_body, loop, NULL), C_TASK);
    group(loop);
    started(pact_offload(loop, square, NULL, NULL, on_offload, NULL),
            "pact_offload");
    started(pact_fs_read_file(loop, file_path, NULL, on_file, NULL),
            "pact_fs_read_file");
    pact_worker *w = NULL;
    worker(loop, &w);
    rc = pact_loop_run(loop, PACT_RUN_DEFAULT);
    note(rc < 0 ? rc : 0, "pact_loop_run");
    pact_worker_free(w);
    pact_loop_close_all(loop);
    pact_loop_run(loop, PACT_RUN_DEFAULT);
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
        if (counts[i] > 1) {
            fprintf(stderr, "oom: callback %zu ran %d times\n", i, counts[i]);
            bad = PACT_EUNKNOWN;
        }
    if (got != want) {
        fprintf(stderr, "oom: %d callbacks owed, %d ran\n", want, got);
        bad = PACT_EUNKNOWN;
    }
    rc = pact_loop_free(loop);
    if (rc < 0) {
        fprintf(stderr, "oom: pact_loop_free: %s\n", pact_err_name(rc));
        bad = rc;
    }
    return bad;
}

/* Run case @p n: 0 clean, 3 when no allocation failed (the sweep is over),
 * else a failure (printed). */
static int run_case(long n)
{
    if (program() != 0) { /* a warm-up, for what is made once per process */
        fprintf(stderr, "oom: the program fails without any fault\n");
        return 1;
    }
    long before = atomic_load(&live);
    atomic_store(&fail_at, n);
    atomic_store(&armed, true);
    int rc = program();
    atomic_store(&armed, false);
    long leaked = atomic_load(&live) - before;
    if (rc != 0)
        return 1;
    if (leaked != 0) {
        fprintf(stderr, "oom: %ld blocks leaked\n", leaked);
        for (size_t i = 0; show_where && i < TRACK; i++)
            if (track[i].p) {
                fprintf(stderr, "oom: block %p made at:\n", track[i].p);
                backtrace_symbols_fd(track[i].bt, track[i].n, 2);
            }
        return 2;
    }
    return atomic_load(&injected) ? 0 : 3;
}

int main(int argc, char **argv)
{
    dl_iterate_phdr(find_ld, NULL);
    char path[] = "/tmp/pact-oom-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, "some data\n", 10) != 10) {
        perror("oom: mkstemp");
        return 1;
    }
    close(fd);
    file_path = path;
    if (argc > 1) {
        backtrace(fault_at, 1); /* loads what it needs before anything fails */
        show_where = true;
        int rc = run_case(atol(argv[1]));
        unlink(path);
        printf("oom: case %s (of %ld allocations): %s\n", argv[1],
               atomic_load(&calls),
               rc == 0   ? "clean"
               : rc == 3 ? "no fault injected"
                         : "FAILED");
        return rc == 3 ? 0 : rc;
    }
    int failures = 0;
    long n;
    for (n = 1; n < 100000; n++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("oom: fork");
            return 1;
        }
        if (pid == 0) {
            if (!freopen("/dev/null", "w", stderr))
                _exit(1);
            setvbuf(stderr, NULL, _IONBF, 0); /* no buffer made later */
            alarm(10);                        /* a hang is a failure */
            _exit(run_case(n));
        }
        int st;
        if (waitpid(pid, &st, 0) < 0) {
            perror("oom: waitpid");
            return 1;
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
            break;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            continue;
        failures++;
        if (WIFSIGNALED(st))
            printf("oom: FAIL: case %ld: signal %d (%s)\n", n, WTERMSIG(st),
                   strsignal(WTERMSIG(st)));
        else
            printf("oom: FAIL: case %ld: %s\n", n,
                   WEXITSTATUS(st) == 2 ? "leak" : "unclean end");
    }
    unlink(path);
    printf("oom: %ld cases, %d failed (run `test/oom N` to see one)\n", n - 1,
           failures);
    return failures ? 1 : 0;
}
#else
int main(void)
{
    puts("oom: skipped: the sanitizer replaces malloc");
    return 77;
}
#endif

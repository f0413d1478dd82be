#include "helpers.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

pact_loop *t_loop;

/* t_settle_later's anchor: see there */
static uint64_t anchor_us;
static unsigned anchor_turn, settled;

void t_setup(void)
{
    ck_assert_int_eq(pact_loop_new(&t_loop), 0);
    trace_reset();
    anchor_us = 0;
    t_shutdown = false;
}

void t_teardown(void)
{
    ck_assert_int_eq(pact_loop_free(t_loop), 0);
    t_loop = NULL;
}

static char *buf;
static size_t len, cap;

void trace_reset(void)
{
    free(buf);
    buf = NULL;
    len = cap = 0;
}

void trace(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (len + (size_t)n + 1 > cap) {
        cap = (len + (size_t)n + 1) * 2;
        buf = realloc(buf, cap);
        ck_assert_ptr_nonnull(buf);
    }
    memcpy(buf + len, line, (size_t)n);
    len += (size_t)n;
    buf[len] = '\0';
}

const char *trace_text(void)
{
    return buf ? buf : "";
}

/* $PACT_FIXTURES/@p relpath; without PACT_FIXTURES, test/fixtures/ under the
 * current directory, else the fixtures beside this file's source (__FILE__
 * is absolute in an out-of-tree build), so that `./test/runner porder` works
 * from a build tree as well as from `make check`. */
static FILE *open_fixture(const char *relpath)
{
    const char *dir = getenv("PACT_FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "test/fixtures", relpath);
    FILE *f = fopen(path, "rb");
    const char *slash = strrchr(__FILE__, '/');
    if (f || dir || !slash)
        return f;
    snprintf(path, sizeof path, "%.*s/fixtures/%s", (int)(slash - __FILE__),
             __FILE__, relpath);
    return fopen(path, "rb");
}

char *t_read_fixture(const char *relpath)
{
    FILE *f = open_fixture(relpath);
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

void trace_cb(pact_error *err, void *ud)
{
    if (t_shutdown && pact_error_code(err) == PACT_ECANCELED)
        return; /* the test's own clean-up cancelled it */
    if (err)
        pact_error_print(err, stderr);
    ck_assert_ptr_null(err);
    trace("%s", (const char *)ud);
}

void trace_fn(void *ud)
{
    trace("%s", (const char *)ud);
}

void t_keepalive_cb(pact_error *err, void *ud)
{
    (void)ud;
    if (err) /* the loop's end cancels it: its one call */
        ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
    else
        ck_abort_msg("a keep-alive timer fired");
}

bool t_shutdown;

void count_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    ++*(int *)ud;
}

void count_fn(void *ud)
{
    ++*(int *)ud;
}

uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

void capture_begin(struct capture *c)
{
    fflush(stderr);
    c->file = tmpfile();
    ck_assert_ptr_nonnull(c->file);
    c->saved = dup(2);
    ck_assert_int_ge(c->saved, 0);
    ck_assert_int_eq(dup2(fileno(c->file), 2), 2);
}

char *capture_end(struct capture *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    long n = ftell(c->file);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    rewind(c->file);
    size_t got = fread(s, 1, (size_t)n, c->file);
    s[got] = '\0';
    fclose(c->file);
    return s;
}

char *t_error_text(const pact_error *e)
{
    /* a temporary file, not open_memstream: gcc -O2 takes the stream's
     * buffer pointer for a dangling one (-Wdangling-pointer) */
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    pact_error_print(e, f);
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    rewind(f);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

int t_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

pact_promise *t_pending(pact_deferred **d)
{
    pact_promise *p = NULL;
    *d = pact_deferred_new(t_loop, &p);
    ck_assert_ptr_nonnull(*d);
    ck_assert_ptr_nonnull(p);
    return p;
}

struct later {
    pact_deferred *d;
    pact_value v;
    const char *label;
};

static void later_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct later *l = ud;
    settled++;
    if (l->label)
        trace("%s", l->label);
    ck_assert_int_eq(pact_deferred_resolve(l->d, l->v), 0);
    pact_deferred_unref(l->d);
    free(l);
}

void t_settle_later(pact_deferred *d, uint64_t ms, pact_value v,
                    const char *label)
{
    struct later *l = malloc(sizeof *l);
    ck_assert_ptr_nonnull(l);
    l->d = d;
    l->v = v;
    l->label = label;
    /* Delays count from the first call since the last settlement, not from
     * each call: a loaded machine that pauses the test between two calls
     * would otherwise reorder settlements 5 ms apart. The anchor is read
     * after the first timer starts (its start is no later), and each later
     * delay loses only the whole ms gone since (its start is no earlier),
     * so each deadline is at least anchor + its delay and the first's at
     * most that: a pause anywhere cannot reorder them. */
    bool first = !anchor_us || anchor_turn != settled;
    if (!first) {
        uint64_t gone = (now_us() - anchor_us) / 1000;
        ms = ms > gone ? ms - gone : 0;
    }
    ck_assert_int_eq(pact_timeout(t_loop, ms, later_cb, l, NULL), 0);
    if (first) {
        anchor_us = now_us();
        anchor_turn = settled;
    }
}

void t_spin_ms(int ms)
{
    uint64_t until = now_us() + (uint64_t)ms * 1000;
    while (now_us() < until)
        ;
}

void t_forked(void (*fn)(void *), void *arg)
{
    /* Not with all tests in one process (CK_FORK=no, as under valgrind):
     * the child would lack the pool threads earlier tests started, and
     * valgrind would count the parent's memory as the child's leaks. */
    const char *ck_fork = getenv("CK_FORK");
    if (ck_fork && strcmp(ck_fork, "no") == 0)
        return;
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(60); /* a hang ends the child with a signal */
        fn(arg);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child status %d", status);
}

int t_child_fd_limit(int spare)
{
    static rlim_t original;
    struct rlimit rl;
    T_CHILD_ASSERT(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (!original)
        original = rl.rlim_cur;
    rl.rlim_cur = original; /* to find the lowest free descriptor */
    T_CHILD_ASSERT(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    T_CHILD_ASSERT(fd >= 0);
    close(fd);
    rl.rlim_cur = (rlim_t)fd + (rlim_t)spare;
    T_CHILD_ASSERT(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    return fd;
}

void t_must(int rc, const char *what, const char *file, int line)
{
    if (rc == 0)
        return;
    fprintf(stderr, "%s:%d: %s: %s\n", file, line, what, pact_err_name(rc));
    abort();
}

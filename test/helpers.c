#include "helpers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

pact_loop *t_loop;

/* t_settle_later's anchor: see there */
static uint64_t anchor_us;
static unsigned anchor_turn, settled;
static void t_settle_reset(void);

void t_setup(void)
{
    ck_assert_int_eq(pact_loop_new(&t_loop), 0);
    trace_reset();
    anchor_us = 0;
    t_shutdown = false;
    t_settle_reset();
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

pact_promise *t_promise_cycle(pact_promise **second)
{
    pact_deferred *d1, *d2;
    pact_promise *p1 = t_pending(&d1), *p2 = t_pending(&d2);
    ck_assert_int_eq(
        pact_deferred_resolve(d1, pact_promise_v(pact_promise_ref(p2))), 0);
    ck_assert_int_eq(
        pact_deferred_resolve(d2, pact_promise_v(pact_promise_ref(p1))), 0);
    pact_deferred_unref(d1);
    pact_deferred_unref(d2);
    if (second)
        *second = p2;
    else
        pact_promise_unref(p2);
    return p1;
}

/* t_settle_later's schedule: the settlements due, in deadline order, run
 * one per timer callback by one timer armed for the earliest. The order is
 * the deadlines', whatever pauses a loaded machine puts between the calls
 * or inside them: independent timers, each measured from its own start,
 * could be reordered by a pause between reading the clock and starting one.
 */
struct later {
    pact_deferred *d;
    pact_value v;
    const char *label;
    uint64_t due_us;
    struct later *next;
};
static struct later *sched;
static pact_handle sched_timer;
static bool sched_armed;

static void later_cb(pact_error *err, void *ud);

/* A new test: what a failed one left belongs to its freed loop. */
static void t_settle_reset(void)
{
    sched = NULL;
    sched_armed = false;
}

static void sched_arm(void)
{
    if (sched_armed)
        ck_assert_int_eq(pact_clear(t_loop, sched_timer), 0);
    sched_armed = false;
    if (!sched)
        return;
    uint64_t now = now_us();
    /* rounded up: a timer never fires early, so none settles early */
    uint64_t ms = sched->due_us > now ? (sched->due_us - now + 999) / 1000 : 0;
    ck_assert_int_eq(
        pact_timeout(t_loop, (int64_t)ms, later_cb, NULL, &sched_timer), 0);
    sched_armed = true;
}

static void later_free(struct later *l)
{
    pact_value_release(&l->v);
    pact_deferred_unref(l->d);
    free(l);
}

static void later_cb(pact_error *err, void *ud)
{
    (void)ud;
    sched_armed = false;
    if (err) { /* pact_loop_close_all: the test is over */
        ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
        while (sched) {
            struct later *l = sched;
            sched = l->next;
            later_free(l);
        }
        return;
    }
    struct later *l = sched;
    ck_assert_ptr_nonnull(l);
    sched = l->next;
    settled++;
    sched_arm(); /* the next: a later timer callback */
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
     * each call, so that calls made in one turn keep their delays' order */
    uint64_t now = now_us();
    if (!anchor_us || anchor_turn != settled) {
        anchor_us = now;
        anchor_turn = settled;
    }
    l->due_us = anchor_us + ms * 1000;
    struct later **at = &sched;
    while (*at && (*at)->due_us <= l->due_us) /* equal: in call order */
        at = &(*at)->next;
    l->next = *at;
    *at = l;
    if (sched == l || !sched_armed)
        sched_arm();
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

/* ---- line-echo servers in three styles, and their one client ------------- */

void t_echo_data(pact_stream *s, const void *data, size_t n, void *ud)
{
    (void)ud;
    ck_assert_int_ge(pact_stream_write(s, data, n), 0);
}

void t_echo_accept_cb(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    if (err)
        return;
    pact_stream_events ev = {.data = t_echo_data};
    ck_assert_int_eq(pact_stream_on(s, &ev, NULL), 0);
}

/* The promise style: read a line, write it back, again. */
static void echo_p_step(pact_stream *s);

static pact_value echo_p_written(const pact_value *v, void *ud)
{
    (void)v;
    echo_p_step(ud);
    return pact_nothing();
}

static pact_value echo_p_line(const pact_value *v, void *ud)
{
    pact_stream *s = ud;
    size_t n = v->u.bytes.len;
    char *line = malloc(n + 1);
    ck_assert_ptr_nonnull(line);
    memcpy(line, v->u.bytes.data, n);
    line[n] = '\n';
    pact_promise *w = pact_stream_write_p(s, line, n + 1);
    free(line);
    pact_promise *next = pact_then(w, echo_p_written, NULL, s);
    pact_promise_unref(w);
    return pact_promise_v(next);
}

static pact_value echo_p_eof(pact_error *err, void *ud)
{
    ck_assert_int_eq(pact_error_code(err), PACT_EOF);
    pact_stream_close(ud);
    return pact_nothing();
}

static void echo_p_step(pact_stream *s)
{
    pact_promise *r = pact_stream_read_line_p(s, NULL);
    pact_promise *t = pact_then(r, echo_p_line, echo_p_eof, s);
    pact_promise_unref(r);
    pact_promise_unref(t);
}

void t_echo_accept_promise(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    if (!err)
        echo_p_step(s);
}

static pact_error *echo_task(void *arg, pact_value *result)
{
    (void)result;
    pact_stream *s = arg;
    for (;;) {
        pact_value line;
        pact_error *err =
            PACT_AWAIT_ERR(pact_stream_read_line_p(s, NULL), &line);
        if (err) {
            ck_assert_int_eq(pact_error_code(err), PACT_EOF);
            pact_error_unref(err);
            break;
        }
        char out[256];
        size_t n = line.u.bytes.len;
        ck_assert_uint_lt(n, sizeof out);
        memcpy(out, line.u.bytes.data, n);
        out[n] = '\n';
        pact_value_release(&line);
        err = PACT_AWAIT_ERR(pact_stream_write_p(s, out, n + 1), NULL);
        if (err)
            return err;
    }
    pact_stream_close(s);
    return NULL;
}

void t_echo_accept_task(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    if (!err)
        pact_promise_unref(pact_task_spawn(t_loop, echo_task, s, NULL));
}

struct echo_client {
    const char *host;
    int port;
    const pact_tcp_connect_opts *co;
    pact_tcp_server *srv;
};

/* A line at a time, each echo read back whole. */
static pact_error *echo_client_task(void *arg, pact_value *result)
{
    (void)result;
    struct echo_client *c = arg;
    pact_value v;
    pact_error *err =
        PACT_AWAIT_ERR(pact_tcp_connect_p(t_loop, c->host, c->port, c->co), &v);
    if (err)
        return err;
    pact_stream *s = v.u.ptr;
    if (c->co && c->co->tls)
        trace("tls %s", pact_tls_version(s) ? "up" : "down");
    for (int i = 0; i < T_ECHO_LINES; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "line %d of %d\n", i, T_ECHO_LINES);
        trace("send %.*s", n - 1, msg);
        err = PACT_AWAIT_ERR(pact_stream_write_p(s, msg, (size_t)n), NULL);
        ck_assert_ptr_null(err);
        err = PACT_AWAIT_ERR(pact_stream_read_line_p(s, NULL), &v);
        ck_assert_ptr_null(err);
        trace("got %s", (char *)v.u.bytes.data);
        pact_value_release(&v);
    }
    ck_assert_ptr_null(PACT_AWAIT_ERR(pact_stream_end_p(s), NULL));
    err = PACT_AWAIT_ERR(pact_stream_read_some_p(s, NULL), NULL);
    trace("then %s", pact_err_name(pact_error_code(err)));
    pact_error_unref(err);
    pact_stream_close(s);
    pact_tcp_server_close(c->srv, NULL, NULL);
    return NULL;
}

char *t_echo_transcript(const char *host, const pact_tcp_listen_opts *lo,
                        const pact_tcp_connect_opts *co,
                        pact_tcp_accept_cb accept)
{
    trace_reset();
    struct echo_client c = {host, 0, co, NULL};
    ck_assert_int_eq(pact_tcp_listen(t_loop, host, 0, lo, accept, NULL, &c.srv),
                     0);
    c.port = pact_tcp_server_port(c.srv);
    ck_assert_int_gt(c.port, 0);
    pact_promise *t = pact_task_spawn(t_loop, echo_client_task, &c, NULL);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(pact_promise_state(t), PACT_FULFILLED);
    pact_promise_unref(t);
    char *text = strdup(trace_text());
    ck_assert_ptr_nonnull(text);
    return text;
}

/* ---- an HTTP server on a thread ------------------------------------------ */

static void *t_http_main(void *arg)
{
    struct t_http *h = arg;
    ck_assert_int_eq(pact_loop_new(&h->loop), 0);
    ck_assert_int_eq(
        pact_http_listen(h->loop, "127.0.0.1", 0, &h->opts, &h->srv), 0);
    if (h->routes)
        h->routes(h->srv);
    h->port = pact_http_server_port(h->srv);
    sem_post(&h->ready);
    pact_loop_run(h->loop, PACT_RUN_DEFAULT);
    h->free_rc = pact_loop_free(h->loop);
    if (h->free_rc) /* what is left open, for the failure that follows */
        pact_loop_print_pending(h->loop, stderr);
    return NULL;
}

void t_http_start(struct t_http *h)
{
    sem_init(&h->ready, 0, 0);
    ck_assert_int_eq(pthread_create(&h->th, NULL, t_http_main, h), 0);
    sem_wait(&h->ready);
}

static void t_http_close(void *ud)
{
    struct t_http *h = ud;
    ck_assert_int_eq(pact_http_server_close(h->srv, NULL, NULL), 0);
}

void t_http_stop(struct t_http *h)
{
    ck_assert_int_eq(pact_loop_post(h->loop, t_http_close, h), 0);
    t_http_join(h);
}

void t_http_join(struct t_http *h)
{
    pthread_join(h->th, NULL);
    sem_destroy(&h->ready);
    ck_assert_int_eq(h->free_rc, 0);
}

static void t_http_path_now(pact_error *err, void *ud)
{
    (void)err; /* cancelled too: the request is answered whatever happens */
    const char *path = pact_http_req_path(ud);
    pact_http_reply(ud, 200, "text/plain", path, strlen(path));
}

void t_http_path_later(pact_loop *loop, pact_http_req *req, uint64_t ms)
{
    pact_handle h;
    ck_assert_int_eq(pact_timeout(loop, ms, t_http_path_now, req, &h), 0);
}

int t_dial(int port, int secs)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    if (secs) {
        struct timeval tv = {.tv_sec = secs};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    return fd;
}

bool t_have(const char *prog)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

int t_output(const char *cmd, char *out, size_t size)
{
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, size - 1, p) : 0;
    out[n] = '\0';
    return p ? pclose(p) : -1;
}

void t_seen_end(pact_stream *s, void *ud)
{
    (void)s;
    ((struct t_seen *)ud)->ends++;
}

void t_seen_close(pact_stream *s, void *ud)
{
    (void)s;
    struct t_seen *c = ud;
    c->closes++;
    pact_tcp_server_close(c->srv, NULL, NULL);
}

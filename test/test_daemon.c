/* Daemon life, with real sockets on 127.0.0.1: a server's graceful shutdown
 * (requests in flight when it starts all complete and are answered, a
 * connection waiting in the kernel's accept queue is served, an idle one
 * ends at once through the shutdown token, one idle past the deadline is
 * closed with PACT_ECANCELED, the callback runs once, new connections are
 * refused), the same on SIGTERM, and misuse. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "suites.h"

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static char *recv_all(int fd)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    ssize_t k;
    while ((k = recv(fd, buf + n, cap - n, 0)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    return buf;
}

/* ---- a server whose requests take a while ---------------------------------
 */

struct daemon {
    pact_loop *loop;
    pact_tcp_server *srv;
    int accepted, requests, answered, served_out;
    int shut_calls, shut_code;
};

struct conn {
    struct daemon *d;
    pact_stream *s;
};

/* A task per connection: read a request, work 100 ms, answer, again. The
 * first read waits without the shutdown token (the client connected to ask
 * something: one accepted during the shutdown is served too); the next
 * ones with it, so an idle connection ends when the shutdown begins. */
static pact_error *serve(void *arg, pact_value *result)
{
    (void)result;
    struct conn *c = arg;
    struct daemon *d = c->d;
    pact_read_opts o = {0};
    pact_value line;
    pact_error *err;
    while (!(err = PACT_AWAIT_ERR(pact_stream_read_line_p(c->s, &o), &line))) {
        o.abort = pact_tcp_server_shutdown_token(d->srv);
        d->requests++;
        pact_error *e = PACT_AWAIT_ERR(pact_delay(d->loop, 100, NULL), NULL);
        if (e) {
            pact_error_unref(e);
            pact_value_release(&line);
            break;
        }
        char out[128];
        int n = snprintf(out, sizeof out, "ok:%s\n",
                         (const char *)line.u.bytes.data);
        pact_value_release(&line);
        if ((err = PACT_AWAIT_ERR(pact_stream_write_p(c->s, out, (size_t)n),
                                  NULL)))
            break;
        d->answered++;
    }
    pact_error_unref(err);
    pact_stream_close(c->s);
    d->served_out++;
    free(c);
    return NULL;
}

static void on_conn(pact_error *err, pact_stream *s, void *ud)
{
    struct daemon *d = ud;
    if (err)
        return;
    d->accepted++;
    struct conn *c = malloc(sizeof *c);
    c->d = d;
    c->s = s;
    pact_promise_unref(pact_task_spawn(d->loop, serve, c, NULL));
}

static void on_shut(pact_error *err, void *ud)
{
    struct daemon *d = ud;
    d->shut_calls++;
    d->shut_code = err ? pact_error_code(err) : 0;
}

static int start_daemon(struct daemon *d, pact_loop *loop)
{
    d->loop = loop;
    ck_assert_int_eq(
        pact_tcp_listen(loop, "127.0.0.1", 0, NULL, on_conn, d, &d->srv), 0);
    ck_assert_ptr_nonnull(pact_tcp_server_shutdown_token(d->srv));
    return pact_tcp_server_port(d->srv);
}

#define BUSY 4

START_TEST(shutdown_in_flight)
{
    struct daemon d = {0};
    int port = start_daemon(&d, t_loop);
    int busy[BUSY], idle = raw_connect(port), mute = raw_connect(port);
    char req[32];
    for (int i = 0; i < BUSY; i++) {
        busy[i] = raw_connect(port);
        int n = snprintf(req, sizeof req, "req %d\n", i);
        ck_assert_int_eq(send(busy[i], req, (size_t)n, 0), n);
    }
    /* idle: one request answered, then nothing; mute: never says a word */
    ck_assert_int_eq(send(idle, "hello\n", 6, 0), 6);
    while (d.answered < 1 || d.requests < BUSY + 1)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    ck_assert_int_eq(d.accepted, BUSY + 2);
    /* four requests in flight now; one more client waits in the kernel's
     * queue (connected, not accepted yet) with its request sent */
    int late = raw_connect(port);
    ck_assert_int_eq(send(late, "late\n", 5, 0), 5);
    ck_assert_int_eq(pact_tcp_server_shutdown(d.srv, 400, on_shut, &d), 0);
    ck_assert_int_eq(pact_tcp_server_shutdown(d.srv, 400, on_shut, &d),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_tcp_server_close(d.srv, NULL, NULL), PACT_EINVAL);
    ck_assert_int_eq(d.shut_calls, 0); /* never inside the call */
    uint64_t t0 = now_us();
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(d.shut_calls, 1);
    ck_assert_int_eq(d.shut_code, PACT_ETIMEDOUT); /* the mute one */
    ck_assert_uint_ge(now_us() - t0, 350000);      /* it waited for it */
    ck_assert_int_eq(d.accepted, BUSY + 3);        /* the late one too */
    ck_assert_int_eq(d.served_out, BUSY + 3);
    /* every request in flight answered, then the connection ended */
    for (int i = 0; i < BUSY; i++) {
        char *got = recv_all(busy[i]);
        snprintf(req, sizeof req, "ok:req %d\n", i);
        ck_assert_str_eq(got, req);
        free(got);
        close(busy[i]);
    }
    char *got = recv_all(late);
    ck_assert_str_eq(got, "ok:late\n");
    free(got);
    got = recv_all(idle);
    ck_assert_str_eq(got, "ok:hello\n");
    free(got);
    got = recv_all(mute);
    ck_assert_str_eq(got, ""); /* closed at the deadline */
    free(got);
    close(late);
    close(idle);
    close(mute);
    /* nobody listens any more */
    ck_assert_int_eq(raw_connect(port), -ECONNREFUSED);
}
END_TEST

/* All done before the deadline: no error, at once, once. */
START_TEST(shutdown_in_time)
{
    struct daemon d = {0};
    int port = start_daemon(&d, t_loop);
    int fd = raw_connect(port);
    ck_assert_int_eq(send(fd, "one\n", 4, 0), 4);
    while (d.requests < 1)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    ck_assert_int_eq(pact_tcp_server_shutdown(d.srv, 60000, on_shut, &d), 0);
    uint64_t t0 = now_us();
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_uint_lt(now_us() - t0, 30000000); /* not the deadline */
    ck_assert_int_eq(d.shut_calls, 1);
    ck_assert_int_eq(d.shut_code, 0);
    char *got = recv_all(fd);
    ck_assert_str_eq(got, "ok:one\n");
    free(got);
    close(fd);
}
END_TEST

/* No connection at all: the callback on the next tick; no deadline. */
START_TEST(shutdown_empty)
{
    struct daemon d = {0};
    start_daemon(&d, t_loop);
    ck_assert_int_eq(pact_tcp_server_shutdown(d.srv, 0, on_shut, &d), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(d.shut_calls, 1);
    ck_assert_int_eq(d.shut_code, 0);
    ck_assert_int_eq(pact_tcp_server_shutdown(NULL, 0, NULL, NULL),
                     PACT_EINVAL);
    ck_assert_ptr_null(pact_tcp_server_shutdown_token(NULL));
}
END_TEST

/* close_all during the shutdown: the streams are destroyed, one call. */
START_TEST(shutdown_then_close_all)
{
    struct daemon d = {0};
    int port = start_daemon(&d, t_loop);
    int fd = raw_connect(port);
    while (d.accepted < 1)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    ck_assert_int_eq(pact_tcp_server_shutdown(d.srv, 60000, on_shut, &d), 0);
    pact_loop_close_all(t_loop);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(d.shut_calls, 1);
    close(fd);
}
END_TEST

/* ---- events style: the stream left at the deadline gets PACT_ECANCELED ----
 */

struct evd {
    pact_tcp_server *srv;
    int errors, closes, code, shut_calls, shut_code;
};

static void evd_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    (void)ud;
    ck_assert_int_ge(pact_stream_write(s, buf, len), 0);
}

static void evd_error(pact_stream *s, pact_error *err, void *ud)
{
    (void)s;
    struct evd *e = ud;
    e->errors++;
    e->code = pact_error_code(err);
}

static void evd_close(pact_stream *s, void *ud)
{
    (void)s;
    struct evd *e = ud;
    e->closes++;
}

static void evd_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    pact_stream_events ev = {
        .data = evd_data, .error = evd_error, .close = evd_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, ud), 0);
}

static void evd_shut(pact_error *err, void *ud)
{
    struct evd *e = ud;
    e->shut_calls++;
    e->shut_code = pact_error_code(err);
    ck_assert_int_eq(e->closes, 2); /* after the streams' close events */
}

START_TEST(shutdown_events_deadline)
{
    struct evd e = {0};
    ck_assert_int_eq(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL, evd_accept, &e, &e.srv),
        0);
    int port = pact_tcp_server_port(e.srv);
    int a = raw_connect(port), b = raw_connect(port);
    ck_assert_int_eq(send(a, "x", 1, 0), 1);
    while (pact_tcp_server_connections(e.srv) < 2)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    ck_assert_int_eq(pact_tcp_server_shutdown(e.srv, 100, evd_shut, &e), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(e.shut_calls, 1);
    ck_assert_int_eq(e.shut_code, PACT_ETIMEDOUT);
    ck_assert_int_eq(e.errors, 2);
    ck_assert_int_eq(e.code, PACT_ECANCELED);
    char *got = recv_all(a);
    ck_assert_str_eq(got, "x"); /* echoed, then closed */
    free(got);
    got = recv_all(b);
    ck_assert_str_eq(got, "");
    free(got);
    close(a);
    close(b);
}
END_TEST

/* ---- on SIGTERM, in a child (it changes the signal's disposition) -------- */

static void sigterm_child(void *arg)
{
    (void)arg;
    pact_loop *loop;
    T_CHILD_ASSERT(pact_loop_new(&loop) == 0);
    struct daemon d = {0};
    d.loop = loop;
    T_CHILD_ASSERT(
        pact_tcp_listen(loop, "127.0.0.1", 0, NULL, on_conn, &d, &d.srv) == 0);
    int port = pact_tcp_server_port(d.srv);
    T_CHILD_ASSERT(
        pact_tcp_server_shutdown_on_signals(d.srv, 5000, on_shut, &d) == 0);
    T_CHILD_ASSERT(pact_tcp_server_shutdown_on_signals(d.srv, 5000, on_shut,
                                                       &d) == PACT_EALREADY);
    int fd = raw_connect(port);
    T_CHILD_ASSERT(send(fd, "sig\n", 4, 0) == 4);
    while (d.requests < 1)
        T_CHILD_ASSERT(pact_loop_run(loop, PACT_RUN_ONCE) >= 0);
    kill(getpid(), SIGTERM); /* the request is in flight */
    T_CHILD_ASSERT(pact_loop_run(loop, PACT_RUN_DEFAULT) == 0);
    T_CHILD_ASSERT(d.shut_calls == 1 && d.shut_code == 0);
    char *got = recv_all(fd);
    T_CHILD_ASSERT(strcmp(got, "ok:sig\n") == 0);
    free(got);
    close(fd);
    T_CHILD_ASSERT(pact_loop_free(loop) == 0);
}

START_TEST(shutdown_on_sigterm)
{
    t_forked(sigterm_child, NULL);
}
END_TEST

/* ---- a cluster: real forks sharing a port ----------------------------- */

struct cl {
    pact_loop *loop;
    pact_tcp_server *srv;
    int shut_calls, shut_code;
};

/* A worker's connection: one line in, its pid out (after 300 ms for
 * "slow"), closed. */
static pact_error *cl_serve(void *arg, pact_value *result)
{
    (void)result;
    pact_stream *s = arg;
    pact_value line;
    pact_error *err = PACT_AWAIT_ERR(pact_stream_read_line_p(s, NULL), &line);
    if (!err) {
        if (strcmp((const char *)line.u.bytes.data, "slow") == 0)
            err = pact_sleep(300);
        pact_value_release(&line);
    }
    if (!err) {
        char out[32];
        int n = snprintf(out, sizeof out, "%ld\n", (long)getpid());
        err = PACT_AWAIT_ERR(pact_stream_write_p(s, out, (size_t)n), NULL);
    }
    pact_error_unref(err);
    pact_stream_close(s);
    return NULL;
}

static void cl_conn(pact_error *err, pact_stream *s, void *ud)
{
    struct cl *c = ud;
    if (!err)
        pact_promise_unref(pact_task_spawn(c->loop, cl_serve, s, NULL));
}

static void cl_shut(pact_error *err, void *ud)
{
    struct cl *c = ud;
    c->shut_calls++;
    c->shut_code = err ? pact_error_code(err) : 0;
}

/* The worker's main: its own loop, the shared port, shut down on SIGTERM;
 * 0 only after a clean shutdown. */
static int cl_worker(unsigned index, void *arg)
{
    (void)index;
    struct cl c = {0};
    if (pact_loop_new(&c.loop) < 0)
        return 2;
    pact_tcp_listen_opts lo = {.reuseport = true};
    if (pact_tcp_listen(c.loop, "127.0.0.1", *(int *)arg, &lo, cl_conn, &c,
                        &c.srv) < 0 ||
        pact_tcp_server_shutdown_on_signals(c.srv, 5000, cl_shut, &c) < 0)
        return 3;
    if (pact_loop_run(c.loop, PACT_RUN_DEFAULT) < 0)
        return 4;
    if (pact_loop_free(c.loop) < 0)
        return 5;
    return c.shut_calls == 1 && c.shut_code == 0 ? 0 : 6;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Ask the cluster on @p port: the answering worker's pid, or -1. */
static long ask(int port, const char *what)
{
    int fd = raw_connect(port);
    if (fd < 0)
        return -1;
    char req[16];
    int n = snprintf(req, sizeof req, "%s\n", what);
    long pid = -1;
    if (send(fd, req, (size_t)n, 0) == n) {
        char *got = recv_all(fd);
        if (*got)
            pid = strtol(got, NULL, 10);
        free(got);
    }
    close(fd);
    return pid;
}

/* An answer from a worker other than @p not1 and @p not2, within 10 s. */
static long ask_until_other(int port, long not1, long not2)
{
    uint64_t until = now_us() + 10000000;
    while (now_us() < until) {
        long pid = ask(port, "fast");
        if (pid > 0 && pid != not1 && pid != not2)
            return pid;
        sleep_ms(5);
    }
    return -1;
}

/* @p pid is gone: its parent reaped it, so all its threads have ended and
 * its sockets are closed (a zombie leader may still have threads exiting
 * and its descriptors open, as under TSan's background thread). */
static bool reaped(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld", pid);
    return access(path, F_OK) != 0;
}

START_TEST(cluster)
{
    const char *ck_fork = getenv("CK_FORK");
    if (ck_fork && strcmp(ck_fork, "no") == 0)
        return; /* forks: not in one process under valgrind (t_forked) */
    int port = free_port();
    fflush(NULL);
    pid_t sup = fork();
    ck_assert_int_ge(sup, 0);
    if (sup == 0) {
        alarm(60);
        pact_cluster_opts o = {.workers = 2, .restart_ms = 50, .quiet = true};
        _exit(pact_cluster_run(&o, cl_worker, &port) == 0 ? 0 : 1);
    }
    /* both workers answer: the kernel spreads the connections */
    long a = ask_until_other(port, -1, -1);
    ck_assert_int_gt(a, 0);
    long b = ask_until_other(port, a, -1);
    ck_assert_int_gt(b, 0);
    /* one dies: the other answers at once, a new one is started */
    ck_assert_int_eq(kill((pid_t)a, SIGKILL), 0);
    uint64_t until = now_us() + 5000000;
    while (!reaped(a) && now_us() < until)
        sleep_ms(1);
    ck_assert(reaped(a)); /* by the supervisor */
    for (int i = 0; i < 10; i++) {
        long pid = ask(port, "fast");
        ck_assert_int_gt(pid, 0);
        ck_assert_int_ne(pid, a);
    }
    long c = ask_until_other(port, a, b);
    ck_assert_int_gt(c, 0);
    /* SIGTERM to the supervisor with a request in flight: answered, then
     * every worker shuts down and the supervisor exits with 0 */
    int fd = raw_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(send(fd, "slow\n", 5, 0), 5);
    sleep_ms(100);
    ck_assert_int_eq(kill(sup, SIGTERM), 0);
    char *got = recv_all(fd);
    long pid = strtol(got, NULL, 10);
    ck_assert_msg(pid == b || pid == c, "answered by %s", got);
    free(got);
    close(fd);
    int status;
    ck_assert_int_eq(waitpid(sup, &status, 0), sup);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "supervisor status %d", status);
    ck_assert_int_eq(ask(port, "fast"), -1); /* nobody listens */
}
END_TEST

/* A worker that fails at once is restarted with a growing back-off; the
 * stop ends the supervisor with 0 (between two restarts) or 1 (a worker
 * failing during the stop). */
static int failing_worker(unsigned index, void *arg)
{
    (void)index;
    int *fd = arg;
    ssize_t n = write(*fd, "x", 1);
    (void)n;
    return 7;
}

START_TEST(cluster_restart_backoff)
{
    const char *ck_fork = getenv("CK_FORK");
    if (ck_fork && strcmp(ck_fork, "no") == 0)
        return;
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fflush(NULL);
    pid_t sup = fork();
    ck_assert_int_ge(sup, 0);
    if (sup == 0) {
        alarm(60);
        close(p[0]);
        pact_cluster_opts o = {.workers = 1,
                               .restart_ms = 20,
                               .restart_max_ms = 160,
                               .quiet = true};
        _exit(pact_cluster_run(&o, failing_worker, &p[1]));
    }
    close(p[1]);
    /* starts at 0, +20, +40, +80, +160, +160...: six within a second */
    char buf[64];
    int starts = 0;
    uint64_t until = now_us() + 1000000;
    while (now_us() < until && starts < 6) {
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n > 0)
            starts += (int)n;
    }
    ck_assert_int_ge(starts, 6);
    ck_assert_int_eq(kill(sup, SIGTERM), 0);
    int status;
    ck_assert_int_eq(waitpid(sup, &status, 0), sup);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) <= 1,
                  "supervisor status %d", status);
    close(p[0]);
    ck_assert_int_eq(pact_cluster_run(NULL, NULL, NULL), PACT_EINVAL);
}
END_TEST

Suite *suite_daemon(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = tcase_create("daemon");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_add_test(tc, shutdown_in_flight);
    tcase_add_test(tc, shutdown_in_time);
    tcase_add_test(tc, shutdown_empty);
    tcase_add_test(tc, shutdown_then_close_all);
    tcase_add_test(tc, shutdown_events_deadline);
    tcase_add_test(tc, shutdown_on_sigterm);
    tcase_add_test(tc, cluster);
    tcase_add_test(tc, cluster_restart_backoff);
    suite_add_tcase(s, tc);
    return s;
}

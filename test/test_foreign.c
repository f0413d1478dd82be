/* The program's own libevent events on a pact loop's base (a listener and
 * bufferevents on real sockets on 127.0.0.1): work they queue is drained
 * after each of their callbacks, before the next macrotask, and they keep
 * pact_loop_run going while added unless unreferenced. Each test runs on the
 * loop's own base, on a borrowed base run by pact_loop_run, and (where it
 * applies) on a borrowed base the program dispatches itself. */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "suites.h"

enum mode { OWN_BASE, BORROWED_RUN, BORROWED_DISPATCH };

static const char *const mode_names[] = {"own base", "borrowed base",
                                         "dispatched by the program"};

struct net {
    enum mode mode;
    pact_loop *loop;
    struct event_base *base; /* borrowed: the test's, else NULL */
    struct evconnlistener *lis;
    struct bufferevent *server, *client;
    struct sockaddr_in addr; /* where the listener listens */
    pact_deferred *d;        /* resolved by the server's read callback */
    pact_handle long_timer;
    int accepts;
};

static void net_open(struct net *n, enum mode mode)
{
    memset(n, 0, sizeof *n);
    n->mode = mode;
    trace_reset();
    if (mode == OWN_BASE) {
        ck_assert_int_eq(pact_loop_new(&n->loop), 0);
    } else {
        n->base = event_base_new();
        ck_assert_ptr_nonnull(n->base);
        ck_assert_int_eq(pact_loop_from_base(n->base, &n->loop), 0);
    }
}

/* Run the loop until nothing keeps it alive (or, when the program
 * dispatches, until pact_loop_stop). @return pact_loop_run's result. */
static int net_run(struct net *n)
{
    if (n->mode == BORROWED_DISPATCH) {
        ck_assert_int_eq(event_base_dispatch(n->base), 0);
        return 0;
    }
    return pact_loop_run(n->loop, PACT_RUN_DEFAULT);
}

static void net_close(struct net *n)
{
    ck_assert_int_eq(pact_loop_free(n->loop), 0);
    if (n->base)
        event_base_free(n->base);
}

static void free_sockets(struct net *n)
{
    if (n->server)
        bufferevent_free(n->server);
    if (n->client)
        bufferevent_free(n->client);
    if (n->lis)
        evconnlistener_free(n->lis);
    n->server = n->client = NULL;
    n->lis = NULL;
}

static void listen_on(struct net *n, evconnlistener_cb cb)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    n->lis = evconnlistener_new_bind(pact_loop_base(n->loop), cb, n,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                     16, (struct sockaddr *)&sin, sizeof sin);
    ck_assert_ptr_nonnull(n->lis);
    socklen_t len = sizeof n->addr;
    ck_assert_int_eq(getsockname(evconnlistener_get_fd(n->lis),
                                 (struct sockaddr *)&n->addr, &len),
                     0);
}

/* ---- work queued by the program's callbacks ---------------------------- */

static void long_timer_cb(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    trace("long timer"); /* the drain waited for an unrelated macrotask */
}

static void on_immediate(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct net *n = ud;
    trace("immediate");
    if (n->mode == BORROWED_DISPATCH)
        ck_assert_int_eq(pact_loop_stop(n->loop), 0);
}

static void server_read(struct bufferevent *bev, void *arg)
{
    struct net *n = arg;
    char buf[8] = {0};
    size_t got = bufferevent_read(bev, buf, sizeof buf - 1);
    trace("read %.*s", (int)got, buf);
    /* the next macrotask: the immediate runs in the check phase */
    ck_assert_int_eq(pact_immediate(n->loop, on_immediate, n, NULL), 0);
    ck_assert_int_eq(pact_deferred_resolve(n->d, pact_int(42)), 0);
    pact_deferred_unref(n->d);
    n->d = NULL;
}

static void server_accept(struct evconnlistener *lis, evutil_socket_t fd,
                          struct sockaddr *sa, int socklen, void *arg)
{
    (void)lis;
    (void)sa;
    (void)socklen;
    struct net *n = arg;
    n->accepts++;
    n->server = bufferevent_socket_new(pact_loop_base(n->loop), fd,
                                       BEV_OPT_CLOSE_ON_FREE);
    ck_assert_ptr_nonnull(n->server);
    bufferevent_setcb(n->server, server_read, NULL, NULL, n);
    ck_assert_int_eq(bufferevent_enable(n->server, EV_READ), 0);
}

static pact_error *await_read(void *arg, pact_value *result)
{
    (void)result;
    struct net *n = arg;
    pact_promise *p;
    n->d = pact_deferred_new(n->loop, &p);
    ck_assert_ptr_nonnull(n->d);
    pact_value v = PACT_AWAIT(p);
    trace("resumed %lld", (long long)v.u.i);
    /* the loop has not blocked, and no other macrotask has run, since the
     * read callback resolved the deferred */
    ck_assert_int_eq(pact_clear(n->loop, n->long_timer), 0);
    free_sockets(n);
    return NULL;
}

/* A task awaits a deferred that the server's bufferevent read callback
 * resolves: it resumes right after that callback, before the immediate the
 * callback set and long before the 10 s timer. */
START_TEST(task_resumes_after_bufferevent_read)
{
    struct net n;
    net_open(&n, (enum mode)_i);
    listen_on(&n, server_accept);
    ck_assert_int_eq(
        pact_timeout(n.loop, 10000, long_timer_cb, NULL, &n.long_timer), 0);
    pact_promise *task = pact_task_spawn(n.loop, await_read, &n, NULL);
    ck_assert_ptr_nonnull(task);
    n.client = bufferevent_socket_new(pact_loop_base(n.loop), -1,
                                      BEV_OPT_CLOSE_ON_FREE);
    ck_assert_ptr_nonnull(n.client);
    ck_assert_int_eq(bufferevent_socket_connect(
                         n.client, (struct sockaddr *)&n.addr, sizeof n.addr),
                     0);
    ck_assert_int_eq(bufferevent_write(n.client, "ping", 4), 0);

    ck_assert_int_eq(net_run(&n), 0);
    ck_assert_msg(strcmp(trace_text(), "read ping\n"
                                       "resumed 42\n"
                                       "immediate\n") == 0,
                  "%s: %s", mode_names[_i], trace_text());
    ck_assert_int_eq(n.accepts, 1);
    pact_promise_unref(task);
    net_close(&n);
}
END_TEST

/* Two of the program's events ready in one I/O phase: the ticks and
 * microtasks the first queues run before the second's callback, as after
 * any macrotask callback (pact_loop_run only: a program's own dispatch runs
 * the drain when its iteration reaches pact's event). */
struct pair {
    pact_loop *loop;
    pact_handle long_timer;
};

static void first_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pair *p = arg;
    trace("first");
    ck_assert_int_eq(pact_queue_microtask(p->loop, trace_fn, "microtask"), 0);
    ck_assert_int_eq(pact_next_tick(p->loop, trace_fn, "tick"), 0);
}

static void second_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pair *p = arg;
    trace("second");
    ck_assert_int_eq(pact_clear(p->loop, p->long_timer), 0);
}

START_TEST(drain_between_program_callbacks)
{
    struct net n;
    net_open(&n, (enum mode)_i);
    struct pair p = {n.loop, {0}};
    struct event_base *base = pact_loop_base(n.loop);
    struct event *a = event_new(base, -1, 0, first_cb, &p);
    struct event *b = event_new(base, -1, 0, second_cb, &p);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    /* what keeps the loop running until the second callback */
    ck_assert_int_eq(
        pact_timeout(n.loop, 10000, long_timer_cb, NULL, &p.long_timer), 0);
    event_active(a, EV_READ, 0);
    event_active(b, EV_READ, 0);
    ck_assert_int_eq(net_run(&n), 0);
    ck_assert_msg(strcmp(trace_text(), "first\n"
                                       "tick\n"
                                       "microtask\n"
                                       "second\n") == 0,
                  "%s: %s", mode_names[_i], trace_text());
    event_free(a);
    event_free(b);
    net_close(&n);
}
END_TEST

/* On a base the program dispatches, pact's drain for a callback of the
 * program's comes later (its own event), but never after pact's next
 * callback: a pact poller ready in the same libevent iteration as the
 * program's event finds that event's microtask run already. */
struct before_poll {
    pact_loop *loop;
    pact_handle poller;
    int fds[2];
};

static void program_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct before_poll *b = arg;
    trace("program");
    ck_assert_int_eq(pact_queue_microtask(b->loop, trace_fn, "microtask"), 0);
}

static void poller_cb(pact_error *err, int fd, int events, void *ud)
{
    ck_assert_ptr_null(err);
    (void)events;
    struct before_poll *b = ud;
    char c;
    ck_assert_int_eq(read(fd, &c, 1), 1);
    trace("poller");
    ck_assert_int_eq(pact_clear(b->loop, b->poller), 0);
    ck_assert_int_eq(pact_loop_stop(b->loop), 0);
}

START_TEST(dispatched_drain_before_pact_callback)
{
    struct net n;
    net_open(&n, BORROWED_DISPATCH);
    struct before_poll b = {n.loop, {0}, {-1, -1}};
    ck_assert_int_eq(pipe(b.fds), 0);
    ck_assert_int_eq(write(b.fds[1], "x", 1), 1);
    ck_assert_int_eq(
        pact_poll(n.loop, b.fds[0], PACT_READABLE, poller_cb, &b, &b.poller),
        0);
    struct event *ev = event_new(n.base, -1, 0, program_cb, &b);
    ck_assert_ptr_nonnull(ev);
    /* active before the dispatch polls: the poller is made active after it,
     * in the same libevent iteration */
    event_active(ev, EV_READ, 0);
    ck_assert_int_eq(net_run(&n), 0);
    ck_assert_str_eq(trace_text(), "program\n"
                                   "microtask\n"
                                   "poller\n");
    event_free(ev);
    close(b.fds[0]);
    close(b.fds[1]);
    net_close(&n);
}
END_TEST

/* ---- what keeps the loop alive ----------------------------------------- */

static void accept_and_close(struct evconnlistener *lis, evutil_socket_t fd,
                             struct sockaddr *sa, int socklen, void *arg)
{
    (void)lis;
    (void)sa;
    (void)socklen;
    struct net *n = arg;
    n->accepts++;
    close(fd);
    evconnlistener_free(n->lis); /* the loop may now end */
    n->lis = NULL;
}

static int client_fd = -1;

/* The client comes once the loop runs: after this callback the listener is
 * all that keeps the loop alive. */
static void connect_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct net *n = ud;
    client_fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(client_fd, 0);
    ck_assert_int_eq(
        connect(client_fd, (struct sockaddr *)&n->addr, sizeof n->addr), 0);
    trace("connected");
}

START_TEST(listener_keeps_loop_alive)
{
    struct net n;
    net_open(&n, (enum mode)_i);
    listen_on(&n, accept_and_close);
    ck_assert(pact_loop_alive(n.loop));
    ck_assert_int_eq(pact_timeout(n.loop, 1, connect_cb, &n, NULL), 0);
    ck_assert_int_eq(net_run(&n), 0);
    ck_assert_str_eq(trace_text(), "connected\n");
    ck_assert_int_eq(n.accepts, 1);
    ck_assert(!pact_loop_alive(n.loop));
    close(client_fd);
    net_close(&n);
}
END_TEST

/* An unreferenced listener lets the loop end; pact_loop_free still refuses
 * while it is on a base that goes with the loop. */
START_TEST(unref_event_lets_loop_end)
{
    struct net n;
    int fired = 0;
    net_open(&n, (enum mode)_i);
    listen_on(&n, accept_and_close);
    ck_assert_int_eq(pact_loop_unref_event(n.loop), 0);
    ck_assert(!pact_loop_alive(n.loop));
    ck_assert_int_eq(pact_timeout(n.loop, 1, count_cb, &fired, NULL), 0);
    ck_assert_int_eq(net_run(&n), 0);
    ck_assert_int_eq(fired, 1);
    ck_assert_int_eq(n.accepts, 0);
    if (n.mode == OWN_BASE)
        ck_assert_int_eq(pact_loop_free(n.loop), PACT_EBUSY);
    free_sockets(&n);
    ck_assert_int_eq(pact_loop_ref_event(n.loop), 0);
    ck_assert_int_eq(pact_loop_ref_event(n.loop), PACT_EINVAL);
    ck_assert(!pact_loop_alive(n.loop));
    net_close(&n);
}
END_TEST

Suite *suite_foreign(void)
{
    Suite *s = suite_create("foreign");
    TCase *drain = tcase_create("drain");
    tcase_add_loop_test(drain, task_resumes_after_bufferevent_read, OWN_BASE,
                        BORROWED_DISPATCH + 1);
    tcase_add_loop_test(drain, drain_between_program_callbacks, OWN_BASE,
                        BORROWED_RUN + 1);
    tcase_add_test(drain, dispatched_drain_before_pact_callback);
    suite_add_tcase(s, drain);
    TCase *alive = tcase_create("alive");
    tcase_add_loop_test(alive, listener_keeps_loop_alive, OWN_BASE,
                        BORROWED_RUN + 1);
    tcase_add_loop_test(alive, unref_event_lets_loop_end, OWN_BASE,
                        BORROWED_RUN + 1);
    suite_add_tcase(s, alive);
    return s;
}

/* Message-passing workers on real threads: ping-pong in the callback style
 * and awaited from a task, transfer of byte buffers (same pointer, the
 * sender's handle emptied), JSON messages of many shapes (moved when held
 * once, copied when shared, refused with a cycle), back-pressure, a worker
 * whose entry fails or whose loop raises, termination of a busy worker,
 * posts to a terminated one, close_all and free with workers alive, a
 * worker's own loop using timers, promises and tasks, and wake-ups through
 * pipes where there is no eventfd.
 *
 * Code that runs on a worker thread never calls ck_assert (a failure there
 * cannot unwind the test): it counts what it saw into its context, which
 * the test reads after a message or the worker's end has made it visible. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef __NR_eventfd2
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#endif

#include "helpers.h"
#include "suites.h"

static void run_ok(void)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

/* What a pact_worker_wait callback saw. */
struct ended {
    int calls, code, err_code;
    char msg[128];
};

static void on_end(pact_error *err, int code, void *ud)
{
    struct ended *e = ud;
    e->calls++;
    e->code = code;
    e->err_code = err ? pact_error_code(err) : 0;
    snprintf(e->msg, sizeof e->msg, "%s", err ? pact_error_message(err) : "");
}

struct rejected {
    int calls, code;
};

static void on_rejected(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    struct rejected *r = ud;
    r->calls++;
    r->code = err ? pact_error_code(err) : 0;
}

static pact_worker *start(pact_worker_fn entry, void *arg,
                          const pact_worker_opts *o)
{
    pact_worker *w = NULL;
    ck_assert_int_eq(pact_worker_new(t_loop, entry, arg, o, &w), 0);
    ck_assert_ptr_nonnull(w);
    return w;
}

/* A listener that lets every message go (released after the call). */
static void drop_msg(pact_error *err, pact_value *msg, void *ud)
{
    (void)err, (void)msg, (void)ud;
}

static json_t *num_msg(json_int_t n)
{
    return json_pack("{sI}", "n", n);
}

static json_int_t num_of(const pact_value *m)
{
    json_t *n = m->kind == PACT_JSON ? json_object_get(m->u.json, "n") : NULL;
    return json_is_integer(n) ? json_integer_value(n) : -1;
}

/* ---- ping-pong ------------------------------------------------------------
 */

enum { ROUNDS = 2000 };

/* The worker: echo n + 1 until a message without "n" arrives, then stop
 * listening (its loop runs out of work: exit code 0). */
struct echo {
    pact_port *port;
    int echoed, bad;
};

static void echo_msg(pact_error *err, pact_value *msg, void *ud)
{
    struct echo *e = ud;
    if (err || msg->kind != PACT_JSON) {
        e->bad++;
        return;
    }
    json_t *n = json_object_get(msg->u.json, "n");
    if (!n) {
        pact_port_on_message(e->port, NULL, NULL);
        return;
    }
    if (pact_port_post_json(e->port, num_msg(json_integer_value(n) + 1)) != 0)
        e->bad++;
    e->echoed++;
}

static pact_error *echo_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop;
    struct echo *e = arg;
    e->port = port;
    pact_port_on_message(port, echo_msg, e);
    return NULL;
}

struct pinger {
    pact_port *port;
    json_int_t next;
    int got, bad;
};

static void ping_msg(pact_error *err, pact_value *msg, void *ud)
{
    struct pinger *p = ud;
    ck_assert_ptr_null(err);
    ck_assert_int_eq(num_of(msg), p->next + 1);
    p->got++;
    p->next += 2;
    if (p->got == ROUNDS) {
        ck_assert_int_eq(pact_port_post_json(p->port, json_object()), 0);
        return;
    }
    ck_assert_int_eq(pact_port_post_json(p->port, num_msg(p->next)), 0);
}

START_TEST(ping_pong)
{
    struct echo e = {0};
    struct ended end = {0};
    pact_worker *w = start(echo_entry, &e, NULL);
    struct pinger p = {pact_worker_port(w), 0, 0, 0};
    ck_assert_int_eq(pact_worker_wait(w, NULL, on_end, &end), 0);
    ck_assert_int_eq(pact_port_on_message(p.port, ping_msg, &p), 0);
    ck_assert_int_eq(pact_port_post_json(p.port, num_msg(0)), 0);
    run_ok();
    ck_assert_int_eq(p.got, ROUNDS);
    ck_assert_int_eq(e.echoed, ROUNDS);
    ck_assert_int_eq(e.bad, 0);
    ck_assert_int_eq(end.calls, 1);
    ck_assert_int_eq(end.code, 0);
    ck_assert_int_eq(end.err_code, 0);
    pact_worker_free(w);
}
END_TEST

/* The parent is a task awaiting each reply; the worker, another task,
 * awaits each ping (both sides in the await style). */
struct await_echo {
    pact_port *port;
    int echoed, bad;
};

static pact_error *await_echo_task(void *arg, pact_value *result)
{
    (void)result;
    struct await_echo *e = arg;
    for (;;) {
        pact_value m;
        pact_error *err = PACT_AWAIT_ERR(pact_port_recv_p(e->port, NULL), &m);
        if (err)
            return err;
        json_int_t n = num_of(&m);
        pact_value_release(&m);
        if (n < 0)
            return NULL; /* the last message: end the task, and the worker */
        if (pact_port_post_json(e->port, num_msg(n + 1)) != 0)
            e->bad++;
        e->echoed++;
    }
}

static pact_error *await_echo_entry(pact_loop *loop, pact_port *port, void *arg)
{
    struct await_echo *e = arg;
    e->port = port;
    pact_promise *p = pact_task_spawn(loop, await_echo_task, e, NULL);
    if (!p)
        return PACT_ERROR(PACT_ENOMEM);
    pact_promise_unref(p);
    return NULL;
}

struct parent_task {
    pact_worker *w;
    int got;
    int code;
};

static pact_error *parent_task(void *arg, pact_value *result)
{
    struct parent_task *t = arg;
    pact_port *port = pact_worker_port(t->w);
    for (json_int_t i = 0; i < ROUNDS; i++) {
        ck_assert_int_eq(pact_port_post_json(port, num_msg(i * 2)), 0);
        pact_value m;
        PACT_AWAIT_TRY(pact_port_recv_p(port, NULL), &m);
        ck_assert_int_eq(num_of(&m), i * 2 + 1);
        pact_value_release(&m);
        t->got++;
    }
    ck_assert_int_eq(pact_port_post_json(port, json_string("bye")), 0);
    pact_value code;
    PACT_AWAIT_TRY(pact_worker_wait_p(t->w, NULL), &code);
    ck_assert_int_eq(code.kind, PACT_INT);
    t->code = (int)code.u.i;
    /* nothing more comes: a receive now fails with PACT_EOF */
    pact_error *err = PACT_AWAIT_ERR(pact_port_recv_p(port, NULL), NULL);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(pact_error_code(err), PACT_EOF);
    pact_error_unref(err);
    *result = pact_int(1);
    return NULL;
}

START_TEST(task_awaits_next_message)
{
    struct await_echo e = {0};
    struct parent_task t = {start(await_echo_entry, &e, NULL), 0, -1};
    pact_promise *p = pact_task_spawn(t_loop, parent_task, &t, NULL);
    run_ok();
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(t.got, ROUNDS);
    ck_assert_int_eq(e.echoed, ROUNDS);
    ck_assert_int_eq(e.bad, 0);
    ck_assert_int_eq(t.code, 0);
    pact_promise_unref(p);
    pact_worker_free(t.w);
}
END_TEST

/* ---- transfer of ownership ------------------------------------------------
 */

enum { BUF = 1 << 20 };

struct bounce {
    pact_port *port;
    void *expect; /* the pointer the parent sent */
    int same, pattern_ok, sent_back, bad;
};

static void bounce_msg(pact_error *err, pact_value *msg, void *ud)
{
    struct bounce *b = ud;
    if (err || msg->kind != PACT_BYTES || msg->u.bytes.len != BUF) {
        b->bad++;
        return;
    }
    b->same = msg->u.bytes.data == b->expect;
    unsigned char *d = msg->u.bytes.data;
    b->pattern_ok = d[0] == 0xa5 && d[BUF - 1] == 0x5a;
    d[1] = 0x77; /* the receiver owns it: it may write */
    /* take it (no copy), then transfer it back */
    pact_value mine = *msg;
    *msg = pact_nothing();
    if (pact_port_post(b->port, &mine) == 0 && mine.kind == PACT_NOTHING)
        b->sent_back++;
    else
        b->bad++;
    pact_port_on_message(b->port, NULL, NULL);
}

static pact_error *bounce_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop;
    struct bounce *b = arg;
    b->port = port;
    pact_port_on_message(port, bounce_msg, b);
    return NULL;
}

struct got_bytes {
    int calls;
    void *data;
    size_t len;
};

static void keep_bytes(pact_error *err, pact_value *msg, void *ud)
{
    struct got_bytes *g = ud;
    ck_assert_ptr_null(err);
    ck_assert_int_eq(msg->kind, PACT_BYTES);
    g->calls++;
    g->data = msg->u.bytes.data;
    g->len = msg->u.bytes.len;
    *msg = pact_nothing(); /* taken: ours now */
}

START_TEST(transfer_bytes)
{
    struct bounce b = {0};
    unsigned char *buf = malloc(BUF);
    ck_assert_ptr_nonnull(buf);
    memset(buf, 0, BUF);
    buf[0] = 0xa5;
    buf[BUF - 1] = 0x5a;
    b.expect = buf;
    pact_worker *w = start(bounce_entry, &b, NULL);
    struct got_bytes g = {0};
    ck_assert_int_eq(pact_port_recv(pact_worker_port(w), NULL, keep_bytes, &g),
                     0);
    void *handle = buf;
    ck_assert_int_eq(pact_port_post_bytes(pact_worker_port(w), &handle, BUF),
                     0);
    ck_assert_ptr_null(handle); /* the sender's handle is gone */
    run_ok();
    ck_assert_int_eq(b.bad, 0);
    ck_assert_int_eq(b.same, 1);
    ck_assert_int_eq(b.pattern_ok, 1);
    ck_assert_int_eq(b.sent_back, 1);
    ck_assert_int_eq(g.calls, 1);
    ck_assert_ptr_eq(g.data, buf); /* back, still no copy */
    ck_assert_uint_eq(g.len, BUF);
    ck_assert_uint_eq(buf[1], 0x77);
    free(g.data);
    pact_worker_free(w);
}
END_TEST

/* The generic form: the value is emptied on success, untouched on error. */
START_TEST(post_value_moves_only_on_success)
{
    struct echo e = {0};
    pact_worker *w = start(echo_entry, &e, NULL);
    pact_port *port = pact_worker_port(w);
    pact_value v = pact_json(num_msg(41));
    json_t *tree = v.u.json;
    ck_assert_int_eq(pact_port_post(port, &v), 0);
    ck_assert_int_eq(v.kind, PACT_NOTHING);
    ck_assert_ptr_null(v.u.json);
    (void)tree; /* the worker's now: not to be touched */

    /* an error leaves it with us */
    int x = 1;
    pact_value bad = pact_ptr(&x);
    ck_assert_int_eq(pact_port_post(port, &bad), PACT_EINVAL);
    ck_assert_int_eq(bad.kind, PACT_PTR);
    ck_assert_ptr_eq(bad.u.ptr, &x);

    /* take the echo of 41 with a promise, then end the worker */
    pact_promise *r = pact_port_recv_p(port, NULL);
    while (pact_promise_state(r) == PACT_PENDING)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    ck_assert_int_eq(num_of(pact_promise_value(r)), 42);
    pact_promise_unref(r);
    ck_assert_int_eq(pact_port_post_json(port, json_null()), 0);
    run_ok();
    ck_assert_int_eq(e.echoed, 1);
    pact_worker_free(w);
}
END_TEST

/* ---- JSON shapes ------------------------------------------------------------
 */

/* The worker sends every message back as it came (moving it again). */
struct mirror {
    pact_port *port;
    int n, bad;
    void *last; /* the pointer of the last JSON tree received */
};

static void mirror_msg(pact_error *err, pact_value *msg, void *ud)
{
    struct mirror *m = ud;
    if (err) {
        m->bad++;
        return;
    }
    if (msg->kind == PACT_JSON)
        m->last = msg->u.json;
    if (msg->kind == PACT_DOUBLE && msg->u.d < 0) {
        pact_port_on_message(m->port, NULL, NULL);
        return;
    }
    if (pact_port_post(m->port, msg) != 0)
        m->bad++;
    m->n++;
}

static pact_error *mirror_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop;
    struct mirror *m = arg;
    m->port = port;
    pact_port_on_message(port, mirror_msg, m);
    return NULL;
}

static const char *const shapes[] = {
    "{}",
    "[]",
    "{\"a\": 1, \"b\": [true, false, null], \"c\": {\"d\": \"e\"}}",
    "[1, 2.5, \"three\", [4, [5, [6]]], {\"seven\": 7}]",
    "\"a string with \\u00e9 and \\u2603\"",
    "12345678901234",
    "-0.125",
    "true",
    "false",
    "null",
    "{\"nested\": {\"deeper\": {\"deepest\": [[[[[[[[1]]]]]]]]}}}",
};

struct echoes {
    int calls;
    json_t *got[32];
    pact_value scalars[4]; /* taken: a string is ours to release */
    int nscalars;
};

static void collect(pact_error *err, pact_value *msg, void *ud)
{
    struct echoes *e = ud;
    ck_assert_ptr_null(err);
    if (msg->kind == PACT_JSON) {
        ck_assert_int_lt(e->calls, 32);
        e->got[e->calls++] = msg->u.json;
        *msg = pact_nothing();
    } else {
        ck_assert_int_lt(e->nscalars, 4);
        e->scalars[e->nscalars++] = *msg;
        *msg = pact_nothing();
    }
}

static json_t *deep(int depth)
{
    json_t *j = json_integer(depth);
    for (int i = 0; i < depth; i++) {
        json_t *a = json_array();
        json_array_append_new(a, j);
        j = a;
    }
    return j;
}

START_TEST(json_shapes)
{
    struct mirror m = {0};
    pact_worker *w = start(mirror_entry, &m, NULL);
    pact_port *port = pact_worker_port(w);
    struct echoes e = {0};
    size_t n = sizeof shapes / sizeof shapes[0];
    json_t *want[32];
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_loads(shapes[i], JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(j);
        want[i] = json_deep_copy(j);
        ck_assert_int_eq(pact_port_post_json(port, j), 0);
    }
    /* 2,000 levels deep, and 10,000 elements wide */
    json_t *d = deep(2000), *wide = json_array();
    for (int i = 0; i < 10000; i++)
        json_array_append_new(wide, json_integer(i));
    want[n] = json_deep_copy(d);
    want[n + 1] = json_deep_copy(wide);
    ck_assert_int_eq(pact_port_post_json(port, d), 0);
    ck_assert_int_eq(pact_port_post_json(port, wide), 0);
    size_t total = n + 2;
    /* plain values travel too; a string moves as bytes do (no copy) */
    pact_value s[4] = {pact_int(-7), pact_double(2.5), pact_nothing(),
                       pact_string_copy("a plain string")};
    const char *str = s[3].u.str;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pact_port_post(port, &s[i]), 0);
    ck_assert_int_eq(s[3].kind, PACT_NOTHING); /* the sender's is gone */
    pact_value stop = pact_double(-1);
    ck_assert_int_eq(pact_port_post(port, &stop), 0);
    ck_assert_int_eq(pact_port_on_message(port, collect, &e), 0);
    run_ok();
    ck_assert_int_eq(m.bad, 0);
    ck_assert_int_eq(m.n, (int)total + 4);
    ck_assert_int_eq(e.calls, (int)total);
    for (size_t i = 0; i < total; i++) {
        ck_assert_msg(json_equal(e.got[i], want[i]), "shape %zu differs", i);
        json_decref(e.got[i]);
        json_decref(want[i]);
    }
    ck_assert_int_eq(e.nscalars, 4);
    ck_assert_int_eq(e.scalars[0].kind, PACT_INT);
    ck_assert_int_eq(e.scalars[0].u.i, -7);
    ck_assert_int_eq(e.scalars[1].kind, PACT_DOUBLE);
    ck_assert(e.scalars[1].u.d == 2.5);
    ck_assert_int_eq(e.scalars[2].kind, PACT_NOTHING);
    ck_assert_int_eq(e.scalars[3].kind, PACT_STRING);
    ck_assert_ptr_eq(e.scalars[3].u.str, str); /* there and back, moved */
    ck_assert_str_eq(e.scalars[3].u.str, "a plain string");
    pact_value_release(&e.scalars[3]);
    pact_worker_free(w);
}
END_TEST

/* Free a chain of one-element arrays level by level (json_decref would
 * recurse once per level). */
static void free_chain(json_t *j)
{
    while (json_is_array(j) && json_array_size(j) == 1 && j->refcount == 1) {
        json_t *child = json_incref(json_array_get(j, 0));
        json_decref(j); /* frees this level only: the child is still held */
        j = child;
    }
    json_decref(j);
}

/* The depth of a chain of one-element arrays, and its leaf integer. */
static int chain_depth(json_t *j, json_int_t *leaf)
{
    int depth = 0;
    for (; json_is_array(j) && json_array_size(j) == 1; depth++)
        j = json_array_get(j, 0);
    *leaf = json_is_integer(j) ? json_integer_value(j) : -1;
    return depth;
}

/* A 100,000-level tree that is still shared is copied for the post: the copy
 * (jansson's recursed once per level, and the sender died of SIGSEGV) and
 * the releases take heap, not stack; the copy comes back whole. */
START_TEST(json_deep_shared_copied)
{
    enum { DEPTH = 100000 };
    struct mirror m = {0};
    pact_worker *w = start(mirror_entry, &m, NULL);
    pact_port *port = pact_worker_port(w);
    struct echoes e = {0};
    ck_assert_int_eq(pact_port_on_message(port, collect, &e), 0);
    json_t *d = deep(DEPTH);
    json_t *second = json_incref(d); /* a second holder: it must be copied */
    ck_assert_int_eq(pact_port_post_json(port, d), 0);
    /* refused before anything is sent: a post that fails drops its copy */
    json_t *bad = json_array();
    json_array_append_new(bad, json_incref(second));
    json_array_append(second, bad); /* a cycle below a shared deep tree */
    pact_value v = pact_json(json_incref(second));
    ck_assert_int_eq(pact_port_post(port, &v), PACT_EINVAL);
    pact_value_release(&v);
    json_array_remove(second, 1); /* the cycle is broken */
    json_decref(bad);
    pact_value stop = pact_double(-1);
    ck_assert_int_eq(pact_port_post(port, &stop), 0);
    run_ok();
    ck_assert_int_eq(m.bad, 0);
    ck_assert_int_eq(e.calls, 1);
    ck_assert_ptr_ne(e.got[0], second);
    json_int_t leaf;
    ck_assert_int_eq(chain_depth(e.got[0], &leaf), DEPTH);
    ck_assert_int_eq(leaf, DEPTH);
    /* a deep tree released through a value frees without recursing */
    pact_value got = pact_json(e.got[0]);
    pact_value_release(&got);
    free_chain(second);
    pact_worker_free(w);
}
END_TEST

/* A tree held once moves (the worker sees the very pointer); one that is
 * also held elsewhere is copied, and the sender's other holds stay valid
 * and its own. */
START_TEST(json_moved_or_copied)
{
    struct mirror m = {0};
    pact_worker *w = start(mirror_entry, &m, NULL);
    pact_port *port = pact_worker_port(w);
    struct echoes e = {0};
    ck_assert_int_eq(pact_port_on_message(port, collect, &e), 0);

    json_t *own = json_pack("{s[iii]s{ss}}", "a", 1, 2, 3, "b", "c", "d");
    ck_assert_int_eq(pact_port_post_json(port, own), 0);
    json_t *shared_leaf = json_string("kept");
    json_t *shared = json_pack("{sO}", "leaf", shared_leaf); /* 2 holds */
    ck_assert_uint_eq(shared_leaf->refcount, 2);
    ck_assert_int_eq(pact_port_post_json(port, shared), 0);
    ck_assert_uint_eq(shared_leaf->refcount, 1); /* copied: ours alone */
    ck_assert_int_eq(json_string_set(shared_leaf, "changed"), 0);
    pact_value stop = pact_double(-1);
    ck_assert_int_eq(pact_port_post(port, &stop), 0);
    run_ok();
    ck_assert_int_eq(e.calls, 2);
    ck_assert_ptr_eq(e.got[0], own); /* moved there and back */
    ck_assert_ptr_ne(e.got[1], shared);
    ck_assert_str_eq(json_string_value(json_object_get(e.got[1], "leaf")),
                     "kept");
    json_decref(e.got[0]);
    json_decref(e.got[1]);
    json_decref(shared_leaf);
    pact_worker_free(w);
}
END_TEST

/* ---- bad input --------------------------------------------------------------
 */

static void free_ptr(void *p)
{
    free(p);
}

START_TEST(bad_messages)
{
    struct echo e = {0};
    pact_worker *w = start(echo_entry, &e, NULL);
    pact_port *port = pact_worker_port(w);
    ck_assert_int_eq(pact_port_post(port, NULL), PACT_EINVAL);
    ck_assert_int_eq(pact_port_post(NULL, NULL), PACT_EINVAL);
    ck_assert_int_eq(pact_port_post_json(port, NULL), PACT_EINVAL);
    void *none = NULL;
    ck_assert_int_eq(pact_port_post_bytes(port, &none, 5), PACT_EINVAL);
    /* an owned pointer would share memory: refused, still ours */
    pact_value owned = pact_owned(malloc(8), free_ptr);
    ck_assert_int_eq(pact_port_post(port, &owned), PACT_EINVAL);
    ck_assert_int_eq(owned.kind, PACT_OWNED);
    pact_value_release(&owned);
    /* a promise belongs to its loop */
    pact_value pv = pact_promise_v(pact_resolved(t_loop, pact_int(1)));
    ck_assert_int_eq(pact_port_post(port, &pv), PACT_EINVAL);
    pact_value_release(&pv);
    /* a JSON tree with a cycle cannot be copied: refused, still ours */
    json_t *a = json_object(), *b = json_object();
    json_object_set(a, "b", b);
    json_object_set(b, "a", a);
    ck_assert_int_eq(pact_port_post_json(port, a), PACT_EINVAL);
    ck_assert_uint_eq(a->refcount, 2);
    json_object_del(b, "a");
    json_decref(b);
    json_decref(a);
    /* a port used from the wrong thread: the worker's, from here */
    ck_assert_int_eq(pact_port_post_json(port, json_object()), 0); /* stop */
    run_ok();
    ck_assert_int_eq(e.bad, 0);
    pact_worker_free(w);
}
END_TEST

struct grab {
    pact_port *theirs;
    int done;
};

static void say_ready(pact_error *err, void *ud)
{
    (void)err;
    pact_port_post_json(ud, json_string("ready"));
}

/* The worker hands its port's address over (as data, for this test only)
 * and listens; the parent then misuses it from its own thread. It says
 * ready from its running loop, so that the loop's claim of its thread is
 * visible to the parent's check. */
static pact_error *grab_port_entry(pact_loop *loop, pact_port *port, void *arg)
{
    ((struct grab *)arg)->theirs = port;
    pact_port_on_message(port, drop_msg, NULL);
    T_MUST(pact_immediate(loop, say_ready, port, NULL));
    return NULL;
}

static void misuse_theirs(pact_error *err, pact_value *msg, void *ud)
{
    (void)msg;
    ck_assert_ptr_null(err);
    struct grab *g = ud;
    pact_port *theirs = g->theirs; /* visible: its message came after it */
    struct capture cap;
    capture_begin(&cap);
    pact_value v = pact_int(1);
    int rc = pact_port_post(theirs, &v);
    char *out = capture_end(&cap);
    ck_assert_int_eq(rc, PACT_ETHREAD);
    ck_assert_msg(strstr(out, "pact_port_post"), "stderr: '%s'", out);
    free(out);
    g->done = 1;
}

START_TEST(port_from_wrong_thread)
{
    struct grab g = {0};
    pact_worker *w = start(grab_port_entry, &g, NULL);
    ck_assert_int_eq(
        pact_port_recv(pact_worker_port(w), NULL, misuse_theirs, &g), 0);
    while (!g.done)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    pact_worker_free(w);
    run_ok();
}
END_TEST

/* ---- back-pressure ----------------------------------------------------------
 */

enum { PRESSED = 200, QMAX = 4 };

/* The worker starts consuming only after 30 ms; then it checks the order
 * and says how many it got once the last (-1) arrives. */
struct slow {
    pact_port *port;
    json_int_t next;
    int bad;
};

static void slow_msg(pact_error *err, pact_value *msg, void *ud)
{
    struct slow *s = ud;
    json_int_t n = err ? -2 : num_of(msg);
    if (n == -1) {
        pact_port_post_json(s->port, num_msg(s->next));
        pact_port_on_message(s->port, NULL, NULL);
        return;
    }
    if (n != s->next)
        s->bad++;
    s->next = n + 1;
}

static void slow_start(pact_error *err, void *ud)
{
    struct slow *s = ud;
    if (err)
        s->bad++;
    pact_port_on_message(s->port, slow_msg, s);
}

static pact_error *slow_entry(pact_loop *loop, pact_port *port, void *arg)
{
    struct slow *s = arg;
    s->port = port;
    T_MUST(pact_timeout(loop, 30, slow_start, s, NULL));
    return NULL;
}

struct pusher {
    pact_port *port;
    json_int_t next;
    int eagain, wakes;
    json_t *held; /* refused with PACT_EAGAIN: still ours, sent later */
};

static void push_more(pact_error *err, void *ud)
{
    struct pusher *p = ud;
    ck_assert_ptr_null(err);
    p->wakes++;
    while (p->next <= PRESSED) {
        json_int_t n = p->next == PRESSED ? -1 : p->next;
        json_t *j = p->held ? p->held : num_msg(n);
        p->held = NULL;
        int rc = pact_port_post_json(p->port, j);
        if (rc == PACT_EAGAIN) {
            p->eagain++;
            p->held = j;
            /* full a moment ago; the worker may be consuming since */
            ck_assert_uint_le(pact_port_pending(p->port), QMAX);
            ck_assert_int_eq(pact_port_writable(p->port, NULL, push_more, p),
                             0);
            return;
        }
        ck_assert_int_eq(rc, 0);
        p->next++;
    }
}

static void keep_json(pact_error *err, pact_value *msg, void *ud)
{
    ck_assert_ptr_null(err);
    *(json_int_t *)ud = num_of(msg);
}

START_TEST(back_pressure)
{
    struct slow s = {0};
    pact_worker_opts o = {.queue_max = QMAX};
    pact_worker *w = start(slow_entry, &s, &o);
    struct pusher p = {pact_worker_port(w), 0, 0, 0, NULL};
    /* the first QMAX go, then the queue is full */
    for (int i = 0; i < QMAX; i++)
        ck_assert_int_eq(pact_port_post_json(p.port, num_msg(p.next++)), 0);
    json_t *j = num_msg(p.next);
    ck_assert_int_eq(pact_port_post_json(p.port, j), PACT_EAGAIN);
    ck_assert_uint_eq(j->refcount, 1); /* still ours */
    p.held = j;
    ck_assert_int_eq(pact_port_writable(p.port, NULL, push_more, &p), 0);
    json_int_t count = -5;
    ck_assert_int_eq(pact_port_recv(p.port, NULL, keep_json, &count), 0);
    run_ok();
    ck_assert_int_eq(s.bad, 0);
    ck_assert_int_eq(count, PRESSED); /* every message, in order */
    ck_assert_int_ge(p.wakes, 1);     /* each full queue waited for room */
    pact_worker_free(w);
}
END_TEST

/* The promise form in a task: wait for room, post again. */
static pact_error *press_task(void *arg, pact_value *result)
{
    (void)result;
    pact_port *port = arg;
    for (json_int_t i = 0; i <= PRESSED; i++) {
        pact_value m = pact_json(num_msg(i == PRESSED ? -1 : i));
        int rc;
        while ((rc = pact_port_post(port, &m)) == PACT_EAGAIN)
            PACT_AWAIT_TRY(pact_port_writable_p(port, NULL), NULL);
        ck_assert_int_eq(rc, 0);
    }
    return NULL;
}

START_TEST(back_pressure_awaited)
{
    struct slow s = {0};
    pact_worker_opts o = {.queue_max = QMAX};
    pact_worker *w = start(slow_entry, &s, &o);
    json_int_t count = -5;
    ck_assert_int_eq(
        pact_port_recv(pact_worker_port(w), NULL, keep_json, &count), 0);
    pact_promise *t =
        pact_task_spawn(t_loop, press_task, pact_worker_port(w), NULL);
    run_ok();
    ck_assert_int_eq(pact_promise_state(t), PACT_FULFILLED);
    ck_assert_int_eq(s.bad, 0);
    ck_assert_int_eq(count, PRESSED);
    pact_promise_unref(t);
    pact_worker_free(w);
}
END_TEST

/* ---- waits that end without what they waited for -----------------------
 * A receive that times out (its abort token: pact_abort_timeout) takes no
 * message: the echo worker is sent two numbers only once the receive has
 * failed, and the next two receives get its replies 1 and 2, in order (as
 * Node's events.once(port, 'message', {signal}) leaves the message to the
 * next listener). */

/* The token's reason: the timeout's PACT_ETIMEDOUT, as the cause. */
static void assert_timed_out(pact_error *err)
{
    ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
    ck_assert_int_eq(pact_error_code(pact_error_cause(err)), PACT_ETIMEDOUT);
}

static void ask_two(pact_port *port)
{
    ck_assert_int_eq(pact_port_post_json(port, num_msg(0)), 0);
    ck_assert_int_eq(pact_port_post_json(port, num_msg(1)), 0);
}

struct timed_recv {
    pact_port *port;
    int step;
};

static void timed_next(pact_error *err, pact_value *msg, void *ud)
{
    struct timed_recv *t = ud;
    switch (t->step++) {
    case 0: /* the receive that timed out */
        assert_timed_out(err);
        ck_assert_ptr_null(msg);
        ask_two(t->port);
        ck_assert_int_eq(pact_port_recv(t->port, NULL, timed_next, t), 0);
        break;
    case 1:
        ck_assert_ptr_null(err);
        ck_assert_int_eq(num_of(msg), 1);
        ck_assert_int_eq(pact_port_recv(t->port, NULL, timed_next, t), 0);
        break;
    default:
        ck_assert_ptr_null(err);
        ck_assert_int_eq(num_of(msg), 2);
        ck_assert_int_eq(pact_port_post_json(t->port, json_object()), 0);
        break;
    }
}

START_TEST(recv_timeout_keeps_message)
{
    struct echo e = {0};
    pact_worker *w = start(echo_entry, &e, NULL);
    struct timed_recv t = {pact_worker_port(w), 0};
    pact_abort *tok;
    ck_assert_int_eq(pact_abort_timeout(t_loop, 1, &tok), 0);
    pact_wait_opts o = {.abort = tok};
    ck_assert_int_eq(pact_port_recv(t.port, &o, timed_next, &t), 0);
    pact_abort_unref(tok); /* the receive holds its own reference */
    run_ok();
    ck_assert_int_eq(t.step, 3);
    ck_assert_int_eq(e.echoed, 2);
    ck_assert_int_eq(e.bad, 0);
    pact_worker_free(w);
}
END_TEST

static void settle_loop(pact_promise *p)
{
    while (pact_promise_state(p) == PACT_PENDING)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
}

START_TEST(recv_p_timeout_keeps_message)
{
    struct echo e = {0};
    pact_worker *w = start(echo_entry, &e, NULL);
    pact_port *port = pact_worker_port(w);
    pact_abort *tok;
    ck_assert_int_eq(pact_abort_timeout(t_loop, 1, &tok), 0);
    pact_promise *p = pact_port_recv_p(port, &(pact_wait_opts){.abort = tok});
    pact_abort_unref(tok);
    struct rejected r = {0};
    ck_assert_int_eq(pact_promise_callback(p, on_rejected, &r), 0);
    settle_loop(p);
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    assert_timed_out(pact_promise_error(p));
#if defined(HAVE_BUILTIN_RETURN_ADDRESS) && defined(HAVE_LIBDW)
    /* made by pact (the cancellation), printed with this test's call */
    char *text = t_error_text(pact_promise_error(p));
    const char *at = strstr(text, ", started at ");
    ck_assert_msg(at && strstr(at, "test/test_worker.c:"), "%s", text);
    free(text);
#endif
    pact_promise_unref(p);
    ask_two(port);
    pact_promise *a = pact_port_recv_p(port, NULL);
    pact_promise *b = pact_port_recv_p(port, NULL);
    settle_loop(b);
    ck_assert_int_eq(pact_promise_state(a), PACT_FULFILLED);
    ck_assert_int_eq(num_of(pact_promise_value(a)), 1);
    ck_assert_int_eq(num_of(pact_promise_value(b)), 2);
    pact_promise_unref(a);
    pact_promise_unref(b);
    ck_assert_int_eq(pact_port_post_json(port, json_object()), 0);
    run_ok();
    ck_assert_int_eq(e.echoed, 2);
    pact_worker_free(w);
}
END_TEST

static pact_error *timed_task(void *arg, pact_value *result)
{
    (void)result;
    pact_port *port = arg;
    pact_abort *tok;
    ck_assert_int_eq(
        pact_abort_timeout(pact_task_loop(pact_task_current()), 1, &tok), 0);
    pact_value m;
    pact_error *err = PACT_AWAIT_ERR(
        pact_port_recv_p(port, &(pact_wait_opts){.abort = tok}), &m);
    pact_abort_unref(tok);
    assert_timed_out(err);
    pact_error_unref(err);
    ask_two(port);
    for (json_int_t n = 1; n <= 2; n++) {
        PACT_AWAIT_TRY(pact_port_recv_p(port, NULL), &m);
        ck_assert_int_eq(num_of(&m), n);
        pact_value_release(&m);
    }
    ck_assert_int_eq(pact_port_post_json(port, json_object()), 0);
    return NULL;
}

START_TEST(task_recv_timeout_keeps_message)
{
    struct echo e = {0};
    pact_worker *w = start(echo_entry, &e, NULL);
    pact_promise *t =
        pact_task_spawn(t_loop, timed_task, pact_worker_port(w), NULL);
    run_ok();
    ck_assert_int_eq(pact_promise_state(t), PACT_FULFILLED);
    ck_assert_int_eq(e.echoed, 2);
    pact_promise_unref(t);
    pact_worker_free(w);
}
END_TEST

/* A worker that never consumes: its inbox fills, and stays full. */
static pact_error *idle_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)port, (void)arg;
    T_MUST(pact_timeout(loop, 100000, t_keepalive_cb, NULL,
                        NULL)); /* until ended */
    return NULL;
}

/* Counts the calls of a wait's callback and the code it got. */
struct calls {
    int n, code;
};

static void note_cb(pact_error *err, void *ud)
{
    struct calls *c = ud;
    c->n++;
    c->code = pact_error_code(err);
}

static void note_exit(pact_error *err, int code, void *ud)
{
    (void)code;
    note_cb(err, ud);
}

static void note_recv(pact_error *err, pact_value *msg, void *ud)
{
    ck_assert_ptr_null(msg);
    note_cb(err, ud);
}

/* Aborting a wait for room, a wait for the end and a receive: each is
 * called once, with PACT_ECANCELED, on the next tick (not inside the abort);
 * a token aborted already likewise. The waits without tokens stay. */
START_TEST(abort_waits)
{
    pact_worker_opts wo = {.queue_max = 2};
    pact_worker *w = start(idle_entry, NULL, &wo);
    pact_port *port = pact_worker_port(w);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pact_port_post_json(port, num_msg(i)), 0);
    json_t *refused = json_object();
    ck_assert_int_eq(pact_port_post_json(port, refused), PACT_EAGAIN);
    json_decref(refused); /* still ours */
    pact_abort *tok, *early;
    ck_assert_int_eq(pact_abort_new(t_loop, &tok), 0);
    ck_assert_int_eq(pact_abort_new(t_loop, &early), 0);
    ck_assert_int_eq(pact_abort_abort(early, NULL), 0);
    pact_wait_opts o = {.abort = tok}, oe = {.abort = early};
    struct calls room = {0}, end = {0}, recv = {0}, pre = {0}, ended = {0};
    ck_assert_int_eq(pact_port_writable(port, &o, note_cb, &room), 0);
    ck_assert_int_eq(pact_worker_wait(w, &o, note_exit, &end), 0);
    ck_assert_int_eq(pact_port_recv(port, &o, note_recv, &recv), 0);
    ck_assert_int_eq(pact_port_recv(port, &oe, note_recv, &pre), 0);
    ck_assert_int_eq(pact_worker_wait(w, NULL, note_exit, &ended), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    ck_assert_int_eq(pre.n, 1);
    ck_assert_int_eq(pre.code, PACT_ECANCELED);
    ck_assert_int_eq(room.n + end.n + recv.n, 0); /* no room, no end */
    ck_assert_int_eq(pact_abort_abort(tok, NULL), 0);
    ck_assert_int_eq(room.n + end.n + recv.n, 0); /* not inside the abort */
    pact_abort_unref(tok);
    pact_abort_unref(early);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    ck_assert_int_eq(room.n, 1);
    ck_assert_int_eq(room.code, PACT_ECANCELED);
    ck_assert_int_eq(end.n, 1);
    ck_assert_int_eq(end.code, PACT_ECANCELED);
    ck_assert_int_eq(recv.n, 1);
    ck_assert_int_eq(recv.code, PACT_ECANCELED);
    ck_assert_int_eq(ended.n, 0);
    ck_assert_int_eq(pact_worker_terminate(w), 0);
    run_ok();
    ck_assert_int_eq(ended.n, 1);
    ck_assert_int_eq(ended.code, 0); /* the end itself: no error */
    ck_assert_int_eq(room.n + end.n + recv.n + pre.n, 4);
    pact_worker_free(w);
}
END_TEST

/* pact_loop_close_all calls every kind of pending wait once, with
 * PACT_ECANCELED, on the next tick (never inside it). */
START_TEST(close_all_cancels_waits)
{
    pact_worker_opts wo = {.queue_max = 2};
    pact_worker *w = start(idle_entry, NULL, &wo);
    pact_port *port = pact_worker_port(w);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pact_port_post_json(port, num_msg(i)), 0);
    struct calls room = {0}, end = {0}, recv = {0};
    ck_assert_int_eq(pact_port_writable(port, NULL, note_cb, &room), 0);
    ck_assert_int_eq(pact_worker_wait(w, NULL, note_exit, &end), 0);
    ck_assert_int_eq(pact_port_recv(port, NULL, note_recv, &recv), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    ck_assert_int_eq(room.n + end.n + recv.n, 0);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    ck_assert_int_eq(room.n + end.n + recv.n, 0);
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
    ck_assert_int_eq(room.n, 1);
    ck_assert_int_eq(room.code, PACT_ECANCELED);
    ck_assert_int_eq(end.n, 1);
    ck_assert_int_eq(end.code, PACT_ECANCELED);
    ck_assert_int_eq(recv.n, 1);
    ck_assert_int_eq(recv.code, PACT_ECANCELED);
}
END_TEST

/* ---- back-pressure: a wait for room fires once, and only with room ------
 * The worker posts to the parent (bound 4) until PACT_EAGAIN, then waits
 * for room; its callback posts until PACT_EAGAIN again and waits again. The
 * parent takes two messages per round, and only once the worker has waited
 * again, so each call can be matched to the room that caused it. */
enum { ROOM_ROUNDS = 50, ROOM_MAX = 4 };

struct roomy {
    pact_port *port;
    json_int_t next, total;
    int calls, eagain, no_room;
    atomic_int waits; /* read by the parent */
    atomic_bool gave_up;
};

static void roomy_post(pact_error *err, void *ud);

/* Post until full; then wait for room. */
static void roomy_fill(struct roomy *r)
{
    while (r->next < r->total) {
        json_t *m = num_msg(r->next);
        int rc = pact_port_post_json(r->port, m);
        if (rc != 0)
            json_decref(m); /* refused: still ours */
        if (rc == PACT_EAGAIN) {
            r->eagain++;
            if (pact_port_writable(r->port, NULL, roomy_post, r) != 0)
                atomic_store(&r->gave_up, true);
            else
                atomic_fetch_add(&r->waits, 1);
            return;
        }
        if (rc != 0) {
            atomic_store(&r->gave_up, true);
            return;
        }
        r->next++;
    }
}

static void roomy_post(pact_error *err, void *ud)
{
    struct roomy *r = ud;
    r->calls++;
    /* room means consumed down to half the bound; only this thread posts */
    if (err || pact_port_pending(r->port) > ROOM_MAX / 2) {
        r->no_room++;
        atomic_store(&r->gave_up, true); /* a livelock otherwise */
        return;
    }
    roomy_fill(r);
}

static pact_error *roomy_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop;
    struct roomy *r = arg;
    r->port = port;
    roomy_fill(r);
    return NULL;
}

static void expect_num(pact_error *err, pact_value *msg, void *ud)
{
    json_int_t *next = ud;
    ck_assert_ptr_null(err);
    ck_assert_int_eq(num_of(msg), *next);
    (*next)++;
}

static void wait_for_waits(struct roomy *r, int n)
{
    while (atomic_load(&r->waits) < n && !atomic_load(&r->gave_up))
        sleep_ms(1);
}

START_TEST(writable_once_per_room)
{
    struct roomy r = {.total = ROOM_MAX + 2 * ROOM_ROUNDS};
    atomic_init(&r.waits, 0);
    atomic_init(&r.gave_up, false);
    pact_worker_opts wo = {.queue_max = ROOM_MAX};
    struct ended end = {0};
    pact_worker *w = start(roomy_entry, &r, &wo);
    pact_port *port = pact_worker_port(w);
    ck_assert_int_eq(pact_worker_wait(w, NULL, on_end, &end), 0);
    json_int_t next = 0;
    for (int round = 1; round <= ROOM_ROUNDS; round++) {
        wait_for_waits(&r, round);
        ck_assert_msg(!atomic_load(&r.gave_up), "round %d: called without room",
                      round);
        /* make room: two messages (down to half the bound) */
        json_int_t want = next + 2;
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(pact_port_recv(port, NULL, expect_num, &next), 0);
        while (next < want)
            ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    }
    ck_assert_int_eq(pact_port_on_message(port, expect_num, &next), 0);
    run_ok(); /* the last ROOM_MAX, and the worker's end */
    ck_assert_int_eq(pact_port_on_message(port, NULL, NULL), 0);
    ck_assert_int_eq(next, r.total);
    ck_assert_int_eq(end.calls, 1);
    ck_assert(!atomic_load(&r.gave_up));
    ck_assert_int_eq(r.no_room, 0);
    /* one call per round's room, one wait per full queue */
    ck_assert_int_eq(r.calls, ROOM_ROUNDS);
    ck_assert_int_eq(atomic_load(&r.waits), ROOM_ROUNDS);
    ck_assert_int_eq(r.eagain, ROOM_ROUNDS);
    pact_worker_free(w);
}
END_TEST

/* Both ends wait for room on the other: the parent posts BP_MANY numbers
 * (bound 4), waiting for room whenever full, and takes the replies as they
 * come; the worker echoes each, and when its reply does not fit it stops
 * listening until there is room for it. Both must finish. */
enum { BP_MANY = 10000, TIGHT = 4 };

struct echo_bp {
    pact_port *port;
    json_t *held; /* the reply that did not fit */
    int echoed, bad;
};

static void echo_bp_msg(pact_error *err, pact_value *msg, void *ud);

static void echo_bp_room(pact_error *err, void *ud)
{
    struct echo_bp *e = ud;
    if (err) {
        e->bad++;
        return;
    }
    int rc = pact_port_post_json(e->port, e->held);
    if (rc == PACT_EAGAIN) { /* called without room */
        e->bad++;
        pact_port_writable(e->port, NULL, echo_bp_room, e);
        return;
    }
    e->held = NULL;
    if (rc != 0)
        e->bad++;
    pact_port_on_message(e->port, echo_bp_msg, e);
}

static void echo_bp_msg(pact_error *err, pact_value *msg, void *ud)
{
    struct echo_bp *e = ud;
    json_int_t n = err ? -2 : num_of(msg);
    if (n < 0) {
        pact_port_on_message(e->port, NULL, NULL);
        return;
    }
    json_t *reply = num_msg(n + 1);
    e->echoed++;
    int rc = pact_port_post_json(e->port, reply);
    if (rc == PACT_EAGAIN) {
        e->held = reply;
        pact_port_on_message(e->port, NULL, NULL);
        if (pact_port_writable(e->port, NULL, echo_bp_room, e) != 0)
            e->bad++;
    } else if (rc != 0) {
        json_decref(reply);
        e->bad++;
    }
}

static pact_error *echo_bp_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop;
    struct echo_bp *e = arg;
    e->port = port;
    pact_port_on_message(port, echo_bp_msg, e);
    return NULL;
}

struct feeder {
    pact_port *port;
    json_int_t sent, got;
    int calls, no_room;
};

static void feed(pact_error *err, void *ud)
{
    struct feeder *f = ud;
    ck_assert_ptr_null(err);
    f->calls++;
    if (pact_port_pending(f->port) > TIGHT / 2)
        f->no_room++; /* called without room */
    while (f->sent < BP_MANY) {
        json_t *m = num_msg(f->sent);
        int rc = pact_port_post_json(f->port, m);
        if (rc != 0)
            json_decref(m); /* refused: still ours */
        if (rc == PACT_EAGAIN) {
            ck_assert_int_eq(pact_port_writable(f->port, NULL, feed, f), 0);
            return;
        }
        ck_assert_int_eq(rc, 0);
        f->sent++;
    }
}

/* Tell the worker to end; its inbox may not have room yet (it may not have
 * published its last consumption): then wait for room. */
static void feed_end(pact_error *err, void *ud)
{
    struct feeder *f = ud;
    ck_assert_ptr_null(err);
    json_t *bye = json_object();
    int rc = pact_port_post_json(f->port, bye);
    if (rc == PACT_EAGAIN) {
        json_decref(bye);
        ck_assert_int_eq(pact_port_writable(f->port, NULL, feed_end, f), 0);
        return;
    }
    ck_assert_int_eq(rc, 0);
}

static void feeder_msg(pact_error *err, pact_value *msg, void *ud)
{
    struct feeder *f = ud;
    ck_assert_ptr_null(err);
    ck_assert_int_eq(num_of(msg), f->got + 1);
    f->got++;
    if (f->got == BP_MANY) /* the last reply: let the worker end */
        feed_end(NULL, f);
}

START_TEST(both_ends_wait_for_room)
{
    struct echo_bp e = {0};
    pact_worker_opts wo = {.queue_max = TIGHT};
    struct ended end = {0};
    pact_worker *w = start(echo_bp_entry, &e, &wo);
    struct feeder f = {pact_worker_port(w), 0, 0, 0, 0};
    ck_assert_int_eq(pact_worker_wait(w, NULL, on_end, &end), 0);
    ck_assert_int_eq(pact_port_on_message(f.port, feeder_msg, &f), 0);
    feed(NULL, &f);
    run_ok();
    ck_assert_int_eq(f.sent, BP_MANY);
    ck_assert_int_eq(f.got, BP_MANY);
    ck_assert_int_eq(f.no_room, 0);
    ck_assert_int_eq(e.echoed, BP_MANY);
    ck_assert_int_eq(e.bad, 0);
    ck_assert_int_eq(end.calls, 1);
    ck_assert_int_eq(end.code, 0);
    pact_worker_free(w);
}
END_TEST

/* ---- failures -------------------------------------------------------------
 */

static pact_error *failing_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)arg;
    /* what it set up before failing is cancelled, not leaked */
    T_MUST(pact_timeout(loop, 100000, t_keepalive_cb, NULL, NULL));
    pact_port_post_json(port, json_string("before the failure"));
    return PACT_ERROR(PACT_EIO, "the entry failed on purpose");
}

static void note_msg(pact_error *err, pact_value *msg, void *ud)
{
    int *n = ud;
    if (!err && msg->kind == PACT_JSON)
        ++*n;
}

START_TEST(entry_fails)
{
    pact_worker *w = start(failing_entry, NULL, NULL);
    struct ended end = {0};
    int msgs = 0;
    ck_assert_int_eq(pact_worker_wait(w, NULL, on_end, &end), 0);
    pact_port *port = pact_worker_port(w);
    /* one receive takes the message it sent; the next fails with its error */
    ck_assert_int_eq(pact_port_recv(port, NULL, note_msg, &msgs), 0);
    struct rejected r = {0};
    pact_promise *p = pact_port_recv_p(port, NULL);
    ck_assert_int_eq(pact_promise_callback(p, on_rejected, &r), 0);
    run_ok();
    ck_assert_int_eq(end.calls, 1);
    ck_assert_int_eq(end.code, 1);
    ck_assert_int_eq(end.err_code, PACT_EIO);
    ck_assert_str_eq(end.msg, "the entry failed on purpose");
    ck_assert_int_eq(msgs, 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.code, PACT_EIO);
    pact_promise_unref(p);
    /* the promise twin of the wait, after the end: rejects with the error */
    p = pact_worker_wait_p(w, NULL);
    struct rejected r2 = {0};
    pact_promise_callback(p, on_rejected, &r2);
    run_ok();
    ck_assert_int_eq(r2.calls, 1);
    ck_assert_int_eq(r2.code, PACT_EIO);
    pact_promise_unref(p);
    pact_worker_free(w);
}
END_TEST

static void raise_cb(pact_error *err, void *ud)
{
    (void)err;
    pact_loop *loop = ud;
    pact_error *e = PACT_ERROR(PACT_ERANGE, "raised in the worker");
    pact_loop_raise(loop, e);
    pact_error_unref(e);
}

static pact_error *raising_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)port, (void)arg;
    T_MUST(pact_timeout(loop, 1, raise_cb, loop, NULL));
    T_MUST(pact_interval(loop, 1000, t_keepalive_cb, NULL,
                         NULL)); /* never ends alone */
    return NULL;
}

START_TEST(uncaught_error_in_worker)
{
    struct capture cap;
    capture_begin(&cap); /* before the start: the worker prints at once */
    pact_worker *w = start(raising_entry, NULL, NULL);
    struct ended end = {0};
    pact_worker_wait(w, NULL, on_end, &end);
    run_ok();
    char *out = capture_end(&cap);
    ck_assert_msg(strstr(out, "raised in the worker"), "stderr: '%s'", out);
    free(out);
    ck_assert_int_eq(end.calls, 1);
    ck_assert_int_eq(end.code, 1);
    ck_assert_int_eq(end.err_code, PACT_ERANGE);
    pact_worker_free(w);
}
END_TEST

/* Nobody waits: the worker's error is raised on the parent loop. */
START_TEST(unobserved_failure_raises)
{
    pact_worker *w = start(failing_entry, NULL, NULL);
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    char *out = capture_end(&cap);
    ck_assert_int_eq(rc, PACT_EIO);
    ck_assert_msg(strstr(out, "the entry failed on purpose"), "stderr: '%s'",
                  out);
    free(out);
    run_ok(); /* the end was reported; nothing is left */
    pact_worker_free(w);
}
END_TEST

static pact_error *exit_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)arg;
    T_MUST(pact_interval(loop, 1000, t_keepalive_cb, NULL, NULL));
    pact_worker_exit(port, 42);
    return NULL;
}

START_TEST(exit_code)
{
    pact_worker *w = start(exit_entry, NULL, NULL);
    struct ended end = {0};
    pact_worker_wait(w, NULL, on_end, &end);
    run_ok();
    ck_assert_int_eq(end.calls, 1);
    ck_assert_int_eq(end.code, 42);
    ck_assert_int_eq(end.err_code, 0);
    /* the parent's port cannot exit the worker */
    ck_assert_int_eq(pact_worker_exit(pact_worker_port(w), 1), PACT_EINVAL);
    pact_worker_free(w);
}
END_TEST

static pact_error *quit_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop, (void)arg;
    pact_worker_exit(port, 0);
    return NULL;
}

/* In a child of fork() (the limit is the process's): out of descriptors,
 * pact_worker_new fails with PACT_EMFILE at whichever step finds none, and
 * the process goes on, its workers ending and freed as usual. */
static void workers_until_emfile(void *arg)
{
    (void)arg;
    enum { MAX = 16 };
    pact_worker *w[MAX];
    int n = 0, rc = 0;
    int lowest = t_child_fd_limit(24);
    while (n < MAX &&
           (rc = pact_worker_new(t_loop, quit_entry, NULL, NULL, &w[n])) == 0)
        n++;
    T_CHILD_ASSERT(rc == PACT_EMFILE);
    T_CHILD_ASSERT(n >= 1);
    T_CHILD_ASSERT(pact_loop_run(t_loop, PACT_RUN_DEFAULT) == 0);
    while (n > 0)
        pact_worker_free(w[--n]);
    int made = 0, refused = 0;
    for (int spare = 0; spare <= 14; spare++) {
        t_child_fd_limit(spare);
        pact_worker *one = NULL;
        rc = pact_worker_new(t_loop, quit_entry, NULL, NULL, &one);
        T_CHILD_ASSERT(rc == 0 || rc == PACT_EMFILE);
        if (rc == 0) {
            made++;
            T_CHILD_ASSERT(pact_loop_run(t_loop, PACT_RUN_DEFAULT) == 0);
            pact_worker_free(one);
        } else {
            refused++;
        }
    }
    T_CHILD_ASSERT(made && refused);
    T_CHILD_ASSERT(t_child_fd_limit(0) == lowest);
    T_CHILD_ASSERT(pact_loop_free(t_loop) == 0);
}

START_TEST(descriptor_exhaustion_is_emfile)
{
    t_forked(workers_until_emfile, NULL);
}
END_TEST

/* A thread that cannot start (here: no memory for its stack) is its own
 * code, not PACT_EAGAIN, which means a full queue. */
START_TEST(thread_start_failure_is_enothread)
{
    pact_worker_opts o = {.stack_size = (size_t)1 << 60};
    pact_worker *w = NULL;
    ck_assert_int_eq(pact_worker_new(t_loop, quit_entry, NULL, &o, &w),
                     PACT_ENOTHREAD);
    ck_assert_ptr_null(w);
    ck_assert_int_ne(PACT_ENOTHREAD, PACT_EAGAIN);
}
END_TEST

/* Messages it posted before it ended come before its end. */
static pact_error *burst_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop, (void)arg;
    for (int i = 0; i < 100; i++)
        pact_port_post_json(port, num_msg(i));
    return NULL;
}

struct ordered {
    int msgs, msgs_at_end;
};

static void count_msg(pact_error *err, pact_value *msg, void *ud)
{
    ck_assert_ptr_null(err);
    ck_assert_int_eq(num_of(msg), ((struct ordered *)ud)->msgs);
    ((struct ordered *)ud)->msgs++;
}

static void end_after_msgs(pact_error *err, int code, void *ud)
{
    ck_assert_ptr_null(err);
    ck_assert_int_eq(code, 0);
    struct ordered *o = ud;
    o->msgs_at_end = o->msgs;
}

START_TEST(messages_before_exit)
{
    struct ordered o = {0, -1};
    pact_worker *w = start(burst_entry, NULL, NULL);
    pact_port_on_message(pact_worker_port(w), count_msg, &o);
    pact_worker_wait(w, NULL, end_after_msgs, &o);
    run_ok();
    ck_assert_int_eq(o.msgs, 100);
    ck_assert_int_eq(o.msgs_at_end, 100);
    pact_worker_free(w);
}
END_TEST

/* ---- termination ------------------------------------------------------------
 */

/* Busy: an endless chain of immediates, a task waiting on a message and
 * on a long delay. Termination stops it; the awaits see PACT_ECANCELED. */
struct busy {
    pact_port *port;
    pact_loop *loop;
    long hops;
    int recv_code, delay_code, task_ended;
};

static void hop(pact_error *err, void *ud)
{
    struct busy *b = ud;
    if (err)
        return;
    b->hops++;
    if (b->hops == 10)
        pact_port_post_json(b->port, json_string("busy"));
    T_MUST(pact_immediate(b->loop, hop, b, NULL));
}

static pact_error *busy_recv_task(void *arg, pact_value *result)
{
    (void)result;
    struct busy *b = arg;
    pact_error *err = PACT_AWAIT_ERR(pact_port_recv_p(b->port, NULL), NULL);
    b->recv_code = err ? pact_error_code(err) : 0;
    pact_error_unref(err);
    err = PACT_AWAIT_ERR(pact_delay(b->loop, 100000, NULL), NULL);
    b->delay_code = err ? pact_error_code(err) : 0;
    pact_error_unref(err);
    b->task_ended = 1;
    return NULL;
}

static pact_error *busy_entry(pact_loop *loop, pact_port *port, void *arg)
{
    struct busy *b = arg;
    b->port = port;
    b->loop = loop;
    T_MUST(pact_immediate(loop, hop, b, NULL));
    pact_promise_unref(pact_task_spawn(loop, busy_recv_task, b, NULL));
    return NULL;
}

static void terminate_on_msg(pact_error *err, pact_value *msg, void *ud)
{
    (void)msg;
    ck_assert_ptr_null(err);
    ck_assert_int_eq(pact_worker_terminate(ud), 0);
    ck_assert_int_eq(pact_worker_terminate(ud), 0); /* again: no-op */
    /* posting to a terminated worker fails at once; the message stays ours */
    json_t *j = json_string("too late");
    ck_assert_int_eq(pact_port_post_json(pact_worker_port(ud), j), PACT_EPIPE);
    ck_assert_uint_eq(j->refcount, 1);
    json_decref(j);
}

START_TEST(terminate_while_busy)
{
    struct busy b = {0};
    pact_worker *w = start(busy_entry, &b, NULL);
    struct ended end = {0};
    pact_worker_wait(w, NULL, on_end, &end);
    pact_port_on_message(pact_worker_port(w), terminate_on_msg, w);
    run_ok();
    ck_assert_int_eq(end.calls, 1);
    ck_assert_int_eq(end.code, 1);
    ck_assert_int_eq(end.err_code, 0);
    ck_assert_int_ge(b.hops, 10);
    ck_assert_int_eq(b.recv_code, PACT_ECANCELED);
    ck_assert_int_eq(b.delay_code, PACT_ECANCELED);
    ck_assert_int_eq(b.task_ended, 1);
    /* and after its end: posts, room and receives fail clearly */
    pact_port *port = pact_worker_port(w);
    pact_value v = pact_int(3);
    ck_assert_int_eq(pact_port_post(port, &v), PACT_EPIPE);
    ck_assert_int_eq(v.kind, PACT_INT);
    ck_assert_int_eq(pact_port_writable(port, NULL, count_cb, NULL),
                     PACT_EPIPE);
    struct rejected r = {0};
    pact_promise *p = pact_port_recv_p(port, NULL);
    pact_promise_callback(p, on_rejected, &r);
    run_ok();
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.code, PACT_EOF);
    pact_promise_unref(p);
    pact_worker_free(w);
}
END_TEST

/* One long callback that looks at pact_worker_terminating. */
static void spin_msg(pact_error *err, pact_value *msg, void *ud)
{
    (void)err, (void)msg;
    pact_port *port = ud;
    pact_port_post_json(port, json_string("spinning"));
    while (!pact_worker_terminating(port))
        t_spin_ms(1);
}

static pact_error *spin_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop, (void)arg;
    pact_port_on_message(port, spin_msg, port);
    return NULL;
}

START_TEST(terminate_long_callback)
{
    pact_worker *w = start(spin_entry, NULL, NULL);
    struct ended end = {0};
    pact_worker_wait(w, NULL, on_end, &end);
    pact_port_on_message(pact_worker_port(w), terminate_on_msg, w);
    ck_assert_int_eq(pact_port_post_json(pact_worker_port(w), json_true()), 0);
    run_ok();
    ck_assert_int_eq(end.calls, 1);
    ck_assert_int_eq(end.code, 1);
    pact_worker_free(w);
}
END_TEST

/* ---- close_all, free, unref
 * -------------------------------------------------- */

static pact_error *listen_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop, (void)arg;
    pact_port_on_message(port, drop_msg, NULL); /* alive until terminated */
    return NULL;
}

/* A receive cancelled by close_all: called once, with PACT_ECANCELED. */
static void cancelled_msg(pact_error *err, pact_value *msg, void *ud)
{
    ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
    ck_assert_ptr_null(msg);
    (*(int *)ud)++;
}

START_TEST(close_all_with_live_workers)
{
    pact_worker *w[3];
    pact_promise *waits[3];
    int cancelled = 0;
    for (int i = 0; i < 3; i++) {
        w[i] = start(listen_entry, NULL, NULL);
        waits[i] = pact_worker_wait_p(w[i], NULL);
        /* unconsumed messages both ways, and a pending plain receive */
        ck_assert_int_eq(
            pact_port_post_json(pact_worker_port(w[i]), num_msg(i)), 0);
        pact_port_recv(pact_worker_port(w[i]), NULL, cancelled_msg, &cancelled);
    }
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_free(t_loop);
    char *out = capture_end(&cap);
    ck_assert_int_eq(rc, PACT_EBUSY);
#ifdef PACT_DEBUG
    ck_assert_msg(strstr(out, "worker"), "stderr: '%s'", out);
#endif
    free(out);
    ck_assert_int_eq(cancelled, 0);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    ck_assert_int_eq(cancelled, 0); /* never inside close_all */
    /* the waits' promises reject with nobody to handle them: as in Node, a
     * shutdown that leaves them so reports them, unless told not to */
    ck_assert_int_eq(pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_NONE), 0);
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
    ck_assert_int_eq(cancelled, 3); /* each once, on the next tick */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(pact_promise_state(waits[i]), PACT_REJECTED);
        ck_assert_int_eq(pact_error_code(pact_promise_error(waits[i])),
                         PACT_ECANCELED);
        pact_promise_unref(waits[i]);
    }
    /* the teardown's pact_loop_free succeeds */
}
END_TEST

/* A worker stuck in a callback that ignores termination: close_all waits
 * PACT_WORKER_CLOSE_WAIT_MS, says so, and leaves the thread to end and free
 * its half on its own; the parent's loop can be freed meanwhile. */
static atomic_int stuck_done;

static void stuck_msg(pact_error *err, pact_value *msg, void *ud)
{
    (void)err, (void)msg;
    pact_port_post_json(ud, json_string("stuck"));
    while (!pact_worker_terminating(ud))
        sleep_ms(1);
    sleep_ms(PACT_WORKER_CLOSE_WAIT_MS + 500);
    atomic_store(&stuck_done, 1);
}

static pact_error *stuck_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop, (void)arg;
    pact_port_on_message(port, stuck_msg, port);
    return NULL;
}

START_TEST(close_all_leaves_a_stuck_worker)
{
    atomic_store(&stuck_done, 0);
    pact_worker *w = start(stuck_entry, NULL, NULL);
    ck_assert_int_eq(pact_port_post_json(pact_worker_port(w), json_true()), 0);
    pact_promise *r = pact_port_recv_p(pact_worker_port(w), NULL);
    while (pact_promise_state(r) == PACT_PENDING)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    pact_promise_unref(r);
    struct capture cap;
    capture_begin(&cap);
    uint64_t t0 = now_us();
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    uint64_t waited = now_us() - t0;
    char *out = capture_end(&cap);
    ck_assert_msg(strstr(out, "did not end"), "stderr: '%s'", out);
    free(out);
    ck_assert_uint_ge(waited, PACT_WORKER_CLOSE_WAIT_MS * 1000 - 50000);
    ck_assert_int_eq(atomic_load(&stuck_done), 0);
    /* let it end, and free its half, before the test does */
    while (!atomic_load(&stuck_done))
        sleep_ms(10);
    sleep_ms(500);
}
END_TEST

START_TEST(free_running_worker)
{
    pact_worker *w = start(listen_entry, NULL, NULL);
    pact_promise *p = pact_worker_wait_p(w, NULL);
    struct rejected r = {0};
    pact_promise_callback(p, on_rejected, &r);
    ck_assert_int_eq(pact_port_post_json(pact_worker_port(w), num_msg(1)), 0);
    pact_worker_free(w); /* terminated, reaped by the loop below */
    /* cancelled on the next tick, not inside the free */
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    run_ok();
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    pact_promise_unref(p);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.code, PACT_ECANCELED);
}
END_TEST

/* Freed from inside its own message callback. */
static void free_on_msg(pact_error *err, pact_value *msg, void *ud)
{
    (void)err, (void)msg;
    pact_worker_free(ud);
}

START_TEST(free_inside_callback)
{
    pact_worker *w = start(burst_entry, NULL, NULL);
    pact_port_on_message(pact_worker_port(w), free_on_msg, w);
    run_ok();
}
END_TEST

START_TEST(unref_lets_parent_return)
{
    pact_worker_opts o = {.unref = true};
    pact_worker *w = start(listen_entry, NULL, &o);
    run_ok(); /* returns: the worker lives on but does not hold the loop */
    ck_assert_int_eq(pact_worker_ref(w), 0);
    ck_assert(pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_worker_unref(w), 0);
    ck_assert(!pact_loop_alive(t_loop));
    struct ended end = {0};
    pact_worker_ref(w);
    pact_worker_wait(w, NULL, on_end, &end);
    pact_worker_terminate(w);
    run_ok();
    ck_assert_int_eq(end.calls, 1);
    ck_assert_int_eq(end.code, 1);
    pact_worker_free(w);
}
END_TEST

/* ---- the worker's own loop
 * ------------------------------------------------------ */

struct inner {
    pact_port *port;
    pact_loop *loop;
    int timer_fired, steps, bad;
    json_int_t got;
};

static pact_value plus_one(const pact_value *v, void *ud)
{
    (void)ud;
    return pact_int(v->u.i + 1);
}

static pact_error *inner_task(void *arg, pact_value *result)
{
    (void)result;
    struct inner *in = arg;
    PACT_AWAIT_TRY(pact_delay(in->loop, 5, NULL), NULL);
    in->steps++;
    pact_promise *p = pact_resolved(in->loop, pact_int(1));
    pact_promise *q = pact_then(p, plus_one, NULL, NULL);
    pact_promise_unref(p);
    pact_value v;
    PACT_AWAIT_TRY(q, &v);
    if (v.kind != PACT_INT || v.u.i != 2)
        in->bad++;
    in->steps++;
    pact_value m;
    PACT_AWAIT_TRY(pact_port_recv_p(in->port, NULL), &m);
    in->got = num_of(&m);
    pact_value_release(&m);
    in->steps++;
    pact_value reply = pact_json(
        json_pack("{sisi}", "timer", in->timer_fired, "steps", in->steps));
    if (pact_port_post(in->port, &reply) != 0) {
        in->bad++;
        pact_value_release(&reply);
    }
    return NULL; /* nothing is left: the worker ends with 0 */
}

static void inner_timer(pact_error *err, void *ud)
{
    struct inner *in = ud;
    if (err)
        in->bad++;
    in->timer_fired++;
}

static pact_error *inner_entry(pact_loop *loop, pact_port *port, void *arg)
{
    struct inner *in = arg;
    in->port = port;
    in->loop = loop;
    T_MUST(pact_timeout(loop, 1, inner_timer, in, NULL));
    pact_promise *t = pact_task_spawn(loop, inner_task, in, NULL);
    pact_promise_unref(t);
    return NULL;
}

START_TEST(worker_loop_timers_promises_tasks)
{
    struct inner in = {0};
    pact_worker *w = start(inner_entry, &in, NULL);
    pact_port *port = pact_worker_port(w);
    struct ended end = {0};
    pact_worker_wait(w, NULL, on_end, &end);
    ck_assert_int_eq(pact_port_post_json(port, num_msg(99)), 0);
    pact_promise *r = pact_port_recv_p(port, NULL);
    run_ok();
    ck_assert_int_eq(pact_promise_state(r), PACT_FULFILLED);
    const pact_value *v = pact_promise_value(r);
    ck_assert_int_eq(v->kind, PACT_JSON);
    ck_assert_int_eq(json_integer_value(json_object_get(v->u.json, "timer")),
                     1);
    ck_assert_int_eq(json_integer_value(json_object_get(v->u.json, "steps")),
                     3);
    pact_promise_unref(r);
    ck_assert_int_eq(in.bad, 0);
    ck_assert_int_eq(in.got, 99);
    ck_assert_int_eq(end.calls, 1);
    ck_assert_int_eq(end.code, 0);
    pact_worker_free(w);
}
END_TEST

/* Several workers at once, each a ping-pong partner. */
enum { MANY = 6, MANY_ROUNDS = 300 };

struct many_pinger {
    pact_port *port;
    json_int_t next;
    int got;
};

static void many_ping(pact_error *err, pact_value *msg, void *ud)
{
    struct many_pinger *p = ud;
    ck_assert_ptr_null(err);
    ck_assert_int_eq(num_of(msg), p->next + 1);
    p->next += 2;
    if (++p->got == MANY_ROUNDS)
        ck_assert_int_eq(pact_port_post_json(p->port, json_object()), 0);
    else
        ck_assert_int_eq(pact_port_post_json(p->port, num_msg(p->next)), 0);
}

START_TEST(many_workers)
{
    struct echo e[MANY];
    struct many_pinger p[MANY];
    pact_worker *w[MANY];
    memset(e, 0, sizeof e);
    for (int i = 0; i < MANY; i++) {
        w[i] = start(echo_entry, &e[i], NULL);
        p[i] = (struct many_pinger){pact_worker_port(w[i]), 0, 0};
        pact_port_on_message(p[i].port, many_ping, &p[i]);
        ck_assert_int_eq(pact_port_post_json(p[i].port, num_msg(0)), 0);
    }
    run_ok();
    for (int i = 0; i < MANY; i++) {
        ck_assert_int_eq(p[i].got, MANY_ROUNDS);
        ck_assert_int_eq(e[i].echoed, MANY_ROUNDS);
        pact_worker_free(w[i]);
    }
}
END_TEST

/* ---- wake-ups through pipes ----------------------------------------------
 * Where there is no eventfd, a loop's posts and a worker's ports wake their
 * loops through pipes (src/wake.h), as they do through eventfds elsewhere. */

enum { PIPED_ROUNDS = 200, PIPED_POSTS = 1000 };

struct piped {
    pact_loop *loop;
    pact_port *port;
    json_int_t next;
    int got, posts, bad;
    atomic_int post_failed; /* by the posting thread */
    int eventfds, pipes;    /* open once the worker was made */
};

/* How many of this process's descriptors are @p kind ("pipe:"...). */
static int count_fds(const char *kind)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char link[128];
        ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        n += strncmp(link, kind, strlen(kind)) == 0;
    }
    closedir(d);
    return n;
}

static void piped_post(void *ud)
{
    ((struct piped *)ud)->posts++;
}

static void *piped_poster(void *ud)
{
    struct piped *p = ud;
    for (int i = 0; i < PIPED_POSTS; i++)
        if (pact_loop_post(p->loop, piped_post, p) != 0)
            atomic_fetch_add(&p->post_failed, 1);
    pact_loop_release(p->loop);
    return NULL;
}

static void piped_reply(pact_error *err, pact_value *msg, void *ud)
{
    struct piped *p = ud;
    if (err || num_of(msg) != p->next + 1)
        p->bad++;
    p->next += 2;
    json_t *m = ++p->got == PIPED_ROUNDS ? json_object() : num_msg(p->next);
    if (pact_port_post_json(p->port, m) != 0)
        p->bad++;
}

/* Posts from another thread and a ping-pong with a worker, on @p loop.
 * @return 0, or the line of the first thing that went wrong (no Check
 * assertions: a forked child runs this too). */
static int piped_round_trips(pact_loop *loop, struct piped *p)
{
    struct echo e = {0};
    pact_worker *w = NULL;
    p->loop = loop;
    atomic_init(&p->post_failed, 0);
    if (pact_worker_new(loop, echo_entry, &e, NULL, &w) != 0)
        return __LINE__;
    p->eventfds = count_fds("anon_inode:[eventfd]");
    p->pipes = count_fds("pipe:");
    p->port = pact_worker_port(w);
    if (pact_port_on_message(p->port, piped_reply, p) != 0 ||
        pact_port_post_json(p->port, num_msg(0)) != 0)
        return __LINE__;
    pthread_t th;
    pact_loop_hold(loop); /* until the thread has posted everything */
    if (pthread_create(&th, NULL, piped_poster, p) != 0)
        return __LINE__;
    int rc = pact_loop_run(loop, PACT_RUN_DEFAULT);
    pthread_join(th, NULL);
    pact_worker_free(w);
    if (rc != 0)
        return __LINE__;
    if (p->got != PIPED_ROUNDS || e.echoed != PIPED_ROUNDS || p->bad || e.bad)
        return __LINE__;
    if (p->posts != PIPED_POSTS || atomic_load(&p->post_failed))
        return __LINE__;
    return 0;
}

/* PACT_WAKE_PIPE=1 makes the wake-ups opened from then on pipes: the new
 * loop and the worker's ports open no eventfd, and everything arrives. */
START_TEST(wake_pipes_forced)
{
    int eventfds = count_fds("anon_inode:[eventfd]");
    int pipes = count_fds("pipe:");
    ck_assert_int_ge(eventfds, 0);
    ck_assert_int_eq(setenv("PACT_WAKE_PIPE", "1", 1), 0);
    pact_loop *loop = NULL;
    int made = pact_loop_new(&loop);
    struct piped p = {0};
    int line = made == 0 ? piped_round_trips(loop, &p) : -1;
    unsetenv("PACT_WAKE_PIPE");
    ck_assert_int_eq(made, 0);
    ck_assert_int_eq(line, 0);
    ck_assert_int_eq(pact_loop_free(loop), 0);
    ck_assert_int_eq(p.eventfds, eventfds);
    /* the loop's posts, the worker loop's, and each end of the channel */
    ck_assert_int_ge(p.pipes - pipes, 4 * 2);
}
END_TEST

#ifdef __NR_eventfd2
/* A system without eventfd, for real: the child's eventfd2 fails with
 * ENOSYS (a seccomp filter, which its threads inherit). */
static void no_eventfd_child(void *arg)
{
    (void)arg;
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_eventfd2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    T_CHILD_ASSERT(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    T_CHILD_ASSERT(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
    T_CHILD_ASSERT(syscall(__NR_eventfd2, 0, 0) < 0 && errno == ENOSYS);
    pact_loop *loop = NULL;
    T_CHILD_ASSERT(pact_loop_new(&loop) == 0);
    struct piped p = {0};
    int line = piped_round_trips(loop, &p);
    if (line)
        fprintf(stderr, "no_eventfd: failed at line %d\n", line);
    T_CHILD_ASSERT(line == 0);
    T_CHILD_ASSERT(pact_loop_free(loop) == 0);
}

START_TEST(no_eventfd_falls_back_to_pipes)
{
    t_forked(no_eventfd_child, NULL);
}
END_TEST
#endif

Suite *suite_worker(void)
{
    Suite *s = suite_create("worker");
    TCase *tc = tcase_create("worker");
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ping_pong);
    tcase_add_test(tc, task_awaits_next_message);
    tcase_add_test(tc, transfer_bytes);
    tcase_add_test(tc, post_value_moves_only_on_success);
    tcase_add_test(tc, json_shapes);
    tcase_add_test(tc, json_moved_or_copied);
    tcase_add_test(tc, json_deep_shared_copied);
    tcase_add_test(tc, bad_messages);
    tcase_add_test(tc, port_from_wrong_thread);
    tcase_add_test(tc, back_pressure);
    tcase_add_test(tc, back_pressure_awaited);
    tcase_add_test(tc, recv_timeout_keeps_message);
    tcase_add_test(tc, recv_p_timeout_keeps_message);
    tcase_add_test(tc, task_recv_timeout_keeps_message);
    tcase_add_test(tc, abort_waits);
    tcase_add_test(tc, close_all_cancels_waits);
    tcase_add_test(tc, writable_once_per_room);
    tcase_add_test(tc, both_ends_wait_for_room);
    tcase_add_test(tc, entry_fails);
    tcase_add_test(tc, uncaught_error_in_worker);
    tcase_add_test(tc, unobserved_failure_raises);
    tcase_add_test(tc, exit_code);
    tcase_add_test(tc, descriptor_exhaustion_is_emfile);
    tcase_add_test(tc, thread_start_failure_is_enothread);
    tcase_add_test(tc, messages_before_exit);
    tcase_add_test(tc, terminate_while_busy);
    tcase_add_test(tc, terminate_long_callback);
    tcase_add_test(tc, close_all_with_live_workers);
    tcase_add_test(tc, close_all_leaves_a_stuck_worker);
    tcase_add_test(tc, free_running_worker);
    tcase_add_test(tc, free_inside_callback);
    tcase_add_test(tc, unref_lets_parent_return);
    tcase_add_test(tc, worker_loop_timers_promises_tasks);
    tcase_add_test(tc, many_workers);
    tcase_add_test(tc, wake_pipes_forced);
#ifdef __NR_eventfd2
    tcase_add_test(tc, no_eventfd_falls_back_to_pipes);
#endif
    suite_add_tcase(s, tc);
    return s;
}

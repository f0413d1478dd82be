/* make bench: message-passing workers against Node's worker_threads (the
 * peer whose model pact's workers copy; libevent and libuv have no workers).
 * worker.round_trip is the latency of one message there and back with one
 * in flight; worker.json_throughput the cost per message of a one-way
 * stream of small JSON objects. Each run starts its worker and exchanges
 * one untimed message first, so that the thread's start is not measured.
 * README.md says what each measures. */
#include "config.h"

#include "bench.h"

#include <jansson.h>
#include <pact.h>
#include <stdio.h>
#include <stdlib.h>

#define ROUND_TRIPS 20000u /* worker.round_trip */
#define JSON_MSGS 200000u  /* worker.json_throughput */

static pact_worker *start_worker(pact_loop *loop, pact_worker_fn entry,
                                 void *arg)
{
    pact_worker *w;
    BENCH_CHECK(pact_worker_new(loop, entry, arg, NULL, &w));
    return w;
}

static json_int_t field(const pact_value *m, const char *key)
{
    if (m->kind != PACT_JSON)
        bench_fail("worker bench: a message is not JSON");
    return json_integer_value(json_object_get(m->u.json, key));
}

static json_t *n_msg(json_int_t n)
{
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "n", json_integer(n)) < 0)
        bench_fail("out of memory");
    return o;
}

/* ======================================================================
 * worker.round_trip: the parent posts {"n": i}, the worker answers
 * {"n": i + 1}, the parent posts the next on receipt: ROUND_TRIPS times,
 * one message in flight. Figure: wall ns per round trip.
 * ====================================================================== */

typedef struct rt_ctx {
    pact_port *port;
    json_int_t got; /* -1 until the untimed first reply */
    double t0, t1;
} rt_ctx;

/* The worker: answer n with n + 1; stop listening on a message that is
 * not JSON (its loop then ends). */
static void rt_echo(pact_error *err, pact_value *msg, void *ud)
{
    pact_port *port = ud;
    if (err)
        bench_fail("worker.round_trip: the worker got an error");
    if (msg->kind != PACT_JSON) {
        pact_port_on_message(port, NULL, NULL);
        return;
    }
    BENCH_CHECK(pact_port_post_json(port, n_msg(field(msg, "n") + 1)));
}

static pact_error *rt_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop, (void)arg;
    BENCH_CHECK(pact_port_on_message(port, rt_echo, port));
    return NULL;
}

static void rt_reply(pact_error *err, pact_value *msg, void *ud)
{
    rt_ctx *c = ud;
    if (err)
        bench_fail("worker.round_trip: the parent got an error");
    json_int_t n = field(msg, "n");
    if (c->got < 0) { /* the thread is up: start the clock */
        c->got = 0;
        c->t0 = bench_wall_ns();
        BENCH_CHECK(pact_port_post_json(c->port, n_msg(0)));
        return;
    }
    if (n != c->got * 2 + 1)
        bench_fail("worker.round_trip: got %lld, expected %lld", (long long)n,
                   (long long)(c->got * 2 + 1));
    if (++c->got == ROUND_TRIPS) {
        c->t1 = bench_wall_ns();
        pact_value stop = pact_nothing();
        BENCH_CHECK(pact_port_post(c->port, &stop));
        return;
    }
    BENCH_CHECK(pact_port_post_json(c->port, n_msg(c->got * 2)));
}

static void pact_rt_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    (void)ctx;
    pact_loop *loop;
    rt_ctx c = {NULL, -1, 0, 0};
    BENCH_CHECK(pact_loop_new(&loop));
    pact_worker *w = start_worker(loop, rt_entry, NULL);
    c.port = pact_worker_port(w);
    BENCH_CHECK(pact_port_on_message(c.port, rt_reply, &c));
    BENCH_CHECK(pact_port_post_json(c.port, n_msg(-1)));
    BENCH_CHECK(pact_loop_run(loop, PACT_RUN_DEFAULT));
    if (c.got != ROUND_TRIPS)
        bench_fail("worker.round_trip: %lld of %u round trips",
                   (long long)c.got, ROUND_TRIPS);
    figs[0] = (c.t1 - c.t0) / ROUND_TRIPS;
    pact_worker_free(w);
    BENCH_CHECK(pact_loop_free(loop));
}

static void bench_round_trip(void)
{
    double pact[BENCH_MAX_FIGS], node[1] = {-1};
    bench_best(pact_rt_run, NULL, pact);
    bench_node("worker_round_trip.js", node, 1);
    bench_anchor a[] = {{"node", node[0]}};
    bench_print("worker.round_trip", "ns", pact[0], a, 1);
}

/* ======================================================================
 * worker.json_throughput: the parent posts JSON_MSGS objects
 * {"i": i, "name": "item"} as fast as the worker's queue takes them (on
 * PACT_EAGAIN it waits for room); the worker sums i and answers with the
 * count and sum after the last. Figure: wall ns per message, from the first
 * post to the answer.
 * ====================================================================== */

typedef struct tp_ctx {
    pact_port *port;
    json_int_t next;
    json_t *held; /* refused with PACT_EAGAIN, posted again later */
    double t0, t1;
    json_int_t count, sum;
} tp_ctx;

typedef struct tp_worker {
    pact_port *port;
    json_int_t count, sum;
} tp_worker;

static void tp_count(pact_error *err, pact_value *msg, void *ud)
{
    tp_worker *t = ud;
    if (err)
        bench_fail("worker.json_throughput: the worker got an error");
    if (msg->kind != PACT_JSON) { /* the untimed hello, or the stop */
        if (msg->kind == PACT_INT) {
            pact_value hello = pact_int(0);
            BENCH_CHECK(pact_port_post(t->port, &hello));
        } else {
            pact_port_on_message(t->port, NULL, NULL);
        }
        return;
    }
    t->sum += field(msg, "i");
    if (++t->count == JSON_MSGS) {
        json_t *r = json_object();
        json_object_set_new(r, "count", json_integer(t->count));
        json_object_set_new(r, "sum", json_integer(t->sum));
        BENCH_CHECK(pact_port_post_json(t->port, r));
    }
}

static pact_error *tp_entry(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop;
    tp_worker *t = arg;
    t->port = port;
    BENCH_CHECK(pact_port_on_message(port, tp_count, t));
    return NULL;
}

static json_t *item(json_int_t i)
{
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "i", json_integer(i)) < 0 ||
        json_object_set_new(o, "name", json_string("item")) < 0)
        bench_fail("out of memory");
    return o;
}

/* Post until the queue is full, then wait for room. */
static void tp_push(pact_error *err, void *ud)
{
    tp_ctx *c = ud;
    if (err)
        bench_fail("worker.json_throughput: waiting for room failed");
    while (c->next < JSON_MSGS) {
        json_t *j = c->held ? c->held : item(c->next);
        c->held = NULL;
        int rc = pact_port_post_json(c->port, j);
        if (rc == PACT_EAGAIN) {
            c->held = j;
            BENCH_CHECK(pact_port_writable(c->port, NULL, tp_push, c));
            return;
        }
        BENCH_CHECK(rc);
        c->next++;
    }
}

static void tp_reply(pact_error *err, pact_value *msg, void *ud)
{
    tp_ctx *c = ud;
    if (err)
        bench_fail("worker.json_throughput: the parent got an error");
    if (msg->kind == PACT_INT) { /* hello: the thread is up */
        c->t0 = bench_wall_ns();
        tp_push(NULL, c);
        return;
    }
    c->t1 = bench_wall_ns();
    c->count = field(msg, "count");
    c->sum = field(msg, "sum");
    pact_value stop = pact_nothing();
    BENCH_CHECK(pact_port_post(c->port, &stop));
}

static void pact_tp_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    (void)ctx;
    pact_loop *loop;
    tp_ctx c = {0};
    tp_worker t = {0};
    BENCH_CHECK(pact_loop_new(&loop));
    pact_worker *w = start_worker(loop, tp_entry, &t);
    c.port = pact_worker_port(w);
    BENCH_CHECK(pact_port_on_message(c.port, tp_reply, &c));
    pact_value hello = pact_int(0);
    BENCH_CHECK(pact_port_post(c.port, &hello));
    BENCH_CHECK(pact_loop_run(loop, PACT_RUN_DEFAULT));
    json_int_t want = (json_int_t)JSON_MSGS * (JSON_MSGS - 1) / 2;
    if (c.count != JSON_MSGS || c.sum != want)
        bench_fail("worker.json_throughput: the worker counted %lld "
                   "messages summing to %lld",
                   (long long)c.count, (long long)c.sum);
    figs[0] = (c.t1 - c.t0) / JSON_MSGS;
    pact_worker_free(w);
    BENCH_CHECK(pact_loop_free(loop));
}

static void bench_json_throughput(void)
{
    double pact[BENCH_MAX_FIGS], node[1] = {-1};
    bench_best(pact_tp_run, NULL, pact);
    bench_node("worker_json.js", node, 1);
    bench_anchor a[] = {{"node", node[0]}};
    bench_print("worker.json_throughput", "ns", pact[0], a, 1);
}

const bench_def bench_worker[] = {
    {"worker.round_trip", bench_round_trip},
    {"worker.json_throughput", bench_json_throughput},
    {NULL, NULL},
};

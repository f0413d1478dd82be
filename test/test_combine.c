/* The combinators (pact_all, pact_all_settled, pact_race, pact_any) with
 * Node v20 as the oracle: empty input, results in input order whatever the
 * settle order, which settlement wins, the aggregate error, the same input
 * twice, 100,000 inputs, dropping every reference at once, timeouts, abort
 * tokens and delays around combinators, and misuse. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "suites.h"

typedef pact_promise *(*combinator)(pact_loop *, pact_promise *const *, size_t);

static const struct {
    const char *name;
    combinator fn;
} combinators[] = {
    {"pact_all", pact_all},
    {"pact_all_settled", pact_all_settled},
    {"pact_race", pact_race},
    {"pact_any", pact_any},
};
enum { NCOMB = sizeof combinators / sizeof combinators[0] };

/* ---- helpers ----------------------------------------------------------- */

/* What a combinator's promise delivered to pact_promise_callback. */
struct got {
    int calls;
    pact_error *err; /* borrowed pointer: compared only */
    int code;
    pact_kind kind;
    int64_t i;
    size_t len;
};

static void got_cb(pact_error *err, const pact_value *v, void *ud)
{
    struct got *g = ud;
    g->calls++;
    if (err) {
        ck_assert_ptr_null(v);
        g->err = err;
        g->code = pact_error_code(err);
        trace("rejected %s", pact_err_name(g->code));
        return;
    }
    ck_assert_ptr_nonnull(v);
    g->kind = v->kind;
    if (v->kind == PACT_INT) {
        g->i = v->u.i;
        trace("fulfilled %lld", (long long)v->u.i);
    } else if (v->kind == PACT_LIST) {
        g->len = pact_list_len(v->u.list);
        trace("fulfilled list of %zu", g->len);
    } else {
        trace("fulfilled kind %d", (int)v->kind);
    }
}

static void watch(pact_promise *p, struct got *g)
{
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_promise_callback(p, got_cb, g), 0);
    ck_assert_int_eq(g->calls, 0); /* never inside the attaching call */
}

/* @return the list @p p fulfilled with, after checking it holds exactly the
 * inputs @p ps in input order. */
static const pact_list *assert_list_of(pact_promise *p, pact_promise *const *ps,
                                       size_t n)
{
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    const pact_value *v = pact_promise_value(p);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->kind, PACT_LIST);
    ck_assert_uint_eq(pact_list_len(v->u.list), n);
    for (size_t i = 0; i < n; i++)
        ck_assert_ptr_eq(pact_list_at(v->u.list, i), ps[i]);
    ck_assert_ptr_null(pact_list_at(v->u.list, n));
    return v->u.list;
}

static int64_t int_of(const pact_promise *p)
{
    const pact_value *v = pact_promise_value(p);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->kind, PACT_INT);
    return v->u.i;
}

static void unref_all(pact_promise **ps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pact_promise_unref(ps[i]);
}

/* Counts rejection-hook events; declines, so the mode still applies. */
struct hooked {
    int unhandled, handled;
};

static bool count_hook(pact_loop *loop, pact_rejection_event ev,
                       pact_promise *p, void *ud)
{
    (void)loop;
    (void)p;
    struct hooked *h = ud;
    if (ev == PACT_REJECTION_UNHANDLED)
        h->unhandled++;
    else
        h->handled++;
    return false;
}

/* Owned values whose destructor counts: proof that what a promise held was
 * released, without valgrind. */
static int freed;

static void counted_free(void *p)
{
    freed++;
    free(p);
}

static pact_value counted(int v)
{
    int *p = malloc(sizeof *p);
    ck_assert_ptr_nonnull(p);
    *p = v;
    return pact_owned(p, counted_free);
}

static int counted_of(const pact_promise *p)
{
    const pact_value *v = pact_promise_value(p);
    if (!v || v->kind != PACT_OWNED)
        return -1;
    return *(int *)v->u.owned.ptr;
}

/* ---- empty input ------------------------------------------------------- */

/* Promise.all([]) and Promise.allSettled([]) are fulfilled when they return:
 * `util.inspect(Promise.all([]))` is `Promise { [] }`. */
START_TEST(all_empty_fulfilled_at_once)
{
    combinator fns[] = {pact_all, pact_all_settled};
    for (size_t k = 0; k < 2; k++) {
        struct got g = {0};
        pact_promise *p = fns[k](t_loop, NULL, 0);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
        assert_list_of(p, NULL, 0);
        watch(p, &g);
        ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
        ck_assert_int_eq(g.calls, 1);
        ck_assert_int_eq(g.kind, PACT_LIST);
        ck_assert_uint_eq(g.len, 0);
        pact_promise_unref(p);
    }
}
END_TEST

/* A non-NULL array with n = 0 is empty input too (ps is not read). */
START_TEST(empty_with_non_null_array)
{
    pact_promise *bogus[1] = {NULL};
    pact_promise *p = pact_all(t_loop, bogus, 0);
    ck_assert_ptr_nonnull(p);
    assert_list_of(p, NULL, 0);
    pact_promise_unref(p);
    p = pact_race(t_loop, bogus, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    pact_promise_unref(p);
}
END_TEST

/* Promise.race([]) never settles, and holds nothing that keeps the loop
 * running; dropping it frees it (valgrind). */
START_TEST(race_empty_pending_forever)
{
    struct got g = {0};
    pact_promise *p = pact_race(t_loop, NULL, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    watch(p, &g);
    ck_assert(!pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(g.calls, 0);
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    /* other work still runs and ends; the race does not wake */
    int n = 0;
    ck_assert_int_eq(pact_timeout(t_loop, 2, count_cb, &n, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(g.calls, 0);
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    pact_promise_unref(p);
}
END_TEST

/* Promise.any([]) is rejected when it returns, with an AggregateError of no
 * errors. */
START_TEST(any_empty_rejects_aggregate)
{
    struct got g = {0};
    pact_promise *p = pact_any(t_loop, NULL, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    pact_error *e = pact_promise_error(p);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(pact_error_code(e), PACT_EAGGREGATE);
    ck_assert_uint_eq(pact_error_count(e), 0);
    ck_assert_ptr_null(pact_error_at(e, 0));
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(g.calls, 1);
    ck_assert_int_eq(g.code, PACT_EAGGREGATE);
    ck_assert_ptr_eq(g.err, e);
    pact_promise_unref(p);
}
END_TEST

/* ...and that rejection is a real one: with nobody handling it the default
 * mode stops the loop, as `node -e 'Promise.any([])'` exits with an
 * AggregateError. */
START_TEST(any_empty_unhandled)
{
    pact_promise *p = pact_any(t_loop, NULL, 0);
    ck_assert_ptr_nonnull(p);
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    char *out = capture_end(&cap);
    ck_assert_int_eq(rc, PACT_EUNHANDLED);
    ck_assert_msg(strstr(out, "EAGGREGATE") != NULL, "stderr: '%s'", out);
    free(out);
    pact_error *le = pact_loop_error(t_loop);
    ck_assert_ptr_nonnull(le);
    ck_assert_int_eq(pact_error_code(le), PACT_EUNHANDLED);
    ck_assert_ptr_nonnull(pact_error_cause(le));
    ck_assert_int_eq(pact_error_code(pact_error_cause(le)), PACT_EAGGREGATE);
    pact_promise_unref(p);
}
END_TEST

/* ---- results and who wins ---------------------------------------------- */

/* Settled in reverse order by timers, the list is still in input order and
 * holds the input promises themselves. */
START_TEST(all_results_in_input_order)
{
    enum { N = 5 };
    pact_promise *ps[N];
    for (int i = 0; i < N; i++) {
        pact_deferred *d;
        ps[i] = t_pending(&d);
        t_settle_later(d, 2 + 4 * (uint64_t)(N - i), pact_int(10 * i), NULL);
    }
    struct got g = {0};
    pact_promise *p = pact_all(t_loop, ps, N);
    watch(p, &g);
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(g.calls, 1);
    ck_assert_uint_eq(g.len, N);
    const pact_list *l = assert_list_of(p, ps, N);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(int_of(pact_list_at(l, (size_t)i)), 10 * i);
    pact_promise_unref(p);
    unref_all(ps, N);
}
END_TEST

/* all waits for the last input: not fulfilled while one is still pending. */
static void assert_pending_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    ck_assert_int_eq(pact_promise_state(ud), PACT_PENDING);
    trace("still pending");
}

START_TEST(all_waits_for_every_input)
{
    pact_deferred *d1, *d2;
    pact_promise *ps[2] = {t_pending(&d1), t_pending(&d2)};
    t_settle_later(d1, 2, pact_int(1), "settle 1");
    t_settle_later(d2, 30, pact_int(2), "settle 2");
    pact_promise *p = pact_all(t_loop, ps, 2);
    struct got g = {0};
    watch(p, &g);
    ck_assert_int_eq(pact_timeout(t_loop, 15, assert_pending_cb, p, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "settle 1\nstill pending\nsettle 2\n"
                                   "fulfilled list of 2\n");
    assert_list_of(p, ps, 2);
    pact_promise_unref(p);
    unref_all(ps, 2);
}
END_TEST

/* allSettled keeps each input's state, value and error, in input order; the
 * rejections are handled by it (no hook event, the default mode does not
 * stop the loop). */
START_TEST(all_settled_keeps_states)
{
    enum { N = 4 };
    struct hooked h = {0};
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, count_hook, &h), 0);
    pact_error *e1 = PACT_ERROR(PACT_EIO, "one");
    pact_error *e3 = PACT_ERROR(PACT_EPIPE, "three");
    pact_promise *ps[N];
    pact_deferred *d[N];
    for (int i = 0; i < N; i++)
        ps[i] = t_pending(&d[i]);
    t_settle_later(d[0], 20, pact_int(0), "settle 0");
    t_settle_later(d[1], 15, pact_throw(pact_error_ref(e1)), "settle 1");
    t_settle_later(d[2], 10, pact_int(2), "settle 2");
    t_settle_later(d[3], 5, pact_throw(pact_error_ref(e3)), "settle 3");
    struct got g = {0};
    pact_promise *p = pact_all_settled(t_loop, ps, N);
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "settle 3\nsettle 2\nsettle 1\nsettle 0\n"
                                   "fulfilled list of 4\n");
    ck_assert_int_eq(g.calls, 1);
    ck_assert_int_eq(g.kind, PACT_LIST);
    const pact_list *l = assert_list_of(p, ps, N);
    ck_assert_int_eq(pact_promise_state(pact_list_at(l, 0)), PACT_FULFILLED);
    ck_assert_int_eq(int_of(pact_list_at(l, 0)), 0);
    ck_assert_int_eq(pact_promise_state(pact_list_at(l, 1)), PACT_REJECTED);
    ck_assert_ptr_eq(pact_promise_error(pact_list_at(l, 1)), e1);
    ck_assert_ptr_null(pact_promise_value(pact_list_at(l, 1)));
    ck_assert_int_eq(int_of(pact_list_at(l, 2)), 2);
    ck_assert_ptr_eq(pact_promise_error(pact_list_at(l, 3)), e3);
    ck_assert_int_eq(h.unhandled, 0);
    pact_promise_unref(p);
    unref_all(ps, N);
    pact_error_unref(e1);
    pact_error_unref(e3);
}
END_TEST

/* allSettled with only rejected inputs still fulfils. */
START_TEST(all_settled_all_rejected_fulfils)
{
    pact_promise *ps[2] = {pact_rejected(t_loop, PACT_ERROR(PACT_EIO)),
                           pact_rejected(t_loop, PACT_ERROR(PACT_EPIPE))};
    pact_promise *p = pact_all_settled(t_loop, ps, 2);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    const pact_list *l = assert_list_of(p, ps, 2);
    ck_assert_int_eq(pact_error_code(pact_promise_error(pact_list_at(l, 0))),
                     PACT_EIO);
    ck_assert_int_eq(pact_error_code(pact_promise_error(pact_list_at(l, 1))),
                     PACT_EPIPE);
    pact_promise_unref(p);
    unref_all(ps, 2);
}
END_TEST

/* all rejects with the first rejection in time (not in array order), right
 * after it; later rejections change nothing and are handled (Node attaches
 * handlers to every input), so no unhandled-rejection report. */
START_TEST(all_rejects_with_first_rejection)
{
    struct hooked h = {0};
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, count_hook, &h), 0);
    pact_error *ea = PACT_ERROR(PACT_EIO, "a");
    pact_error *eb = PACT_ERROR(PACT_EPIPE, "b");
    pact_error *ec = PACT_ERROR(PACT_ECONNRESET, "c");
    pact_deferred *d[4];
    pact_promise *ps[4];
    for (int i = 0; i < 4; i++)
        ps[i] = t_pending(&d[i]);
    t_settle_later(d[0], 40, pact_throw(pact_error_ref(ea)), "settle a");
    t_settle_later(d[1], 2, pact_int(1), "settle 1");
    t_settle_later(d[2], 10, pact_throw(pact_error_ref(eb)), "settle b");
    t_settle_later(d[3], 25, pact_throw(pact_error_ref(ec)), "settle c");
    struct got g = {0};
    pact_promise *p = pact_all(t_loop, ps, 4);
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(
        trace_text(),
        "settle 1\nsettle b\nrejected EPIPE\nsettle c\nsettle a\n");
    ck_assert_int_eq(g.calls, 1);
    ck_assert_ptr_eq(g.err, eb);
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    ck_assert_ptr_eq(pact_promise_error(p), eb); /* same reason object */
    ck_assert_int_eq(h.unhandled, 0);
    ck_assert_int_eq(h.handled, 0);
    pact_promise_unref(p);
    unref_all(ps, 4);
    pact_error_unref(ea);
    pact_error_unref(eb);
    pact_error_unref(ec);
}
END_TEST

/* An input rejected already when all is called: all rejects with it, though
 * a later input is fulfilled already too. */
START_TEST(all_with_already_rejected_input)
{
    pact_error *e = PACT_ERROR(PACT_EIO, "early");
    pact_promise *ps[2] = {pact_resolved(t_loop, pact_int(1)),
                           pact_rejected(t_loop, pact_error_ref(e))};
    pact_promise *p = pact_all(t_loop, ps, 2);
    struct got g = {0};
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(g.calls, 1);
    ck_assert_ptr_eq(g.err, e);
    pact_promise_unref(p);
    unref_all(ps, 2);
    pact_error_unref(e);
}
END_TEST

/* race settles as the first input to settle, fulfilled or rejected. */
START_TEST(race_first_to_settle)
{
    pact_error *e = PACT_ERROR(PACT_EIO, "fast failure");
    pact_deferred *d[3];
    pact_promise *ps[3];
    for (int i = 0; i < 3; i++)
        ps[i] = t_pending(&d[i]);
    t_settle_later(d[0], 30, pact_int(0), "settle 0");
    t_settle_later(d[1], 5, pact_throw(pact_error_ref(e)), "settle 1");
    t_settle_later(d[2], 15, pact_int(2), "settle 2");
    struct got g = {0};
    pact_promise *p = pact_race(t_loop, ps, 3);
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "settle 1\nrejected EIO\n"
                                   "settle 2\nsettle 0\n");
    ck_assert_ptr_eq(pact_promise_error(p), e);
    pact_promise_unref(p);
    unref_all(ps, 3);

    /* a fulfilment first wins too; the later rejection is handled */
    trace_reset();
    for (int i = 0; i < 2; i++)
        ps[i] = t_pending(&d[i]);
    t_settle_later(d[0], 15, pact_throw(pact_error_ref(e)), "settle 0");
    t_settle_later(d[1], 5, pact_int(11), "settle 1");
    struct got g2 = {0};
    p = pact_race(t_loop, ps, 2);
    watch(p, &g2);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "settle 1\nfulfilled 11\nsettle 0\n");
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(int_of(p), 11);
    pact_promise_unref(p);
    unref_all(ps, 2);
    pact_error_unref(e);
}
END_TEST

/* Inputs settled already at call time: the first of them in array order
 * wins (`Promise.race([Promise.reject(e), Promise.resolve(2)])` rejects with
 * e), whatever order they settled in, and a pending input before them does
 * not matter. */
START_TEST(race_already_settled_first_in_array_order)
{
    pact_error *e = PACT_ERROR(PACT_EIO, "r1");
    pact_deferred *d;
    pact_promise *ps[3];
    ps[2] = pact_resolved(t_loop, pact_int(2)); /* settled first in time */
    ps[0] = t_pending(&d);
    ps[1] = pact_rejected(t_loop, pact_error_ref(e));
    t_settle_later(d, 2, pact_int(0), NULL);
    pact_promise *p = pact_race(t_loop, ps, 3);
    struct got g = {0};
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(g.calls, 1);
    ck_assert_ptr_eq(g.err, e);
    ck_assert_ptr_eq(pact_promise_error(p), e);
    pact_promise_unref(p);
    unref_all(ps, 3);

    /* fulfilled first in the array (a deferred resolved before the call):
     * the rejected one after it is handled, or the default mode would stop
     * the loop */
    pact_deferred *d2;
    pact_promise *q[2];
    q[0] = t_pending(&d2);
    ck_assert_int_eq(pact_deferred_resolve(d2, pact_int(5)), 0);
    pact_deferred_unref(d2);
    q[1] = pact_rejected(t_loop, pact_error_ref(e));
    p = pact_race(t_loop, q, 2);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(int_of(p), 5);
    pact_promise_unref(p);
    unref_all(q, 2);
    pact_error_unref(e);
}
END_TEST

/* any fulfils with the first fulfilment in time, skipping rejections (which
 * it handles). */
START_TEST(any_first_fulfilment)
{
    struct hooked h = {0};
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, count_hook, &h), 0);
    pact_deferred *d[3];
    pact_promise *ps[3];
    for (int i = 0; i < 3; i++)
        ps[i] = t_pending(&d[i]);
    t_settle_later(d[0], 2, pact_throw(PACT_ERROR(PACT_EIO, "x")), "settle 0");
    t_settle_later(d[1], 25, pact_int(1), "settle 1");
    t_settle_later(d[2], 10, pact_int(2), "settle 2");
    struct got g = {0};
    pact_promise *p = pact_any(t_loop, ps, 3);
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(),
                     "settle 0\nsettle 2\nfulfilled 2\nsettle 1\n");
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(int_of(p), 2);
    ck_assert_int_eq(h.unhandled, 0);
    pact_promise_unref(p);
    unref_all(ps, 3);

    /* settled at call time: the first fulfilled one in array order */
    pact_promise *q[3] = {pact_rejected(t_loop, PACT_ERROR(PACT_EIO)),
                          pact_resolved(t_loop, pact_int(3)),
                          pact_resolved(t_loop, pact_int(4))};
    p = pact_any(t_loop, q, 3);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(int_of(p), 3);
    ck_assert_int_eq(h.unhandled, 0);
    pact_promise_unref(p);
    unref_all(q, 3);
}
END_TEST

/* Every input rejected: PACT_EAGGREGATE holding each reason in INPUT order
 * (not settle order), only after the last one; pact_error_print shows them. */
START_TEST(any_all_rejected_aggregate_in_input_order)
{
    enum { N = 3 };
    const char *names[N] = {"reason-a", "reason-b", "reason-c"};
    pact_error *es[N];
    pact_deferred *d[N];
    pact_promise *ps[N];
    for (int i = 0; i < N; i++) {
        es[i] = PACT_ERROR(PACT_EIO, "%s", names[i]);
        ps[i] = t_pending(&d[i]);
        t_settle_later(d[i], 2 + 8 * (uint64_t)(N - i),
                       pact_throw(pact_error_ref(es[i])), names[i]);
    }
    struct got g = {0};
    pact_promise *p = pact_any(t_loop, ps, N);
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "reason-c\nreason-b\nreason-a\n"
                                   "rejected EAGGREGATE\n");
    ck_assert_int_eq(g.code, PACT_EAGGREGATE);
    pact_error *agg = pact_promise_error(p);
    ck_assert_ptr_eq(g.err, agg);
    ck_assert_int_eq(pact_error_code(agg), PACT_EAGGREGATE);
    ck_assert_uint_eq(pact_error_count(agg), N);
    for (int i = 0; i < N; i++)
        ck_assert_ptr_eq(pact_error_at(agg, (size_t)i), es[i]);
    ck_assert_ptr_null(pact_error_at(agg, N));

    /* "EAGGREGATE: ...", then each reason under "  [i]:", in input order */
    char *out = t_error_text(agg);
    ck_assert_msg(strncmp(out, "EAGGREGATE: ", 12) == 0, "printed: '%s'", out);
    size_t off = 0;
    char idx[16];
    for (int i = 0; i < N; i++) {
        snprintf(idx, sizeof idx, "  [%d]:\n", i);
        const char *mark = strstr(out + off, idx);
        ck_assert_msg(mark != NULL, "no '%s' in '%s'", idx, out);
        const char *msg = strstr(mark, names[i]);
        ck_assert_msg(msg != NULL, "no %s after [%d] in '%s'", names[i], i,
                      out);
        ck_assert_ptr_nonnull(strstr(mark, "    EIO: "));
        off = (size_t)(msg - out);
    }
    free(out);
    pact_promise_unref(p);
    unref_all(ps, N);
    for (int i = 0; i < N; i++)
        pact_error_unref(es[i]);
}
END_TEST

/* ---- the same input twice ---------------------------------------------- */

START_TEST(duplicate_inputs)
{
    pact_deferred *d;
    pact_promise *p7 = t_pending(&d);
    pact_promise *p8 = pact_resolved(t_loop, pact_int(8));
    t_settle_later(d, 2, pact_int(7), NULL);
    pact_promise *ps[3] = {p7, p8, p7};
    pact_promise *all = pact_all(t_loop, ps, 3);
    pact_promise *settled = pact_all_settled(t_loop, ps, 3);
    pact_promise *race = pact_race(t_loop, ps, 3);
    pact_promise *any = pact_any(t_loop, ps, 3);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    const pact_list *l = assert_list_of(all, ps, 3);
    ck_assert_int_eq(int_of(pact_list_at(l, 0)), 7);
    ck_assert_int_eq(int_of(pact_list_at(l, 1)), 8);
    ck_assert_int_eq(int_of(pact_list_at(l, 2)), 7);
    assert_list_of(settled, ps, 3);
    ck_assert_int_eq(int_of(race), 8); /* p8 was settled at call time */
    ck_assert_int_eq(int_of(any), 8);
    pact_promise_unref(all);
    pact_promise_unref(settled);
    pact_promise_unref(race);
    pact_promise_unref(any);

    /* one rejected input twice: any's aggregate holds its reason twice */
    pact_error *e = PACT_ERROR(PACT_EIO, "twice");
    pact_promise *r = pact_rejected(t_loop, pact_error_ref(e));
    pact_promise *rs[2] = {r, r};
    any = pact_any(t_loop, rs, 2);
    all = pact_all(t_loop, rs, 2);
    struct got ga = {0}, gb = {0};
    watch(any, &ga);
    watch(all, &gb);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(ga.calls, 1);
    ck_assert_uint_eq(pact_error_count(pact_promise_error(any)), 2);
    ck_assert_ptr_eq(pact_error_at(pact_promise_error(any), 0), e);
    ck_assert_ptr_eq(pact_error_at(pact_promise_error(any), 1), e);
    ck_assert_int_eq(gb.calls, 1);
    ck_assert_ptr_eq(pact_promise_error(all), e);
    pact_promise_unref(any);
    pact_promise_unref(all);
    pact_promise_unref(r);
    pact_promise_unref(p7);
    pact_promise_unref(p8);
    pact_error_unref(e);
}
END_TEST

/* ---- 100,000 inputs (how fast: make bench's combinator figures; work
 * gone quadratic hits this case's time limit) ---------------------------- */

enum { BIG = 100000 };

struct big {
    pact_deferred **ds;
    pact_promise **ps;
    pact_error *err; /* odd inputs reject with it when not NULL */
    int bad;
};

/* Settles every input from one callback, last first. */
static void big_settle_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct big *b = ud;
    for (size_t i = BIG; i-- > 0;) {
        pact_value v = pact_int((int64_t)i);
        if (b->err && i % 2)
            v = pact_throw(pact_error_ref(b->err));
        if (pact_deferred_resolve(b->ds[i], v) != 0)
            b->bad++;
        pact_deferred_unref(b->ds[i]);
    }
}

static void big_new(struct big *b, pact_error *err)
{
    b->ds = malloc(BIG * sizeof *b->ds);
    b->ps = malloc(BIG * sizeof *b->ps);
    ck_assert(b->ds && b->ps);
    b->err = err;
    b->bad = 0;
    for (size_t i = 0; i < BIG; i++) {
        b->ds[i] = pact_deferred_new(t_loop, &b->ps[i]);
        if (!b->ds[i] || !b->ps[i])
            b->bad++;
    }
    ck_assert_int_eq(b->bad, 0);
}

static void big_free(struct big *b)
{
    unref_all(b->ps, BIG);
    free(b->ps);
    free(b->ds);
}

/* Counts list items that are not the input or not fulfilled with i (or,
 * when @p err, odd ones not rejected with it). */
static int big_list_mismatches(const pact_list *l, struct big *b)
{
    int bad = 0;
    for (size_t i = 0; i < BIG; i++) {
        pact_promise *it = pact_list_at(l, i);
        if (it != b->ps[i])
            bad++;
        else if (b->err && i % 2)
            bad += pact_promise_error(it) != b->err;
        else
            bad += !pact_promise_value(it) ||
                   pact_promise_value(it)->u.i != (int64_t)i;
    }
    return bad;
}

START_TEST(big_all)
{
    struct big b;
    big_new(&b, NULL);
    pact_promise *p = pact_all(t_loop, b.ps, BIG);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_timeout(t_loop, 1, big_settle_cb, &b, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(b.bad, 0);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    const pact_list *l = pact_promise_value(p)->u.list;
    ck_assert_uint_eq(pact_list_len(l), BIG);
    ck_assert_int_eq(big_list_mismatches(l, &b), 0);
    pact_promise_unref(p);
    big_free(&b);
}
END_TEST

START_TEST(big_all_settled)
{
    struct big b;
    pact_error *e = PACT_ERROR(PACT_EIO, "odd");
    big_new(&b, e);
    pact_promise *p = pact_all_settled(t_loop, b.ps, BIG);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_timeout(t_loop, 1, big_settle_cb, &b, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(b.bad, 0);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    const pact_list *l = pact_promise_value(p)->u.list;
    ck_assert_uint_eq(pact_list_len(l), BIG);
    ck_assert_int_eq(big_list_mismatches(l, &b), 0);
    pact_promise_unref(p);
    big_free(&b);
    pact_error_unref(e);
}
END_TEST

START_TEST(big_race)
{
    struct big b;
    big_new(&b, NULL);
    pact_promise *p = pact_race(t_loop, b.ps, BIG);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_timeout(t_loop, 1, big_settle_cb, &b, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(b.bad, 0);
    ck_assert_int_eq(int_of(p), BIG - 1); /* the last input settled first */
    pact_promise_unref(p);
    big_free(&b);
}
END_TEST

/* 100,000 rejections: one aggregate of them all, in input order. */
START_TEST(big_any_rejected)
{
    pact_promise **ps = malloc(BIG * sizeof *ps);
    pact_error **es = malloc(BIG * sizeof *es);
    ck_assert(ps && es);
    int bad = 0;
    for (size_t i = 0; i < BIG; i++) {
        es[i] = PACT_ERROR(PACT_EIO);
        ps[i] = pact_rejected(t_loop, pact_error_ref(es[i]));
        bad += !es[i] || !ps[i];
    }
    ck_assert_int_eq(bad, 0);
    pact_promise *p = pact_any(t_loop, ps, BIG);
    struct got g = {0};
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(g.calls, 1);
    pact_error *agg = pact_promise_error(p);
    ck_assert_int_eq(pact_error_code(agg), PACT_EAGGREGATE);
    ck_assert_uint_eq(pact_error_count(agg), BIG);
    for (size_t i = 0; i < BIG; i++)
        bad += pact_error_at(agg, i) != es[i];
    ck_assert_int_eq(bad, 0);
    pact_promise_unref(p);
    unref_all(ps, BIG);
    for (size_t i = 0; i < BIG; i++)
        pact_error_unref(es[i]);
    free(ps);
    free(es);
}
END_TEST

/* ---- dropping every reference at once ---------------------------------- */

struct seen_list {
    int calls, bad;
    size_t len;
};

/* Reads the list inside the handler: item i holds counted(i). */
static void seen_list_cb(pact_error *err, const pact_value *v, void *ud)
{
    struct seen_list *s = ud;
    s->calls++;
    ck_assert_ptr_null(err);
    ck_assert_int_eq(v->kind, PACT_LIST);
    s->len = pact_list_len(v->u.list);
    for (size_t i = 0; i < s->len; i++)
        s->bad += counted_of(pact_list_at(v->u.list, i)) != (int)i;
}

/* The program keeps nothing but its handler: inputs (pending and already
 * settled) and the combinator's promise are dropped at once. The handler
 * still runs with every value, and afterwards every value was released. */
START_TEST(drop_all_references_list)
{
    enum { N = 6 };
    combinator fns[] = {pact_all, pact_all_settled};
    for (size_t k = 0; k < 2; k++) {
        freed = 0;
        pact_promise *ps[N];
        for (int i = 0; i < N; i++) {
            if (i % 2) {
                ps[i] = pact_resolved(t_loop, counted(i));
            } else {
                pact_deferred *d;
                ps[i] = t_pending(&d);
                t_settle_later(d, 2 + 3 * (uint64_t)(N - i), counted(i), NULL);
            }
        }
        struct seen_list s = {0};
        pact_promise *p = fns[k](t_loop, ps, N);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(pact_promise_callback(p, seen_list_cb, &s), 0);
        pact_promise_unref(p);
        unref_all(ps, N);
        ck_assert_int_eq(freed, 0); /* the combinator holds them */
        ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
        ck_assert_int_eq(s.calls, 1);
        ck_assert_uint_eq(s.len, N);
        ck_assert_int_eq(s.bad, 0);
        ck_assert_int_eq(freed, N);
    }
}
END_TEST

/* The same for race and any (ints: valgrind checks the rest), and for a
 * derived promise the program drops too. */
START_TEST(drop_all_references_race_any)
{
    for (int k = 0; k < 2; k++) {
        pact_deferred *d[3];
        pact_promise *ps[3];
        for (int i = 0; i < 3; i++)
            ps[i] = t_pending(&d[i]);
        t_settle_later(d[0], 20, pact_int(0), NULL);
        t_settle_later(d[1], 2, pact_throw(PACT_ERROR(PACT_EIO, "no")), NULL);
        t_settle_later(d[2], 10, pact_int(2), NULL);
        pact_promise *p =
            k == 0 ? pact_race(t_loop, ps, 3) : pact_any(t_loop, ps, 3);
        struct got g = {0};
        pact_promise *tail = pact_then(p, NULL, NULL, NULL);
        ck_assert_ptr_nonnull(tail);
        watch(tail, &g);
        pact_promise_unref(tail);
        pact_promise_unref(p);
        unref_all(ps, 3);
        ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
        ck_assert_int_eq(g.calls, 1);
        if (k == 0) { /* race: the 2 ms rejection */
            ck_assert_int_eq(g.code, PACT_EIO);
        } else { /* any: the 10 ms fulfilment */
            ck_assert_int_eq(g.kind, PACT_INT);
            ck_assert_int_eq(g.i, 2);
        }
    }
}
END_TEST

static void seen_agg_cb(pact_error *err, const pact_value *v, void *ud)
{
    struct seen_list *s = ud;
    ck_assert_ptr_null(v);
    ck_assert_ptr_nonnull(err);
    s->calls++;
    ck_assert_int_eq(pact_error_code(err), PACT_EAGGREGATE);
    s->len = pact_error_count(err);
    for (size_t i = 0; i < s->len; i++)
        s->bad += pact_error_line(pact_error_at(err, i)) != (int)i + 1000;
}

/* any, all inputs rejected and nothing kept: the aggregate reaches the
 * handler with each reason in input order. */
START_TEST(drop_all_references_any_rejected)
{
    enum { N = 4 };
    pact_promise *ps[N];
    for (int i = 0; i < N; i++) {
        pact_deferred *d;
        ps[i] = t_pending(&d);
        pact_error *e =
            pact_error_new_at("marker", 1000 + i, NULL, PACT_EIO, NULL);
        t_settle_later(d, 2 + 3 * (uint64_t)(N - i), pact_throw(e), NULL);
    }
    struct seen_list s = {0};
    pact_promise *p = pact_any(t_loop, ps, N);
    ck_assert_int_eq(pact_promise_callback(p, seen_agg_cb, &s), 0);
    pact_promise_unref(p);
    unref_all(ps, N);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_uint_eq(s.len, N);
    ck_assert_int_eq(s.bad, 0);
}
END_TEST

/* race and any fulfil with the winner's value, even one that cannot be
 * copied (PACT_OWNED): it is shared, stays valid while the combinator's
 * promise lives though the inputs are dropped, and is released once. */
START_TEST(race_any_share_owned_value)
{
    combinator fns[] = {pact_race, pact_any};
    for (size_t k = 0; k < 2; k++) {
        freed = 0;
        pact_promise *ps[2] = {pact_resolved(t_loop, counted(0)),
                               pact_resolved(t_loop, counted(1))};
        pact_promise *p = fns[k](t_loop, ps, 2);
        ck_assert_ptr_nonnull(p);
        unref_all(ps, 2);
        ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
        ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
        ck_assert_int_eq(counted_of(p), 0);
        ck_assert_int_eq(freed, 1); /* the loser's value */
        pact_promise_unref(p);
        ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
        ck_assert_int_eq(freed, 2);
    }
}
END_TEST

/* Producers gone too: deferreds dropped unresolved reject their promises
 * with PACT_ECANCELED ("broken promise"), which reaches all's handler; the
 * second one is handled by all. */
START_TEST(dropped_producers_reject_all)
{
    pact_deferred *d1, *d2;
    pact_promise *ps[2] = {t_pending(&d1), t_pending(&d2)};
    struct got g = {0};
    pact_promise *p = pact_all(t_loop, ps, 2);
    watch(p, &g);
    pact_promise_unref(p);
    unref_all(ps, 2);
    pact_deferred_unref(d1);
    pact_deferred_unref(d2);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(g.calls, 1);
    ck_assert_int_eq(g.code, PACT_ECANCELED);
}
END_TEST

/* ---- timeouts, abort tokens and delays --------------------------------- */

/* A race whose inputs settle after the deadline: the timeout wins, right
 * at the deadline, and the inputs' later settlements change nothing. */
START_TEST(timeout_around_race)
{
    pact_deferred *d1, *d2;
    pact_promise *ps[2] = {t_pending(&d1), t_pending(&d2)};
    t_settle_later(d1, 60, pact_int(1), "settle 1");
    t_settle_later(d2, 80, pact_throw(PACT_ERROR(PACT_EIO)), "settle 2");
    pact_promise *race = pact_race(t_loop, ps, 2);
    uint64_t t0 = now_us();
    pact_promise *p = pact_promise_timeout(race, 10);
    ck_assert_ptr_nonnull(p);
    struct got g = {0};
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_uint_ge(now_us() - t0, 10000);
    ck_assert_int_eq(g.calls, 1);
    ck_assert_int_eq(g.code, PACT_ETIMEDOUT);
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    ck_assert_int_eq(pact_error_code(pact_promise_error(p)), PACT_ETIMEDOUT);
    ck_assert_str_eq(trace_text(), "rejected ETIMEDOUT\n"
                                   "settle 1\nsettle 2\n");
    ck_assert_int_eq(int_of(race), 1); /* the race itself went on */
    pact_promise_unref(p);
    pact_promise_unref(race);
    unref_all(ps, 2);
}
END_TEST

/* A combinator that settles before its deadline: the timeout settles as it
 * (same list, same inputs), and its timer does not hold the loop until the
 * deadline. */
START_TEST(timeout_not_reached)
{
    pact_deferred *d1, *d2;
    pact_promise *ps[2] = {t_pending(&d1), t_pending(&d2)};
    t_settle_later(d1, 5, pact_int(1), NULL);
    t_settle_later(d2, 2, pact_int(2), NULL);
    pact_promise *all = pact_all(t_loop, ps, 2);
    pact_promise *p = pact_promise_timeout(all, 3600000);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    const pact_list *l = assert_list_of(p, ps, 2);
    ck_assert_int_eq(int_of(pact_list_at(l, 0)), 1);
    ck_assert_int_eq(int_of(pact_list_at(l, 1)), 2);
    pact_promise_unref(all);
    pact_promise_unref(p);
    unref_all(ps, 2);
}
END_TEST

/* Promise.race([work, delay]): the idiomatic deadline; the delay wins with
 * nothing. */
START_TEST(race_with_delay)
{
    pact_deferred *d;
    pact_promise *ps[2];
    ps[0] = t_pending(&d);
    t_settle_later(d, 50, pact_int(1), "work done");
    ps[1] = pact_delay(t_loop, 5, NULL);
    ck_assert_ptr_nonnull(ps[1]);
    struct got g = {0};
    pact_promise *p = pact_race(t_loop, ps, 2);
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "fulfilled kind 0\nwork done\n");
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(pact_promise_value(p)->kind, PACT_NOTHING);
    pact_promise_unref(p);
    unref_all(ps, 2);
}
END_TEST

struct aborter {
    pact_abort *tok;
    pact_error *reason;
};

static void abort_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct aborter *a = ud;
    trace("abort");
    ck_assert_int_eq(pact_abort_abort(a->tok, a->reason), 0);
}

/* any wrapped in pact_promise_abortable: aborting rejects with the reason
 * at once; the inputs' later rejections (an aggregate for any) are handled
 * by the wrapper, so the default mode lets the loop finish. */
START_TEST(abortable_around_any)
{
    pact_abort *tok;
    ck_assert_int_eq(pact_abort_new(t_loop, &tok), 0);
    pact_error *reason = PACT_ERROR(PACT_EPIPE, "user gave up");
    struct aborter ab = {tok, reason};
    pact_deferred *d1, *d2;
    pact_promise *ps[2] = {t_pending(&d1), t_pending(&d2)};
    t_settle_later(d1, 30, pact_throw(PACT_ERROR(PACT_EIO)), "settle 1");
    t_settle_later(d2, 40, pact_throw(PACT_ERROR(PACT_EIO)), "settle 2");
    ck_assert_int_eq(pact_timeout(t_loop, 5, abort_cb, &ab, NULL), 0);
    pact_promise *any = pact_any(t_loop, ps, 2);
    pact_promise *p = pact_promise_abortable(any, tok);
    ck_assert_ptr_nonnull(p);
    struct got g = {0};
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(),
                     "abort\nrejected EPIPE\nsettle 1\nsettle 2\n");
    ck_assert_ptr_eq(g.err, reason);
    ck_assert_ptr_eq(pact_promise_error(p), pact_abort_reason(tok));
    ck_assert_int_eq(pact_error_code(pact_promise_error(any)), PACT_EAGGREGATE);
    pact_promise_unref(p);
    pact_promise_unref(any);
    unref_all(ps, 2);
    pact_error_unref(reason);
    pact_abort_unref(tok);
}
END_TEST

/* A token aborted already: the wrapper rejects without waiting for all. */
START_TEST(abortable_already_aborted)
{
    pact_abort *tok;
    ck_assert_int_eq(pact_abort_new(t_loop, &tok), 0);
    ck_assert_int_eq(pact_abort_abort(tok, NULL), 0);
    pact_deferred *d;
    pact_promise *ps[1] = {t_pending(&d)};
    t_settle_later(d, 20, pact_int(1), "settle");
    pact_promise *all = pact_all(t_loop, ps, 1);
    pact_promise *p = pact_promise_abortable(all, tok);
    ck_assert_ptr_nonnull(p);
    struct got g = {0};
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "rejected ECANCELED\nsettle\n");
    ck_assert_int_eq(g.code, PACT_ECANCELED);
    ck_assert_ptr_eq(g.err, pact_abort_reason(tok));
    assert_list_of(all, ps, 1);
    pact_promise_unref(p);
    pact_promise_unref(all);
    unref_all(ps, 1);
    pact_abort_unref(tok);
}
END_TEST

/* Aborting after the combinator settled changes nothing. */
START_TEST(abortable_abort_after_settle)
{
    pact_abort *tok;
    ck_assert_int_eq(pact_abort_new(t_loop, &tok), 0);
    struct aborter ab = {tok, NULL};
    pact_deferred *d;
    pact_promise *ps[1] = {t_pending(&d)};
    t_settle_later(d, 2, pact_int(4), NULL);
    ck_assert_int_eq(pact_timeout(t_loop, 20, abort_cb, &ab, NULL), 0);
    pact_promise *race = pact_race(t_loop, ps, 1);
    pact_promise *p = pact_promise_abortable(race, tok);
    struct got g = {0};
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "fulfilled 4\nabort\n");
    ck_assert_int_eq(int_of(p), 4);
    pact_promise_unref(p);
    pact_promise_unref(race);
    unref_all(ps, 1);
    pact_abort_unref(tok);
}
END_TEST

/* The combinator settles first and the token is never aborted: the wrapper
 * lets go of the token (valgrind: the listener and its hold are freed). */
START_TEST(abortable_token_outlives_nothing)
{
    pact_abort *tok;
    ck_assert_int_eq(pact_abort_new(t_loop, &tok), 0);
    pact_deferred *d;
    pact_promise *ps[1] = {t_pending(&d)};
    t_settle_later(d, 2, pact_int(6), NULL);
    pact_promise *all = pact_all(t_loop, ps, 1);
    pact_promise *p = pact_promise_abortable(all, tok);
    ck_assert_ptr_nonnull(p);
    pact_promise_unref(all);
    unref_all(ps, 1);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(int_of(pact_list_at(pact_promise_value(p)->u.list, 0)), 6);
    ck_assert(!pact_abort_aborted(tok));
    pact_promise_unref(p);
    pact_abort_unref(tok);
}
END_TEST

/* Promise.all of timers/promises setTimeout: fulfilled after the longest,
 * each item fulfilled with nothing. */
START_TEST(all_of_delays)
{
    uint64_t t0 = now_us(); /* read first: a wait measured from here is, if
                               anything, longer than the delays' */
    pact_promise *ps[3] = {pact_delay(t_loop, 30, NULL),
                           pact_delay(t_loop, 10, NULL),
                           pact_delay(t_loop, 20, NULL)};
    pact_promise *p = pact_all(t_loop, ps, 3);
    struct got g = {0};
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(g.calls, 1);
    const pact_list *l = assert_list_of(p, ps, 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(pact_promise_value(pact_list_at(l, i))->kind,
                         PACT_NOTHING);
    ck_assert_uint_ge(now_us() - t0, 30000);
    pact_promise_unref(p);
    unref_all(ps, 3);
}
END_TEST

/* Delays sharing a token, under all: the abort cancels them all, all
 * rejects with the first ECANCELED, the others are handled, and no timer
 * holds the loop for the full delays. */
START_TEST(all_of_aborted_delays)
{
    pact_abort *tok;
    ck_assert_int_eq(pact_abort_new(t_loop, &tok), 0);
    struct aborter ab = {tok, NULL};
    pact_promise *ps[2] = {pact_delay(t_loop, 3600000, tok),
                           pact_delay(t_loop, 3600000, tok)};
    ck_assert(ps[0] && ps[1]);
    ck_assert_int_eq(pact_timeout(t_loop, 5, abort_cb, &ab, NULL), 0);
    struct got g = {0};
    pact_promise *p = pact_all(t_loop, ps, 2);
    watch(p, &g);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(g.calls, 1);
    ck_assert_int_eq(g.code, PACT_ECANCELED);
    ck_assert_ptr_eq(g.err, pact_promise_error(ps[0]));
    ck_assert_int_eq(pact_promise_state(ps[1]), PACT_REJECTED);
    pact_promise_unref(p);
    unref_all(ps, 2);
    pact_abort_unref(tok);
}
END_TEST

/* ---- misuse ------------------------------------------------------------ */

/* Each combinator with a NULL loop, NULL ps for n > 0, or a NULL entry
 * returns NULL; in debug builds stderr names it. */
START_TEST(misuse_returns_null)
{
    pact_promise *ok = pact_resolved(t_loop, pact_int(1));
    pact_promise *ps[3] = {ok, ok, NULL};
    for (size_t k = 0; k < NCOMB; k++) {
        struct capture cap;
        capture_begin(&cap);
        pact_promise *a = combinators[k].fn(NULL, ps, 2);
        pact_promise *b = combinators[k].fn(NULL, NULL, 0);
        pact_promise *c = combinators[k].fn(t_loop, NULL, 2);
        pact_promise *d = combinators[k].fn(t_loop, ps, 3);
        pact_promise *e = combinators[k].fn(t_loop, ps + 2, 1);
        char *out = capture_end(&cap);
        ck_assert_msg(!a && !b && !c && !d && !e, "%s: %p %p %p %p %p",
                      combinators[k].name, (void *)a, (void *)b, (void *)c,
                      (void *)d, (void *)e);
#ifdef PACT_DEBUG
        ck_assert_msg(strstr(out, combinators[k].name) != NULL, "stderr: '%s'",
                      out);
#endif
        free(out);
    }
    pact_promise_unref(ok);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}
END_TEST

/* A NULL entry after valid ones: the references a combinator may have taken
 * to the entries before it are given back (the value is released once the
 * program drops the input). */
START_TEST(misuse_null_entry_takes_nothing)
{
    for (size_t k = 0; k < NCOMB; k++) {
        freed = 0;
        pact_deferred *dd;
        pact_promise *ps[3] = {pact_resolved(t_loop, counted(0)),
                               t_pending(&dd), NULL};
        struct capture cap;
        capture_begin(&cap);
        pact_promise *p = combinators[k].fn(t_loop, ps, 3);
        free(capture_end(&cap));
        ck_assert_msg(p == NULL, "%s", combinators[k].name);
        pact_promise_unref(ps[0]);
        pact_promise_unref(ps[1]);
        pact_deferred_unref(dd); /* rejects ps[1]: nobody holds it */
        pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_NONE);
        ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
        ck_assert_msg(freed == 1, "%s: input still held", combinators[k].name);
        pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_THROW);
    }
}
END_TEST

/* A call refused for a NULL entry has no effect: it did not handle the
 * rejected input before it, which is still reported as unhandled. */
START_TEST(misuse_null_entry_handles_nothing)
{
    for (size_t k = 0; k < NCOMB; k++) {
        struct hooked h = {0};
        ck_assert_int_eq(pact_loop_on_rejection(t_loop, count_hook, &h), 0);
        pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_NONE);
        pact_promise *ps[2] = {pact_rejected(t_loop, PACT_ERROR(PACT_EIO)),
                               NULL};
        struct capture cap;
        capture_begin(&cap);
        pact_promise *p = combinators[k].fn(t_loop, ps, 2);
        free(capture_end(&cap));
        ck_assert_ptr_null(p);
        ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
        ck_assert_msg(h.unhandled == 1, "%s: %d unhandled reports",
                      combinators[k].name, h.unhandled);
        pact_promise_unref(ps[0]);
    }
}
END_TEST

struct wrong {
    pact_promise *in;
    pact_promise *got[NCOMB];
};

static void *wrong_thread(void *ud)
{
    struct wrong *w = ud;
    for (size_t k = 0; k < NCOMB; k++)
        w->got[k] = combinators[k].fn(t_loop, &w->in, 1);
    return NULL;
}

/* From a thread that does not own the loop: NULL, the function named on
 * stderr (in every build). */
START_TEST(misuse_wrong_thread)
{
    struct wrong w = {pact_resolved(t_loop, pact_int(1)), {NULL}};
    struct capture cap;
    pthread_t th;
    capture_begin(&cap);
    ck_assert_int_eq(pthread_create(&th, NULL, wrong_thread, &w), 0);
    pthread_join(th, NULL);
    char *out = capture_end(&cap);
    for (size_t k = 0; k < NCOMB; k++) {
        ck_assert_msg(w.got[k] == NULL, "%s", combinators[k].name);
        ck_assert_msg(strstr(out, combinators[k].name) != NULL,
                      "no %s in stderr: '%s'", combinators[k].name, out);
    }
    free(out);
    pact_promise_unref(w.in);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}
END_TEST

Suite *suite_combine(void)
{
    Suite *s = suite_create("combine");
    TCase *em = tcase_create("empty");
    tcase_add_checked_fixture(em, t_setup, t_teardown);
    tcase_add_test(em, all_empty_fulfilled_at_once);
    tcase_add_test(em, empty_with_non_null_array);
    tcase_add_test(em, race_empty_pending_forever);
    tcase_add_test(em, any_empty_rejects_aggregate);
    tcase_add_test(em, any_empty_unhandled);
    suite_add_tcase(s, em);

    TCase *re = tcase_create("results");
    tcase_add_checked_fixture(re, t_setup, t_teardown);
    tcase_add_test(re, all_results_in_input_order);
    tcase_add_test(re, all_waits_for_every_input);
    tcase_add_test(re, all_settled_keeps_states);
    tcase_add_test(re, all_settled_all_rejected_fulfils);
    tcase_add_test(re, all_rejects_with_first_rejection);
    tcase_add_test(re, all_with_already_rejected_input);
    tcase_add_test(re, race_first_to_settle);
    tcase_add_test(re, race_already_settled_first_in_array_order);
    tcase_add_test(re, any_first_fulfilment);
    tcase_add_test(re, any_all_rejected_aggregate_in_input_order);
    tcase_add_test(re, duplicate_inputs);
    suite_add_tcase(s, re);

    TCase *big = tcase_create("big");
    tcase_add_checked_fixture(big, t_setup, t_teardown);
    tcase_set_timeout(big, 60);
    tcase_add_test(big, big_all);
    tcase_add_test(big, big_all_settled);
    tcase_add_test(big, big_race);
    tcase_add_test(big, big_any_rejected);
    suite_add_tcase(s, big);

    TCase *own = tcase_create("ownership");
    tcase_add_checked_fixture(own, t_setup, t_teardown);
    tcase_add_test(own, drop_all_references_list);
    tcase_add_test(own, drop_all_references_race_any);
    tcase_add_test(own, drop_all_references_any_rejected);
    tcase_add_test(own, race_any_share_owned_value);
    tcase_add_test(own, dropped_producers_reject_all);
    suite_add_tcase(s, own);

    TCase *wr = tcase_create("wrappers");
    tcase_add_checked_fixture(wr, t_setup, t_teardown);
    tcase_add_test(wr, timeout_around_race);
    tcase_add_test(wr, timeout_not_reached);
    tcase_add_test(wr, race_with_delay);
    tcase_add_test(wr, abortable_around_any);
    tcase_add_test(wr, abortable_already_aborted);
    tcase_add_test(wr, abortable_abort_after_settle);
    tcase_add_test(wr, abortable_token_outlives_nothing);
    tcase_add_test(wr, all_of_delays);
    tcase_add_test(wr, all_of_aborted_delays);
    suite_add_tcase(s, wr);

    TCase *mis = tcase_create("misuse");
    tcase_add_checked_fixture(mis, t_setup, t_teardown);
    tcase_add_test(mis, misuse_returns_null);
    tcase_add_test(mis, misuse_null_entry_takes_nothing);
    tcase_add_test(mis, misuse_null_entry_handles_nothing);
    tcase_add_test(mis, misuse_wrong_thread);
    suite_add_tcase(s, mis);
    return s;
}

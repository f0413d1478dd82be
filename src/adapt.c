/* The adapter between the callback and promise styles (util.promisify and
 * callbackify's halves), and the promise twins of layer 1's timers, which
 * are its first users: each twin is a start function and one call. */
#include <jansson.h>

#include "promise_internal.h"

pact_promise *pact__promisify(pact_loop *loop, pact_start_fn start, void *args,
                              const char *fn)
{
    if (!start) {
        pact__misuse(fn, PACT_EINVAL, "start is NULL");
        return NULL;
    }
    pact_promise *p;
    pact_deferred *d = pact__deferred_new(loop, &p, fn);
    if (!d)
        return NULL;
    int rc = start(loop, args, d);
    if (rc < 0) { /* the operation will never call back: its ref is ours */
        pact_deferred_reject(d, PACT_ERROR(rc));
        pact_deferred_unref(d);
    }
    return p;
}

pact_promise *pact_promisify(pact_loop *loop, pact_start_fn start, void *args)
{
    return pact__promisify(loop, start, args, "pact_promisify");
}

/* Settle @p d from a callback's outcome and drop the operation's reference. */
static void complete(pact_deferred *d, pact_error *err, pact_value v,
                     const char *fn)
{
    pact__settle(d, err ? pact_throw(pact_error_ref(err)) : v, fn);
    pact_deferred_unref(d);
}

void pact_deferred_cb(pact_error *err, void *ud)
{
    complete(ud, err, pact_nothing(), "pact_deferred_cb");
}

/* A resolution of our own from a borrowed value. */
static pact_value copy(const pact_value *v)
{
    pact_value c = *v;
    switch (v->kind) {
    case PACT_JSON:
        json_incref(c.u.json);
        return c;
    case PACT_LIST:
        c.u.list->refs++;
        return c;
    case PACT_BYTES:
        return pact_bytes_copy(v->u.bytes.data, v->u.bytes.len);
    case PACT_PROMISE:
        pact_promise_ref(c.u.promise);
        return c;
    case PACT_ERROR:
        pact_error_ref(c.u.error);
        return c;
    case PACT_OWNED:
    case PACT_THENABLE:
        return pact_throw(
            PACT_ERROR(PACT_EINVAL,
                       "a callback's %s value cannot be shared "
                       "with a promise",
                       v->kind == PACT_OWNED ? "owned" : "thenable"));
    default:
        return c;
    }
}

void pact_deferred_value_cb(pact_error *err, const pact_value *v, void *ud)
{
    complete(ud, err, !err && v ? copy(v) : pact_nothing(),
             "pact_deferred_value_cb");
}

/* ---- the timers' twins --------------------------------------------------- */

struct delay_args {
    uint64_t ms;
    pact_abort *abort;
};

static int start_delay(pact_loop *loop, void *args, pact_deferred *d)
{
    const struct delay_args *a = args;
    pact_timer_opts o = {.delay_ms = a->ms, .abort = a->abort};
    return pact_timer_start(loop, &o, pact_deferred_cb, d, NULL);
}

pact_promise *pact_delay(pact_loop *loop, uint64_t ms, pact_abort *abort)
{
    struct delay_args a = {ms, abort};
    return pact__promisify(loop, start_delay, &a, "pact_delay");
}

static int start_immediate(pact_loop *loop, void *args, pact_deferred *d)
{
    (void)args;
    return pact_immediate(loop, pact_deferred_cb, d, NULL);
}

pact_promise *pact_immediate_p(pact_loop *loop, pact_abort *abort)
{
    pact_promise *p =
        pact__promisify(loop, start_immediate, NULL, "pact_immediate_p");
    if (!p || !abort)
        return p;
    pact_promise *q = pact__abortable(p, abort, true, "pact_immediate_p");
    pact_promise_unref(p);
    return q;
}

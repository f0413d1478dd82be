/* The adapter between the callback and promise styles (util.promisify and
 * callbackify's halves), and the promise twins of layer 1's timers, which
 * are its first users: each twin is a start function and one call. */
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

void pact_deferred_value_cb(pact_error *err, const pact_value *v, void *ud)
{
    complete(ud, err, !err && v ? pact_value_copy(v) : pact_nothing(),
             "pact_deferred_value_cb");
}

/* ---- the timers' twins --------------------------------------------------- */

/* A handle dropped unrun by pact_loop_close_all: its promise is broken. */
static void drop_deferred(void *d)
{
    pact_deferred_unref(d);
}

/* The deferred belongs to the handle's callback from here on. */
static int owned_by(pact_loop *loop, int rc, pact_handle h)
{
    if (rc == 0)
        pact__slot_owns_ud(loop, h, drop_deferred);
    return rc;
}

struct delay_args {
    int64_t ms;
    pact_abort *abort;
};

static int start_delay(pact_loop *loop, void *args, pact_deferred *d)
{
    const struct delay_args *a = args;
    pact_timer_opts o = {.delay_ms = a->ms, .abort = a->abort};
    pact_handle h;
    return owned_by(loop, pact_timer_start(loop, &o, pact_deferred_cb, d, &h),
                    h);
}

pact_promise *pact_delay(pact_loop *loop, int64_t ms, pact_abort *abort)
{
    struct delay_args a = {ms, abort};
    return pact__promisify(loop, start_delay, &a, "pact_delay");
}

static int start_immediate(pact_loop *loop, void *args, pact_deferred *d)
{
    pact_watch_opts o = {.abort = args};
    pact_handle h;
    return owned_by(loop,
                    pact_immediate_start(loop, &o, pact_deferred_cb, d, &h), h);
}

pact_promise *pact_immediate_p(pact_loop *loop, pact_abort *abort)
{
    return pact__promisify(loop, start_immediate, abort, "pact_immediate_p");
}

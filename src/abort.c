/* Abort tokens: AbortController and AbortSignal in one reference-counted
 * object. Listeners are kept in id order, removed lazily (so a token shared by
 * many operations clears each in O(log n)), and called synchronously on
 * abort, as EventTarget dispatches. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct listener {
    uint64_t id;
    pact_abort_cb cb; /* NULL once removed */
    void *ud;
};

struct pact_abort {
    int refs;
    bool aborted;
    bool dispatching;
    pact_loop *loop;
    pact_error *reason;
    struct listener *v;
    size_t len, cap, dead;
    uint64_t next_id;
    pact_handle timer; /* of pact_abort_timeout */
};

int pact_abort_new(pact_loop *loop, pact_abort **out)
{
    PACT_CHECK_LOOP(loop, "pact_abort_new");
    PACT_CHECK_ARG(out, "pact_abort_new");
    pact_abort *a = calloc(1, sizeof *a);
    if (!a)
        return PACT_ENOMEM;
    a->refs = 1;
    a->loop = loop;
    a->next_id = 1;
    *out = a;
    return 0;
}

pact_abort *pact_abort_ref(pact_abort *a)
{
    if (a)
        a->refs++;
    return a;
}

void pact_abort_unref(pact_abort *a)
{
    if (!a || --a->refs > 0)
        return;
    if (a->timer.id)
        pact_clear(a->loop, a->timer);
    pact_error_unref(a->reason);
    free(a->v);
    free(a);
}

bool pact_abort_aborted(const pact_abort *a)
{
    return a && a->aborted;
}

pact_error *pact_abort_reason(const pact_abort *a)
{
    return a ? a->reason : NULL;
}

static void compact(pact_abort *a)
{
    size_t w = 0;
    for (size_t r = 0; r < a->len; r++)
        if (a->v[r].cb)
            a->v[w++] = a->v[r];
    a->len = w;
    a->dead = 0;
}

int pact_abort_on(pact_abort *a, pact_abort_cb cb, void *ud, uint64_t *id)
{
    PACT_CHECK_ARG(a, "pact_abort_on");
    PACT_CHECK_ARG(cb, "pact_abort_on");
    PACT_CHECK_THREAD(a->loop, "pact_abort_on");
    if (a->aborted) { /* as AbortSignal: no event will come */
        if (id)
            *id = 0;
        return 0;
    }
    if (a->len == a->cap) {
        if (a->dead * 2 >= a->len && !a->dispatching && a->dead) {
            compact(a);
        } else {
            size_t cap = a->cap ? a->cap * 2 : 4;
            struct listener *v = realloc(a->v, cap * sizeof *v);
            if (!v)
                return PACT_ENOMEM;
            a->v = v;
            a->cap = cap;
        }
    }
    struct listener *l = &a->v[a->len++];
    l->id = a->next_id++;
    l->cb = cb;
    l->ud = ud;
    if (id)
        *id = l->id;
    return 0;
}

static struct listener *find(pact_abort *a, uint64_t id)
{
    size_t lo = 0, hi = a->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < a->len && a->v[lo].id == id && a->v[lo].cb ? &a->v[lo] : NULL;
}

int pact_abort_off(pact_abort *a, uint64_t id)
{
    PACT_CHECK_ARG(a, "pact_abort_off");
    PACT_CHECK_THREAD(a->loop, "pact_abort_off");
    struct listener *l = find(a, id);
    if (!l)
        return a->aborted ? 0
                          : pact__misuse("pact_abort_off", PACT_ENOENT,
                                         "no such listener");
    l->cb = NULL;
    a->dead++;
    if (a->dead > 32 && a->dead * 2 > a->len && !a->dispatching)
        compact(a);
    return 0;
}

int pact_abort_abort(pact_abort *a, pact_error *reason)
{
    PACT_CHECK_ARG(a, "pact_abort_abort");
    PACT_CHECK_THREAD(a->loop, "pact_abort_abort");
    if (a->aborted)
        return PACT_EALREADY;
    a->reason = reason
                    ? pact_error_ref(reason)
                    : PACT_ERROR(PACT_ECANCELED, "This operation was aborted");
    if (!a->reason)
        return PACT_ENOMEM;
    a->aborted = true;
    if (a->timer.id) {
        pact_clear(a->loop, a->timer);
        a->timer.id = 0;
    }
    pact_abort_ref(a); /* a listener may drop the last other reference */
    a->dispatching = true;
    size_t n = a->len; /* listeners added meanwhile are not called */
    for (size_t i = 0; i < n; i++) {
        struct listener l = a->v[i];
        if (!l.cb)
            continue;
        a->v[i].cb = NULL;
        l.cb(a->reason, l.ud);
    }
    a->dispatching = false;
    a->len = a->dead = 0; /* an aborted token has no use for listeners */
    pact_abort_unref(a);
    return 0;
}

static void on_timeout(pact_error *err, void *ud)
{
    pact_abort *a = ud;
    a->timer.id = 0; /* fired: nothing to clear any more */
    if (err)
        return; /* cancelled (pact_loop_close_all): no timeout happened */
    pact_error *reason =
        PACT_ERROR(PACT_ETIMEDOUT, "The operation was aborted due to timeout");
    pact_abort_abort(a, reason);
    pact_error_unref(reason);
}

int pact_abort_timeout(pact_loop *loop, uint64_t ms, pact_abort **out)
{
    int rc = pact_abort_new(loop, out);
    if (rc < 0)
        return rc;
    /* the timer holds no reference: dropping the token clears it */
    pact_timer_opts o = {.delay_ms = ms, .unref = true};
    rc = pact_timer_start(loop, &o, on_timeout, *out, &(*out)->timer);
    if (rc < 0) {
        pact_abort_unref(*out);
        *out = NULL;
    }
    return rc;
}

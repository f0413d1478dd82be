/* Unhandled rejections, as Node v20's lib/internal/process/promises.js: a
 * promise rejected with no handler is listed; when a microtask drain empties
 * the queues, the listed ones still unhandled are reported (the hook, then
 * the mode), and promises reported earlier that got a handler since are
 * announced as handled late. */
#include <stdlib.h>
#include <string.h>

#include "promise_internal.h"

void pact__rejections_init(pact_loop *loop)
{
    const char *env = getenv("PACT_UNHANDLED_REJECTIONS");
    loop->unhandled_mode = PACT_UNHANDLED_THROW;
    if (!env)
        return;
    if (strcmp(env, "warn") == 0)
        loop->unhandled_mode = PACT_UNHANDLED_WARN;
    else if (strcmp(env, "none") == 0)
        loop->unhandled_mode = PACT_UNHANDLED_NONE;
    else if (strcmp(env, "throw") != 0)
        fprintf(stderr,
                "pact: PACT_UNHANDLED_REJECTIONS=%s is not throw, warn or "
                "none: using throw\n",
                env);
}

static void drop_all(pact_promise **v, size_t len)
{
    for (size_t i = 0; i < len; i++)
        pact__unref(v[i]);
}

void pact__rejections_free(pact_loop *loop)
{
    /* unref may run nothing of the user's, so the arrays are stable here */
    drop_all(loop->unhandled, loop->unhandled_len);
    drop_all(loop->late, loop->late_len);
    free(loop->unhandled);
    free(loop->late);
    loop->unhandled = loop->late = NULL;
    loop->unhandled_len = loop->unhandled_cap = 0;
    loop->late_len = loop->late_cap = 0;
}

/* Append @p p (taking a reference). Out of memory, the rejection goes
 * untracked: better unreported than a crash in the middle of a settle. */
static bool push(pact_promise ***v, size_t *len, size_t *cap, pact_promise *p)
{
    if (*len == *cap) {
        size_t n = *cap ? *cap * 2 : 16;
        pact_promise **nv = realloc(*v, n * sizeof *nv);
        if (!nv)
            return false;
        *v = nv;
        *cap = n;
    }
    (*v)[(*len)++] = p;
    p->refs++;
    pact__kick(p->loop);
    return true;
}

void pact__rejection_unhandled(pact_promise *p)
{
    pact_loop *loop = p->loop;
    push(&loop->unhandled, &loop->unhandled_len, &loop->unhandled_cap, p);
}

void pact__rejection_handled(pact_promise *p)
{
    pact_loop *loop = p->loop;
    if (p->flags & P_WARNED)
        push(&loop->late, &loop->late_len, &loop->late_cap, p);
}

static bool hook(pact_loop *loop, pact_rejection_event ev, pact_promise *p)
{
    if (!loop->rejection_hook)
        return false;
    pact__step_begin(loop, PACT_STEP_HOOK, (void (*)(void))loop->rejection_hook,
                     loop->rejection_ud);
    bool handled = loop->rejection_hook(loop, ev, p, loop->rejection_ud);
    pact__step_end(loop);
    return handled;
}

/* Report one listed promise that is still unhandled. */
static void report(pact_loop *loop, pact_promise *p)
{
    p->flags |= P_WARNED;
    p->u.r.id = ++loop->rejection_ids;
    bool handled = hook(loop, PACT_REJECTION_UNHANDLED, p);
    switch (loop->unhandled_mode) {
    case PACT_UNHANDLED_WARN:
        fprintf(stderr,
                "pact: unhandled promise rejection (rejection id: "
                "%llu):\n",
                (unsigned long long)p->u.r.id);
        pact_error_print(p->u.r.err, stderr);
        break;
    case PACT_UNHANDLED_NONE:
        break;
    default:
        if (!handled) {
            pact_error *err = PACT_ERROR_CAUSE(
                p->u.r.err, PACT_EUNHANDLED,
                "unhandled promise rejection (rejection id: %llu)",
                (unsigned long long)p->u.r.id);
            pact_loop_raise(loop, err ? err : p->u.r.err);
            pact_error_unref(err);
        }
    }
}

bool pact__rejections(pact_loop *loop)
{
    bool did = loop->late_len > 0;
    /* handled late: each one added meanwhile is announced in this round too */
    for (size_t i = 0; i < loop->late_len; i++) {
        pact_promise *p = loop->late[i];
        /* printed in every mode, "none" included, as Node does */
        if (!hook(loop, PACT_REJECTION_HANDLED, p))
            fprintf(stderr,
                    "pact: promise rejection was handled asynchronously "
                    "(rejection id: %llu)\n",
                    (unsigned long long)p->u.r.id);
        pact__unref(p);
    }
    loop->late_len = 0;

    /* listed: only those listed before this round; an uncaught error stops */
    size_t n = loop->unhandled_len, done = 0;
    while (done < n && !loop->uncaught) {
        pact_promise *p = loop->unhandled[done++];
        if (!(p->flags & P_HANDLED)) {
            report(loop, p);
            did = true;
        }
        pact__unref(p);
    }
    if (done) {
        memmove(loop->unhandled, loop->unhandled + done,
                (loop->unhandled_len - done) * sizeof *loop->unhandled);
        loop->unhandled_len -= done;
    }
    return did || loop->unhandled_len > 0;
}

int pact_loop_set_unhandled(pact_loop *loop, pact_unhandled_mode mode)
{
    PACT_CHECK_LOOP(loop, "pact_loop_set_unhandled");
    PACT_CHECK_ARG(mode >= PACT_UNHANDLED_THROW && mode <= PACT_UNHANDLED_NONE,
                   "pact_loop_set_unhandled");
    loop->unhandled_mode = mode;
    return 0;
}

int pact_loop_on_rejection(pact_loop *loop, pact_rejection_hook fn, void *ud)
{
    PACT_CHECK_LOOP(loop, "pact_loop_on_rejection");
    loop->rejection_hook = fn;
    loop->rejection_ud = ud;
    return 0;
}

/* Unhandled rejections, as Node v20's lib/internal/process/promises.js: a
 * promise rejected with no handler is listed; when a microtask drain empties
 * the queues, the listed ones still unhandled are reported (the hook, then
 * the mode), and promises reported earlier that got a handler since are
 * announced as handled late. */
#include <stdlib.h>
#include <string.h>

#include "promise_internal.h"

/* PACT_UNHANDLED_REJECTIONS, read when each loop is made (a hook the core
 * runs): set, it makes the loop's promise state at once to hold the mode. */
static int env_mode(pact_loop *loop)
{
    const char *env = getenv("PACT_UNHANDLED_REJECTIONS");
    if (!env)
        return 0;
    struct pact__promises *ps = pact__promises_of(loop);
    if (!ps)
        return PACT_ENOMEM;
    if (strcmp(env, "warn") == 0)
        ps->unhandled_mode = PACT_UNHANDLED_WARN;
    else if (strcmp(env, "none") == 0)
        ps->unhandled_mode = PACT_UNHANDLED_NONE;
    else if (strcmp(env, "throw") != 0)
        fprintf(stderr,
                "pact: PACT_UNHANDLED_REJECTIONS=%s is not throw, warn or "
                "none: using throw\n",
                env);
    return 0;
}

/* The layer's part of every new loop, registered before main. */
__attribute__((constructor)) static void register_env_mode(void)
{
    pact__on_loop_new(PACT__SVC_PROMISES, env_mode);
}

static void drop_all(pact_promise **v, size_t len)
{
    for (size_t i = 0; i < len; i++)
        pact__unref(v[i]);
}

void pact__rejections_free(struct pact__promises *ps)
{
    /* unref may run nothing of the user's, so the arrays are stable here */
    drop_all(ps->unhandled, ps->unhandled_len);
    drop_all(ps->late, ps->late_len);
    free(ps->unhandled);
    free(ps->late);
    ps->unhandled = ps->late = NULL;
    ps->unhandled_len = ps->unhandled_cap = 0;
    ps->late_len = ps->late_cap = 0;
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
    struct pact__promises *ps = pact__promises_had(p->loop);
    push(&ps->unhandled, &ps->unhandled_len, &ps->unhandled_cap, p);
}

void pact__rejection_handled(pact_promise *p)
{
    struct pact__promises *ps = pact__promises_had(p->loop);
    if (p->flags & P_WARNED)
        push(&ps->late, &ps->late_len, &ps->late_cap, p);
}

static bool hook(pact_loop *loop, struct pact__promises *ps,
                 pact_rejection_event ev, pact_promise *p)
{
    if (!ps->rejection_hook)
        return false;
    pact__step_begin(loop, PACT_STEP_HOOK, (void (*)(void))ps->rejection_hook,
                     ps->rejection_ud);
    bool handled = ps->rejection_hook(loop, ev, p, ps->rejection_ud);
    pact__step_end(loop);
    return handled;
}

/* Report one listed promise that is still unhandled. */
static void report(pact_loop *loop, struct pact__promises *ps, pact_promise *p)
{
    p->flags |= P_WARNED;
    p->u.r.id = ++ps->rejection_ids;
    bool handled = hook(loop, ps, PACT_REJECTION_UNHANDLED, p);
    switch (ps->unhandled_mode) {
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

bool pact__rejections(pact_loop *loop, void *state)
{
    struct pact__promises *ps = state;
    bool did = ps->late_len > 0;
    /* handled late: each one added meanwhile is announced in this round too */
    for (size_t i = 0; i < ps->late_len; i++) {
        pact_promise *p = ps->late[i];
        /* printed in every mode, "none" included, as Node does */
        if (!hook(loop, ps, PACT_REJECTION_HANDLED, p))
            fprintf(stderr,
                    "pact: promise rejection was handled asynchronously "
                    "(rejection id: %llu)\n",
                    (unsigned long long)p->u.r.id);
        pact__unref(p);
    }
    ps->late_len = 0;

    /* listed: only those listed before this round; an uncaught error stops */
    size_t n = ps->unhandled_len, done = 0;
    while (done < n && !loop->uncaught) {
        pact_promise *p = ps->unhandled[done++];
        if (!(p->flags & P_HANDLED)) {
            report(loop, ps, p);
            did = true;
        }
        pact__unref(p);
    }
    if (done) {
        memmove(ps->unhandled, ps->unhandled + done,
                (ps->unhandled_len - done) * sizeof *ps->unhandled);
        ps->unhandled_len -= done;
    }
    return did || ps->unhandled_len > 0;
}

int pact_loop_set_unhandled(pact_loop *loop, pact_unhandled_mode mode)
{
    PACT_CHECK_LOOP(loop, "pact_loop_set_unhandled");
    PACT_CHECK_ARG(mode >= PACT_UNHANDLED_THROW && mode <= PACT_UNHANDLED_NONE,
                   "pact_loop_set_unhandled");
    struct pact__promises *ps = pact__promises_of(loop);
    if (!ps)
        return PACT_ENOMEM;
    ps->unhandled_mode = mode;
    return 0;
}

int pact_loop_on_rejection(pact_loop *loop, pact_rejection_hook fn, void *ud)
{
    PACT_CHECK_LOOP(loop, "pact_loop_on_rejection");
    struct pact__promises *ps = pact__promises_of(loop);
    if (!ps)
        return PACT_ENOMEM;
    ps->rejection_hook = fn;
    ps->rejection_ud = ud;
    return 0;
}

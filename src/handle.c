/* Handle slots: generation-checked ids over chunked storage, the generic
 * clear/close/ref operations, and the close phase. */
#include <inttypes.h>
#include <stdlib.h>

#include "internal.h"

static struct slot *slot_at(pact_loop *loop, uint32_t index)
{
    return &loop->chunks[index / SLOT_CHUNK][index % SLOT_CHUNK];
}

static int grow(pact_loop *loop)
{
    struct slot **chunks =
        realloc(loop->chunks, (loop->nchunks + 1) * sizeof *chunks);
    if (!chunks)
        return PACT_ENOMEM;
    loop->chunks = chunks;
    struct slot *c = calloc(SLOT_CHUNK, sizeof *c);
    if (!c)
        return PACT_ENOMEM;
    chunks[loop->nchunks++] = c;
    return 0;
}

struct slot *pact__slot_alloc(pact_loop *loop, int kind, void (*cb)(void),
                              void *ud)
{
    struct slot *s;
    if (loop->free_head) {
        s = slot_at(loop, loop->free_head - 1);
        loop->free_head = s->u.next_free;
    } else {
        if (loop->nslots == loop->nchunks * SLOT_CHUNK && grow(loop) < 0)
            return NULL;
        s = slot_at(loop, loop->nslots);
        s->index = loop->nslots++;
        s->gen = 1;
    }
    s->kind = (uint8_t)kind;
    s->loop = loop;
    s->flags = SLOT_REF;
    s->state = ST_NEW;
    s->cb = cb;
    s->ud = ud;
    s->ud_drop = NULL;
    s->op.state = PACT__OP_IDLE;
    loop->live++;
    return s;
}

/* Its operation ends without a call (cleared, closed, or about to run). */
static void op_end(struct slot *s)
{
    pact_error *err;
    if (s->op.state == PACT__OP_PENDING && pact__op_end(&s->op, &err))
        pact_error_unref(err); /* NULL: a pending slot's op never stops */
}

void pact__slot_free(pact_loop *loop, struct slot *s)
{
    assert(s->kind != SLOT_FREE && loop->live > 0);
    op_end(s);
    pact__slot_set_state(loop, s, ST_NEW);
    s->kind = SLOT_FREE;
    s->flags = 0;
    s->gen++;
    if (s->gen == 0) /* never let an id repeat as 0 */
        s->gen = 1;
    s->u.next_free = loop->free_head;
    loop->free_head = s->index + 1;
    loop->live--;
}

struct slot *pact__slot_get(pact_loop *loop, pact_handle h)
{
    uint32_t index = (uint32_t)h.id;
    if (index == 0 || index > loop->nslots)
        return NULL;
    struct slot *s = slot_at(loop, index - 1);
    if (s->gen != (uint32_t)(h.id >> 32) || s->kind == SLOT_FREE)
        return NULL;
    return s;
}

pact_handle pact__slot_handle(const struct slot *s)
{
    pact_handle h = {((uint64_t)s->gen << 32) | (s->index + 1)};
    return h;
}

static bool counted(const struct slot *s)
{
    return pact__slot_live(s) && (s->flags & SLOT_REF);
}

/* The lifecycle's moves: from each state, the states it may go to. */
static bool allowed(int from, int to)
{
    switch (from) {
    case ST_NEW: /* set up: armed, due at once (a token aborted already),
                    or given back */
        return to == ST_ARMED || to == ST_DUE || to == ST_NEW;
    case ST_ARMED: /* fires, is cancelled, cleared, closed, freed */
        return to == ST_FIRING || to == ST_DUE || to == ST_NEW ||
               to == ST_CLOSING;
    case ST_FIRING: /* re-armed, cancelled, cleared or closed inside, or its
                       re-arming fails */
        return to == ST_ARMED || to == ST_DUE || to == ST_FIRING_GONE ||
               to == ST_FIRING_CLOSING || to == ST_NEW;
    case ST_FIRING_GONE:
        return to == ST_NEW;
    case ST_FIRING_CLOSING:
        return to == ST_CLOSING || to == ST_FIRING_GONE;
    case ST_DUE: /* called (freed), cleared, closed */
        return to == ST_NEW || to == ST_DUE_GONE || to == ST_DUE_CLOSING;
    case ST_DUE_GONE:
        return to == ST_NEW;
    case ST_DUE_CLOSING: /* called without a call, or closed by close_all */
        return to == ST_CLOSING || to == ST_DUE_GONE;
    case ST_CLOSING:
        return to == ST_NEW;
    default:
        return false;
    }
}

void pact__slot_set_state(pact_loop *loop, struct slot *s, int st)
{
    assert(allowed(s->state, st));
    bool was = counted(s);
    s->state = (uint8_t)st;
    bool now = counted(s);
    if (was != now) {
        assert(now || loop->nref > 0);
        loop->nref += now ? 1 : (size_t)-1;
    }
}

/* Neither armed nor held by a call or the close list: free it. */
static void release(pact_loop *loop, struct slot *s)
{
    pact__slot_free(loop, s);
}

/* Disarm whatever the slot is, leaving it allocated. */
static void stop(pact_loop *loop, struct slot *s)
{
    op_end(s);
    switch (s->kind) {
    case SLOT_TIMER:
        pact__timer_stop(loop, s);
        break;
    case SLOT_IMMEDIATE:
        pact__immediate_stop(loop, s);
        break;
    case SLOT_SIGNAL:
    case SLOT_POLL:
        pact__io_stop(loop, s);
        break;
    }
}

static int lookup(pact_loop *loop, pact_handle h, const char *fn,
                  struct slot **out)
{
    PACT_CHECK_LOOP(loop, fn);
    struct slot *s = pact__slot_get(loop, h);
    /* cleared inside its own callback, or while its cancellation is due, it
     * keeps its slot until that ends, but is gone for the user */
    if (s && (s->state == ST_FIRING_GONE || s->state == ST_DUE_GONE))
        s = NULL;
    if (!s)
        return pact__misuse(fn, PACT_ENOENT,
                            "no such handle: it fired, was cleared or closed");
    if (s->state == ST_CLOSING || s->state == ST_FIRING_CLOSING ||
        s->state == ST_DUE_CLOSING)
        return pact__misuse(fn, PACT_EALREADY, "the handle is closing");
    *out = s;
    return 0;
}

int pact_clear(pact_loop *loop, pact_handle h)
{
    struct slot *s;
    PACT_CHECK_LOOP(loop, "pact_clear");
    if (h.id && h.id == loop->firing_once)
        return 0; /* a one-shot timer clearing itself: nothing left to do */
    int rc = lookup(loop, h, "pact_clear", &s);
    if (rc < 0)
        return rc;
    stop(loop, s);
    /* one whose callback runs, or whose cancellation is due, is freed when
     * that ends */
    if (s->state == ST_FIRING)
        pact__slot_set_state(loop, s, ST_FIRING_GONE);
    else if (s->state == ST_DUE)
        pact__slot_set_state(loop, s, ST_DUE_GONE);
    else
        release(loop, s);
    return 0;
}

/* Off the close list (its callback about to run, or dropped by close_all):
 * freed, unless what calls it still holds it. */
static void leave_close_list(pact_loop *loop, struct slot *s)
{
    switch (s->state) {
    case ST_FIRING_CLOSING:
        pact__slot_set_state(loop, s, ST_FIRING_GONE);
        break;
    case ST_DUE_CLOSING:
        pact__slot_set_state(loop, s, ST_DUE_GONE);
        break;
    default:
        release(loop, s);
        break;
    }
}

int pact_close(pact_loop *loop, pact_handle h, pact_fn cb, void *ud)
{
    struct slot *s;
    int rc = lookup(loop, h, "pact_close", &s);
    if (rc < 0)
        return rc;
    stop(loop, s);
    pact__slot_set_state(loop, s,
                         s->state == ST_FIRING ? ST_FIRING_CLOSING
                         : s->state == ST_DUE  ? ST_DUE_CLOSING
                                               : ST_CLOSING);
    s->u.close.cb = cb;
    s->u.close.ud = ud;
    s->u.close.next = NULL;
    if (loop->closing_tail)
        loop->closing_tail->u.close.next = s;
    else
        loop->closing_head = s;
    loop->closing_tail = s;
    pact__kick(loop);
    return 0;
}

/* The close phase: the callbacks of handles closed before it began. */
void pact__run_closing(pact_loop *loop)
{
    struct slot *s = loop->closing_head;
    loop->closing_head = loop->closing_tail = NULL;
    while (s && !pact__halted(loop)) {
        struct slot *next = s->u.close.next;
        pact_fn cb = s->u.close.cb;
        void *ud = s->u.close.ud;
        leave_close_list(loop, s);
        if (cb) {
            pact__step_begin(loop, PACT_STEP_CLOSE, (void (*)(void))cb, ud);
            cb(ud);
            pact__step_end(loop);
            pact__drain(loop);
        }
        s = next;
    }
    /* stopped: keep the rest for the next run */
    if (s) {
        struct slot *tail = s;
        while (tail->u.close.next)
            tail = tail->u.close.next;
        tail->u.close.next = loop->closing_head;
        if (!loop->closing_head)
            loop->closing_tail = tail;
        loop->closing_head = s;
    }
}

static int set_ref(pact_loop *loop, pact_handle h, bool ref, const char *fn)
{
    struct slot *s;
    int rc = lookup(loop, h, fn, &s);
    if (rc < 0)
        return rc;
    bool was = s->flags & SLOT_REF;
    if (was == ref)
        return 0;
    if (pact__slot_live(s)) {
        assert(ref || loop->nref > 0);
        loop->nref += ref ? 1 : (size_t)-1;
    }
    s->flags =
        ref ? (uint8_t)(s->flags | SLOT_REF) : (uint8_t)(s->flags & ~SLOT_REF);
    return 0;
}

int pact_ref(pact_loop *loop, pact_handle h)
{
    return set_ref(loop, h, true, "pact_ref");
}

int pact_unref(pact_loop *loop, pact_handle h)
{
    return set_ref(loop, h, false, "pact_unref");
}

int pact_has_ref(pact_loop *loop, pact_handle h)
{
    struct slot *s;
    int rc = lookup(loop, h, "pact_has_ref", &s);
    return rc < 0 ? rc : (s->flags & SLOT_REF) != 0;
}

int pact__slot_owns_ud(pact_loop *loop, pact_handle h, pact_fn drop)
{
    struct slot *s = pact__slot_get(loop, h);
    if (!s)
        return PACT_ENOENT;
    s->ud_drop = drop;
    return 0;
}

/* ---- a handle's pending operation --------------------------------------- */

static struct slot *op_slot(struct pact__op *op)
{
    return pact__list_entry(op, struct slot, op);
}

static bool slot_op_stop(struct pact__op *op)
{
    struct slot *s = op_slot(op);
    stop(s->loop, s);
    pact__slot_set_state(s->loop, s, ST_DUE);
    return true;
}

/* The due call is over (made, or dropped): the slot goes, unless the close
 * list still holds it. @return whether the user still wanted the call. */
static bool due_done(pact_loop *loop, struct slot *s)
{
    switch (s->state) {
    case ST_DUE:
        release(loop, s);
        return true;
    case ST_DUE_CLOSING:
        pact__slot_set_state(loop, s, ST_CLOSING);
        return false;
    default: /* ST_DUE_GONE */
        release(loop, s);
        return false;
    }
}

/* Its last call, with the cancellation; cleared meanwhile (cb NULL): none. */
static void slot_op_fail(struct pact__op *op, pact_error *err)
{
    struct slot *s = op_slot(op);
    pact_loop *loop = s->loop;
    void (*cb)(void) = s->cb;
    void *ud = s->ud;
    int kind = s->kind,
        num = s->kind == SLOT_SIGNAL || s->kind == SLOT_POLL ? s->u.io.num : 0;
    if (!due_done(loop, s))
        return;
    /* a tick step: say whose callback it is */
    static const int step[] = {
        [SLOT_TIMER] = PACT_STEP_TIMER,
        [SLOT_IMMEDIATE] = PACT_STEP_IMMEDIATE,
        [SLOT_SIGNAL] = PACT_STEP_SIGNAL,
        [SLOT_POLL] = PACT_STEP_POLL,
    };
    pact__label_refine(loop, step[kind], cb, ud);
    switch (kind) {
    case SLOT_SIGNAL:
        ((pact_signal_cb)cb)(err, num, ud);
        break;
    case SLOT_POLL:
        ((pact_poll_cb)cb)(err, num, 0, ud);
        break;
    default:
        ((pact_cb)cb)(err, ud);
        break;
    }
}

/* pact_loop_free before the call: the ud goes back through its drop. */
static void slot_op_drop(struct pact__op *op)
{
    struct slot *s = op_slot(op);
    pact_fn drop = s->ud_drop;
    void *ud = s->ud;
    if (due_done(s->loop, s) && drop)
        drop(ud);
}

static void describe(const struct slot *s, char *buf, size_t len)
{
    char call[160];
    pact__describe_call(call, sizeof call, s->cb, s->ud);
    const char *unref = s->flags & SLOT_REF ? "" : ", unreferenced";
    if (s->state == ST_DUE_GONE || s->state == ST_DUE_CLOSING) {
        snprintf(buf, len, "cleared%s", unref);
        return;
    }
    switch (s->kind) {
    case SLOT_TIMER: {
        /* due: from its start, in ms from now (0: due already) */
        uint64_t due = s->u.timer.start + s->u.timer.msecs * 1000000u;
        uint64_t now = pact__now_ns();
        snprintf(buf, len,
                 "%s%" PRIu64 " ms, due in %" PRIu64 " ms%s, calls %s",
                 s->u.timer.repeat ? "every " : "", s->u.timer.msecs,
                 due > now ? (due - now + 999999u) / 1000000u : 0, unref, call);
        break;
    }
    case SLOT_SIGNAL:
        snprintf(buf, len, "signal %d%s, calls %s", s->u.io.num, unref, call);
        break;
    case SLOT_POLL:
        snprintf(buf, len, "fd %d%s, calls %s", s->u.io.num, unref, call);
        break;
    default:
        snprintf(buf, len, "calls %s%s", call, unref);
        break;
    }
}

static void slot_op_describe(const struct pact__op *op, char *buf, size_t len)
{
    describe(pact__list_entry(op, const struct slot, op), buf, len);
}

#define SLOT_OPS(what)                                                         \
    {                                                                          \
        what, slot_op_stop, slot_op_fail, slot_op_drop, slot_op_describe,      \
            false                                                              \
    }
static const struct pact__op_type slot_ops[] = {
    [SLOT_TIMER] = SLOT_OPS("timer"),
    [SLOT_IMMEDIATE] = SLOT_OPS("immediate"),
    [SLOT_SIGNAL] = SLOT_OPS("signal watcher"),
    [SLOT_POLL] = SLOT_OPS("fd poller"),
};

void pact__slots_cancel_all(pact_loop *loop, pact_error *err)
{
    for (uint32_t i = 0; i < loop->nslots; i++) {
        struct slot *s = slot_at(loop, i);
        if (s->kind != SLOT_FREE && s->op.state == PACT__OP_PENDING)
            pact__op_cancel(&s->op, pact_error_ref(err));
    }
}

void pact__slots_each(pact_loop *loop,
                      void (*fn)(const struct pact__op *op, void *ud), void *ud)
{
    for (uint32_t i = 0; i < loop->nslots; i++) {
        const struct slot *s = slot_at(loop, i);
        if (s->kind != SLOT_FREE && s->op.state == PACT__OP_PENDING)
            fn(&s->op, ud);
    }
}

size_t pact__slots_print(const pact_loop *loop, FILE *out)
{
    size_t n = 0;
    for (uint32_t i = 0; i < loop->nslots; i++) {
        const struct slot *s = &loop->chunks[i / SLOT_CHUNK][i % SLOT_CHUNK];
        if (s->kind == SLOT_FREE || s->op.state != PACT__OP_PENDING)
            continue;
        char more[256];
        describe(s, more, sizeof more);
        fprintf(out, "  %s: %s\n", pact__op_what(&s->op), more);
        n++;
    }
    return n;
}

size_t pact__slots_print_closing(const pact_loop *loop, FILE *out)
{
    size_t n = 0;
    for (const struct slot *s = loop->closing_head; s; s = s->u.close.next) {
        char call[160];
        pact__describe_call(call, sizeof call, (void (*)(void))s->u.close.cb,
                            s->u.close.ud);
        fprintf(out, "  a handle closing: close callback %s\n", call);
        n++;
    }
    return n;
}

int pact__slot_op_start(pact_loop *loop, struct slot *s, pact_abort *abort)
{
    return pact__op_start(loop, &s->op, &slot_ops[s->kind], abort,
                          PACT__OP_UNLISTED);
}

size_t pact__slots_due(const pact_loop *loop)
{
    size_t k = 0;
    for (const struct pact__list *n = loop->op_due.next; n != &loop->op_due;
         n = n->next) {
        const struct pact__op *op =
            pact__list_entry(n, const struct pact__op, node);
        k += op->type >= slot_ops &&
             op->type < slot_ops + sizeof slot_ops / sizeof *slot_ops;
    }
    return k;
}

int pact_loop_close_all(pact_loop *loop)
{
    PACT_CHECK_LOOP(loop, "pact_loop_close_all");
    /* every armed handle and pending operation: ECANCELED on the next tick */
    pact__ops_close_all(loop);
    /* handles on their way to the close phase go now, without their close
     * callbacks (pact_fn, no error to tell them apart) */
    for (struct slot *s = loop->closing_head, *next; s; s = next) {
        next = s->u.close.next;
        leave_close_list(loop, s);
    }
    loop->closing_head = loop->closing_tail = NULL;
    loop->close_epoch++;
    /* top down: the promise layer's search for cycles runs last, once what
     * the layers above cancelled no longer waits */
    return pact__services_close_all(loop);
}

/* At pact_loop_free: only the chunks are left (live == 0 was checked). */
void pact__slots_release_all(pact_loop *loop)
{
    for (uint32_t i = 0; i < loop->nchunks; i++)
        free(loop->chunks[i]);
    free(loop->chunks);
    loop->chunks = NULL;
    loop->nchunks = loop->nslots = loop->free_head = 0;
}

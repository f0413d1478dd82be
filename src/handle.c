/* Handle slots: generation-checked ids over chunked storage, the generic
 * clear/close/ref operations, and the close phase. */
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
    s->cb = cb;
    s->ud = ud;
    s->close_cb = NULL;
    loop->live++;
    return s;
}

void pact__slot_free(pact_loop *loop, struct slot *s)
{
    if (s->flags & SLOT_ACTIVE)
        pact__slot_deactivate(loop, s);
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

void pact__slot_activate(pact_loop *loop, struct slot *s)
{
    s->flags |= SLOT_ACTIVE;
    if (s->flags & SLOT_REF)
        loop->nref++;
}

void pact__slot_deactivate(pact_loop *loop, struct slot *s)
{
    if ((s->flags & (SLOT_ACTIVE | SLOT_REF)) == (SLOT_ACTIVE | SLOT_REF))
        loop->nref--;
    s->flags &= (uint8_t)~SLOT_ACTIVE;
}

/* Disarm whatever the slot is, leaving it allocated. */
static void stop(pact_loop *loop, struct slot *s)
{
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
    if (s->flags & SLOT_ACTIVE)
        pact__slot_deactivate(loop, s);
}

static int lookup(pact_loop *loop, pact_handle h, const char *fn,
                  struct slot **out)
{
    PACT_CHECK_LOOP(loop, fn);
    struct slot *s = pact__slot_get(loop, h);
    /* a timer cleared in its own callback, or while its cancellation is
     * queued, keeps its slot until that ends, but is gone for the user */
    if (s && s->kind == SLOT_TIMER && !s->cb)
        s = NULL;
    if (!s)
        return pact__misuse(fn, PACT_ENOENT,
                            "no such handle: it fired, was cleared or closed");
    if (s->flags & SLOT_CLOSING)
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
    /* A timer whose cancellation is queued is freed by that delivery. */
    if (s->flags & (SLOT_CANCEL | SLOT_RUNNING))
        s->cb = NULL;
    else
        pact__slot_free(loop, s);
    return 0;
}

int pact_close(pact_loop *loop, pact_handle h, pact_fn cb, void *ud)
{
    struct slot *s;
    int rc = lookup(loop, h, "pact_close", &s);
    if (rc < 0)
        return rc;
    stop(loop, s);
    if (s->flags & (SLOT_CANCEL | SLOT_RUNNING))
        s->cb = NULL;
    s->flags |= SLOT_CLOSING;
    s->close_cb = cb;
    s->close_ud = ud;
    s->close_next = NULL;
    if (loop->closing_tail)
        loop->closing_tail->close_next = s;
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
        struct slot *next = s->close_next;
        pact_fn cb = s->close_cb;
        void *ud = s->close_ud;
        s->flags &= (uint8_t)~SLOT_CLOSING;
        if (!(s->flags & (SLOT_CANCEL | SLOT_RUNNING)))
            pact__slot_free(loop, s);
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
        while (tail->close_next)
            tail = tail->close_next;
        tail->close_next = loop->closing_head;
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
    if (s->flags & SLOT_ACTIVE)
        loop->nref += ref ? 1 : (size_t)-1;
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
    s->flags |= SLOT_OWNS_UD;
    loop->ud_drop = drop;
    return 0;
}

int pact_loop_close_all(pact_loop *loop)
{
    PACT_CHECK_LOOP(loop, "pact_loop_close_all");
    for (uint32_t i = 0; i < loop->nslots; i++) {
        struct slot *s = slot_at(loop, i);
        if (s->kind == SLOT_FREE)
            continue;
        stop(loop, s);
        pact_error_unref(s->kind == SLOT_TIMER ? s->u.timer.cancel : NULL);
        if (s->kind == SLOT_TIMER)
            s->u.timer.cancel = NULL;
        bool drop = (s->flags & SLOT_OWNS_UD) && s->cb;
        void *ud = s->ud;
        pact__slot_free(loop, s);
        /* after the free: what it runs may not find the handle again */
        if (drop)
            loop->ud_drop(ud);
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

/* The nextTick and microtask queues and their drain, which runs after every
 * macrotask callback: all ticks (including ones queued meanwhile), then all
 * microtasks (likewise), and again while ticks were queued by microtasks, as
 * Node's processTicksAndRejections does; between rounds, unhandled promise
 * rejections are processed (reject.c), which may queue more. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Make room for @p need jobs in all. */
static int grow(struct jobq *q, size_t need)
{
    if (need <= q->cap)
        return 0;
    size_t cap = q->cap ? q->cap * 2 : 64;
    while (cap < need)
        cap *= 2;
    struct job *v = malloc(cap * sizeof *v);
    if (!v)
        return PACT_ENOMEM;
    /* unwrap the ring into the new array */
    size_t first = q->cap - q->head;
    if (first > q->len)
        first = q->len;
    if (q->len) {
        memcpy(v, q->v + q->head, first * sizeof *v);
        memcpy(v + first, q->v, (q->len - first) * sizeof *v);
    }
    free(q->v);
    q->v = v;
    q->cap = cap;
    q->head = 0;
    return 0;
}

/* Counting every reservation beside len (a holder's queued job counts
 * twice) keeps cap >= unreserved jobs + reservations, which is what a
 * reserved push needs, without knowing which queued jobs are whose. */
int pact__jobq_push(struct jobq *q, pact_fn fn, void *ud)
{
    if (PACT__UNLIKELY(q->len + q->reserved >= q->cap) &&
        grow(q, q->len + q->reserved + 1) < 0)
        return PACT_ENOMEM;
    pact__jobq_put(q, fn, ud);
    return 0;
}

int pact__jobq_reserve(struct jobq *q)
{
    if (PACT__UNLIKELY(q->len + q->reserved >= q->cap) &&
        grow(q, q->len + q->reserved + 1) < 0)
        return PACT_ENOMEM;
    q->reserved++;
    return 0;
}

void pact__jobq_free(struct jobq *q)
{
    free(q->v);
    memset(q, 0, sizeof *q);
}

/* @p fn_name: the public function called, for misuse reports */
static int enqueue(pact_loop *loop, struct jobq *q, pact_fn fn, void *ud,
                   const char *fn_name)
{
    PACT_CHECK_LOOP(loop, fn_name);
    PACT_CHECK_ARG(fn, fn_name);
    /* kick first so the push is a tail call: this is the microtask hot path,
     * and a kick for a failed push costs only one empty external phase */
    pact__kick(loop);
    return pact__jobq_push(q, fn, ud);
}

int pact_next_tick(pact_loop *loop, pact_fn fn, void *ud)
{
    return enqueue(loop, loop ? &loop->ticks : NULL, fn, ud, "pact_next_tick");
}

int pact_queue_microtask(pact_loop *loop, pact_fn fn, void *ud)
{
    return enqueue(loop, loop ? &loop->micro : NULL, fn, ud,
                   "pact_queue_microtask");
}

int pact__micro_reserve(pact_loop *loop)
{
    return pact__jobq_reserve(&loop->micro);
}

void pact__micro_unreserve(pact_loop *loop)
{
    assert(loop->micro.reserved > 0);
    loop->micro.reserved--;
}

void pact__on_drained(pact_loop *loop, bool (*fn)(pact_loop *, void *),
                      void *state)
{
    assert(!loop->drained || loop->drained == fn); /* one hook per loop */
    loop->drained = fn;
    loop->drained_state = state;
}

void pact__drain(pact_loop *loop)
{
    if (loop->draining) /* a nested drain would reorder the queues */
        return;
    loop->draining = true;
    struct job j;
    do {
        while (!loop->uncaught && pact__jobq_pop(&loop->ticks, &j)) {
            pact__step_begin(loop, PACT_STEP_TICK, (void (*)(void))j.fn, j.ud);
            j.fn(j.ud);
            pact__step_end(loop);
        }
        while (!loop->uncaught && pact__jobq_pop(&loop->micro, &j)) {
            pact__step_begin(loop, PACT_STEP_MICROTASK, (void (*)(void))j.fn,
                             j.ud);
            j.fn(j.ud);
            pact__step_end(loop);
        }
    } while (!loop->uncaught &&
             (loop->ticks.len ||
              (loop->drained && loop->drained(loop, loop->drained_state))));
    loop->draining = false;
}

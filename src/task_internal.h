/* Private to the await layer (stack.c, task.c, async.c): task stacks and the
 * per-loop task state. */
#ifndef PACT_TASK_INTERNAL_H
#define PACT_TASK_INTERNAL_H

#if defined(PACT__LAYER) && PACT__LAYER < 3
#error "task_internal.h is layer 3 (await): a lower layer must not include it"
#endif

#include <string.h>

#include "internal.h"
#include "pact/async.h"
#include "pact/task.h"

/* For the few calls on the switch path: every return across a switch is
 * mispredicted, so each frame fewer between the switch and the code that
 * carries on is measurable. */
#if defined(__GNUC__)
#define PACT__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PACT__ALWAYS_INLINE inline
#endif

/* Every stack switch must be announced to the sanitizer this file is built
 * with (PACT__ASAN_BUILD, PACT__TSAN_BUILD: src/sys.h). */

/* One task stack: a mapping holding the guard page (if any) and then the
 * usable stack; this header is allocated apart from it. */
struct pact__stack {
    char *map;              /* the mapping */
    size_t len;             /* its length */
    char *lo;               /* lowest usable byte; a canary sits there */
    size_t size;            /* usable bytes, from lo up */
    bool guard;             /* [map, lo) is a PROT_NONE guard */
    unsigned vg;            /* valgrind's id for it */
    struct pact__list link; /* in the pool, newest first */
    uint64_t freed;         /* loop time (ms) it entered the pool */
#ifdef PACT__TSAN_BUILD
    /* TSan's fiber for the tasks run on this stack: pooled with it, since
     * making one costs TSan far more than the task it would serve */
    void *fiber;
#endif
};

/* A loop's task state (a pact__service). */
struct pact__tasks {
    pact_loop *loop;
    size_t stack_size;       /* default usable size */
    size_t pool_max, pooled; /* pooled - pool_max, if above: the surplus */
    bool guard;
    bool trim_armed;        /* trim_ev is pending */
    struct pact__list pool; /* of stack_size stacks, guarded as `guard`, most
                               recently freed first (so oldest last) */
    struct event *trim_ev;  /* unmaps the surplus once it is idle (stack.c) */
    struct pact__list live; /* pact_task.link: started or queued, not
                               finished, newest first */
    size_t nlive;
    struct pact__list asyncs; /* async functions started and not ended */
    char why[160];            /* pact_loop_free's refusal */
};

/* ---- scopes (layer 4) -------------------------------------------------- */
/* Parking: an await on something that calls back instead of settling a
 * promise (a channel's hand-off). begin (in the running task): NULL, or why
 * it cannot await (a new reference: not in a task, cancelled); then start
 * the operation with pact__task_wake and *@p t as its callback and ud, and
 * pact__task_park_wait for its outcome, or pact__task_park_abandon if it
 * could not start. The wake may come inside the call that starts it (then
 * the task is not suspended at all) or later (it resumes as a microtask);
 * once the task was cancelled meanwhile it is ignored. */
pact_error *pact__task_park_begin(pact_task **t, const char *fn);
/* Whether the running task may await at all: NULL, or why not (as
 * pact__task_park_begin's), before an await that may not need to park. */
pact_error *pact__task_await_check(const char *fn);
void pact__task_wake(void *t, pact_error *err, pact_value *v);
pact_error *pact__task_park_wait(pact_task *t, pact_value *out,
                                 const char *file, int line);
/* pact__task_park_wait's first half for an await that switches inline
 * (pact_await_recv_enter_ and send's): 1 with the contexts in @p sw when
 * the task must suspend (pact_await_park_leave_ then gives the outcome),
 * else 0 with the outcome in *@p err. */
int pact__task_park_enter(pact_task *t, pact_value *out, const char *file,
                          int line, void *sw[2], pact_error **err);
void pact__task_park_abandon(pact_task *t);

/* The task on the CPU, or NULL on a loop's own stack. */
pact_task *pact__task_current(void);
/* From now on @p t's awaits follow @p a (a reference taken; NULL: none):
 * they fail at once while it is aborted, and its abort wakes the one
 * suspended; what @p t starts takes it as the ambient token. *@p old gets
 * the token followed until now (the task's reference moves to the caller).
 * @return 0, or PACT_ENOMEM with nothing changed. */
int pact__task_swap_token(pact_task *t, pact_abort *a, pact_abort **old);

/* A task without a promise ends by calling this, on the resumer's stack
 * right after the body returned: @p err (a reference) and @p result (to
 * release) are the callee's. */
typedef void (*pact__task_done_fn)(void *ud, pact_error *err,
                                   pact_value *result);
/* pact_task_spawn_at for layer 4's groups, with no promise: @p done(@p ud)
 * runs exactly once when the task ends (never inside this call).
 * @return 0; PACT_ECANCELED (its token, opts->abort or the ambient one, is
 * aborted already: nothing was made); PACT_ENOMEM. */
/* From now on, stall reports name @p fn(@p ud) as what the running task
 * runs, not its body: a service's body that calls the user's code (an HTTP
 * task handler) names the user's function. Outside a task: nothing. */
void pact__task_show(void (*fn)(void), void *ud);

int pact__task_spawn_done(pact_loop *loop, pact_task_fn fn, void *arg,
                          const pact_task_opts *opts, const char *file,
                          int line, pact__task_done_fn done, void *ud);

/* What the task dump (layer 4) shows of a task. */
struct pact__task_view {
    const void *id;        /* the task or the async frame */
    const pact_task *task; /* NULL for an async function */
    void (*fn)(void);      /* an async function's body */
    const char *name;      /* may be NULL */
    const char *file;      /* the spawn site */
    int line;
    const char *state;      /* "queued to start", "running", "awaiting" */
    const char *await_file; /* the await it is suspended in, or NULL */
    int await_line;
    const pact_abort *token; /* what it follows now (a scope's, a group's) */
};
/* async.c: pact__tasks_each's part, the async functions. */
void pact__async_each(struct pact__tasks *ts,
                      void (*fn)(const struct pact__task_view *v, void *ud),
                      void *ud);
/* The loop's task state, made on first use; NULL without memory. */
struct pact__tasks *pact__tasks_get(pact_loop *loop);
/* Call @p fn for each task not finished, newest first, then each async
 * function started and not ended, oldest first. */
void pact__tasks_each(pact_loop *loop,
                      void (*fn)(const struct pact__task_view *v, void *ud),
                      void *ud);

/* stack.c */
/* A stack of at least @p size usable bytes (pooled if it is the default),
 * or NULL with errno set. */
struct pact__stack *pact__stack_get(struct pact__tasks *ts, size_t size);
/* Give it back: to the pool (within pool_max, or as surplus that a timer
 * unmaps once idle for PACT__STACK_LINGER_MS), or unmapped. */
void pact__stack_put(struct pact__tasks *ts, struct pact__stack *s);
/* Unmap pooled stacks, oldest first, until at most @p keep are left. */
void pact__stack_trim(struct pact__tasks *ts, size_t keep);
/* pact_loop_free: unmap every pooled stack and free the trim timer. */
void pact__stack_pool_free(struct pact__tasks *ts);
/* The word at the bottom of every stack is its canary, checked at each
 * switch back (behind a guard page: when the task ends): the zero the kernel
 * gave, never written by us, so that the check reads the shared zero page
 * instead of making a second page of each stack resident. Only an overflow
 * writes there (a task's frames reach the lowest word only by overflowing): it
 * catches, late, what a guard page would have, and a frame large enough to step
 * over the guard page. */
static inline bool pact__stack_ok(const struct pact__stack *s)
{
    uint32_t c;
    memcpy(&c, s->lo, sizeof c);
    return c == 0;
}
/* Round to whole pages, at least the minimum. */
size_t pact__stack_round(size_t size);
/* Set up overflow reports for this thread (once per process for the
 * handler, once per thread for its alternate stack). */
void pact__stack_watch(void);
/* What the overflow report names: the running task's stack, name and spawn
 * site. task.c points pact__where_now at the running task's (NULL on a
 * loop's own stack) at every switch. */
struct pact__where {
    const struct pact__stack *stack;
    const char *name; /* may be NULL */
    const char *file;
    int line;
};
extern _Thread_local const struct pact__where *pact__where_now PACT_TLS_MODEL;

#endif

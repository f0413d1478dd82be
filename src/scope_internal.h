/* Layer 4 (scope): task groups and cancel scopes. Its files include this,
 * which brings the layers below. */
#ifndef PACT_SCOPE_INTERNAL_H
#define PACT_SCOPE_INTERNAL_H

#if defined(PACT__LAYER) && PACT__LAYER < 4
#error "scope_internal.h is layer 4 (scope): a lower layer must not include it"
#endif

#include "task_internal.h"

#include "pact/dump.h"
#include "pact/group.h"
#include "pact/scope.h"
#include "promise_internal.h"

struct pact_group {
    pact_loop *loop;
    unsigned refs;           /* the caller's, each child's, pact_group_run's */
    pact_abort *token;       /* the group's cancellation (a reference) */
    pact_abort *parent;      /* a reference while listening to it */
    uint64_t parent_id;      /* the listener on `parent` */
    pact_handle timer;       /* the deadline, while set */
    size_t limit;            /* 0: none */
    size_t running;          /* started, not finished */
    struct pact__list queue; /* struct queued, spawn order */
    size_t nqueued;
    pact_error **failures; /* in the order they happened */
    size_t nfail, capfail;
    struct pact__list outcomes; /* a join set's, in the order they finished */
    pact_deferred **waits;      /* pact_group_wait's, settled at the end */
    size_t nwaits, capwaits;
    pact_deferred **nexts; /* pact_group_next's, FIFO */
    size_t nnext, capnext, headnext;
    bool join, move_on;
    bool expired;  /* its own deadline fired */
    bool waited;   /* someone waits (wait, wait_cb, run): no outlive report */
    bool finished; /* every child finished after a wait: closed to more */
    bool handle;   /* the caller's reference is held */
    const char *name;
    const char *file; /* where it was made */
    int line;
    const char *last_file; /* the last child's spawn site */
    int last_line;
    struct pact__list link; /* in the loop's groups, for the dump */
    const pact_task *owner; /* the task that made it, or NULL */
    uint64_t deadline_at;   /* pact_loop_now() at which it passes, or 0 */
};

struct pact_scope {
    pact_loop *loop;
    pact_task *task;
    pact_abort *token; /* the scope's (a reference) */
    pact_abort *outer; /* what the task followed before (its reference) */
    uint64_t link_id;  /* the listener on `outer`, unless shielded */
    pact_handle timer; /* the deadline, while set */
    bool expired;      /* its own deadline passed */
    bool move_on;
    bool shield;
    struct pact__list link; /* in the loop's scopes, for the dump */
    uint64_t deadline_at;   /* pact_loop_now() at which it passes, or 0 */
};

/* The loop's groups and scopes (a pact__service), for the task dump. */
struct pact__groups {
    struct pact__list groups; /* pact_group.link */
    struct pact__list scopes; /* pact_scope.link */
    pact_loop *loop;
    /* pact_loop_dump_on_signal's: a libevent signal event of our own, not
     * a handle, so that it neither keeps the loop alive nor stops
     * pact_loop_free */
    struct event *dump_ev;
    int dump_signum;
};
/* The loop's registry, made on first use; NULL without memory. */
struct pact__groups *pact__groups_of(pact_loop *loop);

#endif

/* Private to libpact's core (layer 1, doc/internals.md): the loop's
 * structure, handle slots, the calls the core's files make to one another
 * (pact__ prefix), and what the core offers the layers above it (services,
 * the "queues drained" hook, the step probes). It includes only layer-1
 * public headers; each upper layer's private header adds its own. */
#ifndef PACT_INTERNAL_H
#define PACT_INTERNAL_H

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "list.h"
#include "pact/abort.h"
#include "pact/common.h"
#include "pact/errno.h"
#include "pact/error.h"
#include "pact/loop.h"
#include "pact/op.h"
#include "pact/stall.h" /* pact_step_kind, for the probes */
#include "pact/version.h"
#include "sys.h"
#include "wake.h"

struct event;
struct event_base;

/* ---- misuse reporting ---------------------------------------------------- */

/* Report misuse of a public function and yield @code. Debug builds, or any
 * build run with PACT_DEBUG=1 in the environment, print the
 * function and the reason; thread misuse is always printed (it is a bug that
 * corrupts state silently otherwise). */
int pact__misuse(const char *fn, int code, const char *why);
/* As pact__misuse, printed in every build: for misuse that would otherwise
 * corrupt state or free memory twice. */
int pact__misuse_always(const char *fn, int code, const char *why);
/* A shared PACT_ENOMEM error (a new reference) for when making one fails. */
pact_error *pact__enomem(void);

/* The code for a libevent call that failed (event_add), which leaves the
 * system's errno (epoll_ctl's, sigaction's, or malloc's): clear errno before
 * the call. */
static inline int pact__ev_error(void)
{
    return errno > 0 ? -errno : PACT_ENOMEM;
}

/* The code for pthread_create's @p rc (0: started): whatever the system's
 * reason (EAGAIN: no thread, or no memory for the stack; EINVAL: attributes it
 * refuses, as valgrind does a stack it cannot map; EPERM), the thread did not
 * start: PACT_ENOTHREAD, not to be taken for a full queue or a bad argument. */
static inline int pact__thread_error(int rc)
{
    return rc ? PACT_ENOTHREAD : 0;
}

#define PACT_CHECK_ARG(cond, fn)                                               \
    do {                                                                       \
        if (!(cond))                                                           \
            return pact__misuse(fn, PACT_EINVAL, #cond " is false");           \
    } while (0)

/* ---- pending operations (op.c) -------------------------------------------
 * Every asynchronous operation embeds one record, registered with its loop
 * while it is pending, so that one rule holds for all of them: the callback
 * runs exactly once. Cancellation (an abort token, pact_loop_close_all, later
 * a scope) stops the work and calls back with the error on a later tick,
 * never inside the call that cancelled; a completion after that is not
 * reported; when the loop is freed with the call still owed, `drop` gives
 * the ud back instead. */

enum pact__op_state {
    PACT__OP_IDLE,      /* not started, or ended */
    PACT__OP_PENDING,   /* registered: completion or cancellation to come */
    PACT__OP_STOPPING,  /* cancelled, its work still running: it ends the op
                           itself (pact__op_end gives it the error) */
    PACT__OP_CANCELLED, /* cancelled and stopped: the core calls back */
};

struct pact__op;

struct pact__op_type {
    const char *what; /* what it waits on: "timer", "offload job"... */
    /* Cancelled: stop the work. @return true when nothing of it runs any
     * more (the core then calls `fail` on a later tick), false when part of
     * it still runs elsewhere (a pool thread): the service then ends the op
     * itself when that returns. */
    bool (*stop)(struct pact__op *op);
    /* Call the operation's callback with @p err (borrowed) and release it. */
    void (*fail)(struct pact__op *op, pact_error *err);
    /* The loop is freed before `fail` could run: release the ud and the
     * operation without calling back. May be NULL (nothing to release). */
    void (*drop)(struct pact__op *op);
    /* May be NULL. Say more than `what` about it (a timer's delay, a
     * file's name) for pact_loop_print_pending, into @p buf. */
    void (*describe)(const struct pact__op *op, char *buf, size_t len);
    /* Its service's hooks take care of it while STOPPING at pact_loop_free:
     * `busy` waits for its work to return, `release` ends it. Otherwise a
     * STOPPING operation makes pact_loop_free refuse. */
    bool waited;
};
/* What @p op waits on, for people (dumps, the pending list): its type's
 * `what`, or for an operation registered through pact_op_start, the
 * pact_op_type's own (an HTTP request, the program's request). */
const char *pact__op_what(const struct pact__op *op);

/* What pact__op_end reads comes first (32 bytes): an operation that
 * completes is often cold, and its owner may keep its own hot fields on the
 * same cache line (see struct read_req). */
struct pact__op {
    struct pact__list node; /* loop->ops while pending, loop->op_due once
                               cancelled and stopped */
    uint8_t state;          /* enum pact__op_state */
    bool ref;               /* keeps the loop alive while pending */
    bool listed;            /* on loop->ops while pending (handles are not: the
                               slot table lists them, at no cost per timer) */
    pact_abort *abort;      /* a reference while listening */
    const struct pact__op_type *type;
    pact_loop *loop;
    uint64_t abort_id;
    pact_error *err;   /* the cancellation, once cancelled */
    const void *owner; /* the task or async frame that started it, or NULL */
};

enum pact__op_flags {
    PACT__OP_REF = 1,      /* keeps the loop alive while pending */
    PACT__OP_UNLISTED = 2, /* a handle's: found through the slot table */
};

/* Register @p op (pending) with @p t; @p abort (borrowed; NULL: the
 * loop's ambient token, if any) cancels it. A token aborted already: it starts,
 * and its cancellation is due on the next tick, as a timer's. @p flags: enum
 * pact__op_flags.
 * @return 0 or PACT_ENOMEM (nothing registered). */
int pact__op_start(pact_loop *loop, struct pact__op *op,
                   const struct pact__op_type *t, pact_abort *abort,
                   unsigned flags);
/* Let @p op keep the loop alive or not (a pooled connection, idle, does
 * not). */
void pact__op_set_ref(struct pact__op *op, bool ref);
/* The operation completed. @return true when the caller calls back, with
 * *@p err NULL (its own result) or the cancellation (a reference for the
 * caller: a STOPPING op whose work came back); false when the core calls
 * back (cancelled and stopped: the completion is ignored). */
bool pact__op_end(struct pact__op *op, pact_error **err);
/* Call @p fn for each operation pending (armed handles first, then the
 * others in the order they started), for the task dump. */
void pact__ops_each(pact_loop *loop,
                    void (*fn)(const struct pact__op *op, void *ud), void *ud);
/* Cancel with @p err (taken; NULL: out of memory, ENOMEM's error is used).
 * No-op unless pending. */
void pact__op_cancel(struct pact__op *op, pact_error *err);
/* The error of an abort with @p reason (may be NULL): ECANCELED caused by
 * it; never NULL (the shared ENOMEM error when out of memory). */
pact_error *pact__aborted_error(pact_error *reason);
/* pact_loop_close_all: cancel every pending operation with ECANCELED. */
void pact__ops_close_all(pact_loop *loop);
/* pact_loop_free: the operations still pending (it then refuses) */
size_t pact__ops_pending(const pact_loop *loop);
/* For a `describe`: "NAME(UD)" into @p buf, NAME the symbol of @p fn where
 * the program exports one, else its address; "nothing" for NULL. */
void pact__describe_call(char *buf, size_t len, void (*fn)(void), void *ud);
/* pact_loop_free: drop the calls still owed. */
void pact__ops_drop(pact_loop *loop);
int pact__ops_init(pact_loop *loop);

/* ---- handle slots -------------------------------------------------------- */

enum slot_kind {
    SLOT_FREE,
    SLOT_TIMER,
    SLOT_IMMEDIATE,
    SLOT_SIGNAL,
    SLOT_POLL
};

enum slot_flags {
    SLOT_REF = 1, /* keeps the loop alive while armed or firing */
};

/* A handle's life, one state at a time (handle.c has the transitions). Two
 * parties may hold a slot at once: what calls it (an interval's running
 * callback, its due cancellation) and the close list; the *_GONE and
 * *_CLOSING states say the user let go while the first still holds it, and
 * it is freed when the last lets go. */
enum slot_state {
    ST_NEW,            /* allocated, being set up */
    ST_ARMED,          /* queued, listed or added to libevent */
    ST_FIRING,         /* an interval inside its own callback, unlinked */
    ST_FIRING_GONE,    /* cleared inside it: freed when it returns */
    ST_FIRING_CLOSING, /* closed inside it: to the close phase after */
    ST_DUE,            /* cancelled: its ECANCELED call is due (op.c) */
    ST_DUE_GONE,       /* cleared meanwhile: freed then, without a call */
    ST_DUE_CLOSING,    /* closed meanwhile: no call, then the close phase */
    ST_CLOSING,        /* on the close list only */
};

struct tlist;

/* The layers above the core that keep per-loop state, by static id in layer
 * order (lowest layer first): pact_loop_close_all, and pact_loop_free's busy
 * check and free, run their hooks top down (highest id first), so that what
 * an upper layer cancels is seen by the layers below it -- the promise
 * layer's search for cycles runs last. */
enum pact__service_id {
    PACT__SVC_PROMISES, /* layer 2: promise.c, reject.c */
    PACT__SVC_TASKS,    /* layer 3: task.c */
    PACT__SVC_GROUPS,   /* layer 4: group.c, scope.c, dump.c */
    PACT__SVC_OFFLOAD,  /* layer 5: offload.c, the pool's per-loop side */
    PACT__SVC_FS,       /* layer 5: fs.c (none yet) */
    PACT__SVC_WORKERS,  /* layer 5: worker.c */
    PACT__SVC_TCP,      /* layer 5: to come */
    PACT__SVC_HTTP,     /* layer 5: to come */
    PACT__SVC_FETCH,    /* layer 5: fetch_pool.c, the client's pool */
    PACT__SVC_STALL,    /* layer 5: stall.c, the watchdog */
    PACT__SERVICES
};

/* A service's hooks; each may be NULL. The core calls up through these
 * without knowing what is above it. */
struct pact__service_ops {
    /* pact_loop_close_all: end what is pending (with PACT_ECANCELED).
     * @return 0, or a code pact_loop_close_all returns (the first one) */
    int (*close_all)(pact_loop *loop, void *state);
    /* pact_loop_free: why it must refuse (a reason), or NULL */
    const char *(*busy)(pact_loop *loop, void *state);
    /* May be NULL. pact_loop_free, once no service is busy and before
     * promises are counted: let go of what callbacks that will never run
     * own (their `ud`: a promise twin's deferred) */
    void (*release)(pact_loop *loop, void *state);
    /* pact_loop_free, once nothing is busy: free @p state */
    void (*free)(pact_loop *loop, void *state);
    /* The loop is about to block in its poll for up to @p wait_ns
     * (UINT64_MAX: no timer): a service whose results come from other
     * threads may spin for them briefly, which costs less than the wake-up a
     * sleeping loop needs. @return true when it has made its event active
     * (the poll then does not block). */
    bool (*spin)(pact_loop *loop, void *state, uint64_t wait_ns);
    /* pact_loop_run begins, on the thread that runs the loop now */
    void (*run)(pact_loop *loop, void *state);
    /* pact_loop_print_pending: a line on @p out per thing of the service's
     * that is not a pending-operation record (a task, a worker). @return
     * how many lines. */
    size_t (*print)(pact_loop *loop, void *state, FILE *out);
};

/* Slots live in fixed chunks, so pointers stay valid while the table grows;
 * an id is (generation << 32 | index + 1). */
struct slot {
    uint32_t gen;
    uint32_t index;
    uint8_t kind;
    uint8_t flags;
    uint8_t state;   /* enum slot_state */
    pact_loop *loop; /* for callbacks that get only the slot */
    void (*cb)(void);
    void *ud;
    union {
        struct {
            struct pact__list node; /* in its duration list */
            struct tlist *list;
            uint64_t start; /* ns */
            uint64_t msecs, repeat;
        } timer;
        struct {
            struct pact__list node; /* in loop->imms */
            uint64_t epoch; /* the check phase count when it was queued */
        } imm;
        struct {
            struct event *ev;
            int num; /* signal number or fd */
        } io;
        struct {
            /* while on the close list, where what it was armed as is
             * over: its timer unlinked, its immediate unqueued, its event
             * freed */
            pact_fn cb;
            void *ud;
            struct slot *next;
        } close;
        uint32_t next_free;
    } u;
    struct pact__op op; /* pending while armed or firing; then while due */
    pact_fn ud_drop;    /* releases ud if the callback never runs, or NULL */
};

#define SLOT_CHUNK 1024

/* A FIFO of (fn, ud) jobs in a growable ring: no allocation per job.
 *
 * Slots can be reserved ahead: an object whose job must be queued where
 * nothing can report a failure (a promise reaction, a task's wake-up) holds
 * one reservation for its life and has at most one job queued at a time, so
 * keeping cap >= len + reserved makes each such push allocation-free. */
struct job {
    pact_fn fn;
    void *ud;
};
struct jobq {
    struct job *v;
    size_t head, len, cap; /* cap is a power of two */
    size_t reserved;       /* slots promised to holders (pact__jobq_reserve) */
};
/* Queue a job beyond the reserved slots: 0 or PACT_ENOMEM. */
int pact__jobq_push(struct jobq *q, pact_fn fn, void *ud);
/* Reserve a slot for one holder: 0 or PACT_ENOMEM. */
int pact__jobq_reserve(struct jobq *q);
void pact__jobq_free(struct jobq *q);

/* Queue the job of a holder of a reservation (or into a slot just popped):
 * never allocates. */
static inline void pact__jobq_put(struct jobq *q, pact_fn fn, void *ud)
{
    assert(q->len < q->cap);
    struct job *j = &q->v[(q->head + q->len++) & (q->cap - 1)];
    j->fn = fn;
    j->ud = ud;
}

static inline bool pact__jobq_pop(struct jobq *q, struct job *out)
{
    if (!q->len)
        return false;
    *out = q->v[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    return true;
}

/* Per-duration timer list, as Node's TimersList; times in ns. */
struct tlist {
    uint64_t msecs, expiry, id;
    size_t heap_idx;
    struct pact__list slots; /* its timers, in expiry order */
    bool running;            /* being fired: emptying it must not free it */
};

struct pact_loop {
    struct event_base *base;
    bool own_base;
    bool running;
    bool stop;
    const char *thread; /* &pact__thread_tag of its thread (see below) */

    uint64_t now; /* ms, CLOCK_MONOTONIC */

    /* handle slots */
    struct slot **chunks;
    uint32_t nchunks;
    uint32_t free_head; /* index + 1, 0 = none */
    uint32_t nslots;    /* slots handed out so far (high-water) */
    size_t live;        /* allocated slots, for pact_loop_free */
    size_t nref;        /* referenced slots armed or firing */

    /* microtasks */
    struct jobq ticks, micro;
    bool draining;

    /* the stall watchdog's view of this thread, or NULL (stall.c) */
    struct pact__stall *stall;

    /* timers */
    struct tlist **heap;
    size_t heap_len, heap_cap;
    struct tlist **map; /* open addressing on msecs */
    size_t map_len, map_cap;
    uint64_t next_list_id;
    struct event *timer_ev;
    int timer_fd;      /* timerfd behind timer_ev, or -1 */
    uint64_t armed_ns; /* the alarm's deadline while set, else 0 */
    /* the handle of the one-shot timer whose callback (and the drain after
     * it) is running, else 0: its slot is free already, but pact_clear of it
     * is harmless there, as clearTimeout (and as for an interval) */
    uint64_t firing_once;

    /* immediates */
    struct pact__list imms; /* queued slots, FIFO */
    uint64_t imm_epoch;

    /* close phase */
    struct slot *closing_head, *closing_tail;

    /* external dispatch (external.c) */
    struct event *kick_ev;
    bool kick_pending;

    /* events of ours added to the base, to tell the program's own from them
     * (pact__own_event_added/_removed) */
    int own_events;
    /* the program's own events that do not keep the loop alive
     * (pact_loop_unref_event) */
    int foreign_unrefs;

    /* pact_loop_run's I/O phase: `foreign` while libevent may be running a
     * callback that is not one of pact's (ours clear it for their span);
     * `foreign_broke` once work queued there broke the dispatch so that the
     * run loop drains it before the next callback (pact__kick). */
    bool foreign;
    bool foreign_broke;

    /* posts (thread-safe door); lock order: post_lock is a leaf */
    pthread_mutex_t post_lock;
    struct jobq posts;      /* filled by producers, under post_lock */
    struct jobq post_batch; /* being run; loop thread only */
    bool post_wake_pending;
    struct pact__wake post_wake;
    struct event *post_ev;
    atomic_long holds;
    atomic_size_t post_queued; /* posted and not yet run, batch included */

    /* the "queues drained" hook (pact__on_drained), or NULL */
    bool (*drained)(pact_loop *loop, void *state);
    void *drained_state;

    /* pending operations (op.c) */
    struct pact__list ops;    /* pending: PENDING or STOPPING */
    struct pact__list op_due; /* CANCELLED: their calls are due */
    size_t op_refs;           /* pending ones that keep the loop alive */
    bool op_tick;             /* the delivery of op_due is queued */

    /* The cancellation of the code running now: the token of the task (or
     * async function, or group callback) on the CPU, set by the layers above
     * as they switch (layer 3) or call into a group (layer 4), else NULL. An
     * operation started without a token of its own takes it, so that a
     * scope's cancellation reaches whatever was started inside it. */
    pact_abort *ambient;
    /* Who runs now (the task or async frame, set with `ambient`), so that
     * an operation records who started it: the task dump shows what each
     * waits on. */
    const void *ambient_owner;

    /* counts pact_loop_close_all calls: what started before one is
     * cancelled (an async function's later awaits fail) */
    uint32_t close_epoch;

    /* upper layers' per-loop state, by enum pact__service_id */
    struct {
        const struct pact__service_ops *ops;
        void *state;
    } services[PACT__SERVICES];

    /* uncaught errors */
    pact_uncaught_hook uncaught_hook;
    void *uncaught_ud;
    pact_error *uncaught;   /* set: stop now and return its code */
    pact_error *last_error; /* the one that stopped the last run */
};

/* The ambient token and owner (struct pact_loop): what the layers above
 * set for a span of code (a task's step, a group's start function), or
 * clear around an operation of their own that no scope should cancel (a
 * deadline's timer), and put back after it. */
struct pact__ambient {
    pact_abort *token;
    const void *owner;
};
static inline struct pact__ambient
pact__ambient_enter(pact_loop *loop, pact_abort *token, const void *owner)
{
    struct pact__ambient was = {loop->ambient, loop->ambient_owner};
    loop->ambient = token;
    loop->ambient_owner = owner;
    return was;
}
static inline void pact__ambient_leave(pact_loop *loop,
                                       struct pact__ambient was)
{
    loop->ambient = was.token;
    loop->ambient_owner = was.owner;
}
static inline pact_abort *pact__ambient(const pact_loop *loop)
{
    return loop->ambient;
}

/* One of pact's own events was added to the base / deleted or freed: the
 * count foreign_events (loop.c) subtracts. */
static inline void pact__own_event_added(pact_loop *loop)
{
    loop->own_events++;
}
static inline void pact__own_event_removed(pact_loop *loop)
{
    assert(loop->own_events > 0);
    loop->own_events--;
}

/* Phases stop between callbacks after pact_loop_stop or an uncaught error;
 * the microtask drain stops only for the latter. */
static inline bool pact__halted(const pact_loop *loop)
{
    return loop->uncaught || loop->stop;
}

/* One byte per thread whose address names the thread: comparing addresses
 * costs no call, where pthread_self() costs one per public entry (and with
 * PACT_TLS_MODEL, from configure, no __tls_get_addr call either). */
extern _Thread_local char pact__thread_tag PACT_TLS_MODEL;

static inline bool pact__on_thread(const pact_loop *loop)
{
    return loop->thread == &pact__thread_tag;
}

/* The calling thread must be the loop's. */
#define PACT_CHECK_THREAD(loop, fn)                                            \
    do {                                                                       \
        if (!pact__on_thread(loop))                                            \
            return pact__misuse(fn, PACT_ETHREAD,                              \
                                "called off the loop thread");                 \
    } while (0)

/* For functions that return no code: true (and reported) when off-thread. */
static inline bool pact__misuse_thread(pact_loop *loop, const char *fn)
{
    if (pact__on_thread(loop))
        return false;
    pact__misuse(fn, PACT_ETHREAD, "called off the loop thread");
    return true;
}

#define PACT_CHECK_LOOP(loop, fn)                                              \
    do {                                                                       \
        if (!(loop))                                                           \
            return pact__misuse(fn, PACT_EINVAL, "loop is NULL");              \
        PACT_CHECK_THREAD(loop, fn);                                           \
    } while (0)

/* ---- step labels, for the stall watchdog ---------------------------------
 * The probes are the core's (here and probe.c); the watchdog that reads them
 * is a service above it (stall.c, PACT__SVC_STALL), which sets loop->stall.
 * The loop thread marks where each outermost step (a macrotask callback, a
 * tick, a microtask) begins and ends, and may refine what runs inside one
 * with a nested label: the layers above fill those in (a promise reaction's
 * handler, a task step, an async function step) without layer 1 knowing
 * what they are. With no watchdog (loop->stall NULL) a mark costs a load and
 * a predicted branch; with one, a few release stores to a record only this
 * thread writes and the watchdog samples.
 *
 * The record is a seqlock whose writer never waits: `outer` is odd inside an
 * outermost step, `nest` odd while a nested label is being rewritten. The
 * watchdog reads the words between two reads of both and keeps what did not
 * change. Only a task's name lives in the user's memory; the watchdog pins
 * the label while copying it, and popping a pinned label waits for that
 * copy (a Dekker handshake, seq_cst on both sides, on task labels only). */

/* What a step runs. */
struct pact__label {
    int kind;            /* pact_step_kind */
    void (*fn)(void);    /* the user's function, or NULL */
    void *ud;            /* its user data */
    const char *name;    /* a task's name (the user's storage), or NULL */
    const char *file;    /* where it was made (static storage), or NULL */
    const char *at_file; /* where it resumed (static storage), or NULL */
    int line, at_line;
};

enum pact__label_word {
    PACT__LW_KIND,
    PACT__LW_FN,
    PACT__LW_UD,
    PACT__LW_NAME,
    PACT__LW_FILE,
    PACT__LW_AT_FILE,
    PACT__LW_LINES, /* line | at_line << 32 */
    PACT__LW_N
};

struct pact__stall {
    /* written by the loop thread only */
    _Atomic uint64_t outer; /* odd inside an outermost step */
    _Atomic uint64_t nest;  /* odd while a nested label is rewritten */
    _Atomic uintptr_t label[PACT__LW_N];
    char pad_[64]; /* keep the watchdog's words off this cache line */
    /* written by the watchdog only */
    _Atomic uint64_t stalled; /* the `outer` of a step it reported */
    _Atomic uint64_t pinned;  /* the `nest` of a label it is copying */
    /* the watchdog's, set before loop->stall points here: step @p outer,
     * which it reported, has ended; wait until it has copied the pinned
     * label */
    void (*ended)(struct pact__stall *s, uint64_t outer);
    void (*wait_copy)(struct pact__stall *s);
};

/* A nested label's predecessor, restored by pact__label_pop. */
struct pact__label_save {
    bool on;   /* a label was pushed */
    bool user; /* it names the user's memory: popping it checks the pin */
    uintptr_t w[PACT__LW_N];
};

#if defined(__GNUC__)
#define PACT__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PACT__LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define PACT__UNLIKELY(x) (x)
#define PACT__LIKELY(x) (x)
#endif

/* probe.c: the slow paths */
void pact__label_push_(struct pact__stall *s, const struct pact__label *l,
                       struct pact__label_save *save);
void pact__label_pop_(struct pact__stall *s, struct pact__label_save *save);

static inline void pact__label_store(struct pact__stall *s, int i, uintptr_t v)
{
    atomic_store_explicit(&s->label[i], v, memory_order_release);
}

/* An outermost step begins: @p kind (pact_step_kind) runs @p fn(@p ud). */
static inline void pact__step_begin(pact_loop *loop, int kind, void (*fn)(void),
                                    void *ud)
{
    struct pact__stall *s = loop->stall;
    if (PACT__UNLIKELY(s != NULL)) {
        uint64_t o = atomic_load_explicit(&s->outer, memory_order_relaxed);
        if (o & 1) /* never nested, but then: end the other one first */
            atomic_store_explicit(&s->outer, ++o, memory_order_release);
        /* outer is even (no step) while the label is rewritten */
        pact__label_store(s, PACT__LW_KIND, (uintptr_t)kind);
        pact__label_store(s, PACT__LW_FN, (uintptr_t)fn);
        pact__label_store(s, PACT__LW_UD, (uintptr_t)ud);
        atomic_store_explicit(&s->outer, o + 1, memory_order_release);
    }
}

/* The outermost step ends. */
static inline void pact__step_end(pact_loop *loop)
{
    struct pact__stall *s = loop->stall;
    if (PACT__UNLIKELY(s != NULL)) {
        uint64_t o = atomic_load_explicit(&s->outer, memory_order_relaxed);
        if (!(o & 1))
            return; /* the watchdog started inside this step */
        atomic_store_explicit(&s->outer, o + 1, memory_order_release);
        /* reported as stalled: say when it ended (a missed store here only
         * makes the watchdog's total less exact) */
        if (PACT__UNLIKELY(
                atomic_load_explicit(&s->stalled, memory_order_relaxed) == o))
            s->ended(s, o);
    }
}

/* Say what the rest of the current outermost step runs (a microtask that
 * is a promise reaction, a tick that is a timer's cancellation): cheaper
 * than a push, as nothing is restored. */
static inline void pact__label_refine(pact_loop *loop, int kind,
                                      void (*fn)(void), void *ud)
{
    struct pact__stall *s = loop->stall;
    if (PACT__UNLIKELY(s != NULL)) {
        uint64_t n = atomic_load_explicit(&s->nest, memory_order_relaxed);
        atomic_store_explicit(&s->nest, n + 1, memory_order_release);
        pact__label_store(s, PACT__LW_KIND, (uintptr_t)kind);
        pact__label_store(s, PACT__LW_FN, (uintptr_t)fn);
        pact__label_store(s, PACT__LW_UD, (uintptr_t)ud);
        atomic_store_explicit(&s->nest, n + 2, memory_order_release);
    }
}

/* Refine the current step's label until pact__label_pop(@p save). */
static inline void pact__label_push(pact_loop *loop,
                                    const struct pact__label *l,
                                    struct pact__label_save *save)
{
    save->on = false;
    if (PACT__UNLIKELY(loop->stall != NULL))
        pact__label_push_(loop->stall, l, save);
}

static inline void pact__label_pop(pact_loop *loop,
                                   struct pact__label_save *save)
{
    if (PACT__UNLIKELY(save->on) && loop->stall)
        pact__label_pop_(loop->stall, save);
}

/* handle.c */
struct slot *pact__slot_alloc(pact_loop *loop, int kind, void (*cb)(void),
                              void *ud);
void pact__slot_free(pact_loop *loop, struct slot *s);
struct slot *pact__slot_get(pact_loop *loop, pact_handle h);
pact_handle pact__slot_handle(const struct slot *s);
/* Move @p s to @p st, keeping loop->nref (armed and firing referenced
 * slots) in step; asserts that the move is one of the lifecycle's. */
void pact__slot_set_state(pact_loop *loop, struct slot *s, int st);
/* Armed or firing: it will be called. */
static inline bool pact__slot_live(const struct slot *s)
{
    return s->state == ST_ARMED || s->state == ST_FIRING;
}
void pact__slots_release_all(pact_loop *loop);
/* pact_loop_close_all: cancel every armed handle with @p err (borrowed). */
void pact__slots_cancel_all(pact_loop *loop, pact_error *err);
/* pact_loop_print_pending: the armed handles. @return how many. */
size_t pact__slots_print(const pact_loop *loop, FILE *out);
/* pact__ops_each's part: each armed handle's record. */
void pact__slots_each(pact_loop *loop,
                      void (*fn)(const struct pact__op *op, void *ud),
                      void *ud);
/* pact_loop_print_pending: the handles on their way to the close phase */
size_t pact__slots_print_closing(const pact_loop *loop, FILE *out);
/* Handles whose cancellation is due (pact_loop_free drops those calls). */
size_t pact__slots_due(const pact_loop *loop);
void pact__run_closing(pact_loop *loop);
/* Mark @p h's ud as owned by its callback: if the loop is freed before the
 * callback could run (pact_loop_close_all, then pact_loop_free without a run
 * between), @p drop releases it. */
int pact__slot_owns_ud(pact_loop *loop, pact_handle h, pact_fn drop);
/* Register an armed slot's operation (@p abort: its token, or NULL). */
int pact__slot_op_start(pact_loop *loop, struct slot *s, pact_abort *abort);

/* tick.c: run after every macrotask callback */
void pact__drain(pact_loop *loop);
/* Set the "queues drained" hook: when a drain has emptied the nextTick and
 * microtask queues, @p fn(loop, @p state) runs (the promise layer's
 * unhandled-rejection processing, as Node's processPromiseRejections), and
 * the drain goes on while it returns true (it ran something that may have
 * queued more work). One hook per loop. */
void pact__on_drained(pact_loop *loop, bool (*fn)(pact_loop *, void *),
                      void *state);
/* A microtask slot for an object (a promise node, a task, an async frame, a
 * service queue) whose jobs are queued where no failure can be reported: take
 * one when it is made (PACT_ENOMEM then), give it back when it is freed. */
int pact__micro_reserve(pact_loop *loop);
void pact__micro_unreserve(pact_loop *loop);
/* The job the microtask drain would run next, or NULL (none, or an
 * uncaught error stops the drain): for a layer that runs it itself, after
 * popping it with pact__jobq_pop(&loop->micro, ...), exactly as the drain
 * would have. */
static inline const struct job *pact__micro_peek(const pact_loop *loop)
{
    const struct jobq *q = &loop->micro;
    return q->len && !loop->uncaught ? &q->v[q->head] : NULL;
}

/* timer.c */
int pact__timers_init(pact_loop *loop);
void pact__timers_free(pact_loop *loop);
void pact__run_timers(pact_loop *loop);
void pact__timer_stop(pact_loop *loop, struct slot *s);
/* ns from now until the earliest timer is due; UINT64_MAX if none */
uint64_t pact__timers_wait_ns(pact_loop *loop, uint64_t now_ns);
/* when the alarm should ring for the earliest timer (ns, whole ms); 0: none */
uint64_t pact__timers_deadline(pact_loop *loop);
void pact__timers_arm(pact_loop *loop, uint64_t deadline_ns);

/* immediate.c */
void pact__run_immediates(pact_loop *loop);
void pact__immediate_stop(pact_loop *loop, struct slot *s);

/* io.c */
void pact__io_stop(pact_loop *loop, struct slot *s);

/* post.c */
int pact__post_init(pact_loop *loop);
void pact__post_free(pact_loop *loop);

/* external.c: phases for a base the program dispatches itself */
void pact__external_kick(pact_loop *loop);
/* loop.c: work was queued by a callback of the program's own inside
 * pact_loop_run's I/O phase: end libevent's dispatch after that callback, so
 * that the run loop drains the queues before the next one. */
void pact__foreign_kick(pact_loop *loop);
/* Work was queued: with no pact_loop_run on the stack, the program may be
 * dispatching the base itself, so make that dispatch run the phases; inside
 * one, a callback of the program's own must be followed by the drain, as
 * pact's own callbacks are. */
static inline void pact__kick(pact_loop *loop)
{
    if (!loop->running)
        pact__external_kick(loop);
    else if (loop->foreign)
        pact__foreign_kick(loop);
}

/* tick.c: queue the job of a holder of a microtask slot: never fails.
 * Inline: a promise's reaction and a task's wake-up queue one each. */
static inline void pact__micro_must(pact_loop *loop, pact_fn fn, void *ud)
{
    pact__kick(loop);
    pact__jobq_put(&loop->micro, fn, ud);
}

/* pact's own libevent callbacks run between these: they drain the queues
 * themselves, so work they queue needs no break of the dispatch. On a base
 * the program dispatches, work a callback of the program's left queued (its
 * kick comes later) is drained first, so that pact's next macrotask does
 * not run before it. */
static inline bool pact__own_begin(pact_loop *loop)
{
    bool was = loop->foreign;
    loop->foreign = false;
    if (!loop->running && (loop->ticks.len || loop->micro.len))
        pact__drain(loop);
    return was;
}
static inline void pact__own_end(pact_loop *loop, bool was)
{
    loop->foreign = was;
}
void pact__external_arm(pact_loop *loop);
void pact__external_free(pact_loop *loop);

/* loop.c */
uint64_t pact__now_ns(void);
/* Run @p fn on every loop made from now on, after the core's own set-up (in
 * service id order; a negative code fails pact_loop_new). For what a layer
 * reads from the environment at loop creation; called by the layer's
 * constructor, before main. One per id. */
void pact__on_loop_new(enum pact__service_id id, int (*fn)(pact_loop *loop));
/* pact_loop_close_all: the services' close_all, top down. @return 0, or the
 * first code one returned. */
int pact__services_close_all(pact_loop *loop);
/* The state of service @p id on @p loop, made by @p make_state on first use
 * (which then registers @p ops). @return NULL when make_state fails (out of
 * memory). */
void *pact__service(pact_loop *loop, enum pact__service_id id,
                    const struct pact__service_ops *ops,
                    void *(*make_state)(pact_loop *loop));
/* The state of service @p id, or NULL if it never ran on @p loop. */
static inline void *pact__service_find(pact_loop *loop,
                                       enum pact__service_id id)
{
    assert((unsigned)id < PACT__SERVICES);
    return loop->services[id].state;
}

#endif

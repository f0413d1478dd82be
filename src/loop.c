/* The loop: construction, the run loop's phases (timers, I/O poll, check,
 * close, as libuv >= 1.45 orders them for Node), liveness, and uncaught
 * errors. */
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

uint64_t pact__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

_Thread_local char pact__thread_tag;

static int init(pact_loop *loop)
{
    int rc;
    loop->thread = &pact__thread_tag;
    loop->next_list_id = 1;
    atomic_init(&loop->holds, 0);
    atomic_init(&loop->post_queued, 0);
    loop->now = pact__now_ns() / 1000000;
    pact__rejections_init(loop);
    if ((rc = pact__timers_init(loop)) < 0 || (rc = pact__post_init(loop)) < 0)
        return rc;
    return 0;
}

static void teardown(pact_loop *loop)
{
    pact__stall_free(loop);
    for (int i = PACT__SERVICES - 1; i >= 0; i--)
        if (loop->services[i].ops)
            loop->services[i].ops->free(loop, loop->services[i].state);
    pact__external_free(loop);
    pact__post_free(loop);
    pact__timers_free(loop);
    pact__jobq_free(&loop->ticks);
    pact__jobq_free(&loop->micro);
    pact__rejections_free(loop);
    pact__promises_free(loop);
    pact__slots_release_all(loop);
    pact_error_unref(loop->uncaught);
    pact_error_unref(loop->last_error);
    if (loop->own_base)
        event_base_free(loop->base);
    free(loop);
}

static int make(struct event_base *base, bool own, pact_loop **out)
{
    pact_loop *loop = calloc(1, sizeof *loop);
    if (!loop) {
        if (own)
            event_base_free(base);
        return PACT_ENOMEM;
    }
    loop->base = base;
    loop->own_base = own;
    loop->post_fd[0] = loop->post_fd[1] = -1;
    loop->timer_fd = -1;
    int rc = init(loop);
    if (rc < 0) {
        teardown(loop);
        return rc;
    }
    pact__stall_env(loop);
    *out = loop;
    return 0;
}

/* libevent 2.1 ends the process (event_sock_err in evsig_init_) when it
 * cannot make a base's signal pipe, and its epoll_create1 falls back to poll
 * silently. So take the descriptors a base needs first (epoll, a timerfd
 * under EVENT_PRECISE_TIMER, the signal pipe) and hand them back just before
 * making it: a lack of them is then an error returned here. The lock keeps
 * pact's own base makers from taking each other's; a thread of the program
 * that opens descriptors in that window, at the limit, can still take them.
 */
#define BASE_FDS 4

static struct event_base *new_base(int *rc)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    int fd[BASE_FDS], n = 0;
    struct event_base *base = NULL;
    struct event_config *cfg = event_config_new();
    *rc = PACT_ENOMEM;
    if (!cfg)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    pthread_mutex_lock(&lock);
    while (n < BASE_FDS && pipe2(fd + n, O_CLOEXEC) == 0)
        n += 2;
    bool enough = n == BASE_FDS;
    if (!enough)
        *rc = -errno;
    while (n > 0)
        close(fd[--n]);
    if (enough)
        base = event_base_new_with_config(cfg); /* NULL: out of memory */
    pthread_mutex_unlock(&lock);
    event_config_free(cfg);
    return base;
}

int pact_loop_new(pact_loop **out)
{
    PACT_CHECK_ARG(out, "pact_loop_new");
    int rc;
    struct event_base *base = new_base(&rc);
    if (!base)
        return rc;
    return make(base, true, out);
}

int pact_loop_from_base(struct event_base *base, pact_loop **out)
{
    PACT_CHECK_ARG(base, "pact_loop_from_base");
    PACT_CHECK_ARG(out, "pact_loop_from_base");
    return make(base, false, out);
}

/* The program's own events on the base, as libevent counts them (an fd and
 * a timeout apart), less ours. An event of ours that is active counts again
 * in libevent's count until its callback runs, which keeps the loop alive
 * for that poll phase, where it would run anyway; pact_loop_free, outside
 * any phase, takes the active ones out (@p settled). */
static int foreign_events(pact_loop *loop, bool settled)
{
    int n = event_base_get_num_events(loop->base, EVENT_BASE_COUNT_ADDED);
    if (settled)
        n -= event_base_get_num_events(loop->base, EVENT_BASE_COUNT_ACTIVE);
    return n - loop->own_events;
}

int pact_loop_free(pact_loop *loop)
{
    PACT_CHECK_LOOP(loop, "pact_loop_free");
    if (loop->running)
        return pact__misuse("pact_loop_free", PACT_EBUSY,
                            "the loop is running");
    if (loop->live)
        return pact__misuse("pact_loop_free", PACT_EBUSY,
                            "handles are open: clear or close them first");
    if (loop->own_base && foreign_events(loop, true) > 0)
        return pact__misuse("pact_loop_free", PACT_EBUSY,
                            "the program's own events are on the loop's "
                            "event_base: free them first");
    for (int i = 0; i < PACT__SERVICES; i++) {
        const char *why =
            loop->services[i].ops
                ? loop->services[i].ops->busy(loop, loop->services[i].state)
                : NULL;
        if (why)
            return pact__misuse("pact_loop_free", PACT_EBUSY, why);
    }
    if (pact__promises_release(loop))
        return pact__misuse("pact_loop_free", PACT_EBUSY,
                            "promises or deferreds are still referenced: "
                            "unref them first");
    teardown(loop);
    return 0;
}

void *pact__service_find(pact_loop *loop, const struct pact__service_ops *ops)
{
    for (int i = 0; i < PACT__SERVICES; i++)
        if (loop->services[i].ops == ops)
            return loop->services[i].state;
    return NULL;
}

void *pact__service(pact_loop *loop, const struct pact__service_ops *ops,
                    void *(*make_state)(pact_loop *loop))
{
    void *state = pact__service_find(loop, ops);
    if (state)
        return state;
    for (int i = 0; i < PACT__SERVICES; i++) {
        if (loop->services[i].ops)
            continue;
        if (!(state = make_state(loop)))
            return NULL;
        loop->services[i].ops = ops;
        loop->services[i].state = state;
        return state;
    }
    return NULL;
}

struct event_base *pact_loop_base(pact_loop *loop)
{
    return loop ? loop->base : NULL;
}

uint64_t pact_loop_now(pact_loop *loop)
{
    return loop ? loop->now : 0;
}

uint64_t pact_loop_update_time(pact_loop *loop)
{
    if (!loop)
        return 0;
    return loop->now = pact__now_ns() / 1000000;
}

int pact_loop_unref_event(pact_loop *loop)
{
    PACT_CHECK_LOOP(loop, "pact_loop_unref_event");
    loop->foreign_unrefs++;
    return 0;
}

int pact_loop_ref_event(pact_loop *loop)
{
    PACT_CHECK_LOOP(loop, "pact_loop_ref_event");
    if (!loop->foreign_unrefs)
        return pact__misuse("pact_loop_ref_event", PACT_EINVAL,
                            "no pact_loop_unref_event to undo");
    loop->foreign_unrefs--;
    return 0;
}

static bool alive(pact_loop *loop)
{
    return loop->nref || loop->closing_head || loop->ticks.len ||
           loop->micro.len || loop->svc_pending ||
           atomic_load_explicit(&loop->post_queued, memory_order_relaxed) ||
           atomic_load_explicit(&loop->holds, memory_order_relaxed) ||
           foreign_events(loop, false) > loop->foreign_unrefs;
}

bool pact_loop_alive(pact_loop *loop)
{
    return loop && alive(loop);
}

/* Before the poll blocks: a service expecting results from other threads
 * (the offload pool) may spin for them. @return whether one has. */
static bool services_spin(pact_loop *loop, uint64_t wait_ns)
{
    for (int i = 0; i < PACT__SERVICES; i++) {
        const struct pact__service_ops *ops = loop->services[i].ops;
        if (ops && ops->spin &&
            ops->spin(loop, loop->services[i].state, wait_ns))
            return true;
    }
    return false;
}

void pact__foreign_kick(pact_loop *loop)
{
    if (loop->foreign_broke)
        return;
    loop->foreign_broke = true;
    event_base_loopbreak(loop->base); /* after the current callback */
}

/* libevent runs the ready callbacks. pact's own drain after each; libevent
 * 2.1 has no hook after a callback of the program's own, so one that queues
 * work breaks the dispatch (pact__foreign_kick): drain then, and go on with
 * the callbacks still ready. Each round runs at least the head of libevent's
 * active queue, which is FIFO, so rounds bounded by what was ready at the
 * first break finish this phase's callbacks without letting new I/O that
 * keeps arriving hold it. */
static void dispatch(pact_loop *loop, int flags)
{
    loop->foreign = true;
    event_base_loop(loop->base, flags);
    if (loop->foreign_broke) {
        int left =
            event_base_get_num_events(loop->base, EVENT_BASE_COUNT_ACTIVE);
        do {
            loop->foreign = loop->foreign_broke = false;
            pact__drain(loop);
            if (left-- <= 0 || pact__halted(loop))
                break;
            loop->foreign = true;
            event_base_loop(loop->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        } while (loop->foreign_broke);
    }
    loop->foreign = false;
}

/* The poll phase: wait for I/O until the next timer, or not at all. */
static void poll_io(pact_loop *loop, bool can_block)
{
    int flags = EVLOOP_ONCE;
    if (!can_block || loop->imm_head || loop->closing_head || loop->stop) {
        flags |= EVLOOP_NONBLOCK;
    } else {
        uint64_t now = pact__now_ns();
        uint64_t wait = pact__timers_wait_ns(loop, now);
        if (wait == 0 || (loop->svc_pending && services_spin(loop, wait)))
            flags |= EVLOOP_NONBLOCK;
        else if (wait != UINT64_MAX)
            pact__timers_arm(loop, now + wait);
    }
    dispatch(loop, flags);
}

static int finish(pact_loop *loop, bool more)
{
    loop->running = false;
    if (loop->uncaught) {
        /* reported once; the loop may be run again */
        int code = pact_error_code(loop->uncaught);
        pact_error_unref(loop->last_error);
        loop->last_error = loop->uncaught;
        loop->uncaught = NULL;
        return code < 0 ? code : PACT_EUNKNOWN;
    }
    return more;
}

int pact_loop_run(pact_loop *loop, pact_run_mode mode)
{
    static const char fn[] = "pact_loop_run";
    /* the thread check comes first: `running` is the loop thread's alone */
    PACT_CHECK_LOOP(loop, fn);
    if (loop->running)
        return pact__misuse(fn, PACT_EBUSY, "the loop is already running");
    PACT_CHECK_ARG(mode >= PACT_RUN_DEFAULT && mode <= PACT_RUN_NOWAIT, fn);
    if (loop->stall)
        pact__stall_thread(loop);
    loop->running = true;
    loop->stop = false;
    pact_error_unref(loop->last_error); /* it described the last run */
    loop->last_error = NULL;
    pact__drain(loop); /* the end of the main program's turn */
    bool more = alive(loop);
    if (mode == PACT_RUN_DEFAULT && more && !pact__halted(loop)) {
        pact__run_timers(loop);
        more = alive(loop);
    }
    while (more && !pact__halted(loop)) {
        poll_io(loop, mode != PACT_RUN_NOWAIT);
        pact__run_immediates(loop);
        pact__run_closing(loop);
        pact__run_timers(loop);
        more = alive(loop);
        if (mode != PACT_RUN_DEFAULT)
            break;
    }
    return finish(loop, more);
}

int pact_loop_stop(pact_loop *loop)
{
    PACT_CHECK_LOOP(loop, "pact_loop_stop");
    /* outside pact_loop_run this only ends the program's own dispatch */
    loop->stop = loop->running;
    /* in the I/O phase, leave the other ready events for the next run */
    event_base_loopbreak(loop->base);
    return 0;
}

void pact_loop_raise(pact_loop *loop, pact_error *err)
{
    if (!loop || pact__misuse_thread(loop, "pact_loop_raise"))
        return;
    if (!err)
        err = PACT_ERROR(PACT_EUNKNOWN, "pact_loop_raise() without an error");
    else
        pact_error_ref(err);
    if (loop->uncaught_hook &&
        loop->uncaught_hook(loop, err, loop->uncaught_ud)) {
        pact_error_unref(err);
        return;
    }
    if (loop->uncaught) { /* already stopping for another: report, keep the
                             first */
        fputs("pact: another uncaught error while stopping:\n", stderr);
        pact_error_print(err, stderr);
        pact_error_unref(err);
        return;
    }
    fputs("pact: uncaught error:\n", stderr);
    pact_error_print(err, stderr);
    loop->uncaught = err;
    event_base_loopbreak(loop->base);
}

int pact_loop_on_uncaught(pact_loop *loop, pact_uncaught_hook hook, void *ud)
{
    PACT_CHECK_LOOP(loop, "pact_loop_on_uncaught");
    loop->uncaught_hook = hook;
    loop->uncaught_ud = ud;
    return 0;
}

pact_error *pact_loop_error(pact_loop *loop)
{
    if (!loop)
        return NULL;
    return loop->uncaught ? loop->uncaught : loop->last_error;
}

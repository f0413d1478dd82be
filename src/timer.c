/* Timers as Node keeps them: one FIFO list per duration (so equal delays fire
 * in insertion order and adding is O(1)), a binary heap of those lists keyed
 * by (expiry, id), and one libevent timer armed for the earliest list. With
 * many timers and few distinct durations this costs far less per timer than
 * one heap entry each. */
#include "internal.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef HAVE_SYS_TIMERFD_H
#include <sys/timerfd.h>
#endif

#define MS 1000000ull /* ns; timers keep ns so they never fire early */

/* Refresh the loop's clock. @return now in ns. */
static uint64_t clock_ns(pact_loop *loop)
{
    uint64_t ns = pact__now_ns();
    loop->now = ns / MS;
    return ns;
}

/* ---- the heap of lists --------------------------------------------------- */

static bool before(const struct tlist *a, const struct tlist *b)
{
    return a->expiry != b->expiry ? a->expiry < b->expiry : a->id < b->id;
}

static void heap_set(pact_loop *loop, size_t i, struct tlist *l)
{
    loop->heap[i] = l;
    l->heap_idx = i;
}

static void sift_up(pact_loop *loop, size_t i)
{
    struct tlist *l = loop->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(l, loop->heap[p]))
            break;
        heap_set(loop, i, loop->heap[p]);
        i = p;
    }
    heap_set(loop, i, l);
}

static void sift_down(pact_loop *loop, size_t i)
{
    struct tlist *l = loop->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= loop->heap_len)
            break;
        if (c + 1 < loop->heap_len && before(loop->heap[c + 1], loop->heap[c]))
            c++;
        if (!before(loop->heap[c], l))
            break;
        heap_set(loop, i, loop->heap[c]);
        i = c;
    }
    heap_set(loop, i, l);
}

static int heap_push(pact_loop *loop, struct tlist *l)
{
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
        struct tlist **h = realloc(loop->heap, cap * sizeof *h);
        if (!h)
            return PACT_ENOMEM;
        loop->heap = h;
        loop->heap_cap = cap;
    }
    loop->heap[loop->heap_len] = l;
    sift_up(loop, loop->heap_len++);
    return 0;
}

static void heap_remove(pact_loop *loop, struct tlist *l)
{
    size_t i = l->heap_idx;
    struct tlist *last = loop->heap[--loop->heap_len];
    if (last == l)
        return;
    heap_set(loop, i, last);
    if (i > 0 && before(last, loop->heap[(i - 1) / 2]))
        sift_up(loop, i);
    else
        sift_down(loop, i);
}

/* ---- duration -> list map (open addressing, backward-shift deletion) ----- */

static size_t map_slot(const pact_loop *loop, uint64_t msecs)
{
    return (size_t)((msecs * 0x9E3779B97F4A7C15ull) >> 17) &
           (loop->map_cap - 1);
}

static struct tlist *map_get(const pact_loop *loop, uint64_t msecs)
{
    if (!loop->map_cap)
        return NULL;
    for (size_t i = map_slot(loop, msecs);; i = (i + 1) & (loop->map_cap - 1)) {
        struct tlist *l = loop->map[i];
        if (!l || l->msecs == msecs)
            return l;
    }
}

static void map_insert(pact_loop *loop, struct tlist *l)
{
    size_t i = map_slot(loop, l->msecs);
    while (loop->map[i])
        i = (i + 1) & (loop->map_cap - 1);
    loop->map[i] = l;
    loop->map_len++;
}

static int map_put(pact_loop *loop, struct tlist *l)
{
    if ((loop->map_len + 1) * 2 > loop->map_cap) {
        size_t cap = loop->map_cap ? loop->map_cap * 2 : 64;
        struct tlist **old = loop->map;
        size_t oldcap = loop->map_cap;
        loop->map = calloc(cap, sizeof *loop->map);
        if (!loop->map) {
            loop->map = old;
            return PACT_ENOMEM;
        }
        loop->map_cap = cap;
        loop->map_len = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i])
                map_insert(loop, old[i]);
        free(old);
    }
    map_insert(loop, l);
    return 0;
}

static void map_del(pact_loop *loop, struct tlist *l)
{
    size_t mask = loop->map_cap - 1, i = map_slot(loop, l->msecs);
    while (loop->map[i] != l)
        i = (i + 1) & mask;
    loop->map[i] = NULL;
    loop->map_len--;
    /* close the gap so later probes still find their entries */
    for (size_t j = (i + 1) & mask; loop->map[j]; j = (j + 1) & mask) {
        size_t home = map_slot(loop, loop->map[j]->msecs);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            loop->map[i] = loop->map[j];
            loop->map[j] = NULL;
            i = j;
        }
    }
}

/* ---- lists --------------------------------------------------------------- */

static void list_drop(pact_loop *loop, struct tlist *l)
{
    heap_remove(loop, l);
    map_del(loop, l);
    free(l);
}

static void unlink_timer(pact_loop *loop, struct slot *s)
{
    struct tlist *l = s->u.timer.list;
    pact__list_remove(&s->u.timer.node);
    s->u.timer.list = NULL;
    if (pact__list_empty(&l->slots) && !l->running)
        list_drop(loop, l);
}

static int link_timer(pact_loop *loop, struct slot *s, uint64_t msecs,
                      uint64_t start)
{
    struct tlist *l = map_get(loop, msecs);
    if (!l) {
        l = calloc(1, sizeof *l);
        if (!l)
            return PACT_ENOMEM;
        l->msecs = msecs;
        pact__list_init(&l->slots);
        l->expiry = start + msecs * MS;
        l->id = loop->next_list_id++;
        if (heap_push(loop, l) < 0) {
            free(l);
            return PACT_ENOMEM;
        }
        if (map_put(loop, l) < 0) {
            heap_remove(loop, l);
            free(l);
            return PACT_ENOMEM;
        }
    }
    s->u.timer.list = l;
    s->u.timer.start = start;
    s->u.timer.msecs = msecs;
    pact__list_push_back(&l->slots, &s->u.timer.node);
    return 0;
}

void pact__timer_stop(pact_loop *loop, struct slot *s)
{
    if (s->u.timer.list)
        unlink_timer(loop, s);
}

/* ---- public -------------------------------------------------------------- */

/* A delay as Node takes it: below 1 (0, negative) is 1 ms; above
 * TIMEOUT_MAX is 1 ms too, with Node's TimeoutOverflowWarning (once per call:
 * *warned). A signed parameter, so that -5 is not a huge unsigned value. */
static uint64_t clamp_delay(int64_t ms, const char *fn, bool *warned)
{
    if (ms > PACT_TIMEOUT_MAX) {
        if (!*warned)
            fprintf(stderr,
                    "pact: %s(): TimeoutOverflowWarning: %" PRId64
                    " does not fit into a 32-bit signed integer.\n"
                    "Timeout duration was set to 1.\n",
                    fn, ms);
        *warned = true;
        return 1;
    }
    return ms < 1 ? 1 : (uint64_t)ms;
}

/* @p fn: the public function the user called, for misuse reports */
static int timer_start(pact_loop *loop, const pact_timer_opts *opts, pact_cb cb,
                       void *ud, pact_handle *out, const char *fn)
{
    PACT_CHECK_LOOP(loop, fn);
    PACT_CHECK_ARG(opts, fn);
    PACT_CHECK_ARG(cb, fn);
    bool warned = false;
    uint64_t msecs = clamp_delay(opts->delay_ms, fn, &warned);
    uint64_t repeat =
        opts->repeat_ms ? clamp_delay(opts->repeat_ms, fn, &warned) : 0;
    struct slot *s = pact__slot_alloc(loop, SLOT_TIMER, (void (*)(void))cb, ud);
    if (!s)
        return PACT_ENOMEM;
    s->u.timer.list = NULL;
    s->u.timer.repeat = repeat;
    if (opts->unref)
        s->flags &= (uint8_t)~SLOT_REF;
    int rc = link_timer(loop, s, msecs, clock_ns(loop));
    if (rc == 0) {
        /* a token aborted already stops it here: the call is then due */
        rc = pact__slot_op_start(loop, s, opts->abort);
        if (rc < 0)
            unlink_timer(loop, s);
    }
    if (rc == 0 && s->state == ST_NEW) { /* not due at once */
        pact__slot_set_state(loop, s, ST_ARMED);
        if (!loop->running)
            pact__external_arm(loop);
    }
    if (rc < 0) {
        pact__slot_free(loop, s);
        return rc;
    }
    if (out)
        *out = pact__slot_handle(s);
    return 0;
}

int pact_timer_start(pact_loop *loop, const pact_timer_opts *opts, pact_cb cb,
                     void *ud, pact_handle *out)
{
    return timer_start(loop, opts, cb, ud, out, "pact_timer_start");
}

int pact_timeout(pact_loop *loop, int64_t ms, pact_cb cb, void *ud,
                 pact_handle *out)
{
    pact_timer_opts o = {.delay_ms = ms};
    return timer_start(loop, &o, cb, ud, out, "pact_timeout");
}

int pact_interval(pact_loop *loop, int64_t ms, pact_cb cb, void *ud,
                  pact_handle *out)
{
    pact_timer_opts o = {.delay_ms = ms, .repeat_ms = ms ? ms : 1};
    return timer_start(loop, &o, cb, ud, out, "pact_interval");
}

int pact_timer_refresh(pact_loop *loop, pact_handle h)
{
    static const char fn[] = "pact_timer_refresh";
    PACT_CHECK_LOOP(loop, fn);
    struct slot *s = pact__slot_get(loop, h);
    if (s && s->kind != SLOT_TIMER)
        return pact__misuse(fn, PACT_EINVAL,
                            "not a timer (an immediate, signal or poller: "
                            "only timers have a delay to restart)");
    if (!s || !pact__slot_live(s))
        return pact__misuse(fn, PACT_ENOENT, "not a pending timer");
    if (!s->u.timer.list)
        return 0; /* an interval in its callback: it re-arms from now anyway */
    uint64_t msecs = s->u.timer.msecs;
    unlink_timer(loop, s);
    return link_timer(loop, s, msecs, clock_ns(loop));
}

/* ---- the timers phase ---------------------------------------------------- */

/* Fire one timer; the list stays at the top of the heap meanwhile. */
static void fire(pact_loop *loop, struct slot *s)
{
    pact_cb cb = (pact_cb)s->cb;
    void *ud = s->ud;
    unlink_timer(loop, s);
    if (!s->u.timer.repeat) {
        uint64_t outer = loop->firing_once; /* a nested run's timer */
        loop->firing_once = pact__slot_handle(s).id;
        pact__slot_free(loop, s);
        pact__step_begin(loop, PACT_STEP_TIMER, (void (*)(void))cb, ud);
        cb(NULL, ud);
        pact__step_end(loop);
        pact__drain(loop);
        loop->firing_once = outer;
        return;
    }
    uint64_t start = clock_ns(loop);
    pact__slot_set_state(loop, s, ST_FIRING);
    pact__step_begin(loop, PACT_STEP_TIMER, (void (*)(void))cb, ud);
    cb(NULL, ud);
    pact__step_end(loop);
    switch (s->state) {
    case ST_FIRING_GONE: /* cleared in its callback */
        pact__slot_free(loop, s);
        break;
    case ST_FIRING_CLOSING: /* closed in it: the close phase frees it */
        pact__slot_set_state(loop, s, ST_CLOSING);
        break;
    case ST_FIRING:
        if (link_timer(loop, s, s->u.timer.repeat, start) == 0) {
            pact__slot_set_state(loop, s, ST_ARMED);
            break;
        }
        pact__slot_free(loop, s);
        pact_error *err = PACT_ERROR(PACT_ENOMEM, "cannot re-arm interval");
        pact_loop_raise(loop, err);
        pact_error_unref(err);
        break;
    default: /* cancelled inside it: its due call frees it */
        break;
    }
    pact__drain(loop);
}

/* listOnTimeout: fire the due timers at the head of @p l, then re-key it. */
static void run_list(pact_loop *loop, struct tlist *l, uint64_t now)
{
    l->running = true;
    struct pact__list *n;
    while ((n = pact__list_first(&l->slots)) && !pact__halted(loop)) {
        struct slot *s = pact__list_entry(n, struct slot, u.timer.node);
        /* start may be after now: re-armed intervals and new timers */
        uint64_t due = s->u.timer.start + l->msecs * MS;
        if (due > now) {
            l->expiry = due;
            l->id = loop->next_list_id++;
            sift_down(loop, l->heap_idx);
            l->running = false;
            return;
        }
        fire(loop, s);
    }
    l->running = false;
    if (pact__list_empty(&l->slots))
        list_drop(loop, l);
}

void pact__run_timers(pact_loop *loop)
{
    uint64_t now = clock_ns(loop);
    while (loop->heap_len && loop->heap[0]->expiry <= now &&
           !pact__halted(loop))
        run_list(loop, loop->heap[0], now);
}

uint64_t pact__timers_deadline(pact_loop *loop)
{
    if (!loop->heap_len)
        return 0;
    /* wake on whole ms: timers due within one ms fire in one batch (as with
     * Node's ms clock) instead of one wake-up each, and still never early */
    return (loop->heap[0]->expiry + MS - 1) / MS * MS;
}

uint64_t pact__timers_wait_ns(pact_loop *loop, uint64_t now_ns)
{
    uint64_t due = pact__timers_deadline(loop);
    if (!due)
        return UINT64_MAX;
    return due > now_ns ? due - now_ns : 0;
}

/* The poll phase's alarm. On Linux a timerfd on CLOCK_MONOTONIC, set only
 * when the deadline changes: libevent's own timers would need
 * EVENT_BASE_FLAG_PRECISE_TIMER for ms accuracy, which costs a
 * timerfd_settime on every dispatch, tripling the cost of an idle
 * iteration. Elsewhere a libevent timer (precise there by default). */
static void timer_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    pact_loop *loop = arg;
#ifdef HAVE_SYS_TIMERFD_H
    uint64_t expirations;
    ssize_t n = read(fd, &expirations, sizeof expirations);
    (void)n;
#else
    (void)fd;
    pact__own_event_removed(loop);
#endif
    loop->armed_ns = 0;
    if (!loop->running && !pact__halted(loop)) { /* dispatched by the program */
        pact__drain(loop); /* what a callback of the program's queued */
        pact__run_timers(loop);
        pact__external_arm(loop);
    }
}

/* Make the poll phase wake up by @p deadline_ns (absolute, CLOCK_MONOTONIC). */
void pact__timers_arm(pact_loop *loop, uint64_t deadline_ns)
{
    if (loop->armed_ns == deadline_ns)
        return;
    loop->armed_ns = deadline_ns;
#ifdef HAVE_SYS_TIMERFD_H
    struct itimerspec its = {.it_value = {(time_t)(deadline_ns / 1000000000ull),
                                          (long)(deadline_ns % 1000000000ull)}};
    timerfd_settime(loop->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
#else
    uint64_t now = pact__now_ns();
    uint64_t d = deadline_ns > now ? deadline_ns - now : 0;
    struct timeval tv = {(time_t)(d / 1000000000ull),
                         (suseconds_t)((d % 1000000000ull + 999) / 1000)};
    if (tv.tv_usec >= 1000000) {
        tv.tv_sec++;
        tv.tv_usec -= 1000000;
    }
    if (!event_pending(loop->timer_ev, EV_TIMEOUT, NULL))
        pact__own_event_added(loop);
    event_add(loop->timer_ev, &tv);
#endif
}

int pact__timers_init(pact_loop *loop)
{
#ifdef HAVE_SYS_TIMERFD_H
    loop->timer_fd =
        timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (loop->timer_fd < 0)
        return -errno;
    loop->timer_ev = event_new(loop->base, loop->timer_fd, EV_READ | EV_PERSIST,
                               timer_ev_cb, loop);
    if (!loop->timer_ev)
        return PACT_ENOMEM;
    errno = 0;
    if (event_add(loop->timer_ev, NULL) < 0)
        return pact__ev_error();
    pact__own_event_added(loop);
#else
    loop->timer_ev = event_new(loop->base, -1, 0, timer_ev_cb, loop);
    if (!loop->timer_ev)
        return PACT_ENOMEM;
#endif
    return 0;
}

void pact__timers_free(pact_loop *loop)
{
    if (loop->timer_ev)
        event_free(loop->timer_ev);
#ifdef HAVE_SYS_TIMERFD_H
    if (loop->timer_fd >= 0)
        close(loop->timer_fd);
#endif
    /* lists are dropped as their last timer goes; none are left here */
    free(loop->heap);
    free(loop->map);
}

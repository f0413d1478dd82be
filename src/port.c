/* The channel between a worker and its parent, and the ports' API: posts
 * (messages checked, moved or copied), the receiving end's delivery pass
 * (messages, room, termination, the end), spinning, and liveness.
 * src/worker_internal.h describes the design and the lock order. */
#include "json_deep.h"
#include "worker_internal.h"

#include <sched.h>

#include "promise_internal.h"

/* A delivery pass returns to the loop after this long (ns), so that a
 * steady stream of messages cannot starve timers and immediates. */
#define PASS_MAX_NS 1000000u

/* ---- wake-ups -------------------------------------------------------------
 */

/* Tell @p p something happened (any thread). While its pass runs (and
 * spins) the receiver needs no write: the seq_cst pair with pass() (our
 * bump, then our look at awake; its clear of awake, then its look at seq)
 * means a receiver about to sleep always sees the bump, so skipping the
 * write is safe. */
void pact__port_notify(pact_port *p)
{
    atomic_fetch_add(&p->seq, 1);
    if (atomic_load(&p->awake))
        return;
    if (!atomic_exchange(&p->signalled, true))
        pact__wake_signal(&p->wake);
}

/* Have a pass run on our own loop soon (loop thread): for completions that
 * must not run inside the call that made them. */
void pact__port_self_wake(pact_port *p)
{
    p->self = true;
    if (!p->in_pass)
        pact__port_notify(p);
    pact__port_update_ref(p);
}

/* ---- messages --------------------------------------------------------------
 */

/* Whether every node of @p root is held once (the root by the caller), so
 * that moving it shares nothing. Immortal singletons (true, false, null) are
 * immutable and shared safely. Iterative: trees may be deep. */
static bool exclusive(json_t *root)
{
    json_t *local[64], **stack = local;
    size_t n = 0, cap = 64;
    bool ok = true;
    stack[n++] = root;
    while (ok && n) {
        json_t *j = stack[--n];
        size_t rc = __atomic_load_n(&j->refcount, __ATOMIC_RELAXED);
        if (rc == (size_t)-1)
            continue;
        if (rc != 1) {
            ok = false;
            break;
        }
        size_t kids = json_is_object(j)  ? json_object_size(j)
                      : json_is_array(j) ? json_array_size(j)
                                         : 0;
        if (n + kids > cap) {
            size_t ncap = (n + kids) * 2;
            json_t **s = stack == local ? malloc(ncap * sizeof *s)
                                        : realloc(stack, ncap * sizeof *s);
            if (!s) {
                ok = false; /* copy instead: that reports ENOMEM if need be */
                break;
            }
            if (stack == local)
                memcpy(s, local, n * sizeof *s);
            stack = s;
            cap = ncap;
        }
        if (json_is_object(j)) {
            const char *key;
            json_t *v;
            json_object_foreach(j, key, v) stack[n++] = v;
        } else if (json_is_array(j)) {
            for (size_t i = 0; i < kids; i++)
                stack[n++] = json_array_get(j, i);
        }
    }
    if (stack != local)
        free(stack);
    return ok;
}

/* Check that @p v can be sent and make what travels: @p v itself, or for a
 * shared JSON tree a deep copy in *@p copy (the caller's reference is dropped
 * only once the post succeeds). */
static int prepare(const pact_value *v, json_t **copy)
{
    *copy = NULL;
    switch (v->kind) {
    case PACT_NOTHING:
    case PACT_INT:
    case PACT_DOUBLE:
        return 0;
    case PACT_BYTES:
        return v->u.bytes.data || !v->u.bytes.len ? 0 : PACT_EINVAL;
    case PACT_STRING:
        return v->u.str ? 0 : PACT_EINVAL;
    case PACT_JSON:
        if (!v->u.json)
            return PACT_EINVAL;
        if (exclusive(v->u.json))
            return 0;
        /* NULL: a cycle (jansson refuses to copy one) or no memory */
        *copy = pact__json_copy(v->u.json); /* any depth: no recursion */
        return *copy ? 0 : PACT_EINVAL;
    default:
        return PACT_EINVAL;
    }
}

/* ---- the receiving end: one pass over what arrived ----------------------- */

/* Take everything posted to @p p into its backlog. */
static void take(pact_port *p)
{
    struct chan *c = &p->in;
    pthread_mutex_lock(&c->lock);
    if (c->q.len)
        ring_move(&p->backlog, &c->q, sizeof(pact_value));
    if (c->ended && !c->q.len && !p->peer_ended) {
        p->peer_ended = true;
        if (p->parent) { /* written before ended, under this lock */
            p->w->code = p->w->end_code;
            p->w->err = p->w->end_err;
            p->w->end_err = NULL;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

/* What a callback left in a message goes back to the sender's thread to be
 * released there: its allocator made it, and freeing it on this thread
 * would contend for that allocator's arena with the sender's next
 * allocation (glibc), which costs more than the whole post. */
static void keep_trash(pact_port *p, pact_value *m)
{
    if ((m->kind == PACT_JSON || m->kind == PACT_BYTES ||
         m->kind == PACT_STRING) &&
        ring_push(&p->trash, m, sizeof *m) == 0)
        return;
    pact_value_release(m);
}

/* Release what the other end handed back (the sender's side of the above).
 * @p c is the other end's inbox; called with its lock held: only swaps. */
static void take_trash_locked(pact_port *p, struct chan *c)
{
    if (c->trash.len && !p->spare.len) {
        struct ring t = p->spare;
        p->spare = c->trash;
        c->trash = t;
    }
}

/* Give the sender back the room of what we consumed, and what is left of
 * the messages (up to the bound: a sender that posts no more cannot take
 * them back, so past that we release them here); wake it if it waits. */
static void publish(pact_port *p)
{
    if (!p->consumed && !p->trash.len)
        return;
    struct chan *c = &p->in;
    pthread_mutex_lock(&c->lock);
    if (p->trash.len && c->trash.len < c->max)
        ring_move(&c->trash, &p->trash, sizeof(pact_value));
    size_t left =
        atomic_load_explicit(&c->inflight, memory_order_relaxed) - p->consumed;
    atomic_store_explicit(&c->inflight, left, memory_order_relaxed);
    bool wake = c->wants_room && left <= c->max / 2;
    if (wake)
        c->wants_room = false;
    pthread_mutex_unlock(&c->lock);
    p->consumed = 0;
    ring_release_values(&p->trash); /* what did not fit */
    if (wake)
        pact__port_notify(p->peer);
}

/* Fail the waiters of @p r (one of @p p's rings) with @p err (loop thread,
 * in a pass). Only those waiting now: one that a callback adds (a receive
 * after PACT_EOF, say) waits for a later pass, so that a callback that
 * always waits again cannot keep this walk going. */
static void fail_all(pact_port *p, struct wlist *r, pact_error *err)
{
    uint64_t limit = p->svc->wseq;
    struct waiter x;
    while (pact__waiter_pop(r, limit, &x)) {
        pact__waiter_call(&x, err, NULL, 0);
        pact__drain(p->loop);
        if (p->w->dead)
            return;
    }
}

static bool stopped(pact_port *p)
{
    return p->w->dead || pact__halted(p->loop);
}

/* Hand the backlog to pending receives, then to the listener. */
static void deliver(pact_port *p)
{
    while (p->backlog.len && !stopped(p)) {
        /* a receive made by a callback here takes the next message */
        struct waiter r;
        bool recv = pact__waiter_pop(&p->recvs, UINT64_MAX, &r);
        if (!recv && !p->on_msg)
            break;
        pact_value m;
        ring_pop(&p->backlog, &m, sizeof m);
        p->consumed++;
        if (recv)
            pact__waiter_call(&r, NULL, &m, 0);
        else
            p->on_msg(NULL, &m, p->on_msg_ud);
        keep_trash(p, &m);
        pact__drain(p->loop);
        if (p->consumed >= 64)
            publish(p);
    }
    if (p->peer_ended && !p->backlog.len && p->recvs.len && !stopped(p)) {
        pact_error *err = p->parent && p->w->err
                              ? pact_error_ref(p->w->err)
                              : PACT_ERROR(PACT_EOF,
                                           "worker %s has ended: "
                                           "no more messages",
                                           p->w->name);
        fail_all(p, &p->recvs, err);
        pact_error_unref(err);
    }
}

/* Look at the other end's inbox: gone, or with room (consumed down to half
 * its bound); while neither, ask its receiver to wake us for room. */
static bool room_or_closed(pact_port *p, bool *closed)
{
    struct chan *c = &p->peer->in;
    pthread_mutex_lock(&c->lock);
    *closed = c->closed;
    bool room =
        atomic_load_explicit(&c->inflight, memory_order_relaxed) <= c->max / 2;
    c->wants_room = !*closed && !room;
    pthread_mutex_unlock(&c->lock);
    return *closed || room;
}

/* Waiters for room: complete them, in order, while the other end's inbox
 * has room, each once: a waiter sees room when it is called (the callback
 * before it may have filled the queue again, and then the rest wait for the
 * receiver to make room), and one made by a callback here waits for a later
 * look (so a callback that posts until PACT_EAGAIN and waits again is called
 * again only once there is room, not at once in a loop). */
static void check_room(pact_port *p)
{
    uint64_t limit = p->svc->wseq;
    bool closed;
    while (p->writers.len && room_or_closed(p, &closed)) {
        struct waiter x;
        if (!pact__waiter_pop(&p->writers, limit, &x))
            break;
        pact_error *err = closed ? PACT_ERROR(PACT_EPIPE,
                                              "worker %s has ended or is "
                                              "terminating",
                                              p->w->name)
                                 : NULL;
        if (closed && !err)
            err = pact__enomem();
        pact__waiter_call(&x, pact__error_site(err, x.site), NULL, 0);
        pact_error_unref(err);
        pact__drain(p->loop);
        if (stopped(p))
            return;
    }
    if (!p->writers.len) { /* nobody waits for room any more */
        struct chan *c = &p->peer->in;
        pthread_mutex_lock(&c->lock);
        c->wants_room = false;
        pthread_mutex_unlock(&c->lock);
    }
}

/* The worker's end notices termination: fail its receives, stop its loop
 * (worker_main then cancels what is left). */
static void terminated(pact_port *p)
{
    p->term_seen = true;
    pact_error *err =
        PACT_ERROR(PACT_ECANCELED, "worker %s was terminated", p->w->name);
    fail_all(p, &p->recvs, err);
    fail_all(p, &p->writers, err);
    pact_error_unref(err);
    pact_loop_stop(p->loop);
}

/* Release what the other end handed back (when this end posts no more). */
static void collect(pact_port *p)
{
    struct chan *c = &p->peer->in;
    pthread_mutex_lock(&c->lock);
    take_trash_locked(p, c);
    pthread_mutex_unlock(&c->lock);
    ring_release_values(&p->spare);
}

static void step(pact_port *p)
{
    pact_worker *w = p->w;
    take(p);
    collect(p);
    if (!p->parent && !p->term_seen && atomic_load(&w->terminate)) {
        terminated(p);
        return;
    }
    deliver(p);
    publish(p);
    if (p->writers.len && !stopped(p))
        check_room(p);
    if (p->parent && p->peer_ended && !w->reaped && !stopped(p))
        pact__worker_reap(w);
    if (p->parent && w->reaped && w->waits.len && !stopped(p))
        pact__worker_fire_waits(w);
}

/* Whether a spin could catch something somebody waits for. */
static bool waiting(const pact_port *p)
{
    return !p->peer_ended && (p->on_msg || p->recvs.len || p->writers.len ||
                              (p->parent && !p->w->reaped && p->w->waits.len));
}

/* Spin for the next event after @p seen, up to the current allowance.
 * @return whether one came. A spin pays only while the other thread runs
 * at the same time: on a machine with a core to spare, a reply comes within
 * the spin; on one that is oversubscribed, the other thread may be waiting
 * for the very core we spin on, and every spin is lost time. So a hit
 * restores the full allowance, a miss halves it, and below a microsecond
 * spinning stops but for one full-length probe every SPIN_PROBE spins, which
 * finds out when spinning pays again. */
#define SPIN_PROBE 32
#define SPIN_YIELD_NS 2000
/* Note the core we run on; @return whether the other thread last ran on
 * it too (the scheduler tends to wake it where the waker runs). */
static bool on_peers_core(pact_port *p)
{
    int me = sched_getcpu();
    atomic_store_explicit(&p->cpu, me, memory_order_relaxed);
    return me >= 0 &&
           me == atomic_load_explicit(&p->peer->cpu, memory_order_relaxed);
}

static bool spin(pact_port *p, uint64_t seen, uint64_t pass_start)
{
    if (!p->spin_max || !waiting(p))
        return false;
    uint64_t allowance = p->spin_cur;
    if (!allowance) {
        if (++p->spin_skips < SPIN_PROBE)
            return false;
        p->spin_skips = 0;
        allowance = p->spin_max;
    }
    uint64_t t0 = pact__now_ns();
    if (t0 - pass_start > PASS_MAX_NS)
        return false;
    bool hit = false, shared = on_peers_core(p);
    uint64_t yielded = t0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&p->seq, memory_order_acquire) != seen) {
            hit = true;
            break;
        }
        /* on the other thread's core, a spin only keeps it from running:
         * hand the core over instead */
        if (shared)
            sched_yield();
        else
            pact__cpu_relax();
        if (i & 15)
            continue;
        uint64_t t = pact__now_ns();
        if (t - t0 > allowance)
            break;
        shared = on_peers_core(p);
        /* the other thread may be waiting for this core all the same (its
         * last core is only a hint): let it run now and then */
        if (t - yielded > SPIN_YIELD_NS) {
            sched_yield();
            yielded = t;
        }
    }
    if (hit)
        p->spin_cur = p->spin_max;
    else if ((p->spin_cur /= 2) < 1000)
        p->spin_cur = 0;
    return hit;
}

/* Everything that arrived for @p p, in the I/O phase: messages, room, the
 * other end's termination or end. */
static void pass(pact_port *p)
{
    pact_worker *w = p->w;
    uint64_t start = pact__now_ns();
    bool again = false;
    p->in_pass = true;
    atomic_store(&p->awake, true);
    atomic_store_explicit(&p->cpu, sched_getcpu(), memory_order_relaxed);
    for (;;) {
        uint64_t seen = atomic_load(&p->seq);
        p->self = false;
        step(p);
        if (stopped(p) || p->term_seen)
            break;
        if (atomic_load(&p->seq) != seen)
            continue;
        /* a completion made in this pass (a receive after PACT_EOF, a wait
         * for room): once the pass has had its share, in a later I/O phase,
         * so that callbacks that always wait again cannot starve the rest */
        if (p->self && !(again = pact__now_ns() - start > PASS_MAX_NS))
            continue;
        if (again)
            break;
        if (spin(p, seen, start))
            continue;
        /* about to sleep: from here on senders write the fd (see notify) */
        atomic_store(&p->awake, false);
        if (atomic_load(&p->seq) == seen)
            break;
        atomic_store(&p->awake, true);
    }
    atomic_store(&p->awake, false);
    p->in_pass = false;
    if (again)
        pact__port_notify(p);
    if (w->dead) {
        pact__worker_release(w);
        return;
    }
    /* halted (pact_loop_stop, an uncaught error) with work left: resume in
     * the next run */
    if (pact__halted(p->loop) && !p->term_seen)
        pact__port_notify(p);
    pact__port_update_ref(p);
}

static void poll_cb(pact_error *err, int fd, int events, void *ud)
{
    (void)fd, (void)events;
    pact_port *p = ud;
    if (err) { /* cancelled: pact_loop_close_all closes the port's side */
        p->poll.id = 0;
        p->poll_ref = false;
        return;
    }
    pact__wake_drain(&p->wake);
    atomic_store(&p->signalled, false); /* before looking: see notify */
    pass(p);
}

/* ---- liveness --------------------------------------------------------------
 */

/* The parent's end keeps its loop alive while the worker runs (unless
 * unreferenced); the worker's end while something waits on it (a listener,
 * a receive, room), as Node's parentPort; both while a completion of
 * theirs is due. */
void pact__port_update_ref(pact_port *p)
{
    pact_worker *w = p->w;
    bool want = p->self;
    if (p->parent)
        want =
            want || (!w->reaped && w->user_ref) || (w->reaped && w->waits.len);
    else
        want = want || p->on_msg || p->recvs.len || p->writers.len;
    if (!p->poll.id || want == p->poll_ref)
        return;
    if ((want ? pact_ref : pact_unref)(p->loop, p->poll) == 0)
        p->poll_ref = want;
}

int pact__port_watch(pact_port *p)
{
    int rc = pact_poll(p->loop, pact__wake_fd(&p->wake), PACT_READABLE, poll_cb,
                       p, &p->poll);
    if (rc == 0) {
        p->poll_ref = true;
        pact__port_update_ref(p);
    }
    return rc;
}

/* ---- making and freeing ---------------------------------------------------
 */

int pact__port_init(pact_port *p, pact_worker *w, pact_port *peer, bool parent,
                    size_t max, uint64_t spin_ns)
{
    p->w = w;
    p->peer = peer;
    p->parent = parent;
    p->spin_max = p->spin_cur = spin_ns;
    atomic_init(&p->seq, 0);
    atomic_init(&p->signalled, false);
    atomic_init(&p->awake, false);
    atomic_init(&p->cpu, -1);
    atomic_init(&p->in.inflight, 0);
    p->in.max = max;
    wlist_init(&p->recvs);
    wlist_init(&p->writers);
    pact__wake_init(&p->wake);
    if (pthread_mutex_init(&p->in.lock, NULL) != 0)
        return PACT_ENOMEM;
    return pact__wake_open(&p->wake);
}

void pact__ring_release(struct ring *r)
{
    ring_release_values(r);
    ring_free(r);
}

void pact__port_destroy(pact_port *p)
{
    pact__wake_close(&p->wake);
    pact__ring_release(&p->in.q);
    pact__ring_release(&p->in.trash);
    pact__ring_release(&p->trash);
    pact__ring_release(&p->spare);
    ring_release_values(&p->backlog);
    ring_free(&p->backlog);
    assert(!p->recvs.len && !p->writers.len); /* cancelled before */
    pthread_mutex_destroy(&p->in.lock);
}

/* ---- ports -----------------------------------------------------------------
 */

#define CHECK_PORT(p, fn)                                                      \
    do {                                                                       \
        if (!(p))                                                              \
            return pact__misuse(fn, PACT_EINVAL, "port is NULL");              \
        PACT_CHECK_THREAD((p)->loop, fn);                                      \
        if ((p)->parent && (p)->w->freed)                                      \
            return pact__misuse_always(fn, PACT_EINVAL,                        \
                                       "the worker was freed");                \
    } while (0)

int pact_port_post(pact_port *port, pact_value *msg)
{
    static const char fn[] = "pact_port_post";
    CHECK_PORT(port, fn);
    PACT_CHECK_ARG(msg, fn);
    struct chan *c = &port->peer->in;
    /* a quick refusal when full, before any copy (inflight only falls
     * meanwhile: only this thread raises it) */
    if (atomic_load_explicit(&c->inflight, memory_order_relaxed) >= c->max) {
        pthread_mutex_lock(&c->lock);
        bool closed = c->closed;
        pthread_mutex_unlock(&c->lock);
        return closed ? PACT_EPIPE : PACT_EAGAIN;
    }
    json_t *copy;
    int rc = prepare(msg, &copy);
    if (rc < 0)
        return pact__misuse(fn, rc,
                            msg->kind == PACT_JSON
                                ? "the JSON value cannot be copied (a cycle?)"
                                : "this kind of value cannot be sent");
    pact_value v = *msg;
    if (copy)
        v.u.json = copy;
    bool first = false;
    pthread_mutex_lock(&c->lock);
    take_trash_locked(port, c);
    if (c->closed) {
        rc = PACT_EPIPE;
    } else if (atomic_load_explicit(&c->inflight, memory_order_relaxed) >=
               c->max) {
        rc = PACT_EAGAIN;
    } else if ((rc = ring_push(&c->q, &v, sizeof v)) == 0) {
        atomic_store_explicit(
            &c->inflight,
            atomic_load_explicit(&c->inflight, memory_order_relaxed) + 1,
            memory_order_relaxed);
        /* the receiver takes the whole queue at once: only a message that
         * finds it empty needs to tell it (one wake-up per batch) */
        first = c->q.len == 1;
    }
    pthread_mutex_unlock(&c->lock);
    ring_release_values(&port->spare);
    if (rc < 0) {
        pact__json_release(copy);
        return rc;
    }
    if (copy)
        json_decref(msg->u.json); /* the caller's reference: moved */
    *msg = pact_nothing();
    if (first)
        pact__port_notify(port->peer);
    return 0;
}

int pact_port_post_json(pact_port *port, json_t *json)
{
    if (!json)
        return pact__misuse("pact_port_post_json", PACT_EINVAL, "json is NULL");
    pact_value v = pact_json(json);
    return pact_port_post(port, &v);
}

int pact_port_post_bytes(pact_port *port, void **data, size_t len)
{
    PACT_CHECK_ARG(data, "pact_port_post_bytes");
    pact_value v = pact_bytes(*data, len);
    int rc = pact_port_post(port, &v);
    if (rc == 0)
        *data = NULL;
    return rc;
}

/* A message or a completion may be due now: run a pass soon. */
static void poke(pact_port *p)
{
    if (p->backlog.len || p->peer_ended || p->writers.len)
        pact__port_self_wake(p);
    pact__port_update_ref(p);
}

int pact_port_on_message(pact_port *port, pact_msg_cb cb, void *ud)
{
    CHECK_PORT(port, "pact_port_on_message");
    port->on_msg = cb;
    port->on_msg_ud = ud;
    if (cb && port->backlog.len)
        pact__port_self_wake(port);
    pact__port_update_ref(port);
    return 0;
}

static void recv_settle(pact_error *err, pact_value *msg, void *ud);

/* The loop is freed before a twin's wait could call back: its deferred. */
static void unref_deferred(void *d)
{
    pact_deferred_unref(d);
}

static int recv_push(pact_port *p, const pact_wait_opts *opts, pact_msg_cb cb,
                     void *ud, const void *site)
{
    if (!p->parent && (p->closing || p->term_seen))
        return PACT_ECANCELED;
    int rc =
        pact__waiter_add(p, &p->recvs, W_RECV, (void (*)(void))cb, ud,
                         cb == recv_settle ? unref_deferred : NULL, opts, site);
    if (rc == 0)
        poke(p);
    return rc;
}

int pact_port_recv(pact_port *port, const pact_wait_opts *opts, pact_msg_cb cb,
                   void *ud)
{
    CHECK_PORT(port, "pact_port_recv");
    PACT_CHECK_ARG(cb, "pact_port_recv");
    return recv_push(port, opts, cb, ud, PACT__CALLER());
}

/* The promise twin's callback: the message moves into the promise. */
static void recv_settle(pact_error *err, pact_value *msg, void *ud)
{
    pact_deferred *d = ud;
    if (err) {
        pact_deferred_reject(d, pact_error_ref(err));
    } else {
        pact_value v = *msg;
        *msg = pact_nothing();
        pact_deferred_resolve(d, v);
    }
    pact_deferred_unref(d);
}

static int start_recv(pact_loop *loop, void *args, pact_deferred *d)
{
    (void)loop;
    struct wait_args *a = args;
    return recv_push(a->target, a->opts, recv_settle, d, a->site);
}

static bool bad_port_p(pact_port *port, const char *fn)
{
    if (!port) {
        pact__misuse(fn, PACT_EINVAL, "port is NULL");
        return true;
    }
    if (port->parent && port->w->freed) {
        pact__misuse_always(fn, PACT_EINVAL, "the worker was freed");
        return true;
    }
    return false;
}

pact_promise *pact_port_recv_p(pact_port *port, const pact_wait_opts *opts)
{
    if (bad_port_p(port, "pact_port_recv_p"))
        return NULL;
    struct wait_args a = {port, opts, PACT__CALLER()};
    return pact__promisify(port->loop, start_recv, &a, "pact_port_recv_p");
}

static int writable_push(pact_port *p, const pact_wait_opts *opts, pact_cb cb,
                         void *ud, const void *site)
{
    struct chan *c = &p->peer->in;
    pthread_mutex_lock(&c->lock);
    bool closed = c->closed;
    pthread_mutex_unlock(&c->lock);
    if (closed)
        return PACT_EPIPE;
    int rc = pact__waiter_add(
        p, &p->writers, W_WRITABLE, (void (*)(void))cb, ud,
        cb == pact_deferred_cb ? unref_deferred : NULL, opts, site);
    if (rc == 0)
        pact__port_self_wake(p); /* the pass looks at the room */
    return rc;
}

int pact_port_writable(pact_port *port, const pact_wait_opts *opts, pact_cb cb,
                       void *ud)
{
    CHECK_PORT(port, "pact_port_writable");
    PACT_CHECK_ARG(cb, "pact_port_writable");
    return writable_push(port, opts, cb, ud, PACT__CALLER());
}

static int start_writable(pact_loop *loop, void *args, pact_deferred *d)
{
    (void)loop;
    struct wait_args *a = args;
    return writable_push(a->target, a->opts, pact_deferred_cb, d, a->site);
}

pact_promise *pact_port_writable_p(pact_port *port, const pact_wait_opts *opts)
{
    if (bad_port_p(port, "pact_port_writable_p"))
        return NULL;
    struct wait_args a = {port, opts, PACT__CALLER()};
    return pact__promisify(port->loop, start_writable, &a,
                           "pact_port_writable_p");
}

size_t pact_port_pending(const pact_port *port)
{
    return port ? atomic_load_explicit(&port->peer->in.inflight,
                                       memory_order_relaxed)
                : 0;
}

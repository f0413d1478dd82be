/* Signal watchers and fd pollers: libevent events whose callbacks run in the
 * I/O phase, each followed by the microtask drain. */
#include <event2/event.h>

#include <errno.h>

#include "internal.h"

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct slot *s = arg;
    pact_loop *loop = s->loop;
    bool was = pact__own_begin(loop);
    pact__step_begin(loop, PACT_STEP_SIGNAL, s->cb, s->ud);
    ((pact_signal_cb)s->cb)(NULL, (int)sig, s->ud);
    pact__step_end(loop);
    pact__drain(loop);
    pact__own_end(loop, was);
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct slot *s = arg;
    pact_loop *loop = s->loop;
    int events = what & (PACT_READABLE | PACT_WRITABLE);
    bool was = pact__own_begin(loop);
    pact__step_begin(loop, PACT_STEP_POLL, s->cb, s->ud);
    ((pact_poll_cb)s->cb)(NULL, (int)fd, events, s->ud);
    pact__step_end(loop);
    pact__drain(loop);
    pact__own_end(loop, was);
}

static int start(pact_loop *loop, int kind, int num, short what,
                 const pact_watch_opts *opts, event_callback_fn fn,
                 void (*cb)(void), void *ud, pact_handle *out)
{
    pact_abort *abort = opts ? opts->abort : NULL;
    if (abort && pact_abort_aborted(abort))
        what = 0; /* nothing to watch: the cancellation is due at once */
    struct slot *s = pact__slot_alloc(loop, kind, cb, ud);
    if (!s)
        return PACT_ENOMEM;
    if (opts && opts->unref)
        s->flags &= (uint8_t)~SLOT_REF;
    s->u.io.num = num;
    s->u.io.ev = NULL;
    int rc = 0;
    if (what) {
        errno = 0;
        s->u.io.ev = event_new(loop->base, num, what, fn, s);
        rc = s->u.io.ev ? 0 : PACT_ENOMEM;
        errno = 0;
        if (rc == 0 && event_add(s->u.io.ev, NULL) < 0)
            rc = pact__ev_error(); /* e.g. EPERM: a regular file; EBADF */
        if (rc == 0) {
            pact__own_event_added(loop);
        } else if (s->u.io.ev) {
            event_free(s->u.io.ev); /* never added: not counted */
            s->u.io.ev = NULL;
        }
    }
    /* a token aborted already stops it here: the call is then due */
    if (rc == 0)
        rc = pact__slot_op_start(loop, s, abort);
    if (rc < 0) {
        pact__io_stop(loop, s);
        pact__slot_free(loop, s);
        return rc;
    }
    if (s->state == ST_NEW) /* not due at once */
        pact__slot_set_state(loop, s, ST_ARMED);
    if (out)
        *out = pact__slot_handle(s);
    return 0;
}

static int signal_start(pact_loop *loop, int signum,
                        const pact_watch_opts *opts, pact_signal_cb cb,
                        void *ud, pact_handle *out, const char *fn)
{
    PACT_CHECK_LOOP(loop, fn);
    PACT_CHECK_ARG(cb, fn);
    PACT_CHECK_ARG(signum > 0 && signum < 65, fn);
    return start(loop, SLOT_SIGNAL, signum, EV_SIGNAL | EV_PERSIST, opts,
                 signal_cb, (void (*)(void))cb, ud, out);
}

int pact_signal(pact_loop *loop, int signum, pact_signal_cb cb, void *ud,
                pact_handle *out)
{
    return signal_start(loop, signum, NULL, cb, ud, out, "pact_signal");
}

int pact_signal_start(pact_loop *loop, int signum, const pact_watch_opts *opts,
                      pact_signal_cb cb, void *ud, pact_handle *out)
{
    return signal_start(loop, signum, opts, cb, ud, out, "pact_signal_start");
}

static int poll_start(pact_loop *loop, int fd, int events,
                      const pact_watch_opts *opts, pact_poll_cb cb, void *ud,
                      pact_handle *out, const char *fn)
{
    PACT_CHECK_LOOP(loop, fn);
    PACT_CHECK_ARG(cb, fn);
    PACT_CHECK_ARG(fd >= 0, fn);
    PACT_CHECK_ARG(events && !(events & ~(PACT_READABLE | PACT_WRITABLE)), fn);
    return start(loop, SLOT_POLL, fd, (short)(events | EV_PERSIST), opts,
                 poll_cb, (void (*)(void))cb, ud, out);
}

int pact_poll(pact_loop *loop, int fd, int events, pact_poll_cb cb, void *ud,
              pact_handle *out)
{
    return poll_start(loop, fd, events, NULL, cb, ud, out, "pact_poll");
}

int pact_poll_start(pact_loop *loop, int fd, int events,
                    const pact_watch_opts *opts, pact_poll_cb cb, void *ud,
                    pact_handle *out)
{
    return poll_start(loop, fd, events, opts, cb, ud, out, "pact_poll_start");
}

void pact__io_stop(pact_loop *loop, struct slot *s)
{
    if (s->u.io.ev) {
        event_free(s->u.io.ev);
        s->u.io.ev = NULL;
        pact__own_event_removed(loop);
    }
}

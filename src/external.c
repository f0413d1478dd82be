/* When the program dispatches the event_base itself (a loop made with
 * pact_loop_from_base, run by event_base_dispatch instead of pact_loop_run),
 * pact's phases run from libevent callbacks: the alarm runs the timers phase,
 * and a zero-timeout "kick" event runs the microtask drain and the check and
 * close phases once work is queued. Inside pact_loop_run both stand aside,
 * since the run loop drives the phases itself. */
#include "internal.h"

#include <event2/event.h>

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pact_loop *loop = arg;
    loop->kick_pending = false;
    pact__own_event_removed(loop);
    if (loop->running || pact__halted(loop))
        return;
    pact__drain(loop);
    pact__run_immediates(loop);
    pact__run_closing(loop);
    if (!pact__list_empty(&loop->imms) || loop->closing_head)
        pact__external_kick(loop); /* queued meanwhile: the next iteration */
    pact__external_arm(loop);
}

void pact__external_kick(pact_loop *loop)
{
    static const struct timeval zero = {0, 0};
    if (loop->kick_pending || loop->draining)
        return;
    if (!loop->kick_ev) {
        loop->kick_ev = event_new(loop->base, -1, 0, kick_cb, loop);
        if (!loop->kick_ev)
            return; /* out of memory: the work waits for pact_loop_run */
    }
    if (event_add(loop->kick_ev, &zero) == 0) {
        loop->kick_pending = true;
        pact__own_event_added(loop);
    }
}

void pact__external_arm(pact_loop *loop)
{
    uint64_t deadline = pact__timers_deadline(loop);
    if (deadline && (!loop->armed_ns || deadline < loop->armed_ns))
        pact__timers_arm(loop, deadline);
}

void pact__external_free(pact_loop *loop)
{
    if (loop->kick_ev)
        event_free(loop->kick_ev);
}

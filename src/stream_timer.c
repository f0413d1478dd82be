/* A stream's timeouts (pact_stream_opts: idle, read, write): one timer per
 * stream, checked lazily. Activity only stores a time (stream.c), so a busy
 * stream pays no timer operation per message; the timer wakes at the
 * earliest deadline, and at least every shortest timeout (capped at a
 * second) to see waits that began meanwhile, and destroys the stream with
 * PACT_ETIMEDOUT when one has passed. */
#include <event2/buffer.h>
#include <event2/event.h>

#include "tcp_internal.h"

static bool waits_input(const pact_stream *s)
{
    return s->rd_on && (s->ev.data || s->rreq);
}

/* The earliest time a timeout could pass, or 0 (none armed). */
static uint64_t next_check(const pact_stream *s, const char **why)
{
    uint64_t at = 0;
    const pact_stream_opts *o = &s->o;
    uint64_t last = s->last_rd > s->last_wr ? s->last_rd : s->last_wr;
    if (o->idle_timeout_ms) {
        at = last + o->idle_timeout_ms;
        *why = "idle timeout";
    }
    if (o->read_timeout_ms && waits_input(s) &&
        (!at || s->last_rd + o->read_timeout_ms < at)) {
        at = s->last_rd + o->read_timeout_ms;
        *why = "read timeout";
    }
    if (o->write_timeout_ms && pact__out_pending(s) &&
        (!at || s->last_wr + o->write_timeout_ms < at)) {
        at = s->last_wr + o->write_timeout_ms;
        *why = "write timeout";
    }
    return at;
}

/* The shortest timeout set (0: none). */
static uint64_t shortest(const pact_stream_opts *o)
{
    uint64_t v[3] = {o->idle_timeout_ms, o->read_timeout_ms,
                     o->write_timeout_ms};
    uint64_t m = 0;
    for (int i = 0; i < 3; i++)
        if (v[i] && (!m || v[i] < m))
            m = v[i];
    return m;
}

/* Check again at the earliest deadline, and at least every shortest
 * timeout (capped at a second): a wait that begins meanwhile (a read
 * request, buffered output) is then seen at most that late. */
void pact__stream_arm_timer(pact_stream *s, uint64_t now)
{
    const char *why;
    uint64_t at = next_check(s, &why), every = shortest(&s->o);
    if (!every || (s->flags & S_DEAD)) {
        pact__stream_ev_off(s, s->tev, &s->tm_on);
        return;
    }
    if (every > 1000)
        every = 1000;
    uint64_t ms = !at ? every : at > now ? at - now : 0;
    if (ms > every)
        ms = every;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    pact__stream_ev_on(s, s->tev, &s->tm_on, &tv);
}

/* A wait for input begins: the read timeout counts from now. */
void pact__stream_read_clock(pact_stream *s)
{
    if (s->timeouts && s->o.read_timeout_ms && !waits_input(s))
        s->last_rd = pact__now_ms();
}

static void check_timeouts(pact_stream *s)
{
    s->tm_on = false; /* a fired timer is no longer added */
    pact__own_event_removed(s->loop);
    const char *why = NULL;
    uint64_t now = pact__now_ms(), at = next_check(s, &why);
    if (at && at <= now)
        pact__stream_kill(s, PACT_ERROR(PACT_ETIMEDOUT, "%s", why));
    else
        pact__stream_arm_timer(s, now);
}

void pact__stream_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pact_stream *s = arg;
    PACT__OWN_CALLBACK(s, check_timeouts(s));
}

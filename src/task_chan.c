/* A task's awaits on a channel with no promise between (pact_await_recv,
 * pact_await_send): the task parks as the channel's waiter and the other
 * side's call hands the value over, so a round trip between two tasks costs
 * two switches, two microtasks and the channel's records. */
#include "task_internal.h"

#include "promise_internal.h"

static void sent(pact_error *err, void *ud)
{
    pact__task_wake(ud, err, NULL);
}

static void received(pact_error *err, pact_value *v, void *ud)
{
    pact__task_wake(ud, err, v);
}

pact_error *pact_await_recv_at(pact_chan *ch, pact_value *out, const char *file,
                               int line)
{
    if (out)
        *out = pact_nothing();
    pact_task *t;
    pact_error *err = pact__task_park_begin(&t, "pact_await_recv");
    if (err)
        return err;
    int rc = pact__chan_recv_sync(ch, received, t);
    if (rc < 0) {
        pact__task_park_abandon(t);
        return PACT_ERROR(rc, "pact_await_recv: the channel refused");
    }
    return pact__task_park_wait(t, out, file, line);
}

pact_error *pact_await_send_at(pact_chan *ch, pact_value value,
                               const char *file, int line)
{
    pact_task *t;
    pact_error *err = pact__task_park_begin(&t, "pact_await_send");
    if (err) {
        pact_value_release(&value);
        return err;
    }
    int rc = pact__chan_send_sync(ch, value, sent, t);
    if (rc < 0) { /* the channel released the value */
        pact__task_park_abandon(t);
        return PACT_ERROR(rc, "pact_await_send: the channel refused");
    }
    return pact__task_park_wait(t, NULL, file, line);
}

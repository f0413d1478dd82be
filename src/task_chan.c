/* A task's awaits on a channel with no promise between (pact_await_recv,
 * pact_await_send): what need not wait (a parked peer, room or a value in
 * the buffer) completes inside the call with no record at all; otherwise
 * the task parks as the channel's waiter and the other side's call hands
 * the value over, so a round trip between two tasks costs two switches,
 * two microtasks and two parked records. */
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

/* A receive up to its parking: the outcome when it need not park (*@p tp
 * NULL), else NULL with the parked task in *@p tp. */
static pact_error *recv_start(pact_chan *ch, pact_value *out, pact_task **tp)
{
    *tp = NULL;
    if (out)
        *out = pact_nothing();
    pact_error *err = pact__task_await_check("pact_await_recv");
    if (err)
        return err;
    pact_value v;
    int rc = pact__chan_try_recv(ch, &v);
    if (rc == 1) {
        if (out)
            *out = v;
        else
            pact_value_release(&v);
        return NULL;
    }
    if (rc == PACT_EOF)
        return PACT_ERROR(PACT_EOF, "The channel is closed");
    if (rc < 0)
        return PACT_ERROR(rc, "pact_await_recv: the channel refused");
    pact_task *t;
    if ((err = pact__task_park_begin(&t, "pact_await_recv")))
        return err;
    rc = pact__chan_recv_sync(ch, received, t);
    if (rc < 0) {
        pact__task_park_abandon(t);
        return PACT_ERROR(rc, "pact_await_recv: the channel refused");
    }
    *tp = t;
    return NULL;
}

/* A send up to its parking, as recv_start. */
static pact_error *send_start(pact_chan *ch, pact_value value, pact_task **tp)
{
    *tp = NULL;
    pact_error *err = pact__task_await_check("pact_await_send");
    int rc = err ? 0 : pact__chan_try_send(ch, &value);
    if (rc == 1)
        return NULL;
    if (err || rc < 0) {
        pact_value_release(&value);
        if (err)
            return err;
        return rc == PACT_EPIPE
                   ? PACT_ERROR(PACT_EPIPE, "The channel is closed")
                   : PACT_ERROR(rc, "pact_await_send: the channel refused");
    }
    pact_task *t;
    if ((err = pact__task_park_begin(&t, "pact_await_send"))) {
        pact_value_release(&value);
        return err;
    }
    rc = pact__chan_send_sync(ch, value, sent, t);
    if (rc < 0) { /* the channel released the value */
        pact__task_park_abandon(t);
        return PACT_ERROR(rc, "pact_await_send: the channel refused");
    }
    *tp = t;
    return NULL;
}

pact_error *pact_await_recv_at(pact_chan *ch, pact_value *out, const char *file,
                               int line)
{
    pact_task *t;
    pact_error *err = recv_start(ch, out, &t);
    return t ? pact__task_park_wait(t, out, file, line) : err;
}

pact_error *pact_await_send_at(pact_chan *ch, pact_value value,
                               const char *file, int line)
{
    pact_task *t;
    pact_error *err = send_start(ch, value, &t);
    return t ? pact__task_park_wait(t, NULL, file, line) : err;
}

/* The inline switch's halves (see pact_await_enter_ in task.c). */
int pact_await_recv_enter_(pact_chan *ch, pact_value *out, const char *file,
                           int line, void *sw[2], pact_error **err)
{
    pact_task *t;
    *err = recv_start(ch, out, &t);
    return t ? pact__task_park_enter(t, out, file, line, sw, err) : 0;
}

int pact_await_send_enter_(pact_chan *ch, pact_value value, const char *file,
                           int line, void *sw[2], pact_error **err)
{
    pact_task *t;
    *err = send_start(ch, value, &t);
    return t ? pact__task_park_enter(t, NULL, file, line, sw, err) : 0;
}

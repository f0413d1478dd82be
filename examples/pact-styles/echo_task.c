/* The echo daemon, stackful task style: a task per connection reads and
 * writes back in a plain loop, awaiting the promise twins (PACT_AWAIT_ERR);
 * the client's end is the read's PACT_EOF. */
#include "styles.h"

static pact_error *serve(void *arg, pact_value *result)
{
    (void)result;
    pact_stream *s = arg;
    for (;;) {
        pact_value chunk;
        pact_error *err =
            PACT_AWAIT_ERR(pact_stream_read_some_p(s, NULL), &chunk);
        if (!err) {
            err = PACT_AWAIT_ERR(
                pact_stream_write_p(s, chunk.u.bytes.data, chunk.u.bytes.len),
                NULL);
            pact_value_release(&chunk);
        }
        if (err) { /* PACT_EOF, or the connection failed */
            pact_error_unref(err);
            break;
        }
    }
    pact_stream_close(s); /* the task's stream is its to close */
    return NULL;
}

void echo_task(pact_error *err, pact_stream *s, void *loop)
{
    if (!err)
        pact_promise_unref(pact_task_spawn(loop, serve, s, NULL));
}

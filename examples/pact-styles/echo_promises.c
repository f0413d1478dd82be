/* The echo daemon, promise style: read what is there (read_some_p), write
 * it back (write_p), again, chained with pact_then; the client's end
 * rejects the read with PACT_EOF, and the chain's catch closes the stream. */
#include "styles.h"

static void next_chunk(pact_stream *s);
static pact_value ended(pact_error *err, void *s);

static pact_value written(const pact_value *v, void *s)
{
    (void)v;
    next_chunk(s);
    return pact_nothing();
}

static pact_value got_chunk(const pact_value *v, void *s)
{
    pact_promise *w = pact_stream_write_p(s, v->u.bytes.data, v->u.bytes.len);
    pact_promise *next = pact_then(w, written, ended, s);
    pact_promise_unref(w);
    return pact_promise_v(next); /* the chain waits for the write */
}

static pact_value ended(pact_error *err, void *s)
{
    (void)err; /* PACT_EOF, or the connection failed */
    pact_stream_close(s);
    return pact_nothing();
}

static void next_chunk(pact_stream *s)
{
    pact_promise *r = pact_stream_read_some_p(s, NULL);
    pact_promise_unref(pact_then(r, got_chunk, ended, s));
    pact_promise_unref(r);
}

void echo_promises(pact_error *err, pact_stream *s, void *loop)
{
    (void)loop;
    if (!err)
        next_chunk(s);
}

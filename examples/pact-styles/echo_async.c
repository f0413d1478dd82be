/* The echo daemon, stackless PACT_ASYNC style: the loop of echo_task.c in
 * an async function per connection, on a heap frame instead of a stack;
 * what crosses an await (the stream, the chunk) lives in the frame. */
#include "styles.h"

struct serve {
    PACT_ASYNC_FRAME;
    pact_stream *s;   /* its argument */
    pact_value chunk; /* the bytes being echoed */
};

static pact_error *serve_body(pact_async *a, pact_value *result)
{
    struct serve *f = (struct serve *)a;
    pact_error *err; /* locals are fine between awaits, not across them */
    PACT_ASYNC_BEGIN(a);
    for (;;) {
        PACT_ASYNC_AWAIT_ERR(a, pact_stream_read_some_p(f->s, NULL), &f->chunk,
                             err);
        if (err)
            break;
        PACT_ASYNC_AWAIT_ERR(a,
                             pact_stream_write_p(f->s, f->chunk.u.bytes.data,
                                                 f->chunk.u.bytes.len),
                             NULL, err);
        pact_value_release(&f->chunk);
        if (err)
            break;
    }
    pact_error_unref(err); /* PACT_EOF, or the connection failed */
    pact_stream_close(f->s);
    *result = pact_nothing();
    PACT_ASYNC_END(a);
}

void echo_async(pact_error *err, pact_stream *s, void *loop)
{
    if (err)
        return;
    struct serve *f = pact_async_new(loop, sizeof *f, serve_body);
    if (!f) {
        pact_stream_destroy(s, NULL);
        return;
    }
    f->s = s;
    pact_promise_unref(pact_async_start(f));
}

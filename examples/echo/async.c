/* echo server, async style: a stackless PACT_ASYNC function per connection
 * reads lines and writes them back in a loop, as task.c does, but on a
 * heap frame instead of a stack: what crosses an await (the stream, the
 * line) lives in the frame. It prints the same transcript as callbacks.c.
 *
 * In Node terms:
 *     net.createServer(async (s) => {
 *         for await (const line of readline(s)) await write(s, line + "\n");
 *     });
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

struct serve {
    PACT_ASYNC_FRAME;
    pact_stream *s;  /* its argument */
    pact_value line; /* the line being echoed */
};

static pact_error *serve_body(pact_async *a, pact_value *result)
{
    struct serve *f = (struct serve *)a;
    pact_error *err; /* locals are fine between awaits, not across them */
    PACT_ASYNC_BEGIN(a);
    for (;;) {
        PACT_ASYNC_AWAIT_ERR(a, pact_stream_read_line_p(f->s, NULL), &f->line,
                             err);
        if (err) {
            if (pact_error_code(err) == PACT_EOF)
                printf("server: the client ended\n");
            else
                fprintf(stderr, "server: %s\n", pact_error_message(err));
            pact_error_unref(err);
            break;
        }
        /* the line and its "\n" (read_line_p leaves it out): the bytes
         * have room for one more, their NUL */
        {
            size_t n = f->line.u.bytes.len;
            char *buf = f->line.u.bytes.data;
            buf[n] = '\n';
        }
        PACT_ASYNC_AWAIT_ERR(a,
                             pact_stream_write_p(f->s, f->line.u.bytes.data,
                                                 f->line.u.bytes.len + 1),
                             NULL, err);
        pact_value_release(&f->line);
        if (err) {
            fprintf(stderr, "server: %s\n", pact_error_message(err));
            pact_error_unref(err);
            break;
        }
    }
    pact_stream_close(f->s); /* the function's stream is its to close */
    *result = pact_nothing();
    PACT_ASYNC_END(a);
}

static void on_accept(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    if (err)
        return;
    printf("accepted a connection\n");
    struct serve *f = pact_async_new(echo_loop, sizeof *f, serve_body);
    if (!f) {
        pact_stream_destroy(s, NULL);
        return;
    }
    f->s = s;
    pact_promise_unref(pact_async_start(f));
}

int main(int argc, char **argv)
{
    return echo_main(argc, argv, on_accept, NULL);
}

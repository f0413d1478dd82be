/* echo server, promise style: per connection, read a line
 * (pact_stream_read_line_p), write it back (pact_stream_write_p), again,
 * chained with pact_then; the end of input rejects the read with PACT_EOF.
 * It prints the same transcript as callbacks.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

static void next_line(pact_stream *s);

static pact_value written(const pact_value *v, void *s)
{
    (void)v;
    next_line(s);
    return pact_nothing();
}

static pact_value got_line(const pact_value *v, void *s)
{
    size_t n = v->u.bytes.len;
    char *line = malloc(n + 1);
    if (!line)
        return pact_throw(PACT_ERROR(PACT_ENOMEM, "no memory"));
    memcpy(line, v->u.bytes.data, n);
    line[n] = '\n'; /* read_line_p leaves it out */
    pact_promise *w = pact_stream_write_p(s, line, n + 1);
    free(line); /* the stream copied what the kernel did not take */
    pact_promise *next = pact_then(w, written, NULL, s);
    pact_promise_unref(w);
    return pact_promise_v(next);
}

static pact_value ended(pact_error *err, void *s)
{
    if (pact_error_code(err) == PACT_EOF)
        printf("server: the client ended\n");
    else
        fprintf(stderr, "server: %s\n", pact_error_message(err));
    pact_stream_close(s);
    return pact_nothing();
}

static void next_line(pact_stream *s)
{
    pact_promise *r = pact_stream_read_line_p(s, NULL);
    pact_promise_unref(pact_then(r, got_line, ended, s));
    pact_promise_unref(r);
}

static void on_accept(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    if (err)
        return;
    printf("accepted a connection\n");
    next_line(s);
}

int main(int argc, char **argv)
{
    return echo_main(argc, argv, on_accept, NULL);
}

/* echo server, task style: a task per connection reads lines and writes
 * them back in a plain loop, awaiting the promise twins; the end of input
 * is the read's PACT_EOF. It prints the same transcript as callbacks.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

static pact_error *serve(void *arg, pact_value *result)
{
    (void)result;
    pact_stream *s = arg;
    for (;;) {
        pact_value line;
        pact_error *err =
            PACT_AWAIT_ERR(pact_stream_read_line_p(s, NULL), &line);
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
        size_t n = line.u.bytes.len;
        char *buf = line.u.bytes.data;
        buf[n] = '\n';
        err = PACT_AWAIT_ERR(pact_stream_write_p(s, buf, n + 1), NULL);
        pact_value_release(&line);
        if (err) {
            fprintf(stderr, "server: %s\n", pact_error_message(err));
            pact_error_unref(err);
            break;
        }
    }
    pact_stream_close(s); /* the task's stream is its to close */
    return NULL;
}

static void on_accept(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    if (err)
        return;
    printf("accepted a connection\n");
    pact_promise_unref(pact_task_spawn(echo_loop, serve, s, NULL));
}

int main(int argc, char **argv)
{
    return echo_main(argc, argv, on_accept, NULL);
}

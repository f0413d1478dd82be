/* echo server, callback style: each chunk read goes back as it came; when
 * the output passes its high-water mark the stream pauses until it has
 * drained, so a client that sends faster than it reads cannot grow the
 * server's memory. Without an argument it runs the demonstration of
 * client.h; with a port it serves it (try `nc 127.0.0.1 PORT`). */
#include <stdio.h>

#include "client.h"

static void on_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    (void)ud;
    if (pact_stream_write(s, buf, len) == 0)
        pact_stream_pause(s); /* over the high-water mark */
}

static void on_drain(pact_stream *s, void *ud)
{
    (void)ud;
    pact_stream_resume(s);
}

static void on_end(pact_stream *s, void *ud)
{
    (void)s;
    (void)ud;
    printf("server: the client ended\n"); /* the stream ends its side too */
}

static void on_accept(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    if (err) /* the server was cancelled */
        return;
    printf("accepted a connection\n");
    pact_stream_events ev = {.data = on_data, .drain = on_drain, .end = on_end};
    pact_stream_on(s, &ev, NULL);
}

int main(int argc, char **argv)
{
    return echo_main(argc, argv, on_accept, NULL);
}

/* The echo daemon, callback style: each chunk read is written back as it
 * came; past the output's high-water mark the stream pauses until it has
 * drained, so a client that sends faster than it reads cannot grow the
 * server's memory. The stream ends and closes itself after the client's end. */
#include "styles.h"

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

void echo_callbacks(pact_error *err, pact_stream *s, void *loop)
{
    (void)loop;
    if (err) /* the server is closing */
        return;
    pact_stream_events ev = {.data = on_data, .drain = on_drain};
    pact_stream_on(s, &ev, NULL);
}

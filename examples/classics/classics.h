/* What the classics share: a TRY for calls that cannot fail in a healthy
 * program; for the samples built on pact_fetch, a way to drive the loop
 * until a promise settles (a script's top-level await), to stop their own
 * server, and to print an error's message without the port the system
 * picked, so that the transcript is the same every run. */
#ifndef PACT_EXAMPLE_CLASSICS_H
#define PACT_EXAMPLE_CLASSICS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pact.h>

#define TRY(call)                                                              \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ < 0) {                                                         \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,      \
                    pact_strerror(rc_));                                       \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* Run @p loop until @p p (stolen) settles: the loop also serves the
 * sample's own server, so it would never run out of work by itself. */
static inline void classic_run_until(pact_loop *loop, pact_promise *p)
{
    if (!p) {
        fprintf(stderr, "classics: no promise to wait for\n");
        exit(1);
    }
    while (pact_promise_state(p) == PACT_PENDING)
        TRY(pact_loop_run(loop, PACT_RUN_ONCE));
    pact_promise_unref(p);
}

/* Close the client's kept-alive connections and the server, and run the
 * loop to its end. */
static inline void classic_stop(pact_loop *loop, pact_http_server *srv)
{
    pact_fetch_pool_close_idle(loop);
    TRY(pact_http_server_close(srv, NULL, NULL));
    TRY(pact_loop_run(loop, PACT_RUN_DEFAULT));
}

/* Print @p msg with each "127.0.0.1:<port>" as "127.0.0.1:PORT". */
static inline void classic_print_scrubbed(const char *msg)
{
    static const char host[] = "127.0.0.1:";
    const char *at;
    while ((at = strstr(msg, host)) != NULL) {
        at += sizeof host - 1;
        fwrite(msg, 1, (size_t)(at - msg), stdout);
        fputs("PORT", stdout);
        msg = at + strspn(at, "0123456789");
    }
    fputs(msg, stdout);
}

#endif

/* The echo examples' shared part: see client.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

#include "../debug.h"

pact_loop *echo_loop;

static const char *const lines[] = {"hello\n", "from\n", "pact\n"};
#define NLINES (sizeof lines / sizeof lines[0])

struct client {
    pact_tcp_server *srv;
    size_t next;  /* the line to send */
    char got[64]; /* the echo so far */
    size_t len;
};

static void send_next(pact_stream *s, struct client *c)
{
    if (c->next == NLINES) {
        pact_stream_end(s); /* half-close: the server sees EOF */
        return;
    }
    const char *line = lines[c->next++];
    pact_stream_write(s, line, strlen(line));
}

static void on_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    struct client *c = ud;
    for (size_t i = 0; i < len; i++) {
        char ch = ((const char *)buf)[i];
        if (ch != '\n') {
            if (c->len < sizeof c->got - 1)
                c->got[c->len++] = ch;
            continue;
        }
        c->got[c->len] = '\0';
        printf("echo: %s\n", c->got);
        c->len = 0;
        send_next(s, c);
    }
}

static void on_end(pact_stream *s, void *ud)
{
    (void)s;
    (void)ud;
    printf("client: the server ended\n");
}

static void on_error(pact_stream *s, pact_error *err, void *ud)
{
    (void)s;
    (void)ud;
    fprintf(stderr, "client: %s\n", pact_error_message(err));
}

static void on_close(pact_stream *s, void *ud)
{
    (void)s;
    struct client *c = ud;
    printf("client: closed\n");
    pact_tcp_server_close(c->srv, NULL, NULL); /* the demonstration ends */
    free(c);
}

static void connected(pact_error *err, pact_stream *s, void *ud)
{
    struct client *c = ud;
    if (err) {
        fprintf(stderr, "client: %s\n", pact_error_message(err));
        pact_tcp_server_close(c->srv, NULL, NULL);
        free(c);
        return;
    }
    pact_stream_events ev = {
        .data = on_data, .end = on_end, .error = on_error, .close = on_close};
    pact_stream_on(s, &ev, c);
    send_next(s, c);
}

int echo_main(int argc, char **argv, pact_tcp_accept_cb accept, void *ud)
{
    if (pact_loop_new(&echo_loop) < 0)
        return 1;
    if (example_debug(echo_loop, argc, argv) < 0) /* --debug */
        return 1;
    const char *arg = example_arg(argc, argv);
    int port = arg ? atoi(arg) : 0;
    pact_tcp_server *srv;
    int rc =
        pact_tcp_listen(echo_loop, "127.0.0.1", port, NULL, accept, ud, &srv);
    if (rc < 0) {
        fprintf(stderr, "listen: %s\n", pact_strerror(rc));
        return 1;
    }
    if (arg) {
        /* a daemon: SIGTERM or ^C stops accepting and gives the
         * connections 5 s to finish (doc/daemon.md) */
        rc = pact_tcp_server_shutdown_on_signals(srv, 5000, NULL, NULL);
        if (rc < 0) {
            fprintf(stderr, "signals: %s\n", pact_strerror(rc));
            return 1;
        }
        printf("listening on 127.0.0.1:%d\n", pact_tcp_server_port(srv));
        fflush(stdout);
    } else {
        printf("listening\n");
        struct client *c = calloc(1, sizeof *c);
        if (!c)
            return 1;
        c->srv = srv;
        rc = pact_tcp_connect(echo_loop, "127.0.0.1", pact_tcp_server_port(srv),
                              NULL, connected, c);
        if (rc < 0)
            return 1;
    }
    rc = pact_loop_run(echo_loop, PACT_RUN_DEFAULT);
    return rc < 0 || pact_loop_free(echo_loop) < 0;
}

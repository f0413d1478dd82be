/* notes-api -- a small HTTP JSON API over SQLite: the daemon of
 * doc/notes-api.md. The routes are in api.c, the store in db.c; this file
 * is the process: options, the database, the server, and SIGTERM, which
 * drains the requests in flight (pact_http_server_shutdown with a deadline)
 * and exits 0.
 *
 *   notes-api [--port N] [--db PATH] [--host ADDR] [--deadline-ms N]
 *             [--drain-ms N] [--max-body BYTES] [--query-delay-ms N]
 *             [--debug]
 */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

typedef struct options {
    const char *host, *db;
    long port;
    long deadline_ms, drain_ms, delay_ms;
    long max_body;
    bool debug;
} options;

typedef struct server {
    notes_app app;
    pact_handle sigs[2];
    uint64_t drain_ms;
    bool cut; /* the drain's deadline cut connections */
} server;

static void usage(FILE *to)
{
    fprintf(
        to,
        "usage: notes-api [options]\n"
        "  --port N            port to listen on (default 8080; 0: one the\n"
        "                      system picks); prints \"listening on PORT\"\n"
        "  --host ADDR         numeric address (default 127.0.0.1)\n"
        "  --db PATH           the SQLite database (default notes.db)\n"
        "  --deadline-ms N     each request's deadline (default 10000)\n"
        "  --drain-ms N        on SIGTERM, how long requests in flight may\n"
        "                      take before they are cut (default 10000)\n"
        "  --max-body BYTES    the largest request body (default 65536;\n"
        "                      larger: 413)\n"
        "  --query-delay-ms N  make every query take N ms more: a slow\n"
        "                      database, to see deadlines and cancellation\n"
        "  --debug             report loop stalls of 100 ms or more, with\n"
        "                      the loop's stack (doc/stall.md)\n");
}

static bool number(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* @return 0, or 2 after a usage message (bad options), or -1 (--help). */
static int parse(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        {"port", required_argument, NULL, 'p'},
        {"host", required_argument, NULL, 'H'},
        {"db", required_argument, NULL, 'd'},
        {"deadline-ms", required_argument, NULL, 'D'},
        {"drain-ms", required_argument, NULL, 'T'},
        {"max-body", required_argument, NULL, 'm'},
        {"query-delay-ms", required_argument, NULL, 'q'},
        {"debug", no_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (options){.host = "127.0.0.1",
                   .db = "notes.db",
                   .port = 8080,
                   .deadline_ms = 10000,
                   .drain_ms = 10000,
                   .max_body = 65536};
    int c, li = -1;
    while ((c = getopt_long(argc, argv, "", longs, &li)) != -1) {
        bool ok = true;
        switch (c) {
        case 'p':
            ok = number(optarg, 0, 65535, &o->port);
            break;
        case 'H':
            o->host = optarg;
            break;
        case 'd':
            ok = *optarg != '\0';
            o->db = optarg;
            break;
        case 'D':
            ok = number(optarg, 1, INT_MAX, &o->deadline_ms);
            break;
        case 'T':
            ok = number(optarg, 0, INT_MAX, &o->drain_ms);
            break;
        case 'm':
            ok = number(optarg, 1, INT_MAX, &o->max_body);
            break;
        case 'q':
            ok = number(optarg, 0, 600000, &o->delay_ms);
            break;
        case 'g':
            o->debug = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            ok = false;
            optarg = NULL; /* getopt said what was wrong */
            break;
        }
        if (!ok) {
            if (optarg && li >= 0)
                fprintf(stderr, "notes-api: bad value for --%s: '%s'\n",
                        longs[li].name, optarg);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "notes-api: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return 0;
}

static void on_drained(pact_error *err, void *ud)
{
    server *d = ud;
    d->app.srv = NULL; /* freed before this runs */
    d->cut = err != NULL;
    for (size_t i = 0; i < 2; i++)
        pact_clear(d->app.loop, d->sigs[i]);
    /* nothing else keeps the loop: pact_loop_run returns */
}

static void on_signal(pact_error *err, int signum, void *ud)
{
    server *d = ud;
    if (err || d->app.draining)
        return;
    d->app.draining = true;
    fprintf(stderr, "notes-api: %s: draining the requests in flight\n",
            signum == SIGTERM ? "SIGTERM" : "SIGINT");
    int rc = pact_http_server_shutdown(d->app.srv, d->drain_ms, on_drained, d);
    if (rc < 0) {
        fprintf(stderr, "notes-api: cannot shut down: %s\n", pact_strerror(rc));
        exit(1);
    }
}

static int serve(const options *o)
{
    server d = {.app = {.deadline_ms = o->deadline_ms,
                        .delay_ms = (unsigned)o->delay_ms},
                .drain_ms = (uint64_t)o->drain_ms};
    int rc = pact_loop_new(&d.app.loop);
    if (rc < 0) {
        fprintf(stderr, "notes-api: %s\n", pact_strerror(rc));
        return 1;
    }
    if (o->debug) {
        /* a query on the loop would show here, with the loop's stack */
        pact_stall_opts so = {.threshold_ms = 100, .stack = true};
        if ((rc = pact_loop_watch_stalls_opts(d.app.loop, &so)) < 0)
            fprintf(stderr, "notes-api: --debug: %s\n", pact_strerror(rc));
    }
    char err[512] = "";
    pact_http_opts ho = {.max_body = (size_t)o->max_body};
    rc = pact_http_listen(d.app.loop, o->host, (int)o->port, &ho, &d.app.srv);
    if (rc == PACT_EADDRINUSE) {
        fprintf(stderr,
                "notes-api: port %ld on %s is in use (another server is "
                "listening there): pick another with --port, or --port 0\n",
                o->port, o->host);
    } else if (rc < 0) {
        fprintf(stderr, "notes-api: cannot listen on %s port %ld: %s\n",
                o->host, o->port, pact_strerror(rc));
    } else if ((rc = notes_api_routes(d.app.srv, &d.app)) < 0) {
        fprintf(stderr, "notes-api: routes: %s\n", pact_strerror(rc));
    } else if (notes_db_open(o->db, &d.app.db, err, sizeof err) < 0) {
        /* opened once the port is ours: a busy port leaves no file */
        fprintf(stderr, "notes-api: cannot open the database %s\n", err);
        rc = PACT_EINVAL;
    }
    pact_watch_opts wo = {.unref = true};
    if (rc == 0 && ((rc = pact_signal_start(d.app.loop, SIGTERM, &wo, on_signal,
                                            &d, &d.sigs[0])) < 0 ||
                    (rc = pact_signal_start(d.app.loop, SIGINT, &wo, on_signal,
                                            &d, &d.sigs[1])) < 0))
        fprintf(stderr, "notes-api: signals: %s\n", pact_strerror(rc));
    if (rc < 0) {
        for (size_t i = 0; i < 2; i++)
            if (d.sigs[i].id)
                pact_clear(d.app.loop, d.sigs[i]);
        if (d.app.srv)
            pact_http_server_close(d.app.srv, NULL, NULL);
        pact_loop_run(d.app.loop, PACT_RUN_DEFAULT);
        pact_loop_free(d.app.loop);
        notes_db_close(d.app.db);
        return 1;
    }
    printf("listening on %d\n", pact_http_server_port(d.app.srv));
    fflush(stdout);
    rc = pact_loop_run(d.app.loop, PACT_RUN_DEFAULT);
    int frc = pact_loop_free(d.app.loop);
    notes_db_close(d.app.db); /* after the loop: no job runs any more */
    if (rc < 0 || frc < 0) {
        fprintf(stderr, "notes-api: the loop: %s\n",
                pact_strerror(rc < 0 ? rc : frc));
        return 1;
    }
    fprintf(stderr, "notes-api: drained%s; exiting\n",
            d.cut ? " (connections still open at the deadline were cut)" : "");
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    return serve(&o);
}

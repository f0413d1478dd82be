/* pact-styles' load client: CONNS connections to a daemon on 127.0.0.1,
 * each sending one request, waiting for its whole answer and checking it,
 * then sending the next, for a given time; it records every round trip's
 * latency. Plain sockets and epoll, no pact: the client must not share
 * the servers' costs. */
#ifndef PACT_STYLES_LOAD_H
#define PACT_STYLES_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum load_kind {
    LOAD_ECHO,  /* 64-byte messages echoed back */
    LOAD_API,   /* GET /items/N and POST /items, in turn */
    LOAD_BLOCK, /* `heavy` connections GET /hash, the others GET /ping */
};

struct load_opts {
    enum load_kind kind;
    int port;
    int conns;
    int heavy;      /* LOAD_BLOCK: connections asking for /hash */
    double seconds; /* how long to keep sending */
    /* called about every 100 ms with the fraction done */
    void (*progress)(double frac, void *ud);
    void *ud;
};

struct load_result {
    long done;       /* round trips measured (pings for LOAD_BLOCK) */
    long heavy_done; /* LOAD_BLOCK: /hash answers */
    double seconds;  /* from the first request to the last answer */
    double rps;      /* done / seconds */
    double p50_us, p99_us, max_us;
    char error[200]; /* why the run failed, or "" */
};

/* Run the load. @return 0, or -1 with r->error set. */
int load_run(const struct load_opts *o, struct load_result *r);

/* One HTTP/1.1 request (@p in: its JSON body, or NULL) on a new connection,
 * the whole response's body in *@p body (malloc'd) and its status
 * returned; -1 on failure. */
int load_http(int port, const char *method, const char *path, const char *in,
              char **body);
/* load_http of a GET. */
int load_http_get(int port, const char *path, char **body);

/* Send what comes from fd @p in to the echo server on @p port in pieces of
 * odd sizes, end, and write what comes back to fd @p out until the server
 * ends. @return 0, -1. */
int load_echo_transcript(int port, int in, int out);

/* A fixed set of requests to the API on @p port (good and bad ids, good
 * and bad bodies), each answer's status and body a line on @p out.
 * @return 0, -1. */
int load_api_transcript(int port, FILE *out);

/* Send GET /stuck on a connection of its own, then fetch /dump (the loop's
 * task dump, where that request shows) and close. @return the dump
 * (malloc'd), or NULL. */
char *load_stuck_dump(int port);

/* Monotonic time in seconds. */
double load_now(void);

#endif

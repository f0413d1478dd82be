/* Private to the HTTP client: fetch_url.c (URLs, their resolution against
 * a redirect's Location, a request's bytes), fetch_parse.c (a response read
 * with http-parser into a pact_fetch_res), fetch_res.c (the response's
 * accessors), fetch_pool.c (the per-loop service: origins, their
 * kept-alive connections and their queues, the transports) and fetch.c
 * (the operation: its record, timeout, redirects, the public calls).
 *
 * A fetch is one pending-operation record for its whole life, across its
 * queueing, connects and redirects; a connection belongs to the pool and
 * serves one fetch at a time (no pipelining). Everything the user's code
 * can do from a callback (abort, close_all, fetch again) is handled by
 * detaching the fetch from its connection before calling out. */
#ifndef PACT_FETCH_INTERNAL_H
#define PACT_FETCH_INTERNAL_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error                                                                         \
    "fetch_internal.h is layer 5 (services): a lower layer must not include it"
#endif

#include <http_parser.h>

#include "internal.h"
#include "pact/fetch.h"
#include "pact/tcp.h"

#define FETCH_MAX_HOST 255

/* An absolute URL, split. */
struct fetch_url {
    bool https;
    char host[FETCH_MAX_HOST + 1]; /* without an IPv6 literal's brackets */
    int port;
    char *target; /* path and query, from "/", malloc'd */
};

/* fetch_url.c */
int pact__fetch_url_parse(const char *url, struct fetch_url *out);
/* @p loc (a Location) against @p base into @p out. 0, PACT_EINVAL,
 * PACT_ENOMEM. */
int pact__fetch_url_resolve(const struct fetch_url *base, const char *loc,
                            struct fetch_url *out);
void pact__fetch_url_free(struct fetch_url *u);
/* "http://host:port/target" (malloc'd), or NULL. */
char *pact__fetch_url_string(const struct fetch_url *u);
/* Whether @p a and @p b are the same origin. */
bool pact__fetch_same_origin(const struct fetch_url *a,
                             const struct fetch_url *b);
bool pact__fetch_token(const char *s);

/* A request: what every hop sends, copied from the options. */
struct fetch_req {
    char *method;
    char **hn, **hv; /* the caller's headers, copied */
    size_t nh;
    char *body;
    size_t blen;
    bool has_body; /* body or json given (a POST with "" still says 0) */
};

/* The bytes of @p r to @p u into *@p out (malloc'd), *@p len. */
int pact__fetch_wire(const struct fetch_req *r, const struct fetch_url *u,
                     char **out, size_t *len);
void pact__fetch_req_free(struct fetch_req *r);

/* The response (fetch_res.c). */
struct pact_fetch_res {
    int refs;
    int status;
    char *reason;
    char **hn, **hv;
    size_t nh, hcap;
    char *body; /* NUL after blen bytes; never NULL once complete */
    size_t blen, bcap;
    char *url;
    unsigned redirects;
};

pact_fetch_res *pact__fetch_res_new(void);
/* Append @p len bytes to header @p i's name (@p value false) or value. */
int pact__fetch_res_hpart(pact_fetch_res *r, bool value, const char *at,
                          size_t len);
int pact__fetch_res_append(pact_fetch_res *r, const char *at, size_t len);
void pact__fetch_res_free_v(void *res);

/* A response being read (fetch_parse.c). */
struct fetch_parse {
    http_parser p;
    pact_fetch_res *res; /* NULL once taken */
    size_t max_body;
    bool head;     /* the request was HEAD: no body */
    bool in_field; /* the last header part was a name */
    bool headers;  /* the head is in */
    bool done;     /* the message is complete */
    bool keep;     /* the connection may serve another request */
    int err;       /* our own refusal (EMSGSIZE, ENOMEM) */
    int64_t total; /* Content-Length, or -1 */
    size_t got;    /* bytes fed */
    char *why;     /* what went wrong, for the error */
};

void pact__fetch_parse_init(struct fetch_parse *fp, bool head, size_t max_body);
/* Feed @p len bytes; *@p used of them were taken (fewer once done).
 * @return 0 or a negative code (fp->why says more). */
int pact__fetch_parse_feed(struct fetch_parse *fp, const char *buf, size_t len,
                           size_t *used);
/* The peer's EOF: completes a body read until close. */
int pact__fetch_parse_eof(struct fetch_parse *fp);
void pact__fetch_parse_free(struct fetch_parse *fp);
/* The error for code @p rc after a parse failure. */
pact_error *pact__fetch_parse_error(struct fetch_parse *fp, int rc);

/* ---- the pool (fetch_pool.c) --------------------------------------------- */

struct fetch;
struct fetch_conn;

/* A client TLS context the pool made, and the settings it was made with.
 * Made on the first https:// connect with those settings, kept for the
 * next (loading the system's store is not cheap), freed with the pool. */
struct fetch_tls {
    pact_tls_ctx *ctx; /* NULL: the slot is free */
    char *ca_file;     /* NULL: the system's store only */
    bool insecure;
};

/* How many TLS contexts a pool keeps: a program uses one or two CA
 * settings, and one more evicts the oldest (connections keep their own
 * reference to theirs). */
#define FETCH_TLS_CTXS 4

/* The per-loop state (PACT__SVC_FETCH). */
struct fetch_svc {
    pact_loop *loop;
    struct pact__list origins;
    struct pact__list conns; /* every connection not yet freed */
    pact_fetch_pool_opts o;  /* defaults filled in */
    struct fetch_tls tls[FETCH_TLS_CTXS];
    unsigned tls_next; /* the slot to reuse when all are taken */
};

/* An origin is scheme, host and port and, for https, the TLS settings
 * too: a connection verified against one CA setting never serves a fetch
 * that asked for another. */
struct fetch_origin {
    struct pact__list node; /* svc->origins */
    struct fetch_svc *svc;
    bool https;
    char host[FETCH_MAX_HOST + 1];
    int port;
    char *ca_file;          /* https only: the fetch's opts.ca_file, copied */
    bool insecure;          /* https only: opts.insecure */
    struct pact__list idle; /* connections without a fetch, newest first */
    struct pact__list waiters; /* fetches waiting for a connection */
    size_t open;               /* connections open or connecting */
    size_t records;            /* connection records not yet freed */
};

/* A fetch (fetch.c). */
struct fetch {
    struct pact__op op;
    struct pact__list wnode; /* origin->waiters while waiting */
    struct fetch_svc *svc;
    pact_loop *loop;
    pact_fetch_res_cb cb;
    void *ud;
    pact_fn ud_drop;
    struct fetch_url url;
    struct fetch_req req;
    char *ca_file; /* opts.ca_file, copied: every https hop's */
    bool insecure;
    char *wire;
    size_t wlen;
    struct fetch_conn *conn; /* serving it, or connecting for it */
    struct fetch_parse parse;
    bool parsing;
    bool stopped; /* cancelled: everything let go */
    bool retried; /* sent again once after a stale connection */
    struct event *tmo;
    bool tmo_on;
    uint64_t timeout_ms;
    unsigned redirects, max_redirects;
    pact_fetch_redirect redirect;
    size_t max_body;
    pact_fetch_progress_fn progress;
    void *progress_ud;
};

struct fetch_svc *pact__fetch_svc(pact_loop *loop);
/* The pool's client context for @p ca_file and @p insecure in *@p out
 * (borrowed: the pool's), made if none is kept. @return 0, or the code of
 * the new error in *@p err (a CA file missing or not PEM), PACT_ENOMEM. */
int pact__fetch_tls_ctx(struct fetch_svc *svc, const char *ca_file,
                        bool insecure, pact_tls_ctx **out, pact_error **err);
/* Find a connection for @p f (to f->url's origin): an idle one, a new one,
 * or a place in the queue. @return 0, or a code (nothing changed). */
int pact__fetch_acquire(struct fetch *f);
/* Let go of @p f (cancelled): out of the queue, its connection destroyed
 * (or its connect aborted). */
void pact__fetch_detach(struct fetch *f);

/* fetch.c: the pool's calls back */
/* @p f has connection f->conn, open as @p s: send the request. */
void pact__fetch_send(struct fetch *f, pact_stream *s);
/* Bytes for @p f from its connection. */
void pact__fetch_data(struct fetch *f, const char *buf, size_t len);
/* The connection ended (EOF: @p err NULL) or failed (@p err borrowed)
 * while serving @p f. */
void pact__fetch_conn_lost(struct fetch *f, pact_error *err);
/* @p f's connection could not be made (@p err borrowed). */
void pact__fetch_conn_failed(struct fetch *f, pact_error *err);
/* @p f is done with its connection: back to the pool if @p keep, else
 * closed. */
void pact__fetch_release(struct fetch *f, bool keep);
/* Whether the connection of @p f was used before (a stale one may be
 * retried). */
bool pact__fetch_conn_reused(const struct fetch *f);

#endif

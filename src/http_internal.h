/* Private to the HTTP server: http_server.c (listening, connections, their
 * deadlines, reading and the ordered writing of responses), http_parse.c
 * (a request's head checked strictly, then http-parser for the framing:
 * Content-Length, chunked), http_msg.c (the request's accessors, the
 * response, its bytes), http_route.c (routes, the four handler styles,
 * pact_http_respond), http_stream.c (streamed responses) and http_body.c
 * (streamed request bodies: pact_http_req_read).
 *
 * A connection reads in events mode into one input buffer; a head is taken
 * whole (up to "\r\n\r\n", bounded) and checked by our own code before
 * http-parser sees it, so what RFC 9112 says MUST is enforced here whatever
 * the parser tolerates. Requests queue on their connection in arrival
 * order; a response is written when every earlier one has been. */
#ifndef PACT_HTTP_INTERNAL_H
#define PACT_HTTP_INTERNAL_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error                                                                         \
    "http_internal.h is layer 5 (services): a lower layer must not include it"
#endif

#include <http_parser.h>

#include "internal.h"
#include "pact/http.h"
#include "pact/op.h"
#include "pact/promise.h"
#include "pact/task.h"
#include "pact/tcp.h"

enum http_style { H_CB, H_PROMISE, H_TASK };

struct http_route {
    struct http_route *next;
    char *method;  /* NULL: any */
    char *pattern; /* copied */
    enum http_style style;
    union {
        pact_http_handler cb;
        pact_http_promise_handler p;
        pact_http_task_handler task;
    } fn;
    void *ud;
    bool stream_body; /* pact_http_route_stream_body: dispatched at its head */
};

struct pact_http_server {
    pact_loop *loop;
    pact_tcp_server *tcp;
    pact_http_opts o; /* defaults filled in */
    struct http_route *routes, **tail;
    struct pact__list conns;
    size_t nconns;
    bool closing, tcp_closed, freed_cb;
    pact_fn close_cb;
    void *close_ud;
    time_t date_at; /* the cached Date header's second */
    char date[40];
};

#define HTTP_MAX_PARAMS 8

/* A request: owned by its connection's queue until its response is
 * written, and by its handler until that has answered (`refs`). */
struct pact_http_req {
    struct pact__list node; /* conn->reqs while queued */
    struct http_conn *conn; /* NULL once the connection has gone */
    pact_loop *loop;
    pact_op *op;       /* the pending-operation record */
    pact_abort *abort; /* aborted when the client goes */
    int refs;
    char *head; /* the head, copied, NUL-split in place */
    const char *method, *path, *query;
    const char **hnames, **hvalues;
    size_t nh;
    const char *pnames[HTTP_MAX_PARAMS], *pvalues[HTTP_MAX_PARAMS];
    char *pbuf; /* the parameters' values */
    size_t np;
    char *body;
    size_t blen, bcap;
    unsigned short major, minor;
    bool complete;   /* the whole body is in */
    bool answered;   /* pact_http_respond called (or an error response) */
    bool keep_alive; /* the connection may go on after it */
    bool head_only;  /* HEAD: no body in the response */
    bool expect;     /* 100-continue asked, not sent yet */
    bool dispatched; /* its handler has been started */
    bool retired;    /* a shell in the quarantine (http_msg.c) */
    /* a streamed response (http_stream.c) */
    bool streaming;           /* pact_http_respond_start called */
    bool ended;               /* pact_http_end called (or implied) */
    bool head_sent;           /* its head is written (it is first in line) */
    bool chunked;             /* pieces are chunks; else close-delimited */
    bool sbody;               /* the body is sent (not HEAD, 204, 304) */
    struct pact__list pieces; /* written, not yet handed to the stream */
    size_t queued;            /* their bytes */
    /* a streamed request body (http_body.c) */
    bool bstream;  /* its handler reads the body (dispatched at the head) */
    bool hpart;    /* a callback handler still holds its part */
    bool forced;   /* the server answered it (413, 408) under its handler */
    bool rpending; /* a pact_http_req_read waits */
    bool rsched;   /* an immediate will settle it */
    pact_value_cb rcb;
    void *rud;
    int berr;                /* the body failed: PACT_EMSGSIZE, ECONNRESET... */
    size_t btotal;           /* the body's bytes received (max_body) */
    size_t roff;             /* not streamed: the body's bytes given */
    struct http_conn *rconn; /* its connection while it reads its body */
    uint64_t retired_at;     /* the loop's turn (imm_epoch) it was retired in */
    struct http_route h;     /* its route, copied (handler, style, ud) */
    int err_status;  /* a response the server makes (400...), then close */
    char *out;       /* the response's bytes once answered */
    char *task_name; /* a task handler's: "METHOD /pattern" */
    size_t olen;
};

/* A connection. */
struct http_conn {
    struct pact__list node; /* srv->conns */
    pact_http_server *srv;
    pact_stream *s;
    http_parser parser;
    struct pact__list reqs; /* in arrival order */
    size_t nreqs;
    pact_http_req *cur; /* being read (head or body) */
    char *in;           /* bytes read and not yet parsed */
    size_t ilen, icap;
    bool in_body;        /* cur's head is in; its body is being read */
    bool msg_done;       /* on_message_complete ran (http-parser paused) */
    bool broken;         /* read no more: an error response is queued */
    bool closing;        /* close once the queue is written */
    bool eof;            /* the peer ended its side */
    bool dead;           /* the stream is closing or closed */
    bool paused;         /* reading paused by us */
    bool full;           /* the output passed its high-water mark */
    bool kicking, again; /* kick() runs; run it once more */
    /* one lazy deadline: what it is and when (loop ms; 0: none) */
    enum { D_NONE, D_IDLE, D_HEAD, D_BODY } dkind;
    uint64_t due, armed; /* the deadline; when the timer fires */
    pact_handle timer;
    bool timer_on;
};

/* http_parse.c */
int pact__http_head(struct http_conn *c, const char *buf, size_t len,
                    pact_http_req **out);
int pact__http_body(struct http_conn *c, const char *buf, size_t len,
                    size_t *used);
void pact__http_parser_init(struct http_conn *c);

/* http_msg.c */
/* The per-loop state (PACT__SVC_HTTP): the quarantine of retired request
 * shells. A handler's request pointer may still be used after its answer
 * (a second pact_http_respond, which must say PACT_EALREADY): a request
 * that reached a handler is therefore not freed when its last reference
 * goes; its parts are, and its shell, marked answered, waits here until at
 * least one whole loop turn has passed and more than HTTP_QUARANTINE
 * younger shells are kept, or pact_loop_free. */
struct http_svc {
    struct pact__list shells; /* oldest first */
    size_t nshells;
};
struct http_svc *pact__http_svc(pact_loop *loop);
pact_http_req *pact__http_req_new(struct http_conn *c);
void pact__http_req_unref(pact_http_req *req);
int pact__http_serialize(pact_http_server *srv, pact_http_req *req,
                         const pact_http_res *res);
void pact__http_res_free_v(void *res); /* a response value's free */
/* A streamed response's head into r->out; its body, if any, in @p body. */
int pact__http_serialize_stream(pact_http_server *srv, pact_http_req *req,
                                const pact_http_res *res, const void **body,
                                size_t *blen);
int pact__http_error_out(pact_http_server *srv, pact_http_req *req, int status);

/* http_stream.c */
/* Write @p req's head and pieces: 1 when it is ended and all handed to the
 * stream (it leaves the queue), 0 when more is to come, or a write error. */
int pact__http_stream_flush(struct http_conn *c, pact_http_req *req);
/* The connection went: fail what is queued (once each, PACT_ECONNRESET). */
void pact__http_stream_fail(pact_http_req *req);
/* A promise or task handler ended: end a streamed response it left open
 * (cut it when it @p failed). */
void pact__http_stream_settled(pact_http_req *req, bool failed);

/* http_body.c */
/* What a streamed body may hold in the server before reading stops. */
#define HTTP_RMARK (64 * 1024)
/* The response is complete: the rest of @p req's body is dropped. */
bool pact__http_body_dropping(const pact_http_req *req);
/* Something happened to @p req's body: settle a waiting read if it can. */
void pact__http_body_wake(pact_http_req *req);

/* http_route.c */
void pact__http_dispatch(pact_http_req *req);
/* The route @p req goes to streams its body. */
bool pact__http_route_streams(pact_http_req *req);
/* A callback handler whose request the server answered (413...) lets go
 * of it at its own answer, which is refused with PACT_EALREADY. */
void pact__http_forced_release(pact_http_req *req);
/* The checks every respond call starts with: 0, or the error after freeing
 * @p res, which the call owns whatever happens; @p fn names the caller in
 * the misuse report. */
int pact__http_respond_check(pact_http_req *req, pact_http_res *res,
                             const char *fn);

/* http_server.c */
void pact__http_answered(pact_http_req *req);
void pact__http_expect(pact_http_req *req);
/* The handler read @p c's streamed body: refresh its deadline, read on. */
void pact__http_body_resume(struct http_conn *c);

#endif

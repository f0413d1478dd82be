/* Private to the sockets: stream.c (a connected stream: reading, writing,
 * events, back-pressure, its end), stream_timer.c (its timeouts),
 * stream_read.c (read requests, writes with a callback, the promise
 * twins), tcp.c (servers, accept, the service's per-loop state),
 * shutdown.c (a server's graceful shutdown), frame.c (messages: frames and
 * JSON lines on top of the read requests) and connect.c (connects, name
 * resolution).
 *
 * Each stream watches its socket with two raw libevent events (read:
 * persistent, added while the stream wants input; write: added only while
 * the kernel refused output), with evbuffers only as buffers: a readable
 * event costs one recv, a write one send when nothing is queued, so an echo
 * costs about two system calls a message (bufferevent makes five).
 *
 * A stream with TLS (s->tls: tls_io.c, tls_internal.h) keeps all of this:
 * its recv and its sends go through OpenSSL at those same calls, over
 * memory buffers, so its plaintext meets the same buffers and events.
 *
 * What must not run inside the call that caused it (a stream's error and
 * close events, a request's completion) is queued on the service's due
 * list, which one reserved tick per loop delivers: delivering never fails
 * for want of memory. */
#ifndef PACT_TCP_INTERNAL_H
#define PACT_TCP_INTERNAL_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error "tcp_internal.h is layer 5 (services): a lower layer must not include it"
#endif

#include <event2/buffer.h>
#include <event2/util.h> /* evutil_socket_t */
#include <sys/socket.h>
#include <sys/un.h>

#include "internal.h"
#include "pact/tcp.h"

struct evbuffer;

/* Something to run on the service's next tick. */
struct due {
    struct pact__list node; /* svc->due while queued */
    void (*run)(struct due *d);
    /* pact_loop_free before it ran: release without calling back */
    void (*drop)(struct due *d);
};

struct read_req;

/* The per-loop state (PACT__SVC_TCP). */
struct tcp_svc {
    pact_loop *loop;
    struct pact__list streams; /* every stream not yet freed */
    struct pact__list servers; /* every server not yet freed */
    struct pact__list due;     /* struct due, in order */
    bool tick;                 /* the delivery is queued (reserved slot) */
    unsigned char *rbuf;       /* events mode reads land here */
    struct read_req *spare;    /* read requests to reuse (stream_read.c) */
    size_t nspare;
};

#define PACT__RBUF 65536

/* A stream's flags. */
enum {
    S_PAUSED = 1,       /* pact_stream_pause */
    S_EOF = 2,          /* the peer's end was read */
    S_ENDING = 4,       /* pact_stream_end: shut down once flushed */
    S_SHUT = 8,         /* shutdown(SHUT_WR) done */
    S_CLOSING = 16,     /* pact_stream_close: close once flushed */
    S_DEAD = 32,        /* destroyed: socket closed, final events due */
    S_NEED_DRAIN = 64,  /* write returned 0: emit drain when empty */
    S_FREE_LATER = 128, /* to be freed once off the stack */
    S_TOLD = 256,       /* its final events were delivered */
    S_LET_GO = 512,     /* a close callback, or pact_stream_close/destroy */
    S_STARTED = 1024,   /* reading began (events set, or a request) */
};

struct read_req;
struct pact__tls;

/* The fields every message touches come first, together: with a thousand
 * streams busy none stays in the cache from one message to the next, so
 * each cache line they spread over is a miss a message. */
struct pact_stream {
    pact_loop *loop;
    struct tcp_svc *svc;
    int fd;
    unsigned flags;
    unsigned in_cb; /* callbacks of its own on the stack */
    bool rd_on, wr_on, tm_on;
    bool timeouts;         /* one of the timeouts is set (o) */
    bool in_some;          /* `in` may hold bytes: see pact__stream_in_len */
    struct read_req *rreq; /* the pending read request */
    struct pact__tls *tls; /* its TLS connection (tls_io.c), or NULL */
    struct event *rev;     /* read: persistent while it wants input */
    struct evbuffer *in;   /* read ahead, not yet taken by requests */
    uint64_t queued, sent; /* bytes given to write, taken by the kernel */
    void *ud;
    size_t read_hw;        /* o.read_high_water, here with the hot ones */
    pact_stream_events ev; /* ev.data is hot, the rest is not */
    pact_stream_opts o;
    /* the rest */
    struct evbuffer *out;
    struct event *wev, *tev;
    struct pact__list wreq;    /* writes with callbacks, in order */
    struct pact__list files;   /* file parts (stream_file.c), in order */
    struct pact__op op;        /* its life: pending while open */
    struct pact__list node;    /* svc->streams */
    struct due fin;            /* the error and close events */
    pact_tcp_server *server;   /* accepted by it, or NULL */
    pact_error *err;           /* for the error event */
    uint64_t last_rd, last_wr; /* ms, for the timeouts */
    bool tcp;                  /* not a Unix socket: TCP options apply */
    bool nodelay, keepalive;   /* as set on the socket */
};

/* The bytes read ahead in `in`. The evbuffer is a line of its own, a miss
 * a message at a thousand streams, so the usual answer, none, comes from
 * the hot flag: set where bytes are added, cleared where they are taken. */
static inline size_t pact__stream_in_len(const pact_stream *s)
{
    return s->in_some ? evbuffer_get_length(s->in) : 0;
}

/* After bytes were taken from `in`: whether any are left. */
static inline void pact__stream_in_taken(pact_stream *s)
{
    s->in_some = evbuffer_get_length(s->in) != 0;
}

/* A listening server (tcp.c), and its shutdown (shutdown.c). */
struct pact_tcp_server {
    struct pact__op op;     /* pending while listening */
    struct pact__list node; /* svc->servers */
    struct due due;         /* the close callback */
    struct tcp_svc *svc;
    pact_loop *loop;
    int fd, port, family;
    struct event *ev, *backoff;
    bool ev_on, bo_on;
    bool closed;  /* pact_tcp_server_close */
    bool stopped; /* not listening any more */
    bool episode; /* out of descriptors, logged */
    uint64_t backoff_ms;
    pact_tcp_accept_cb cb;
    void *ud;
    pact_stream_opts so;
    pact_tls_ctx *tls; /* a reference, or NULL */
    size_t max_conns, conns;
    pact_fn close_cb;
    void *close_ud;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    /* a graceful shutdown (shutdown.c) */
    bool shutting;          /* it began: waiting for the connections */
    bool finishing;         /* its callback is due */
    struct event *deadline; /* closes the rest */
    bool dl_on;
    uint64_t deadline_ms;
    pact_cb shut_cb;
    void *shut_ud;
    pact_error *shut_err;
    pact_abort *token;   /* pact_tcp_server_shutdown_token */
    pact_handle sigs[2]; /* pact_tcp_server_shutdown_on_signals */
    uint64_t sig_deadline_ms;
    pact_cb sig_cb;
    void *sig_ud;
};

/* tcp.c */
struct tcp_svc *pact__tcp_svc(pact_loop *loop);
/* Accept what the kernel's queue holds, then stop listening. */
void pact__server_stop(pact_tcp_server *srv);
/* The server's due: free it, then call its close or shutdown callback. */
void pact__server_closed(struct due *d);
/* shutdown.c: its connections are gone, or the deadline passed (with
 * @p err, taken): the callback is due. */
void pact__server_shutdown_done(pact_tcp_server *srv, pact_error *err);
/* shutdown.c: free what the shutdown holds (server_free). */
void pact__server_shutdown_release(pact_tcp_server *srv);
/* Queue @p d on the service's next tick (no-op if queued already). */
void pact__tcp_due(struct tcp_svc *svc, struct due *d);
/* The code of the last system call (-errno). */
static inline int pact__sys_err(void)
{
    return errno ? -errno : PACT_EUNKNOWN;
}
/* A stream's server let go of it (it is freed). */
void pact__server_stream_gone(pact_tcp_server *srv);

/* stream.c */
/* A stream of @p fd (connected, non-blocking; of address @p family),
 * registered; @p opts may be NULL. NULL on PACT_ENOMEM (fd is then left
 * open). */
pact_stream *pact__stream_new(struct tcp_svc *svc, int fd, int family,
                              const pact_stream_opts *opts, pact_abort *abort);
/* Destroy @p s with @p err (taken; may be NULL): socket closed, requests
 * failed, the error and close events due. */
void pact__stream_kill(pact_stream *s, pact_error *err);
/* The read interest follows the state (after the input was consumed). */
void pact__stream_update(pact_stream *s);
/* A wait for input begins (a read request, resume): the read timeout
 * counts from now. */
void pact__stream_read_clock(pact_stream *s);
/* Free what is left of @p s (pact_loop_free). */
void pact__stream_release(pact_stream *s);
/* The error for code @p rc of a socket call named @p what. */
pact_error *pact__sock_error(int rc, const char *what);

/* Add @p ev (with @p tv, or again with a new one) / delete it, keeping the
 * loop's count of its own events. */
void pact__stream_ev_on(pact_stream *s, struct event *ev, bool *on,
                        const struct timeval *tv);
void pact__stream_ev_off(pact_stream *s, struct event *ev, bool *on);
/* Free @p s if it is dead, told, let go of, and off the stack. */
void pact__stream_maybe_free(pact_stream *s);
/* @p s wants input now (events mode reading, a request, room in the
 * input; a TLS handshake under way). */
bool pact__stream_wants_read(const pact_stream *s);
/* @p n bytes read (plaintext) at @p buf: to the data event, a request or
 * the input. */
void pact__stream_got(pact_stream *s, const void *buf, size_t n);
/* The peer's end was read. */
void pact__stream_eof(pact_stream *s);
/* Let go of a stream nobody was given (a TLS handshake that failed). */
void pact__stream_let_go(pact_stream *s);

/* pact's own libevent callbacks: drained after, as io.c's. */
#define PACT__OWN_CALLBACK(s, body)                                            \
    do {                                                                       \
        pact_loop *loop_ = (s)->loop;                                          \
        bool was_ = pact__own_begin(loop_);                                    \
        pact__step_begin(loop_, PACT_STEP_POLL, (void (*)(void))(s)->ev.data,  \
                         (s)->ud);                                             \
        (s)->in_cb++;                                                          \
        body;                                                                  \
        (s)->in_cb--;                                                          \
        pact__step_end(loop_);                                                 \
        pact__stream_maybe_free(s);                                            \
        pact__drain(loop_);                                                    \
        pact__own_end(loop_, was_);                                            \
    } while (0)

static inline uint64_t pact__now_ms(void)
{
    return pact__now_ns() / 1000000;
}

/* stream_timer.c */
static inline bool pact__stream_timeouts(const pact_stream *s)
{
    return s->timeouts; /* idle, read or write timeout set (apply_opts) */
}
/* (Re)arm the timer for the next check, or stop it. */
void pact__stream_arm_timer(pact_stream *s, uint64_t now);
/* The timer's libevent callback. */
void pact__stream_on_timer(evutil_socket_t fd, short what, void *arg);

/* stream_read.c */
/* A read request's kinds (RD_FRAME: a 4-byte big-endian length, then that
 * many bytes; over the request's max is PACT_EMSGSIZE). */
enum rkind { RD_SOME, RD_LINE, RD_EXACT, RD_UNTIL, RD_FRAME };
/* Start a read request of @p kind (not RD_EXACT nor RD_UNTIL) with
 * @p ud_drop for @p ud when the loop is freed before it is called, and
 * @p cb called as soon as it is done when @p at_once (a promise twin's),
 * else on a later tick. As pact_stream_read_some otherwise. */
int pact__read_start(pact_stream *s, int kind, const pact_read_opts *opts,
                     pact_stream_read_cb cb, void *ud, pact_fn ud_drop,
                     bool at_once, const char *fn);
/* @p n bytes just read at @p buf, with no input buffered: a pending
 * read_some takes them without a copy into the input. @return whether it
 * did (else the caller adds them to the input). */
bool pact__read_direct(pact_stream *s, const void *buf, size_t n);
/* Complete the pending read request if the input satisfies it. */
void pact__read_try(pact_stream *s);
/* Free the read requests kept for reuse (the service is freed). */
void pact__read_spares_free(struct tcp_svc *svc);
/* Fail the pending requests of a destroyed stream with @p err
 * (borrowed). */
void pact__stream_fail_reqs(pact_stream *s, pact_error *err);
/* The writes with callbacks whose data the kernel has taken. */
void pact__write_reqs_done(pact_stream *s);

/* stream_file.c: parts of the output sent from a file with sendfile(2),
 * placed in the byte stream between the memory writes around them. */
/* tls_io.c: TLS records wait to be sent. */
bool pact__tls_pending(const pact_stream *s);
/* Whether output is queued: memory, file parts, or TLS records. */
static inline bool pact__out_pending(const pact_stream *s)
{
    /* without TLS, what the kernel has not taken is all queued: no look
     * at the output buffer (a cache miss a message) */
    if (!s->tls)
        return s->sent < s->queued;
    return evbuffer_get_length(s->out) || !pact__list_empty(&s->files) ||
           pact__tls_pending(s);
}
/* Queue @p len bytes of @p fd from @p off after what is queued. */
int pact__stream_write_file(pact_stream *s, int fd, int64_t off, size_t len);
/* Send the first file part if the memory before it has gone: 1 when it
 * was sent whole (go on flushing), 0 when the socket is full, or an error. */
int pact__stream_flush_file(pact_stream *s);
/* The bytes of memory to send before the next file part (SIZE_MAX: none). */
size_t pact__stream_mem_before_file(const pact_stream *s);
/* Drop the parts (the stream is destroyed). */
void pact__stream_drop_files(pact_stream *s);

/* pact_stream_write and _end without the checks */
int pact__stream_write(pact_stream *s, const void *data, size_t len);
/* As pact__stream_write, the bytes kept by reference when not sent at once
 * (@p release NULL: copied). */
int pact__stream_write_ref(pact_stream *s, const void *data, size_t len,
                           pact_stream_release_fn release, void *ud);
int pact__stream_end(pact_stream *s);

/* tcp.c: @p host (numeric IPv4 or IPv6) and @p port as an address.
 * @return 0 or PACT_EINVAL. */
int pact__tcp_addr(const char *host, int port, struct sockaddr_storage *ss,
                   socklen_t *len);

#endif

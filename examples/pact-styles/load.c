/* The load client of pact-styles (see load.h). */
#include "load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ECHO_LEN 64
#define IN_MAX 8192

struct conn {
    int fd;
    bool heavy; /* LOAD_BLOCK: asks for /hash */
    bool busy;  /* a request is out */
    long seq;   /* requests sent on it */
    double t0;  /* when the one out was sent */
    char sent[ECHO_LEN];
    size_t len;
    char in[IN_MAX + 1];
};

struct lat {
    uint32_t *ns;
    size_t n, cap;
};

double load_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(struct load_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    return -1;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_request(const struct load_opts *o, struct conn *c)
{
    char req[256];
    int len;
    c->seq++;
    if (o->kind == LOAD_ECHO) {
        for (int i = 0; i < ECHO_LEN - 1; i++)
            c->sent[i] = (char)('a' + (c->seq + i) % 26);
        c->sent[ECHO_LEN - 1] = '\n';
        memcpy(req, c->sent, ECHO_LEN);
        len = ECHO_LEN;
    } else if (o->kind == LOAD_BLOCK) {
        len = snprintf(req, sizeof req, "GET /%s HTTP/1.1\r\nHost: l\r\n\r\n",
                       c->heavy ? "hash" : "ping");
    } else if (c->seq % 2) {
        len = snprintf(req, sizeof req,
                       "GET /items/%ld HTTP/1.1\r\nHost: l\r\n\r\n",
                       c->seq % 1000 + 1);
    } else {
        char body[64];
        int blen = snprintf(body, sizeof body,
                            "{\"name\":\"widget\",\"qty\":%ld}", c->seq % 100);
        len = snprintf(req, sizeof req,
                       "POST /items HTTP/1.1\r\nHost: l\r\nContent-Type: "
                       "application/json\r\nContent-Length: %d\r\n\r\n%s",
                       blen, body);
    }
    c->busy = true;
    c->t0 = load_now();
    return send_all(c->fd, req, (size_t)len);
}

/* An HTTP response's length if @p in holds a whole one (its status in
 * *@p status), 0 if not yet, -1 if it is not HTTP. */
static long http_whole(const char *in, size_t len, int *status)
{
    const char *end = strstr(in, "\r\n\r\n");
    if (!end)
        return len > IN_MAX / 2 ? -1 : 0;
    if (strncmp(in, "HTTP/1.1 ", 9) != 0)
        return -1;
    *status = atoi(in + 9);
    const char *cl = strcasestr(in, "\r\nContent-Length:");
    if (!cl || cl > end)
        return -1;
    long whole = (end - in) + 4 + strtol(cl + 17, NULL, 10);
    return (size_t)whole <= len ? whole : 0;
}

/* Take the answer off @p c's input if it is whole. @return 1 (done), 0 (not
 * yet), -1 (a wrong answer, r->error set). */
static int answer(const struct load_opts *o, struct conn *c,
                  struct load_result *r)
{
    long whole;
    if (o->kind == LOAD_ECHO) {
        if (c->len < ECHO_LEN)
            return 0;
        if (c->len > ECHO_LEN || memcmp(c->in, c->sent, ECHO_LEN) != 0)
            return fail(r, "the echo differs from what was sent");
        whole = ECHO_LEN;
    } else {
        int status = 0;
        c->in[c->len] = '\0';
        whole = http_whole(c->in, c->len, &status);
        if (whole <= 0)
            return whole < 0 ? fail(r, "not an HTTP response: %.60s", c->in)
                             : 0;
        int want = o->kind == LOAD_API && c->seq % 2 == 0 ? 201 : 200;
        if (status != want)
            return fail(r, "status %d, not %d: %.60s", status, want, c->in);
    }
    memmove(c->in, c->in + whole, c->len - (size_t)whole);
    c->len -= (size_t)whole;
    c->busy = false;
    return 1;
}

static int record(struct lat *l, double secs)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 65536;
        uint32_t *ns = realloc(l->ns, cap * sizeof *ns);
        if (!ns)
            return -1;
        l->ns = ns;
        l->cap = cap;
    }
    double ns = secs * 1e9;
    l->ns[l->n++] = ns > 4e9 ? 4000000000u : (uint32_t)ns;
    return 0;
}

static int by_value(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double percentile(const struct lat *l, double p)
{
    if (!l->n)
        return 0;
    size_t i = (size_t)(p * (double)(l->n - 1) + 0.5);
    return l->ns[i] / 1e3;
}

/* Read what @p c got and take its whole answers. @return 0, -1. */
static int on_readable(const struct load_opts *o, struct conn *c,
                       struct load_result *r, struct lat *l, bool more)
{
    ssize_t n = recv(c->fd, c->in + c->len, IN_MAX - c->len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return fail(r, "the server closed a connection (%s)",
                    n ? strerror(errno) : "end of input");
    c->len += (size_t)n;
    int got = answer(o, c, r);
    if (got <= 0)
        return got;
    if (c->heavy)
        r->heavy_done++;
    else if (record(l, load_now() - c->t0) < 0)
        return fail(r, "no memory for the latencies");
    else
        r->done++;
    if (more && send_request(o, c) < 0)
        return fail(r, "cannot send: %s", strerror(errno));
    return 0;
}

static int drive(const struct load_opts *o, struct conn *cs, int ep,
                 struct load_result *r, struct lat *l)
{
    double t0 = load_now(), stop = t0 + o->seconds, beat = t0, last = t0;
    for (int i = 0; i < o->conns; i++)
        if (send_request(o, &cs[i]) < 0)
            return fail(r, "cannot send: %s", strerror(errno));
    for (;;) {
        double now = load_now();
        bool more = now < stop;
        int busy = 0;
        for (int i = 0; i < o->conns; i++)
            busy += cs[i].busy;
        if (!more && !busy)
            break;
        if (now - last > 10)
            return fail(r, "no answer for 10 s");
        if (o->progress && now - beat > 0.1) {
            beat = now;
            o->progress(more ? (now - t0) / o->seconds : 1, o->ud);
        }
        struct epoll_event ev[64];
        int n = epoll_wait(ep, ev, 64, 100);
        if (n < 0 && errno != EINTR)
            return fail(r, "epoll: %s", strerror(errno));
        for (int k = 0; k < n; k++) {
            last = load_now();
            if (on_readable(o, &cs[ev[k].data.u32], r, l, more) < 0)
                return -1;
        }
    }
    r->seconds = load_now() - t0;
    return 0;
}

int load_run(const struct load_opts *o, struct load_result *r)
{
    memset(r, 0, sizeof *r);
    struct lat l = {0};
    struct conn *cs = calloc((size_t)o->conns, sizeof *cs);
    int ep = epoll_create1(EPOLL_CLOEXEC), rc = -1, opened = 0;
    if (!cs || ep < 0) {
        fail(r, "no memory or no epoll");
        goto out;
    }
    for (; opened < o->conns; opened++) {
        struct conn *c = &cs[opened];
        c->heavy = o->kind == LOAD_BLOCK && opened < o->heavy;
        if ((c->fd = dial(o->port)) < 0) {
            fail(r, "cannot connect to 127.0.0.1:%d: %s", o->port,
                 strerror(errno));
            goto out;
        }
        struct epoll_event e = {.events = EPOLLIN,
                                .data.u32 = (uint32_t)opened};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
    }
    if (drive(o, cs, ep, r, &l) == 0) {
        qsort(l.ns, l.n, sizeof *l.ns, by_value);
        r->rps = r->seconds > 0 ? (double)r->done / r->seconds : 0;
        r->p50_us = percentile(&l, 0.50);
        r->p99_us = percentile(&l, 0.99);
        r->max_us = percentile(&l, 1.0);
        rc = 0;
    }
out:
    for (int i = 0; i < opened; i++)
        close(cs[i].fd);
    if (ep >= 0)
        close(ep);
    free(cs);
    free(l.ns);
    return rc;
}

int load_http(int port, const char *method, const char *path, const char *in,
              char **body)
{
    char *req = NULL, *buf = NULL;
    size_t len = 0, cap = 0;
    int fd = dial(port), status = -1;
    *body = NULL;
    int n = asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: l\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, in ? strlen(in) : 0, in ? in : "");
    if (n < 0)
        req = NULL;
    if (fd < 0 || n < 0 || send_all(fd, req, (size_t)n) < 0)
        goto out;
    struct timeval tv = {10, 0}; /* a stuck server must not hang us */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (;;) {
        if (cap - len < 4096) {
            char *b = realloc(buf, cap = cap * 2 + 8192);
            if (!b)
                goto out;
            buf = b;
        }
        ssize_t got = recv(fd, buf + len, cap - len - 1, 0);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    if (!buf)
        goto out;
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.1 ", 9) != 0 || !end)
        goto out;
    status = atoi(buf + 9);
    *body = strdup(end + 4);
out:
    free(req);
    free(buf);
    if (fd >= 0)
        close(fd);
    return *body ? status : -1;
}

int load_http_get(int port, const char *path, char **body)
{
    return load_http(port, "GET", path, NULL, body);
}

int load_echo_transcript(int port, int in, int out)
{
    int fd = dial(port), rc = -1;
    char buf[65536];
    size_t chunk = 1; /* 1, 7, 49... bytes: the servers see odd pieces */
    bool sending = true;
    if (fd < 0)
        return -1;
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = in, .events = sending ? POLLIN : 0}};
        if (poll(p, 2, 10000) <= 0)
            break; /* ten seconds of nothing */
        if (p[1].revents) {
            ssize_t n = read(in, buf, chunk < sizeof buf ? chunk : sizeof buf);
            chunk = chunk * 7 % 60000 + 1;
            if (n <= 0) {
                sending = false;
                shutdown(fd, SHUT_WR); /* the end: the server sees EOF */
            } else if (send_all(fd, buf, (size_t)n) < 0) {
                break;
            }
        }
        if (p[0].revents) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                rc = n == 0 && !sending ? 0 : -1;
                break;
            }
            for (ssize_t w = 0, k; w < n; w += k)
                if ((k = write(out, buf + w, (size_t)(n - w))) <= 0)
                    goto done;
        }
    }
done:
    close(fd);
    return rc;
}

int load_api_transcript(int port, FILE *out)
{
    static const char *const reqs[][3] = {
        {"GET", "/items/5", NULL},
        {"GET", "/items/12345", NULL},
        {"GET", "/items/zero", NULL},
        {"POST", "/items", "{\"name\":\"widget\",\"qty\":3}"},
        {"POST", "/items", "{\"name\":\"gadget\",\"tags\":[1,2]}"},
        {"POST", "/items", "not json"},
        {"POST", "/items", "[1,2,3]"},
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        char *body;
        int status = load_http(port, reqs[i][0], reqs[i][1], reqs[i][2], &body);
        if (status < 0)
            return -1;
        fprintf(out, "%s %s -> %d %s\n", reqs[i][0], reqs[i][1], status, body);
        free(body);
    }
    return 0;
}

char *load_stuck_dump(int port)
{
    static const char stuck[] = "GET /stuck HTTP/1.1\r\nHost: l\r\n\r\n";
    int fd = dial(port);
    char *dump = NULL;
    if (fd < 0 || send_all(fd, stuck, sizeof stuck - 1) < 0)
        goto out;
    /* the other connection may be served first: ask until it shows */
    for (int i = 0; i < 50; i++) {
        free(dump);
        if (load_http_get(port, "/dump", &dump) != 200)
            break;
        if (strstr(dump, "awaiting"))
            break;
        usleep(20000);
    }
out:
    if (fd >= 0)
        close(fd);
    return dump;
}

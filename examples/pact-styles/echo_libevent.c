/* The echo daemon on raw libevent, the floor the others are measured
 * against: an event per socket and direction, an evbuffer for what the
 * kernel did not take. While output is pending the connection stops
 * reading, so a client that does not read cannot grow the server's memory. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "styles.h"

struct conn {
    struct event *rd, *wr;
    struct evbuffer *out;
};

static bool again(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static void conn_free(struct conn *c, evutil_socket_t fd)
{
    if (c->rd)
        event_free(c->rd);
    if (c->wr)
        event_free(c->wr);
    if (c->out)
        evbuffer_free(c->out);
    free(c);
    close(fd);
}

/* Write what is buffered; then read again, or wait to be writable. */
static void flush(struct conn *c, evutil_socket_t fd)
{
    if (evbuffer_write(c->out, fd) < 0 && !again()) {
        conn_free(c, fd);
        return;
    }
    if (evbuffer_get_length(c->out) == 0) {
        event_del(c->wr);
        event_add(c->rd, NULL);
    } else {
        event_del(c->rd);
        event_add(c->wr, NULL);
    }
}

static void on_read(evutil_socket_t fd, short what, void *ud)
{
    (void)what;
    struct conn *c = ud;
    int n = evbuffer_read(c->out, fd, 65536);
    if (n == 0 || (n < 0 && !again()))
        conn_free(c, fd); /* the client's end, or an error */
    else if (n > 0)
        flush(c, fd);
}

static void on_writable(evutil_socket_t fd, short what, void *ud)
{
    (void)what;
    flush(ud, fd);
}

static void on_accept(evutil_socket_t lfd, short what, void *base)
{
    (void)what;
    evutil_socket_t fd = accept(lfd, NULL, NULL), on = 1;
    if (fd < 0)
        return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on); /* as pact's */
    struct conn *c = calloc(1, sizeof *c);
    if (!c || evutil_make_socket_nonblocking(fd) < 0) {
        free(c);
        close(fd);
        return;
    }
    c->rd = event_new(base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wr = event_new(base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    c->out = evbuffer_new();
    if (!c->rd || !c->wr || !c->out || event_add(c->rd, NULL) < 0)
        conn_free(c, fd);
}

struct event *echo_libevent(struct event_base *base, int fd)
{
    struct event *ev =
        event_new(base, fd, EV_READ | EV_PERSIST, on_accept, base);
    if (ev && event_add(ev, NULL) < 0) {
        event_free(ev);
        return NULL;
    }
    return ev;
}

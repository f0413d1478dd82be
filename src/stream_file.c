/* Output without copies: file parts sent with sendfile(2), and memory
 * written by reference (the caller's bytes, released once sent).
 *
 * A file part sits at a position of the stream's byte count (`queued` when
 * it was added): flush() sends the memory before it, then the file, then
 * what follows, so the order of writes holds. The part keeps the caller's
 * descriptor, which the caller keeps open until the write's callback. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "tls_internal.h"

struct file_part {
    struct pact__list node; /* s->files */
    int fd;
    off_t off;
    uint64_t start, len; /* its place in the byte stream */
};

size_t pact__stream_mem_before_file(const pact_stream *s)
{
    const struct pact__list *n =
        pact__list_first((struct pact__list *)&s->files);
    if (!n)
        return SIZE_MAX;
    const struct file_part *f =
        pact__list_entry(n, const struct file_part, node);
    return (size_t)(f->start - s->sent);
}

/* A TLS stream's file part: one pread of up to 16 KiB at a time,
 * encrypted and sent (no sendfile without kernel TLS). @return 1 when a
 * piece went, 0 when the socket is full, or an error. */
static int tls_part(pact_stream *s, struct file_part *f, uint64_t left)
{
    unsigned char buf[16384]; /* not the loop's read buffer: a data event
                                 may be delivering it */
    int rc = pact__tls_flush(s);
    if (rc <= 0)
        return rc;
    size_t want = left > sizeof buf ? sizeof buf : (size_t)left;
    ssize_t k = pread(f->fd, buf, want, f->off);
    if (k < 0)
        return errno == EINTR ? 1 : pact__sys_err();
    if (k == 0) /* the file is shorter than promised */
        return PACT_EIO;
    struct iovec v = {buf, (size_t)k};
    ssize_t n = pact__tls_sendv(s, &v, 1);
    if (n <= 0) /* 0: not now (read again then) */
        return (int)n;
    f->off += k;
    s->sent += (uint64_t)k;
    return 1;
}

int pact__stream_flush_file(pact_stream *s)
{
    struct pact__list *n = pact__list_first(&s->files);
    struct file_part *f = pact__list_entry(n, struct file_part, node);
    while (s->sent < f->start + f->len) {
        uint64_t left = f->start + f->len - s->sent;
        if (s->tls) { /* the bytes must pass through OpenSSL */
            int rc = tls_part(s, f, left);
            if (rc <= 0)
                return rc;
            continue;
        }
        ssize_t k = sendfile(s->fd, f->fd, &f->off,
                             left > (1u << 30) ? (1u << 30) : (size_t)left);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return pact__sys_err();
        }
        if (k == 0) /* the file is shorter than promised */
            return PACT_EIO;
        s->sent += (uint64_t)k;
        if (pact__stream_timeouts(s))
            s->last_wr = pact__now_ms();
    }
    pact__list_remove(n);
    free(f);
    return 1;
}

void pact__stream_drop_files(pact_stream *s)
{
    struct pact__list *n;
    while ((n = pact__list_first(&s->files))) {
        pact__list_remove(n);
        free(pact__list_entry(n, struct file_part, node));
    }
}

int pact__stream_write_file(pact_stream *s, int fd, int64_t off, size_t len)
{
    if (s->flags & S_DEAD)
        return s->err ? pact_error_code(s->err) : PACT_EPIPE;
    if (s->flags & (S_ENDING | S_CLOSING))
        return PACT_EPIPE;
    if (!len)
        return 1;
    struct file_part *f = malloc(sizeof *f);
    if (!f)
        return PACT_ENOMEM;
    f->fd = fd;
    f->off = (off_t)off;
    f->start = s->queued;
    f->len = len;
    bool idle = !pact__out_pending(s);
    pact__list_push_back(&s->files, &f->node);
    s->queued += len;
    if (idle) { /* send what the socket takes now, as a write does */
        int rc = pact__stream_flush_file(s);
        if (rc < 0) {
            pact__stream_kill(s, pact__sock_error(rc, "sendfile"));
            return rc;
        }
        if (rc == 1) /* all of it */
            return 1;
    }
    if (pact__stream_timeouts(s) && !s->wr_on)
        s->last_wr = pact__now_ms();
    pact__stream_ev_on(s, s->wev, &s->wr_on, NULL);
    return 1;
}

int pact_stream_write_ref(pact_stream *s, const void *data, size_t len,
                          pact_stream_release_fn release, void *ud)
{
    if (!s)
        return pact__misuse("pact_stream_write_ref", PACT_EINVAL, "s is NULL");
    PACT_CHECK_THREAD(s->loop, "pact_stream_write_ref");
    PACT_CHECK_ARG((data || !len) && release, "pact_stream_write_ref");
    return pact__stream_write_ref(s, data, len, release, ud);
}

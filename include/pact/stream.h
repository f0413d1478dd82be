/** @file
 * Layer 5: byte streams over connected sockets (TCP, Unix), as Node's
 * net.Socket. A stream comes from a server's accept callback or from a
 * connect (pact/tcp.h) and is the program's until its close event.
 *
 * Two ways to read, one at a time per stream: events (pact_stream_on with a
 * `data` callback: every chunk read is handed over as it arrives, the
 * program pauses and resumes), or requests (pact_stream_read_some,
 * _read_line, _read_exact, _read_until and their promise twins, which a
 * task awaits). Writes are the same in both: pact_stream_write copies what
 * the kernel does not take at once and says whether the output is still
 * below its high-water mark; the `drain` event follows when it empties.
 *
 * Back-pressure both ways: past the output high-water mark write() returns
 * 0 (wait for `drain`); input that the program has not consumed stops the
 * reading at the read high-water mark until it is consumed, so a slow peer
 * or a slow handler never grows memory without bound.
 *
 * The stream's life is a pending-operation record (pact/op.h): an abort
 * token (pact_stream_opts.abort), pact_loop_close_all and pact_loop_free
 * (PACT_EBUSY while one is open) treat it as everything else; each read
 * request and each write with a callback is a record of its own.
 * Every call is made on the loop's thread. doc/tcp.md is the guide. */
#ifndef PACT_STREAM_H
#define PACT_STREAM_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error "pact/stream.h is layer 5 (services): a lower layer must not include it"
#endif

#include <stddef.h>
#include <stdint.h>

#include "pact/common.h"
#include "pact/error.h"
#include "pact/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A connected byte stream (opaque). pact frees it after its close event
 * once the program has let go of it: in events mode (a data or close
 * callback set) at once, as Node; read through requests only, once
 * pact_stream_close or pact_stream_destroy is called (a task then never
 * finds it freed under it). pact_loop_free frees what is left. */
typedef struct pact_stream pact_stream;

/** A stream's options; zero-initialise and set what you need. */
typedef struct pact_stream_opts {
    /** Output high-water mark in bytes: pact_stream_write returns 0 once
     *  this much is buffered (0: 64 KiB). */
    size_t high_water;
    /** Input read ahead and not yet consumed by read requests, past which
     *  the stream stops reading (0: 64 KiB). */
    size_t read_high_water;
    /** TCP_NODELAY: send small writes at once (no Nagle delay). */
    bool nodelay;
    /** SO_KEEPALIVE with this idle time in seconds (0: off). */
    int keepalive_s;
    /** Destroy the stream with PACT_ETIMEDOUT when nothing was read or
     *  written for this long (0: never). */
    uint64_t idle_timeout_ms;
    /** ... when it waits for input (reading, or a read request pending)
     *  and none came for this long (0: never). */
    uint64_t read_timeout_ms;
    /** ... when output is buffered and the kernel took none of it for this
     *  long (0: never). */
    uint64_t write_timeout_ms;
    /** Keep the stream writable after the peer's end (half-open); by
     *  default the stream ends its side too once the end is read, and
     *  closes when both sides are done, as Node's allowHalfOpen=false. */
    bool allow_half_open;
    /** Borrowed; may be NULL. Aborting it destroys the stream: its error
     *  event gets PACT_ECANCELED caused by the reason, then close. */
    pact_abort *abort;
} pact_stream_opts;

/** A stream's event callbacks (Node's 'data', 'end', 'error', 'drain',
 *  'close'); each may be NULL. */
typedef struct pact_stream_events {
    /** A chunk read (@p buf borrowed for the call). Setting it makes the
     *  stream read in events mode: read requests are refused. */
    void (*data)(pact_stream *s, const void *buf, size_t len, void *ud);
    /** The peer ended its side (EOF); at most once. */
    void (*end)(pact_stream *s, void *ud);
    /** The stream failed (@p err borrowed: ECONNRESET, EPIPE, ETIMEDOUT,
     *  EMSGSIZE, PACT_ECANCELED...); at most once, then close follows.
     *  Without this callback the error is dropped (a peer's reset is not a
     *  server's uncaught error); close still follows. */
    void (*error)(pact_stream *s, pact_error *err, void *ud);
    /** The output, which had passed the high-water mark, is empty. */
    void (*drain)(pact_stream *s, void *ud);
    /** The stream is closed: the last event, exactly once; @p s is freed
     *  when it returns (see pact_stream). */
    void (*close)(pact_stream *s, void *ud);
} pact_stream_events;

/**
 * Set @p s's event callbacks (copied) and their @p ud. With a `data`
 * callback the stream starts reading (unless paused). May be called again
 * to change them.
 * @return 0, PACT_EINVAL (NULL, or a data callback while a read request is
 *   pending), PACT_ETHREAD.
 */
PACT_API int pact_stream_on(pact_stream *s, const pact_stream_events *ev,
                            void *ud);

/**
 * Change @p s's options (as pact_stream_opts; the abort token is taken
 * only by the call that makes the stream, and ignored here).
 * @return 0, PACT_EINVAL, PACT_ETHREAD, or the setsockopt error.
 */
PACT_API int pact_stream_set_opts(pact_stream *s, const pact_stream_opts *o);

/**
 * Write @p len bytes of @p data: handed to the kernel at once as far as it
 * takes them (one send), the rest copied to the output buffer and written
 * when the socket is writable.
 * @return 1 while the output buffer is below its high-water mark, 0 once it
 *   is at or past it (stop writing until the `drain` event); PACT_EPIPE
 *   after pact_stream_end or close; a send error (EPIPE, ECONNRESET...),
 *   which also destroys the stream (its error event follows on a later
 *   tick); PACT_ENOMEM; PACT_EINVAL; PACT_ETHREAD. Never raises SIGPIPE.
 */
PACT_API int pact_stream_write(pact_stream *s, const void *data, size_t len);

/**
 * pact_stream_write, then @p cb(err, @p ud) once all of @p data has been
 * handed to the kernel, or with the error that destroyed the stream first,
 * or PACT_ECANCELED (pact_loop_close_all); once, on a later tick. A
 * pending-operation record: started in an aborted scope (a cancelled task
 * or group), it writes nothing and @p cb gets the cancellation.
 * @return as pact_stream_write (1 or 0: @p cb will be called; negative:
 *   it will not).
 */
PACT_API int pact_stream_write_cb(pact_stream *s, const void *data, size_t len,
                                  pact_cb cb, void *ud);

/** Releases the bytes of a pact_stream_write_ref: @p data and @p len as
 *  given, @p ud the caller's. */
typedef void (*pact_stream_release_fn)(const void *data, size_t len, void *ud);

/**
 * pact_stream_write without a copy: what the kernel does not take at once
 * stays in the output by reference (libevent's evbuffer_add_reference), so
 * @p data must stay valid and unchanged until @p release(data, len, @p ud)
 * runs: once nothing of it is needed any more (sent, or the stream
 * destroyed), possibly inside this call when the kernel took it all.
 * @return as pact_stream_write; on a negative return nothing was taken and
 *   @p release is not called.
 */
PACT_API int pact_stream_write_ref(pact_stream *s, const void *data, size_t len,
                                   pact_stream_release_fn release, void *ud);

/**
 * Send @p len bytes of the file @p fd from @p offset with sendfile(2), no
 * copy through user space, in order with the writes before and after it.
 * @p fd stays the caller's: keep it open until @p cb runs (its file
 * position is not used or moved). @p cb as pact_stream_write_cb's: once
 * all of it is handed to the kernel, or the error that destroyed the
 * stream first. A file shorter than @p len destroys the stream with
 * PACT_EIO: returned when found inside this call (then @p cb never runs),
 * else given to @p cb.
 * @return as pact_stream_write_cb; PACT_EINVAL for a negative @p fd or
 *   @p offset; PACT_EIO.
 */
PACT_API int pact_stream_sendfile(pact_stream *s, int fd, int64_t offset,
                                  size_t len, pact_cb cb, void *ud);

/** @return the bytes in @p s's output buffer, not yet taken by the kernel. */
PACT_API size_t pact_stream_buffered(const pact_stream *s);
/** @return the bytes @p s has read ahead that no request has taken yet
 *  (at most the read high-water mark plus one read of 64 KiB, or a pending
 *  line's or delimiter's maximum). */
PACT_API size_t pact_stream_input(const pact_stream *s);

/** Stop reading (events mode, and read-ahead for requests) until
 *  pact_stream_resume. @return 0, PACT_EINVAL, PACT_ETHREAD. */
PACT_API int pact_stream_pause(pact_stream *s);
/** Read again after pact_stream_pause. @return 0, PACT_EINVAL,
 *  PACT_ETHREAD. */
PACT_API int pact_stream_resume(pact_stream *s);

/**
 * End @p s's side (half-close): once the output is written, shutdown(SHUT_WR)
 * tells the peer EOF. Reading goes on. Later writes fail with PACT_EPIPE.
 * @return 0, PACT_EALREADY, PACT_EINVAL, PACT_ETHREAD.
 */
PACT_API int pact_stream_end(pact_stream *s);

/**
 * Close @p s gracefully: stop reading, write what is buffered, then close
 * the socket; the close event follows (with an error event first if the
 * writing fails). Harmless when it is closing already.
 * @return 0, PACT_EINVAL, PACT_ETHREAD.
 */
PACT_API int pact_stream_close(pact_stream *s);

/**
 * Destroy @p s now: buffered output is dropped, the socket closed, pending
 * requests fail with PACT_ECANCELED; the error event gets @p err (borrowed;
 * NULL: none), then the close event, on a later tick. Harmless when it is
 * closing already.
 * @return 0, PACT_EINVAL, PACT_ETHREAD.
 */
PACT_API int pact_stream_destroy(pact_stream *s, pact_error *err);

/** @return @p s's socket (the stream's: do not close it), or -1 once it is
 *  closed. */
PACT_API int pact_stream_fd(const pact_stream *s);

/**
 * A read request's callback: @p data is a PACT_BYTES value (a malloc'd
 * copy with a NUL byte after its length), lent: take it by moving it out
 * (`mine = *data; *data = pact_nothing();`), else it is released when the
 * callback returns. On failure @p data is NULL and @p err (borrowed) is
 * PACT_EOF (the peer ended first), PACT_EMSGSIZE (over the maximum: the
 * stream is destroyed with it), PACT_ECANCELED, or the stream's error.
 */
typedef void (*pact_stream_read_cb)(pact_error *err, pact_value *data,
                                    void *ud);

/** Options of a read request; NULL means the defaults. */
typedef struct pact_read_opts {
    /** The most bytes: read_some returns up to this many (0: all there is);
     *  read_line and read_until fail with PACT_EMSGSIZE when this many are
     *  buffered without the delimiter (0: 64 KiB). */
    size_t max;
    /** Borrowed; may be NULL. Cancels the request (PACT_ECANCELED caused by
     *  the reason): the stream stays open, the input stays buffered. */
    pact_abort *abort;
} pact_read_opts;

/**
 * Read what is there: at least one byte, at most opts->max. One request at
 * a time per stream; @p cb is called once, on a later tick.
 * @return 0; PACT_EBUSY (a request is pending); PACT_EINVAL (NULL, events
 *   mode); PACT_ENOMEM; PACT_ETHREAD. On error @p cb is never called.
 */
PACT_API int pact_stream_read_some(pact_stream *s, const pact_read_opts *opts,
                                   pact_stream_read_cb cb, void *ud);
/** Read a line: the bytes up to a "\n", which (and a "\r" before it) is not
 *  part of the result; at EOF, what is left if anything. Returns as
 *  pact_stream_read_some. */
PACT_API int pact_stream_read_line(pact_stream *s, const pact_read_opts *opts,
                                   pact_stream_read_cb cb, void *ud);
/** Read exactly @p n bytes (PACT_EOF if the peer ends first). Returns as
 *  pact_stream_read_some. */
PACT_API int pact_stream_read_exact(pact_stream *s, size_t n,
                                    const pact_read_opts *opts,
                                    pact_stream_read_cb cb, void *ud);
/** Read up to and including the @p dlen bytes of @p delim (1 to 16 bytes,
 *  copied). Returns as pact_stream_read_some. */
PACT_API int pact_stream_read_until(pact_stream *s, const void *delim,
                                    size_t dlen, const pact_read_opts *opts,
                                    pact_stream_read_cb cb, void *ud);

/** The promise twin of pact_stream_read_some: fulfils with PACT_BYTES or
 *  rejects as the callback would fail. @return a new reference; NULL for
 *  misuse (NULL @p s, off the loop's thread). */
PACT_API pact_promise *pact_stream_read_some_p(pact_stream *s,
                                               const pact_read_opts *opts);
/** The promise twin of pact_stream_read_line (as read_some_p). */
PACT_API pact_promise *pact_stream_read_line_p(pact_stream *s,
                                               const pact_read_opts *opts);
/** The promise twin of pact_stream_read_exact (as read_some_p). */
PACT_API pact_promise *pact_stream_read_exact_p(pact_stream *s, size_t n,
                                                const pact_read_opts *opts);
/** The promise twin of pact_stream_read_until (as read_some_p). */
PACT_API pact_promise *pact_stream_read_until_p(pact_stream *s,
                                                const void *delim, size_t dlen,
                                                const pact_read_opts *opts);
/** The promise twin of pact_stream_sendfile (as write_p). @return a new
 *  reference; NULL for misuse. */
PACT_API pact_promise *pact_stream_sendfile_p(pact_stream *s, int fd,
                                              int64_t offset, size_t len);
/** The promise twin of pact_stream_write_cb: fulfils with nothing once the
 *  data is handed to the kernel, or rejects. @return a new reference; NULL
 *  for misuse. */
PACT_API pact_promise *pact_stream_write_p(pact_stream *s, const void *data,
                                           size_t len);
/** pact_stream_end as a promise: fulfils once the output is written and
 *  the side shut down, or rejects with the stream's error. @return a new
 *  reference; NULL for misuse. */
PACT_API pact_promise *pact_stream_end_p(pact_stream *s);

#ifdef __cplusplus
}
#endif
#endif

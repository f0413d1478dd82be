/** @file
 * Layer 5: messages on a stream (pact/stream.h). Three framings: lines with
 * a maximum length (pact_stream_read_line), length-prefixed frames (a
 * 4-byte big-endian length, then that many bytes) with a maximum size, and
 * JSON lines (each line one JSON value, read as a PACT_JSON value; jansson).
 *
 * In the three styles: a frame callback per message (pact_stream_on_frames),
 * one read request at a time (pact_stream_read_frame, _read_json) with
 * promise twins that a task awaits, and writes (pact_stream_write_frame,
 * _write_json, and their twins).
 *
 * Input over the maximum (a frame whose length says more, a line without
 * its "\n" past it) fails with PACT_EMSGSIZE, a line that is not JSON with
 * PACT_EPROTO; either destroys that one stream with the same error (its
 * error event, its pending operations) and touches no other. doc/tcp.md's
 * "Framing" is the guide. */
#ifndef PACT_FRAME_H
#define PACT_FRAME_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error "pact/frame.h is layer 5 (services): a lower layer must not include it"
#endif

#include <stddef.h>

#include "pact/common.h"
#include "pact/error.h"
#include "pact/stream.h"
#include "pact/value.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_t;

/** A stream's framing. */
typedef enum pact_frame_kind {
    PACT_FRAME_LINE,   /**< lines, as pact_stream_read_line (PACT_BYTES) */
    PACT_FRAME_LENGTH, /**< a 4-byte big-endian length, then the bytes */
    PACT_FRAME_JSON    /**< a JSON value per line (PACT_JSON) */
} pact_frame_kind;

/**
 * Read one length-prefixed frame: a 4-byte big-endian length, then that many
 * bytes, given to @p cb as PACT_BYTES (without the length). A length over
 * opts->max (0: 64 KiB) fails with PACT_EMSGSIZE as soon as it is read, and
 * destroys the stream with it; PACT_EOF when the peer ends before a whole
 * frame. Otherwise as pact_stream_read_some (one request at a time; @p cb
 * once, on a later tick).
 * @return as pact_stream_read_some.
 */
PACT_API int pact_stream_read_frame(pact_stream *s, const pact_read_opts *opts,
                                    pact_stream_read_cb cb, void *ud);
/** The promise twin of pact_stream_read_frame: fulfils with PACT_BYTES.
 *  @return a new reference; NULL for misuse. */
PACT_API pact_promise *pact_stream_read_frame_p(pact_stream *s,
                                                const pact_read_opts *opts);

/**
 * Read one JSON line: a line (as pact_stream_read_line, opts->max its
 * longest) parsed as one JSON value of any type, given to @p cb as a
 * PACT_JSON value. A line that is not JSON (an empty one too) fails with
 * PACT_EPROTO, saying where, and destroys the stream with it.
 * @return as pact_stream_read_some.
 */
PACT_API int pact_stream_read_json(pact_stream *s, const pact_read_opts *opts,
                                   pact_stream_read_cb cb, void *ud);
/** The promise twin of pact_stream_read_json: fulfils with PACT_JSON.
 *  @return a new reference; NULL for misuse. */
PACT_API pact_promise *pact_stream_read_json_p(pact_stream *s,
                                               const pact_read_opts *opts);

/**
 * The frame callback of pact_stream_on_frames: called with each message
 * (@p err NULL, @p frame lent as a read request's data: move it out to keep
 * it), then a last time with @p frame NULL and @p err (borrowed): PACT_EOF
 * when the peer ended cleanly, PACT_EMSGSIZE or PACT_EPROTO (the stream is
 * destroyed with it), PACT_ECANCELED (the stream was closed or destroyed, or
 * the token aborted), or the stream's error. Nothing follows the last call.
 * @p s stays valid until the last call returns, even in events mode with a
 * close event (the stream is freed after both); a stream read only through
 * requests is still the program's to close.
 */
typedef void (*pact_frame_cb)(pact_stream *s, pact_error *err,
                              pact_value *frame, void *ud);

/**
 * Read @p s as messages of @p kind, one call of @p cb each, until the last
 * (see pact_frame_cb): the events style of framing. The next message is
 * read once @p cb returns; pact_stream_pause in it stops the reading from
 * the socket (messages already buffered still come), so a handler that
 * waits for `drain` pushes back on the peer. @p opts as a read request's
 * (max, and an abort token that ends the reading, copied). The stream is
 * then in requests mode: other reads are refused (PACT_EBUSY) until the
 * last call.
 * @return 0; PACT_EBUSY, PACT_EINVAL, PACT_ENOMEM, PACT_ETHREAD (then
 *   @p cb is never called).
 */
PACT_API int pact_stream_on_frames(pact_stream *s, pact_frame_kind kind,
                                   const pact_read_opts *opts, pact_frame_cb cb,
                                   void *ud);

/**
 * Write @p len bytes of @p data as one length-prefixed frame (the length,
 * then the bytes; one send when the kernel takes it all).
 * @return as pact_stream_write; PACT_EMSGSIZE for a length over 2^32 - 1.
 */
PACT_API int pact_stream_write_frame(pact_stream *s, const void *data,
                                     size_t len);
/** The promise twin of pact_stream_write_frame: fulfils once the frame is
 *  handed to the kernel. @return a new reference; NULL for misuse. */
PACT_API pact_promise *pact_stream_write_frame_p(pact_stream *s,
                                                 const void *data, size_t len);

/**
 * Write @p json (borrowed; any type) as one JSON line: compact, then "\n".
 * @return as pact_stream_write; PACT_EINVAL for NULL or what jansson cannot
 *   encode.
 */
PACT_API int pact_stream_write_json(pact_stream *s, const struct json_t *json);
/** The promise twin of pact_stream_write_json. @return a new reference;
 *  NULL for misuse. */
PACT_API pact_promise *pact_stream_write_json_p(pact_stream *s,
                                                const struct json_t *json);

#ifdef __cplusplus
}
#endif
#endif

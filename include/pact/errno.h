/** @file
 * Error codes: negative errno values, plus pact's own codes below -4000.
 * One table (PACT_ERRNO_MAP) yields the constants, pact_strerror and
 * pact_err_name, so they cannot drift apart. */
#ifndef PACT_ERRNO_H
#define PACT_ERRNO_H

#include <errno.h>

#include "pact/common.h"

/** The table of codes, one X(name, value, message) row each: define X and
 * expand it to list them. The value is -errno, or pact's own code. */
#define PACT_ERRNO_MAP(X)                                                      \
    X(EPERM, -EPERM, "operation not permitted")                                \
    X(ENOENT, -ENOENT, "no such file, directory or handle")                    \
    X(ESRCH, -ESRCH, "no such process")                                        \
    X(EINTR, -EINTR, "interrupted system call")                                \
    X(EIO, -EIO, "i/o error")                                                  \
    X(EBADF, -EBADF, "bad file descriptor")                                    \
    X(EAGAIN, -EAGAIN, "resource temporarily unavailable")                     \
    X(ENOMEM, -ENOMEM, "not enough memory")                                    \
    X(EACCES, -EACCES, "permission denied")                                    \
    X(EBUSY, -EBUSY, "resource busy or locked")                                \
    X(EEXIST, -EEXIST, "file already exists")                                  \
    X(ENOTDIR, -ENOTDIR, "not a directory")                                    \
    X(EISDIR, -EISDIR, "is a directory")                                       \
    X(EINVAL, -EINVAL, "invalid argument")                                     \
    X(EMFILE, -EMFILE, "too many open files")                                  \
    X(ENOSPC, -ENOSPC, "no space left on device")                              \
    X(EPIPE, -EPIPE, "broken pipe")                                            \
    X(ERANGE, -ERANGE, "result out of range")                                  \
    X(ENOSYS, -ENOSYS, "function not implemented")                             \
    X(ENOTEMPTY, -ENOTEMPTY, "directory not empty")                            \
    X(EOVERFLOW, -EOVERFLOW, "value too large for defined data type")          \
    X(ENOTSUP, -ENOTSUP, "operation not supported")                            \
    X(EMSGSIZE, -EMSGSIZE, "message too long")                                 \
    X(EPROTO, -EPROTO, "protocol error")                                       \
    X(EADDRINUSE, -EADDRINUSE, "address already in use")                       \
    X(EADDRNOTAVAIL, -EADDRNOTAVAIL, "address not available")                  \
    X(ECONNRESET, -ECONNRESET, "connection reset by peer")                     \
    X(ECONNREFUSED, -ECONNREFUSED, "connection refused")                       \
    X(ENOTCONN, -ENOTCONN, "socket is not connected")                          \
    X(ETIMEDOUT, -ETIMEDOUT, "operation timed out")                            \
    X(EALREADY, -EALREADY, "operation already in progress")                    \
    X(ECANCELED, -ECANCELED, "operation canceled")                             \
    X(EXDEV, -EXDEV, "cross-device link not permitted")                        \
    X(ENFILE, -ENFILE, "file table overflow")                                  \
    X(ETXTBSY, -ETXTBSY, "text file is busy")                                  \
    X(EFBIG, -EFBIG, "file too large")                                         \
    X(ESPIPE, -ESPIPE, "invalid seek")                                         \
    X(EROFS, -EROFS, "read-only file system")                                  \
    X(EMLINK, -EMLINK, "too many links")                                       \
    X(ENAMETOOLONG, -ENAMETOOLONG, "name too long")                            \
    X(ELOOP, -ELOOP, "too many symbolic links encountered")                    \
    X(EDQUOT, -EDQUOT, "disk quota exceeded")                                  \
    X(ETHREAD, -4001, "called from a thread that does not own the loop")       \
    X(ETYPE, -4002, "type error")                                              \
    X(EUNHANDLED, -4003, "unhandled rejection")                                \
    X(EAGGREGATE, -4004, "all promises were rejected")                         \
    X(ENOTASK, -4005, "await outside a task")                                  \
    X(ENOTHREAD, -4006, "cannot start a thread (thread or memory limit)")      \
    X(EOF, -4095, "end of file")                                               \
    X(EUNKNOWN, -4094, "unknown error")

/** The codes, PACT_ plus each row's name: PACT_EINVAL, PACT_ECANCELED,
 * PACT_ETHREAD... (the table above; doc/errors.md says what each means).
 * Functions return 0 or one of them; error objects carry one. */
enum pact_errno {
#define PACT_ERRNO_ENUM_(name, value, msg) PACT_##name = (value),
    PACT_ERRNO_MAP(PACT_ERRNO_ENUM_)
#undef PACT_ERRNO_ENUM_
};

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @return a static description of @p code ("unknown error" if not a pact
 *   code).
 */
PACT_API const char *pact_strerror(int code);
/** @return the static name of @p code without the prefix, e.g. "EINVAL"
 *   ("EUNKNOWN" if not a pact code). */
PACT_API const char *pact_err_name(int code);

#ifdef __cplusplus
}
#endif
#endif

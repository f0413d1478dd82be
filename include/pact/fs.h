/** @file
 * Layer 5: file operations (Node's fs), run on the offload pool's blocking
 * lane so that the loop thread never waits on a disk. Each operation is a
 * callback primitive, pact_fs_x(loop, args..., opts, cb, ud) with an
 * error-first cb, and its promise twin pact_fs_x_p(loop, args..., opts)
 * made from it by the adapter; PACT_AWAIT(pact_fs_x_p(...)) in a task is
 * the third style.
 *
 * Arguments: paths, and the data written unless PACT_FS_NOCOPY says
 * otherwise, are copied at submission (the caller's buffers may go at once);
 * the buffer pact_fs_read fills is borrowed until its callback has run.
 *
 * Errors: a failing system call gives a pact_error whose code is the
 * negative errno (PACT_ENOENT, PACT_EACCES, PACT_EISDIR, ...) and whose
 * message names the call and the path as Node's do ("no such file or
 * directory, open '/etc/nope'"; pact_error_print prefixes the code's name).
 * A submission that fails (misuse: PACT_EINVAL, PACT_ETHREAD off the loop's
 * thread; PACT_EAGAIN from a full lane; PACT_ENOMEM) returns the code and
 * never calls the callback; the promise twin rejects with it. Otherwise the
 * callback runs exactly once, on the loop's thread, never inside the call.
 * A promise twin returns a new reference (pact_promise_unref), NULL only
 * when no promise can be made (off the loop's thread, out of memory).
 *
 * Cancellation: opts->abort removes an operation that has not started (the
 * callback gets PACT_ECANCELED, caused by the abort reason). Nothing
 * interrupts a system call that has started: an operation aborted while it
 * runs still gets PACT_ECANCELED, once it returns, and may have done its
 * work (a write may have happened). Operations of several steps stop at the
 * next step (read_file, readdir, recursive mkdir, and an atomic write_file,
 * which stops before its rename: the old content stays). pact_loop_close_all
 * cancels every operation of the loop the same way.
 *
 * Descriptors are plain ints (as Node's fs.open): pact_fs_open gives one,
 * pact_fs_read/_write/_close take one, and so may any other code. The caller
 * owns it: close it once no operation on it is pending (closing with one
 * pending lets the number be reused under it). doc/fs.md is the guide. */
#ifndef PACT_FS_H
#define PACT_FS_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error "pact/fs.h is layer 5 (services): a lower layer must not include it"
#endif

#include "pact/common.h"
#include "pact/error.h"
#include "pact/value.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_t;

/** What a directory entry or a stat names. */
typedef enum pact_file_type {
    PACT_FILE_UNKNOWN = 0, /**< the file system did not say */
    PACT_FILE_REGULAR,     /**< "file" */
    PACT_FILE_DIR,         /**< "dir" */
    PACT_FILE_SYMLINK,     /**< "symlink" */
    PACT_FILE_FIFO,        /**< "fifo" */
    PACT_FILE_SOCKET,      /**< "socket" */
    PACT_FILE_CHAR,        /**< "char": a character device */
    PACT_FILE_BLOCK,       /**< "block": a block device */
} pact_file_type;

/** @return the static name in quotes above ("file", "dir", ...), "unknown"
 *  for anything else. */
PACT_API const char *pact_fs_type_name(pact_file_type type);

/** A file's status (fs.Stats). Times are nanoseconds since the epoch. */
typedef struct pact_stat {
    pact_file_type type; /**< regular file, directory, symlink (lstat)... */
    uint32_t mode;  /**< permission bits and set-id/sticky (st_mode & 07777) */
    uint64_t size;  /**< bytes */
    uint64_t dev;   /**< device of the file system */
    uint64_t ino;   /**< inode number */
    uint64_t nlink; /**< hard links */
    uint32_t uid;   /**< owner */
    uint32_t gid;   /**< group */
    uint64_t rdev;  /**< the device, for a device file */
    uint64_t blksize; /**< preferred I/O size */
    uint64_t blocks;  /**< 512-byte blocks allocated */
    int64_t atime_ns; /**< last access */
    int64_t mtime_ns; /**< last modification of the content */
    int64_t ctime_ns; /**< last change of the inode */
} pact_stat;

/** A directory entry, as pact_fs_readdir reports it. */
typedef struct pact_dirent {
    const char *name;    /**< no directory part; never "." or ".." */
    pact_file_type type; /**< with PACT_FS_TYPES, else PACT_FILE_UNKNOWN */
} pact_dirent;

/** Flags for pact_fs_opts; each operation reads the ones named with it. */
enum pact_fs_flags {
    /** write_file: write a temporary file in the same directory, fsync it,
     *  rename it over the path, fsync the directory. Readers see the old
     *  content or the new, never a part; once the callback reports success
     *  the new content survives a crash. An existing file's permission bits
     *  are kept (not its owner, links or ACLs); a symlink at the path is
     *  replaced, not followed. On any failure the temporary file is
     *  removed and the old content is untouched (unless the final directory
     *  fsync fails: the new content is then in place but not known to be
     *  durable, and the error says fsync). */
    PACT_FS_ATOMIC = 1 << 0,
    /** write_file, append: fsync the file, and its directory, before the
     *  callback: the data is durable once it reports success. */
    PACT_FS_SYNC = 1 << 1,
    /** write_file: fail with PACT_EEXIST if the path exists (Node's 'wx');
     *  with PACT_FS_ATOMIC too, the temporary file is linked in instead of
     *  renamed, so the check and the replacement are one step. */
    PACT_FS_EXCL = 1 << 2,
    /** write_file, append, write: borrow the data instead of copying it. It
     *  must then stay valid and unchanged until the callback has run (the
     *  promise has settled; after pact_loop_close_all, until pact_loop_free
     *  has returned). */
    PACT_FS_NOCOPY = 1 << 3,
    /** mkdir: make missing parents too (mkdir -p). An existing directory is
     *  then success; an existing non-directory is still PACT_EEXIST (Node's
     *  recursive mkdir). */
    PACT_FS_RECURSIVE = 1 << 4,
    /** readdir: report each entry's type (from the directory, or lstat
     *  where the file system does not say). */
    PACT_FS_TYPES = 1 << 5,
    /** stat: do not follow a final symlink (lstat). */
    PACT_FS_NOFOLLOW = 1 << 6,
};

/** Options for every operation; NULL means all defaults. Zero-initialise
 *  and set what you need. */
typedef struct pact_fs_opts {
    unsigned flags;    /**< pact_fs_flags, or-ed */
    unsigned mode;     /**< permission bits of a file or directory this
                            creates (the umask applies); 0: 0666 for files,
                            0777 for directories */
    pact_abort *abort; /**< borrowed; may be NULL. See the top of this file:
                            removes the operation if it has not started. */
} pact_fs_opts;

/** The position argument of pact_fs_read and pact_fs_write that means the
 *  descriptor's current position (Node's null), which advances. */
#define PACT_FS_CURRENT (-1)

/* ---- callbacks: each gets @p err NULL on success (borrowed for the call)
 * and, on error, the zero result. ------------------------------------------ */

/** read_file: @p data is PACT_BYTES (the file's bytes, then a NUL byte not
 *  counted in len), owned by pact for the call: take it by moving it out
 *  (`mine = *data; *data = pact_nothing();`, then free(mine.u.bytes.data)
 *  later), or leave it to be freed after the callback. */
typedef void (*pact_fs_data_cb)(pact_error *err, pact_value *data, void *ud);
/** stat: @p st is borrowed for the call (NULL on error). */
typedef void (*pact_fs_stat_cb)(pact_error *err, const pact_stat *st, void *ud);
/** readdir: @p n entries sorted by name (strcmp order, as Node's), the
 *  array and its names borrowed for the call. */
typedef void (*pact_fs_dir_cb)(pact_error *err, const pact_dirent *entries,
                               size_t n, void *ud);
/** open: @p fd is the new descriptor (-1 on error), the callee's to close. */
typedef void (*pact_fs_fd_cb)(pact_error *err, int fd, void *ud);
/** read, write: @p n bytes were transferred (0 from read: end of file). */
typedef void (*pact_fs_size_cb)(pact_error *err, size_t n, void *ud);
/** read_json: @p json is borrowed for the call (json_incref to keep it);
 *  NULL on error. */
typedef void (*pact_fs_json_cb)(pact_error *err, struct json_t *json, void *ud);

/* ---- whole files ---------------------------------------------------------
 * Every function below returns 0, or (and then never calls @p cb)
 * PACT_EINVAL for misuse (NULL loop, path or cb; NULL data with a length),
 * PACT_ETHREAD off the loop's thread, PACT_ENOMEM, or the pool's refusal
 * (PACT_EAGAIN when the blocking lane's limit of operations in flight is
 * reached; see pact_offload). Every _p twin returns a new reference to a
 * promise that rejects with the same errors; NULL only when no promise can
 * be made (off the loop's thread, out of memory). */

/**
 * fs.readFile: the whole file at @p path (any size memory allows; a file
 * that grows while it is read is read to its new end).
 * Errors include PACT_ENOENT, PACT_EACCES, PACT_EISDIR (a directory).
 */
PACT_API int pact_fs_read_file(pact_loop *loop, const char *path,
                               const pact_fs_opts *opts, pact_fs_data_cb cb,
                               void *ud);
/** Fulfils with PACT_BYTES: the data, then a NUL not counted in len. */
PACT_API pact_promise *pact_fs_read_file_p(pact_loop *loop, const char *path,
                                           const pact_fs_opts *opts);

/**
 * fs.writeFile: replace the file at @p path with @p len bytes at @p data
 * (copied unless PACT_FS_NOCOPY), creating it with opts->mode if missing.
 * Flags: PACT_FS_ATOMIC, PACT_FS_SYNC, PACT_FS_EXCL, PACT_FS_NOCOPY.
 * Without PACT_FS_ATOMIC the file is truncated first, so a failure or a
 * crash midway leaves a part of the data.
 */
PACT_API int pact_fs_write_file(pact_loop *loop, const char *path,
                                const void *data, size_t len,
                                const pact_fs_opts *opts, pact_cb cb, void *ud);
/** Fulfils with nothing. */
PACT_API pact_promise *pact_fs_write_file_p(pact_loop *loop, const char *path,
                                            const void *data, size_t len,
                                            const pact_fs_opts *opts);

/**
 * fs.appendFile: add @p len bytes at @p data to the end of @p path (O_APPEND,
 * created if missing). Flags: PACT_FS_SYNC, PACT_FS_NOCOPY.
 */
PACT_API int pact_fs_append(pact_loop *loop, const char *path, const void *data,
                            size_t len, const pact_fs_opts *opts, pact_cb cb,
                            void *ud);
/** Fulfils with nothing. */
PACT_API pact_promise *pact_fs_append_p(pact_loop *loop, const char *path,
                                        const void *data, size_t len,
                                        const pact_fs_opts *opts);

/**
 * fs.readFile then JSON.parse: the file at @p path parsed by jansson (any
 * JSON value at the top). Parsing runs on the pool thread too. A parse
 * error is PACT_EINVAL with jansson's line and column in the message:
 * "invalid JSON at line 3, column 14: string or '}' expected near ',',
 * read_json 'config.json'".
 */
PACT_API int pact_fs_read_json(pact_loop *loop, const char *path,
                               const pact_fs_opts *opts, pact_fs_json_cb cb,
                               void *ud);
/** Fulfils with PACT_JSON (one reference, the promise's). */
PACT_API pact_promise *pact_fs_read_json_p(pact_loop *loop, const char *path,
                                           const pact_fs_opts *opts);

/* ---- names and directories ----------------------------------------------- */

/**
 * fs.stat (fs.lstat with PACT_FS_NOFOLLOW).
 */
PACT_API int pact_fs_stat(pact_loop *loop, const char *path,
                          const pact_fs_opts *opts, pact_fs_stat_cb cb,
                          void *ud);
/** Fulfils with PACT_BYTES holding one pact_stat: read it with
 *  pact_fs_stat_of. */
PACT_API pact_promise *pact_fs_stat_p(pact_loop *loop, const char *path,
                                      const pact_fs_opts *opts);
/** @return the pact_stat a pact_fs_stat_p value holds (borrowed from
 *  @p v), or NULL if @p v is not one. */
PACT_API const pact_stat *pact_fs_stat_of(const pact_value *v);

/** fs.unlink: remove the name @p path (not a directory: PACT_EISDIR on
 *  Linux). */
PACT_API int pact_fs_unlink(pact_loop *loop, const char *path,
                            const pact_fs_opts *opts, pact_cb cb, void *ud);
/** Fulfils with nothing. */
PACT_API pact_promise *pact_fs_unlink_p(pact_loop *loop, const char *path,
                                        const pact_fs_opts *opts);

/** fs.rename: rename(2), atomic on one file system (PACT_EXDEV across
 *  two). A directory replaces only an empty one (PACT_ENOTEMPTY). */
PACT_API int pact_fs_rename(pact_loop *loop, const char *from, const char *to,
                            const pact_fs_opts *opts, pact_cb cb, void *ud);
/** Fulfils with nothing. */
PACT_API pact_promise *pact_fs_rename_p(pact_loop *loop, const char *from,
                                        const char *to,
                                        const pact_fs_opts *opts);

/** fs.mkdir with opts->mode; PACT_FS_RECURSIVE as mkdir -p. Without it an
 *  existing path is PACT_EEXIST and a missing parent PACT_ENOENT. */
PACT_API int pact_fs_mkdir(pact_loop *loop, const char *path,
                           const pact_fs_opts *opts, pact_cb cb, void *ud);
/** Fulfils with nothing. */
PACT_API pact_promise *pact_fs_mkdir_p(pact_loop *loop, const char *path,
                                       const pact_fs_opts *opts);

/** fs.rmdir: remove the empty directory @p path (PACT_ENOTEMPTY if not). */
PACT_API int pact_fs_rmdir(pact_loop *loop, const char *path,
                           const pact_fs_opts *opts, pact_cb cb, void *ud);
/** Fulfils with nothing. */
PACT_API pact_promise *pact_fs_rmdir_p(pact_loop *loop, const char *path,
                                       const pact_fs_opts *opts);

/** fs.readdir: the entries of @p path but "." and "..", sorted by name;
 *  their types with PACT_FS_TYPES (withFileTypes). */
PACT_API int pact_fs_readdir(pact_loop *loop, const char *path,
                             const pact_fs_opts *opts, pact_fs_dir_cb cb,
                             void *ud);
/** Fulfils with PACT_JSON: an array of names, or with PACT_FS_TYPES of
 *  objects {"name": "a.txt", "type": "file"} (pact_fs_type_name). */
PACT_API pact_promise *pact_fs_readdir_p(pact_loop *loop, const char *path,
                                         const pact_fs_opts *opts);

/* ---- descriptors ----------------------------------------------------------
 */

/**
 * fs.open: open(2) @p path with @p flags (O_RDONLY, O_WRONLY | O_CREAT |
 * O_TRUNC, ... from <fcntl.h>; O_CLOEXEC is always added) and, when it
 * creates the file, opts->mode. If the operation is cancelled after the
 * file was opened, the descriptor is closed, never leaked.
 */
PACT_API int pact_fs_open(pact_loop *loop, const char *path, int flags,
                          const pact_fs_opts *opts, pact_fs_fd_cb cb, void *ud);
/** Fulfils with PACT_INT: the descriptor (yours to close). */
PACT_API pact_promise *pact_fs_open_p(pact_loop *loop, const char *path,
                                      int flags, const pact_fs_opts *opts);

/**
 * fs.read: one read of up to @p len bytes from @p fd into @p buf, at
 * @p pos (pread: the descriptor's position is left alone) or, for
 * PACT_FS_CURRENT, at its position (read, which advances it). Fewer bytes
 * than asked are not an error; 0 is the end of the file. Any other negative
 * @p pos is PACT_EINVAL (nothing is read), as is @p pos + @p len past
 * INT64_MAX.
 * The buffer @p buf is borrowed: it must stay valid until the callback has
 * run (the promise has settled; after pact_loop_close_all, until
 * pact_loop_free has returned). Concurrent reads at the current position
 * are unordered: wait for one before the next, as in Node.
 */
PACT_API int pact_fs_read(pact_loop *loop, int fd, void *buf, size_t len,
                          int64_t pos, const pact_fs_opts *opts,
                          pact_fs_size_cb cb, void *ud);
/** Fulfils with PACT_INT: the bytes read. */
PACT_API pact_promise *pact_fs_read_p(pact_loop *loop, int fd, void *buf,
                                      size_t len, int64_t pos,
                                      const pact_fs_opts *opts);

/**
 * fs.write: write all @p len bytes at @p data (copied unless
 * PACT_FS_NOCOPY) to @p fd, at @p pos (pwrite) or, for PACT_FS_CURRENT, at
 * its position (write, which advances it; with O_APPEND, at the end). A
 * short write is continued until all is written or a call fails; then the
 * error is reported (the bytes before it stay written). Any other negative
 * @p pos is PACT_EINVAL (nothing is written), as is @p pos + @p len past
 * INT64_MAX.
 */
PACT_API int pact_fs_write(pact_loop *loop, int fd, const void *data,
                           size_t len, int64_t pos, const pact_fs_opts *opts,
                           pact_fs_size_cb cb, void *ud);
/** Fulfils with PACT_INT: the bytes written (@p len). */
PACT_API pact_promise *pact_fs_write_p(pact_loop *loop, int fd,
                                       const void *data, size_t len,
                                       int64_t pos, const pact_fs_opts *opts);

/** fs.close: close(2) @p fd on the pool (closing can block, e.g. on a
 *  network file system). Its error (e.g. PACT_EIO from a delayed write) is
 *  reported, but the descriptor is closed whatever it says. */
PACT_API int pact_fs_close(pact_loop *loop, int fd, const pact_fs_opts *opts,
                           pact_cb cb, void *ud);
/** Fulfils with nothing. */
PACT_API pact_promise *pact_fs_close_p(pact_loop *loop, int fd,
                                       const pact_fs_opts *opts);

#ifdef __cplusplus
}
#endif
#endif

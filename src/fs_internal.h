/* Private to the file operations: fs.c (the loop thread's side: requests,
 * callbacks, the promise twins, the API) and fs_jobs.c (what runs on the
 * pool's threads: the system calls), and the request they share. */
#ifndef PACT_FS_INTERNAL_H
#define PACT_FS_INTERNAL_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error "fs_internal.h is layer 5 (services): a lower layer must not include it"
#endif

#include "pact/fs.h"
#include "pool_internal.h"

/* What each operation gives its callback. */
enum result { R_NONE, R_DATA, R_STAT, R_DIR, R_FD, R_SIZE, R_JSON };

union fs_cb {
    pact_cb none;
    pact_fs_data_cb data;
    pact_fs_stat_cb stat;
    pact_fs_dir_cb dir;
    pact_fs_fd_cb fd;
    pact_fs_size_cb size;
    pact_fs_json_cb json;
};

/* The operations on a path come before OP_READ (submit() checks theirs). */
enum op {
    OP_READ_FILE,
    OP_WRITE_FILE,
    OP_APPEND,
    OP_READ_JSON,
    OP_STAT,
    OP_UNLINK,
    OP_RENAME,
    OP_MKDIR,
    OP_RMDIR,
    OP_READDIR,
    OP_OPEN,
    OP_READ,
    OP_WRITE,
    OP_CLOSE,
};

/* A submitted operation: what the call gave, copied. The job borrows it
 * while it runs (reading it, and writing only into buf); fs.c frees it. */
struct req {
    enum op op;
    unsigned flags, mode;
    int fd, oflags;
    int64_t pos;
    const char *path, *path2; /* in mem */
    const void *data;         /* in mem, or the caller's (PACT_FS_NOCOPY) */
    void *buf;
    size_t len;
    union fs_cb cb;
    void *ud;
    pact_fn ud_drop;  /* releases ud if the callback never runs (twins) */
    const void *site; /* the program's call that started it (symbol.h) */
    char mem[];
};

/* readdir's result: an owned value (dirlist_free) the callback reads. */
struct dirlist {
    size_t n, cap;
    pact_dirent *v;
};

/* The job of each operation (fs_jobs.c), indexed by enum op. A job's value
 * is what done() in fs.c reads: R_DATA bytes, R_STAT bytes holding a
 * pact_stat, R_DIR an owned struct dirlist, R_FD an owned descriptor
 * (pact__fs_fd), R_SIZE an int, R_JSON JSON; R_NONE nothing. */
extern const pact_offload_fn pact__fs_jobs[];

/* An open descriptor travels as an owned value (fd + 1: never a NULL
 * pointer) whose release closes it, so that the pool closes it when the
 * callback will not get it. @return the descriptor; the value is left as
 * nothing (the descriptor is the caller's now). */
static inline int pact__fs_fd(pact_value *v)
{
    int fd = (int)((intptr_t)v->u.owned.ptr - 1);
    *v = pact_nothing();
    return fd;
}

#endif

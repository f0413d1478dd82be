/* One wake-up object for every thread-safe door into a loop (posts, ports):
 * an eventfd, or a pipe where there is none -- the same fallback everywhere.
 * Any thread signals it; the loop watches its fd and drains it on its own
 * thread. Signalling an object that is already signalled is harmless (the
 * eventfd's counter or the pipe's buffer is full: a wake-up is pending
 * anyway), so callers keep their own "already woken" flag only to save the
 * system call. PACT_WAKE_PIPE=1 in the environment makes every object opened
 * from then on a pipe, as on a system without eventfd (for tests). */
#ifndef PACT_WAKE_H
#define PACT_WAKE_H

struct pact__wake {
    int fd[2]; /* an eventfd in [0] and -1 in [1], or a pipe (read, write) */
};

/* Mark @p w closed (both fds -1), so that pact__wake_close is harmless. */
void pact__wake_init(struct pact__wake *w);
/* Open @p w (non-blocking, close-on-exec). @return 0, or -errno of the pipe
 * that could not be made either (PACT_EMFILE...): @p w is left closed. */
int pact__wake_open(struct pact__wake *w);
/* The descriptor to watch for reading. */
static inline int pact__wake_fd(const struct pact__wake *w)
{
    return w->fd[0];
}
/* Wake the watcher up (any thread). */
void pact__wake_signal(const struct pact__wake *w);
/* Consume every pending wake-up (the watcher's thread). */
void pact__wake_drain(const struct pact__wake *w);
void pact__wake_close(struct pact__wake *w);

#endif

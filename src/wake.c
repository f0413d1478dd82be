/* The wake-up object (src/wake.h): an eventfd, else a pipe. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "wake.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_SYS_EVENTFD_H
#include <sys/eventfd.h>
#endif

void pact__wake_init(struct pact__wake *w)
{
    w->fd[0] = w->fd[1] = -1;
}

#ifdef HAVE_SYS_EVENTFD_H
/* Read at each open, not once: a test sets it for the loops it makes, in a
 * process where earlier tests made theirs (CK_FORK=no). */
static bool pipe_forced(void)
{
    const char *s = getenv("PACT_WAKE_PIPE");
    return s && *s && strcmp(s, "0") != 0;
}
#endif

int pact__wake_open(struct pact__wake *w)
{
    pact__wake_init(w);
#ifdef HAVE_SYS_EVENTFD_H
    /* any failure falls back: ENOSYS/EINVAL on an old kernel, or a lack the
     * pipe then reports itself */
    if (!pipe_forced() &&
        (w->fd[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) >= 0)
        return 0;
#endif
    if (pipe2(w->fd, O_NONBLOCK | O_CLOEXEC) == 0)
        return 0;
    int e = errno;
    pact__wake_init(w);
    return e ? -e : -EMFILE;
}

void pact__wake_signal(const struct pact__wake *w)
{
    uint64_t one = 1;
    /* EAGAIN: the counter or the pipe is full, so a wake-up is pending */
    ssize_t n = w->fd[1] >= 0 ? write(w->fd[1], &one, 1)
                              : write(w->fd[0], &one, sizeof one);
    (void)n;
}

void pact__wake_drain(const struct pact__wake *w)
{
    uint64_t buf[8];
    if (w->fd[1] < 0) { /* an eventfd: one read resets its counter */
        ssize_t n = read(w->fd[0], buf, sizeof buf[0]);
        (void)n;
        return;
    }
    while (read(w->fd[0], buf, sizeof buf) == (ssize_t)sizeof buf)
        ;
}

void pact__wake_close(struct pact__wake *w)
{
    for (int i = 0; i < 2; i++)
        if (w->fd[i] >= 0)
            close(w->fd[i]);
    pact__wake_init(w);
}

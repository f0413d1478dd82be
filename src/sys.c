/* System plumbing (src/sys.h): deadlines as timespecs, starting threads. */
#include "internal.h"

#include <signal.h>

struct timespec pact__timespec_in_ms(clockid_t clock, uint64_t ms)
{
    struct timespec now;
    clock_gettime(clock, &now);
    uint64_t ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    return pact__timespec(pact__ns_after(ns, pact__ms_to_ns(ms)));
}

int pact__thread_start(pthread_t *thread, const pthread_attr_t *attr,
                       void *(*fn)(void *), void *arg, bool runs_loop)
{
    static const int own[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
    sigset_t mask, old;
    sigfillset(&mask);
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        sigdelset(&mask, own[i]);
    if (runs_loop)
        sigdelset(&mask, SIGURG); /* stall.c's stack grab signals it */
    pthread_sigmask(SIG_SETMASK, &mask, &old);
    int rc = pthread_create(thread, attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return pact__thread_error(rc);
}

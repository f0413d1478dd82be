/* The system plumbing every layer shares, written once: which sanitizer or
 * checker the code runs under, a spinning thread's pause, deadline
 * arithmetic (saturating, on CLOCK_MONOTONIC nanoseconds), and starting a
 * thread with the program's signals blocked. Needs nothing of pact's. */
#ifndef PACT_SYS_H
#define PACT_SYS_H

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* ---- what the code is built and run under -------------------------------
 * PACT__ASAN_BUILD / PACT__TSAN_BUILD: built with AddressSanitizer /
 * ThreadSanitizer (gcc says so with macros, clang with __has_feature).
 * pact__on_valgrind(): running under valgrind; without valgrind's header,
 * its client requests used here do nothing. (The tests include this too.) */
#if defined(__SANITIZE_ADDRESS__)
#define PACT__ASAN_BUILD 1
#endif
#if defined(__SANITIZE_THREAD__)
#define PACT__TSAN_BUILD 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(PACT__ASAN_BUILD)
#define PACT__ASAN_BUILD 1
#endif
#if __has_feature(thread_sanitizer) && !defined(PACT__TSAN_BUILD)
#define PACT__TSAN_BUILD 1
#endif
#endif

#ifdef HAVE_VALGRIND_MEMCHECK_H
#include <valgrind/memcheck.h>
#else
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_STACK_REGISTER(lo, hi) 0u
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif
#define pact__on_valgrind() (RUNNING_ON_VALGRIND != 0)

/* ---- spinning ------------------------------------------------------------ */

/* One round of a spin-wait: tell the core (and a sibling hyperthread) that
 * this thread only waits. */
static inline void pact__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ---- deadlines ------------------------------------------------------------
 * Deadlines are absolute CLOCK_MONOTONIC nanoseconds (pact__now_ns); sums
 * saturate at UINT64_MAX, which is "never". */

#define PACT__NS_PER_MS 1000000ull

/* CLOCK_MONOTONIC in ns (loop.c). */
uint64_t pact__now_ns(void);

static inline uint64_t pact__ms_to_ns(uint64_t ms)
{
    return ms > UINT64_MAX / PACT__NS_PER_MS ? UINT64_MAX
                                             : ms * PACT__NS_PER_MS;
}

/* @p t + @p ns, saturated. */
static inline uint64_t pact__ns_after(uint64_t t, uint64_t ns)
{
    return t > UINT64_MAX - ns ? UINT64_MAX : t + ns;
}

/* The deadline @p ms from now. */
static inline uint64_t pact__deadline_ms(uint64_t ms)
{
    return pact__ns_after(pact__now_ns(), pact__ms_to_ns(ms));
}

/* Whether @p deadline has come at @p now. */
static inline bool pact__deadline_passed(uint64_t deadline, uint64_t now)
{
    return now >= deadline;
}

static inline struct timespec pact__timespec(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000ull),
                          (long)(ns % 1000000000ull)};
    return ts;
}

/* The absolute time @p ms from now on @p clock, saturated: for the waits
 * that take a timespec (a condition variable set to CLOCK_MONOTONIC; sem_
 * timedwait and pthread_timedjoin_np, which take CLOCK_REALTIME only). */
struct timespec pact__timespec_in_ms(clockid_t clock, uint64_t ms);

/* ---- threads ------------------------------------------------------------- */

/* pthread_create with the program's signals blocked in the new thread, so
 * that they go to the program's own threads: all but the faults a thread
 * causes itself (SIGSEGV, SIGBUS...: blocked, they would kill the process
 * without their handler, ASan's or a task stack's overflow report) and, for
 * a thread that runs a loop (@p runs_loop), the stall watchdog's SIGURG.
 * The caller's mask is unchanged. @return 0 or PACT_ENOTHREAD. */
int pact__thread_start(pthread_t *thread, const pthread_attr_t *attr,
                       void *(*fn)(void *), void *arg, bool runs_loop);

#endif

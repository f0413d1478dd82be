/* The job that examples/offload/ offloads in three styles: count the primes
 * below a limit, by trial division (deliberately CPU-bound). It runs on a
 * pool thread, so it uses only thread-safe calls: error and value
 * constructors, and pact_job_cancelled. */
#ifndef EXAMPLES_OFFLOAD_PRIMES_H
#define EXAMPLES_OFFLOAD_PRIMES_H

#include <pact.h>
#include <stdint.h>

/* The limits each example counts below, in order; the last is refused. */
static const int64_t limits[] = {100000, 200000, 300000, 400000, -1};
#define NLIMITS (sizeof limits / sizeof limits[0])

static pact_error *count_primes(pact_job *job, void *arg, pact_value *result)
{
    int64_t n = *(const int64_t *)arg, count = 0;
    if (n < 2)
        return PACT_ERROR(PACT_ERANGE, "the limit must be at least 2, not %lld",
                          (long long)n);
    for (int64_t i = 2; i < n; i++) {
        if ((i & 0xfff) == 0 && pact_job_cancelled(job))
            return PACT_ERROR(PACT_ECANCELED);
        int prime = 1;
        for (int64_t d = 2; d * d <= i && prime; d++)
            prime = i % d != 0;
        count += prime;
    }
    *result = pact_int(count);
    return NULL;
}

#endif

/* What the classics share: a TRY for calls that cannot fail in a healthy
 * program, and a scratch directory of their own. */
#ifndef PACT_EXAMPLE_CLASSICS_H
#define PACT_EXAMPLE_CLASSICS_H

#include <stdio.h>
#include <stdlib.h>

#include <pact.h>

#define TRY(call)                                                              \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ < 0) {                                                         \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,      \
                    pact_strerror(rc_));                                       \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

#endif

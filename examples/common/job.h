/* What the multi-style examples (styles, group, fetch) do alike around the
 * part they show: the end of main, which runs the loop and reports how the
 * job ended, and stopping at once on a call that should never fail there.
 * Each example defines example_name, the word its messages start with. */
#ifndef PACT_EXAMPLE_COMMON_JOB_H
#define PACT_EXAMPLE_COMMON_JOB_H

#include <pact.h>

/* The example's name, in its error messages ("styles: ..."). */
extern const char example_name[];

/* The end of every version's main: run @p loop until nothing is left; then
 * say so if the job's promise @p done did not end fulfilled, and drop it
 * (NULL: a callback version has none); free the loop, and print the
 * trace's last line. @return main's exit status: 0 when the run and the
 * free both succeeded. */
int run_job(pact_loop *loop, pact_promise *done);

/* Stop on an error code a call should never return here (out of memory,
 * misuse), naming the call. */
#define TRY(call)                                                              \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ < 0)                                                           \
            fail_call(#call, rc_);                                             \
    } while (0)
void fail_call(const char *call, int rc);
/* The same for the functions that return a promise (NULL: no memory).
 * @return @p p. */
pact_promise *must(pact_promise *p);

#endif

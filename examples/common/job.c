/* The examples' shared end of main and fatal checks (see job.h). */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>

int run_job(pact_loop *loop, pact_promise *done)
{
    int rc = pact_loop_run(loop, PACT_RUN_DEFAULT);
    if (done) {
        if (pact_promise_state(done) != PACT_FULFILLED)
            printf("  the job did not end fulfilled\n");
        pact_promise_unref(done); /* the last reference: the loop can go */
    }
    int freed = pact_loop_free(loop);
    printf("done: pact_loop_run %d, pact_loop_free %d\n", rc, freed);
    return rc != 0 || freed != 0;
}

void fail_call(const char *call, int rc)
{
    fprintf(stderr, "%s: %s: %s\n", example_name, call, pact_err_name(rc));
    exit(1);
}

pact_promise *must(pact_promise *p)
{
    if (!p) {
        fprintf(stderr, "%s: out of memory\n", example_name);
        exit(1);
    }
    return p;
}

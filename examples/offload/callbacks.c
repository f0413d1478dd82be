/* offload, callback style: count the primes below a few limits on the pool's
 * CPU lane, all at once, and print the counts in order once every job has
 * come back. promises.c and await.c do the same job and print the same
 * lines. The job itself is in primes.h.
 *
 * The callbacks run on the loop's thread, one at a time, in whatever order
 * the jobs finish: each stores its result in its slot, and the last one to
 * arrive prints them all (a counter is the join). */
#include <stdio.h>
#include <stdlib.h>

#include "primes.h"

#include "../debug.h"

struct slot {
    struct run *run;
    const int64_t *limit;
    pact_error *err; /* a reference, or NULL */
    int64_t count;
};

struct run {
    struct slot slots[NLIMITS];
    size_t left;
};

static void print_all(struct run *r)
{
    int64_t total = 0;
    for (size_t i = 0; i < NLIMITS; i++) {
        struct slot *s = &r->slots[i];
        if (s->err) {
            printf("primes below %lld: %s: %s\n", (long long)*s->limit,
                   pact_err_name(pact_error_code(s->err)),
                   pact_error_message(s->err));
            pact_error_unref(s->err);
        } else {
            printf("primes below %lld: %lld\n", (long long)*s->limit,
                   (long long)s->count);
            total += s->count;
        }
    }
    printf("total: %lld\n", (long long)total);
}

/* On the loop's thread: err and result are borrowed for the call. */
static void counted(pact_error *err, pact_value *result, void *ud)
{
    struct slot *s = ud;
    if (err)
        s->err = pact_error_ref(err);
    else
        s->count = result->u.i;
    if (--s->run->left == 0)
        print_all(s->run);
}

int main(int argc, char **argv)
{
    pact_loop *loop;
    static struct run r;
    if (pact_loop_new(&loop) < 0)
        return 1;
    if (example_debug(loop, argc, argv) < 0) /* --debug */
        return 1;
    r.left = NLIMITS;
    for (size_t i = 0; i < NLIMITS; i++) {
        r.slots[i] = (struct slot){&r, &limits[i], NULL, 0};
        int rc = pact_offload(loop, count_primes, (void *)&limits[i], NULL,
                              counted, &r.slots[i]);
        if (rc < 0) {
            fprintf(stderr, "callbacks: pact_offload: %s\n", pact_strerror(rc));
            return 1;
        }
    }
    int rc = pact_loop_run(loop, PACT_RUN_DEFAULT);
    return pact_loop_free(loop) < 0 || rc < 0;
}

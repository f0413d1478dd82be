/* offload, promise style: the job of callbacks.c with pact_offload_p, the
 * promise twin of pact_offload; it prints the same lines. pact_all_settled
 * is the join (no counter), and one handler reads every outcome in input
 * order, fulfilled or rejected. */
#include <stdio.h>
#include <stdlib.h>

#include "primes.h"

#include "../debug.h"

static pact_value print_all(const pact_value *v, void *ud)
{
    (void)ud;
    int64_t total = 0;
    for (size_t i = 0; i < NLIMITS; i++) {
        pact_promise *p = pact_list_at(v->u.list, i);
        pact_error *err = pact_promise_error(p);
        if (err) {
            printf("primes below %lld: %s: %s\n", (long long)limits[i],
                   pact_err_name(pact_error_code(err)),
                   pact_error_message(err));
        } else {
            int64_t count = pact_promise_value(p)->u.i;
            printf("primes below %lld: %lld\n", (long long)limits[i],
                   (long long)count);
            total += count;
        }
    }
    printf("total: %lld\n", (long long)total);
    return pact_nothing();
}

int main(int argc, char **argv)
{
    pact_loop *loop;
    pact_promise *ps[NLIMITS];
    if (pact_loop_new(&loop) < 0)
        return 1;
    if (example_debug(loop, argc, argv) < 0) /* --debug */
        return 1;
    for (size_t i = 0; i < NLIMITS; i++)
        if (!(ps[i] =
                  pact_offload_p(loop, count_primes, (void *)&limits[i], NULL)))
            return 1;
    pact_promise *all = pact_all_settled(loop, ps, NLIMITS);
    pact_promise *printed = all ? pact_then(all, print_all, NULL, NULL) : NULL;
    for (size_t i = 0; i < NLIMITS; i++)
        pact_promise_unref(ps[i]); /* the combinator keeps what it needs */
    pact_promise_unref(all);
    int rc = pact_loop_run(loop, PACT_RUN_DEFAULT);
    pact_promise_unref(printed);
    return !printed || pact_loop_free(loop) < 0 || rc < 0;
}

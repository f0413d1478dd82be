/* fetch, promise style: the essay's chain as it is written in Node,
 *
 *   const chain = (url) =>
 *     fetch(url)
 *       .then(res => res.json())
 *       .then(process)
 *       .catch(log);
 *   chain(good).then(() => chain(bad)).then(() => server.close());
 *
 * one pact_then or pact_catch per link: pact_fetch is the promise of the
 * response, pact_fetch_res_to_json is `res => res.json()`, and the _take
 * forms make the chain one expression that holds itself together. It
 * prints the same trace as callbacks.c.
 *
 * What changes: no `if (err)` anywhere but the one catch at the end; a
 * failing step (here res.json()) skips the steps after it. The second
 * chain starts from a handler that returns its promise for the outer chain
 * to adopt. */
#include <stdio.h>

#include "server.h"

#include "../debug.h"

struct job {
    pact_loop *loop;
    pact_http_server *srv;
};

/* .then(process): @p v is the JSON (borrowed). */
static pact_value process_v(const pact_value *v, void *ud)
{
    (void)ud;
    process(v->u.json);
    return pact_nothing();
}

/* .catch(log): the chain ends fulfilled. */
static pact_value log_v(pact_error *err, void *ud)
{
    (void)ud;
    log_error(err);
    return pact_nothing();
}

static pact_promise *chain(pact_loop *loop, const char *path)
{
    char url[64]; /* pact_fetch copies it */
    return must(pact_catch_take(
        pact_then_take(
            pact_then_take(
                pact_fetch(loop, server_url(url, sizeof url, path), NULL),
                pact_fetch_res_to_json, NULL, NULL),
            process_v, NULL, NULL),
        log_v, NULL));
}

static pact_value chain_bad(const pact_value *v, void *ud)
{
    (void)v;
    struct job *j = ud;
    return pact_promise_v(chain(j->loop, BAD_PATH)); /* adopted */
}

static pact_value stop(const pact_value *v, void *ud)
{
    (void)v;
    struct job *j = ud;
    server_stop(j->loop, j->srv);
    return pact_nothing();
}

int main(int argc, char **argv)
{
    struct job j;
    TRY(pact_loop_new(&j.loop));
    TRY(example_debug(j.loop, argc, argv)); /* --debug */

    j.srv = server_start(j.loop);
    pact_promise *done = must(pact_then_take(
        pact_then_take(chain(j.loop, GOOD_PATH), chain_bad, NULL, &j), stop,
        NULL, &j));

    return run_job(j.loop, done);
}

/* fetch, callback style: the essay's chain
 *
 *   fetch(url)
 *     .then(res => res.json())
 *     .then(process)
 *     .catch(log);
 *
 * with an error-first callback, as Node's callback APIs were before
 * promises:
 *
 *   fetchCb(url, (err, res) => {
 *     if (err) return log(err);
 *     let data;
 *     try { data = res.json(); } catch (e) { return log(e); }
 *     process(data);
 *   });
 *
 * run on the good URL, then (from its callback) on the bad one, then the
 * server is stopped. promises.c, task.c and async.c are the same job in the
 * other styles; all four print the same trace (test/fixtures/fetch.out).
 *
 * In this style the catch is an `if (err)` in each callback, and "then the
 * next one" is a call at the callback's end, with what crosses from one to
 * the next in a struct. */
#include <stdio.h>

#include "server.h"

#include "../debug.h"

struct job {
    pact_loop *loop;
    pact_http_server *srv;
    int step; /* which of the paths is being fetched */
};

static const char *const paths[] = {GOOD_PATH, BAD_PATH};

static void next(struct job *j);

/* @p res is lent for the call: its JSON is parsed here, before it goes. */
static void on_response(pact_error *err, pact_fetch_res *res, void *ud)
{
    struct job *j = ud;
    json_t *data = NULL;
    pact_error *own = err ? NULL : pact_fetch_res_json(res, &data);
    if (err || own) {
        log_error(err ? err : own);
    } else {
        process(data);
        json_decref(data);
    }
    pact_error_unref(own);
    j->step++;
    next(j);
}

static void next(struct job *j)
{
    char url[64];
    if (j->step < 2)
        TRY(pact_fetch_cb(j->loop, server_url(url, sizeof url, paths[j->step]),
                          NULL, on_response, j));
    else
        server_stop(j->loop, j->srv);
}

int main(int argc, char **argv)
{
    struct job j = {0};
    TRY(pact_loop_new(&j.loop));
    TRY(example_debug(j.loop, argc, argv)); /* --debug */

    j.srv = server_start(j.loop);
    next(&j);

    return run_job(j.loop, NULL);
}

/* classics/taskgroup -- the idea: structured concurrency; fetches started
 * together in a task group end together, and the first one that fails
 * cancels the others, instead of leaving them running for nobody.
 *
 *   async with asyncio.TaskGroup() as tg:
 *       tg.create_task(get(client, "/fail"))   # raise_for_status(): 500
 *       tg.create_task(get(client, "/slow"))   # cancelled
 *   # raises ExceptionGroup([HTTPStatusError(500)])
 *
 * Two children in a pact group, each a task fetching one URL; a fetch
 * takes the group's abort token as its scope. The sample's own server (on
 * the same loop) answers /fail with a 500 and takes 10 s over /slow: the
 * 500 becomes the first child's error, the group cancels the second, whose
 * fetch drops its connection, and the /slow handler sees its request's
 * abort token fire long before its 10 s are up. So that the transcript is
 * the same every run, /fail is answered only once /slow's handler has
 * started: the order comes from events, not from timing. */
#include "classics.h"

static pact_loop *loop;
static int port;

/* ---- the server ---------------------------------------------------------- */

static bool slow_started, slow_ended;
static int slow_saw; /* the reason its request's abort token gave */
static pact_http_req *fail_req;

static void answer_fail(void)
{
    printf("  server: /fail answers 500\n");
    TRY(pact_http_reply(fail_req, 500, "text/plain", "oops\n", 5));
    fail_req = NULL;
}

static void h_fail(pact_http_req *req, void *ud)
{
    (void)ud;
    fail_req = req;
    if (slow_started)
        answer_fail();
}

static pact_error *h_slow(pact_http_req *req, pact_http_res **res, void *ud)
{
    (void)ud;
    pact_abort *abort = pact_http_req_abort(req);
    printf("  server: /slow started, answers in 10 s\n");
    slow_started = true;
    if (fail_req)
        answer_fail();
    pact_error *err = PACT_AWAIT_ERR(pact_delay(loop, 10000, abort), NULL);
    slow_ended = true;
    if (err) {
        slow_saw = pact_error_code(pact_abort_reason(abort));
        return err; /* a 500 nobody is left to read */
    }
    *res = pact_http_res_new(200);
    return NULL;
}

/* ---- the client ---------------------------------------------------------- */

/* One child: GET @p arg (a path); a status that is not 2xx is an error, as
 * raise_for_status(). */
static pact_error *get(void *arg, pact_value *result)
{
    (void)result;
    const char *path = arg;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    pact_value v;
    pact_error *err = PACT_AWAIT_ERR(pact_fetch(loop, url, NULL), &v);
    if (err) {
        printf("  client: GET %s: %s (%s)\n", path,
               pact_error_code(err) == PACT_ECANCELED ? "cancelled" : "failed",
               pact_err_name(pact_error_code(err)));
        return err;
    }
    pact_fetch_res *res = pact_fetch_res_of(&v);
    printf("  client: GET %s: %d %s\n", path, pact_fetch_res_status(res),
           pact_fetch_res_reason(res));
    if (!pact_fetch_res_ok(res))
        err = PACT_ERROR(PACT_EIO, "GET %s: HTTP %d", path,
                         pact_fetch_res_status(res));
    pact_value_release(&v);
    return err;
}

static pact_error *fetch_both(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    pact_group *g;
    TRY(pact_group_new(loop, NULL, &g));
    TRY(pact_group_spawn(g, get, "/fail", NULL));
    TRY(pact_group_spawn(g, get, "/slow", NULL));
    pact_error *err = pact_group_await(g);
    pact_group_unref(g);
    printf("the group ends: %s",
           err ? pact_err_name(pact_error_code(err)) : "ok");
    for (size_t i = 0; i < pact_error_count(err); i++)
        printf("%s %s (%s)", i ? "," : ":",
               pact_error_message(pact_error_at(err, i)),
               pact_err_name(pact_error_code(pact_error_at(err, i))));
    printf("\n");
    pact_error_unref(err);
    return NULL;
}

int main(void)
{
    pact_http_server *srv;
    TRY(pact_loop_new(&loop));
    TRY(pact_http_listen(loop, "127.0.0.1", 0, NULL, &srv));
    TRY(pact_http_route(srv, "GET", "/fail", h_fail, NULL));
    TRY(pact_http_route_task(srv, "GET", "/slow", h_slow, NULL));
    port = pact_http_server_port(srv);

    printf("a task group fetches /fail and /slow\n");
    classic_run_until(loop, pact_task_spawn(loop, fetch_both, NULL, NULL));
    /* The server learns of the dropped connection on its own turn. */
    while (!slow_ended)
        TRY(pact_loop_run(loop, PACT_RUN_ONCE));
    printf("server: /slow's request was aborted (%s), its 10 s cut short\n",
           pact_err_name(slow_saw));

    classic_stop(loop, srv);
    TRY(pact_loop_free(loop));
    return 0;
}

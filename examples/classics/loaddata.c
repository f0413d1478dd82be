/* classics/loaddata -- the idea: an async function reads as straight-line
 * code, each await a point where the loop runs on, and a failure inside it
 * is the rejection of its promise, as a throw.
 *
 *   async function loadData(url) {
 *     const res = await fetch(url);
 *     if (!res.ok) throw new Error(`HTTP ${res.status}`);
 *     const data = await res.json();
 *     return process(data);
 *   }
 *   loadData(url).then(console.log, console.error);
 *
 * load_data is a PACT_ASYNC function: stackless, what crosses its await
 * lives in its frame. pact_fetch reads the body whole before its promise
 * fulfils, so res.json() is a plain call here (pact_fetch_res_json), not a
 * second await. Run against the sample's own server (on the same loop):
 * once on a route that answers, once on one that answers 503. */
#include <jansson.h>

#include "classics.h"

static pact_loop *loop;
static int port;

static void h_orders(pact_http_req *req, void *ud)
{
    static const char body[] = "{\"orders\": [{\"item\": \"tea\", \"qty\": 2},"
                               " {\"item\": \"cups\", \"qty\": 6}]}";
    (void)ud;
    printf("  server: GET %s\n", pact_http_req_path(req));
    TRY(pact_http_reply(req, 200, "application/json", body, sizeof body - 1));
}

static void h_down(pact_http_req *req, void *ud)
{
    static const char body[] = "{\"error\": \"down for maintenance\"}";
    (void)ud;
    printf("  server: GET %s\n", pact_http_req_path(req));
    TRY(pact_http_reply(req, 503, "application/json", body, sizeof body - 1));
}

/* process(data): takes @p data. */
static pact_value process(json_t *data)
{
    json_t *orders = json_object_get(data, "orders");
    long long items = 0;
    for (size_t i = 0; i < json_array_size(orders); i++)
        items += json_integer_value(
            json_object_get(json_array_get(orders, i), "qty"));
    pact_value v = pact_string_fmt("%lld items in %zu orders", items,
                                   json_array_size(orders));
    json_decref(data);
    return v;
}

/* The frame: the arguments, and what crosses the await. */
struct load_data {
    PACT_ASYNC_FRAME;
    char url[64];
    pact_value res;
};

static pact_error *load_data_body(pact_async *a, pact_value *result)
{
    struct load_data *f = (struct load_data *)a;
    PACT_ASYNC_BEGIN(a);
    printf("  loadData: await fetch\n");
    PACT_ASYNC_TRY(a, pact_fetch(loop, f->url, NULL), &f->res);
    {
        pact_fetch_res *res = pact_fetch_res_of(&f->res);
        json_t *data = NULL;
        pact_error *err = NULL;
        printf("  loadData: resumed with %d %s\n", pact_fetch_res_status(res),
               pact_fetch_res_reason(res));
        if (!pact_fetch_res_ok(res))
            err = PACT_ERROR(PACT_EIO, "HTTP %d", pact_fetch_res_status(res));
        else
            err = pact_fetch_res_json(res, &data);
        pact_value_release(&f->res);
        if (err)
            return err; /* throw: the promise rejects */
        *result = process(data);
    }
    PACT_ASYNC_END(a);
}

static pact_promise *load_data(const char *path)
{
    struct load_data *f = pact_async_new(loop, sizeof *f, load_data_body);
    if (!f)
        return NULL;
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", port, path);
    return pact_async_start(f);
}

static pact_value print_value(const pact_value *v, void *ud)
{
    (void)ud;
    printf("  fulfilled: %s\n", pact_value_string(v));
    return pact_nothing();
}

static pact_value print_error(pact_error *err, void *ud)
{
    (void)ud;
    printf("  rejected: %s: %s\n", pact_err_name(pact_error_code(err)),
           pact_error_message(err));
    return pact_nothing();
}

static void run(const char *path)
{
    printf("loadData('%s')\n", path);
    classic_run_until(
        loop, pact_then_take(load_data(path), print_value, print_error, NULL));
}

int main(void)
{
    pact_http_server *srv;
    TRY(pact_loop_new(&loop));
    TRY(pact_http_listen(loop, "127.0.0.1", 0, NULL, &srv));
    TRY(pact_http_route(srv, "GET", "/orders", h_orders, NULL));
    TRY(pact_http_route(srv, "GET", "/down", h_down, NULL));
    port = pact_http_server_port(srv);

    run("/orders");
    run("/down");

    classic_stop(loop, srv);
    TRY(pact_loop_free(loop));
    return 0;
}

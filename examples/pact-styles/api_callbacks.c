/* The API daemon, callback style: each handler answers at once with
 * pact_http_respond. */
#include "styles.h"

static void reply(pact_http_req *req, int status, json_t *body)
{
    pact_http_res *res = pact_http_res_new_json(status, body);
    json_decref(body);
    if (res)
        pact_http_respond(req, res);
    else /* no memory */
        pact_http_reply(req, 500, NULL, "", 0);
}

static void get_item(pact_http_req *req, void *ud)
{
    (void)ud;
    json_t *body;
    int status = api_get(pact_http_req_param(req, "id"), &body);
    reply(req, status, body);
}

static void post_item(pact_http_req *req, void *ud)
{
    (void)ud;
    json_t *in = pact_http_req_json(req), *body;
    int status = api_post(in, &body);
    json_decref(in);
    reply(req, status, body);
}

int api_callbacks(pact_http_server *srv)
{
    int rc = pact_http_route(srv, "GET", "/items/:id", get_item, NULL);
    return rc ? rc : pact_http_route(srv, "POST", "/items", post_item, NULL);
}

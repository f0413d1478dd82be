/* The API daemon, stackful task style: each request's handler runs in a
 * task of its own (it could PACT_AWAIT anything) and hands back its
 * response. */
#include "styles.h"

static pact_error *respond(int status, json_t *body, pact_http_res **res)
{
    *res = pact_http_res_new_json(status, body);
    json_decref(body);
    return NULL; /* no response: the server answers 500 */
}

static pact_error *get_item(pact_http_req *req, pact_http_res **res, void *ud)
{
    (void)ud;
    json_t *body;
    int status = api_get(pact_http_req_param(req, "id"), &body);
    return respond(status, body, res);
}

static pact_error *post_item(pact_http_req *req, pact_http_res **res, void *ud)
{
    (void)ud;
    json_t *in = pact_http_req_json(req), *body;
    int status = api_post(in, &body);
    json_decref(in);
    return respond(status, body, res);
}

int api_task(pact_http_server *srv)
{
    int rc = pact_http_route_task(srv, "GET", "/items/:id", get_item, NULL);
    return rc ? rc
              : pact_http_route_task(srv, "POST", "/items", post_item, NULL);
}

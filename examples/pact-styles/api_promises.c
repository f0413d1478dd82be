/* The API daemon, promise style: each handler returns a promise of its
 * response, a chain from the request's data (the id, the parsed body) to
 * the response built in a reaction. */
#include "styles.h"

static pact_value respond(int status, json_t *body)
{
    pact_http_res *res = pact_http_res_new_json(status, body);
    json_decref(body);
    return res ? pact_http_res_value(res)
               : pact_throw(PACT_ERROR(PACT_ENOMEM, "no response"));
}

static pact_value found(const pact_value *id, void *ud)
{
    (void)ud;
    json_t *body;
    int status = api_get(pact_value_string(id), &body);
    return respond(status, body);
}

static pact_value posted(const pact_value *in, void *ud)
{
    (void)ud;
    json_t *body;
    int status = api_post(in->kind == PACT_JSON ? in->u.json : NULL, &body);
    return respond(status, body);
}

static pact_promise *chain(pact_http_req *req, pact_value v,
                           pact_on_fulfilled step)
{
    pact_promise *p = pact_resolved(pact_http_req_loop(req), v);
    pact_promise *res = pact_then(p, step, NULL, NULL);
    pact_promise_unref(p);
    return res;
}

static pact_promise *get_item(pact_http_req *req, void *ud)
{
    (void)ud;
    return chain(req, pact_string_copy(pact_http_req_param(req, "id")), found);
}

static pact_promise *post_item(pact_http_req *req, void *ud)
{
    (void)ud;
    json_t *in = pact_http_req_json(req);
    return chain(req, in ? pact_json(in) : pact_nothing(), posted);
}

int api_promises(pact_http_server *srv)
{
    int rc = pact_http_route_p(srv, "GET", "/items/:id", get_item, NULL);
    return rc ? rc : pact_http_route_p(srv, "POST", "/items", post_item, NULL);
}

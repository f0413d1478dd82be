/* The API daemon, stackless PACT_ASYNC style: each request starts an async
 * function on a frame of its own, whose promise the server awaits for the
 * response; what it needs (the request) lives in the frame. */
#include "styles.h"

struct handle {
    PACT_ASYNC_FRAME;
    pact_http_req *req; /* its argument */
    bool post;          /* POST /items, else GET /items/:id */
};

static pact_error *handle_body(pact_async *a, pact_value *result)
{
    struct handle *f = (struct handle *)a;
    json_t *in = NULL, *body;
    int status;
    PACT_ASYNC_BEGIN(a);
    if (f->post) {
        in = pact_http_req_json(f->req);
        status = api_post(in, &body);
        json_decref(in);
    } else {
        status = api_get(pact_http_req_param(f->req, "id"), &body);
    }
    pact_http_res *res = pact_http_res_new_json(status, body);
    json_decref(body);
    *result = pact_http_res_value(res); /* none: the server answers 500 */
    PACT_ASYNC_END(a);
}

static pact_promise *start(pact_http_req *req, void *post)
{
    struct handle *f =
        pact_async_new(pact_http_req_loop(req), sizeof *f, handle_body);
    if (!f)
        return NULL;
    f->req = req;
    f->post = post != NULL;
    return pact_async_start(f);
}

int api_async(pact_http_server *srv)
{
    int rc = pact_http_route_p(srv, "GET", "/items/:id", start, NULL);
    return rc ? rc : pact_http_route_p(srv, "POST", "/items", start, srv);
}

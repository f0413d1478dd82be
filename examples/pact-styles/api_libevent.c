/* The API daemon on libevent's evhttp, the floor the others are measured
 * against: one generic callback per request, routed by hand. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "styles.h"

static void reply(struct evhttp_request *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    if (!text || evbuffer_add(out, text, strlen(text)) < 0) {
        free(text);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evhttp_send_reply(req, status, status == 201 ? "Created" : "OK", NULL);
}

static void on_request(struct evhttp_request *req, void *ud)
{
    (void)ud;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    json_t *body;
    if (cmd == EVHTTP_REQ_GET && path && !strncmp(path, "/items/", 7) &&
        !strchr(path + 7, '/')) {
        int status = api_get(path + 7, &body);
        reply(req, status, body);
    } else if (cmd == EVHTTP_REQ_POST && path && !strcmp(path, "/items")) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        json_t *json =
            json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
        int status = api_post(json, &body);
        json_decref(json);
        reply(req, status, body);
    } else {
        evhttp_send_error(req, 404, NULL);
    }
}

int api_libevent(struct evhttp *http)
{
    evhttp_set_gencb(http, on_request, NULL);
    return 0;
}

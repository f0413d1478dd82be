/* What the API daemon answers, shared by every style (its lines are not
 * counted as any style's): the styles differ only in how a request gets to
 * these two functions and its response back out. */
#include <stdlib.h>

#include "styles.h"

static json_int_t next_id = 1;

int api_get(const char *id, json_t **out)
{
    char *end;
    long long n = id ? strtoll(id, &end, 10) : 0;
    if (!id || *end || n <= 0) {
        *out = json_pack("{s:s}", "error", "no such item");
        return 404;
    }
    *out = json_pack("{s:I, s:s, s:I}", "id", (json_int_t)n, "name", "widget",
                     "price_cents", (json_int_t)(n * 7 % 1000));
    return 200;
}

int api_post(json_t *body, json_t **out)
{
    if (!json_is_object(body)) {
        *out = json_pack("{s:s}", "error", "the body is not a JSON object");
        return 400;
    }
    *out = json_deep_copy(body);
    json_object_set_new(*out, "id", json_integer(next_id++));
    return 201;
}

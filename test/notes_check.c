/* The client side of test/check-notes-api.sh: drives examples/notes-api
 * over real HTTP on 127.0.0.1 with plain blocking sockets (nothing of
 * pact's, so the server is judged by an independent client).
 *
 *   notes_check crud PORT MAX_BODY      routes, bad requests, 404, 413
 *   notes_check writers PORT CLIENTS N  concurrent writers, then read back
 *   notes_check hammer PORT CLIENTS LOG write until the server goes; each
 *                                       acknowledged (201) note is a line
 *                                       of LOG: "id title checksum"
 *   notes_check verify PORT LOG         every note of LOG is there, whole;
 *                                       every note self-checks
 *   notes_check deadline PORT           a slow query gets 504
 *   notes_check disconnect PORT         clients that go mid-request are
 *                                       cancelled; the server stays healthy
 *   notes_check waitfor PORT KEY N      wait until /health's KEY >= N
 *   notes_check status PORT METHOD PATH print the status of one request
 *                                       ("none" without an answer)
 *
 * Every note's body ends with "#" and the FNV-1a hash of what comes before
 * it, so a half-written row shows. Exit 0 when all is as expected, 1 with
 * a message otherwise. No timing is asserted: waits are for events (a
 * counter in /health), with generous bounds only against hanging. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

static int port;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "notes_check: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- a minimal HTTP/1.1 client ------------------------------------------ */

typedef struct conn {
    int fd;
    char buf[1 << 16];
    size_t len; /* bytes read ahead in buf */
} conn;

typedef struct resp {
    int status;
    char *body; /* NUL-terminated, malloc'd */
    size_t blen;
    json_t *json; /* the body parsed, or NULL */
} resp;

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    /* against hanging forever on a broken server, not a speed bound */
    struct timeval tv = {120, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static bool send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

static bool fill(conn *c)
{
    if (c->len == sizeof c->buf)
        return false;
    ssize_t r;
    do
        r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return false;
    c->len += (size_t)r;
    return true;
}

static void consume(conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Read one response. @return false when the connection failed first. */
static bool read_resp(conn *c, resp *r)
{
    memset(r, 0, sizeof *r);
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (!fill(c))
            return false;
    size_t head = (size_t)(end - c->buf) + 4;
    c->buf[head - 1] = '\0';
    if (sscanf(c->buf, "HTTP/1.1 %d", &r->status) != 1)
        die("a response that is not HTTP/1.1: %.40s", c->buf);
    size_t clen = 0;
    char *h = strcasestr(c->buf, "\r\ncontent-length:");
    if (h)
        clen = strtoul(h + 17, NULL, 10);
    bool close_after = strcasestr(c->buf, "\r\nconnection: close") != NULL;
    consume(c, head);
    r->body = malloc(clen + 1);
    if (!r->body)
        die("out of memory");
    size_t have = c->len < clen ? c->len : clen;
    memcpy(r->body, c->buf, have);
    consume(c, have);
    while (have < clen) { /* the rest straight into the body */
        ssize_t n = recv(c->fd, r->body + have, clen - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(r->body);
            r->body = NULL;
            return false;
        }
        have += (size_t)n;
    }
    r->body[clen] = '\0';
    r->blen = clen;
    r->json = json_loadb(r->body, clen, JSON_DECODE_ANY, NULL);
    if (close_after) {
        close(c->fd);
        c->fd = -1;
        c->len = 0;
    }
    return true;
}

static void resp_free(resp *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* One request on @p c (dialled if need be). @return false when the server
 * could not be reached or the connection failed before the answer. */
static bool request(conn *c, const char *method, const char *target,
                    const char *body, size_t blen, resp *r)
{
    if (c->fd < 0 && (c->fd = dial()) < 0)
        return false;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, target, body ? blen : 0);
    bool ok = send_all(c->fd, head, (size_t)n) &&
              (!body || send_all(c->fd, body, blen)) && read_resp(c, r);
    if (!ok) {
        close(c->fd);
        c->fd = -1;
        c->len = 0;
    }
    return ok;
}

static conn *conn_new(void)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        die("out of memory");
    c->fd = -1;
    return c;
}

static void conn_free(conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

/* A request that must be answered with @p status. */
static void expect(conn *c, const char *method, const char *target,
                   const char *body, int status, resp *r)
{
    if (!request(c, method, target, body, body ? strlen(body) : 0, r))
        die("%s %s: no answer", method, target);
    if (r->status != status)
        die("%s %s: %d (%s), expected %d", method, target, r->status, r->body,
            status);
}

/* ---- self-checking notes ------------------------------------------------ */

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* A body of some length, "#" and its hash; malloc'd. */
static char *make_body(unsigned client, unsigned i, unsigned *seed)
{
    size_t n = 20 + (size_t)(rand_r(seed) % 1500);
    char *b = malloc(n + 64);
    if (!b)
        die("out of memory");
    int k = snprintf(b, n + 64, "client %u note %u:", client, i);
    for (size_t j = (size_t)k; j < n; j++)
        b[j] = (char)('a' + rand_r(seed) % 26);
    snprintf(b + n, 64, "#%016" PRIx64, fnv(b, n));
    return b;
}

/* @return whether @p body ends with the hash of what precedes it. */
static bool body_ok(const char *body, uint64_t *hash)
{
    size_t n = strlen(body);
    if (n < 17 || body[n - 17] != '#')
        return false;
    char want[17];
    snprintf(want, sizeof want, "%016" PRIx64, fnv(body, n - 17));
    if (hash)
        *hash = fnv(body, n);
    return strcmp(want, body + n - 16) == 0;
}

static char *note_json(const char *title, const char *body)
{
    json_t *j = json_pack("{s:s, s:s}", "title", title, "body", body);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        die("out of memory");
    return s;
}

static int64_t json_id(const resp *r)
{
    json_t *id = json_object_get(r->json, "id");
    if (!json_is_integer(id) || json_integer_value(id) < 1)
        die("no id in %s", r->body);
    return json_integer_value(id);
}

static const char *json_str(const resp *r, const char *key)
{
    const char *s = json_string_value(json_object_get(r->json, key));
    if (!s)
        die("no \"%s\" in %s", key, r->body);
    return s;
}

static void expect_error_json(const resp *r)
{
    if (!json_is_string(json_object_get(r->json, "error")))
        die("%d without a JSON error: %s", r->status, r->body);
}

/* ---- crud --------------------------------------------------------------- */

static void crud(size_t max_body)
{
    conn *c = conn_new();
    resp r;
    char target[64];
    expect(c, "GET", "/health", NULL, 200, &r);
    resp_free(&r);

    expect(c, "POST", "/notes", "{\"title\":\"first\",\"body\":\"one\"}", 201,
           &r);
    int64_t id = json_id(&r);
    if (strcmp(json_str(&r, "title"), "first") ||
        strcmp(json_str(&r, "body"), "one"))
        die("POST echoed %s", r.body);
    resp_free(&r);
    snprintf(target, sizeof target, "/notes/%" PRId64, id);
    expect(c, "GET", target, NULL, 200, &r);
    if (json_id(&r) != id || strcmp(json_str(&r, "body"), "one"))
        die("GET %s: %s", target, r.body);
    resp_free(&r);
    /* unicode and escapes go through whole */
    expect(c, "PUT", target,
           "{\"title\":\"caf\\u00e9\",\"body\":\"line\\nquote\\\" \\u263a\"}",
           200, &r);
    resp_free(&r);
    expect(c, "GET", target, NULL, 200, &r);
    if (strcmp(json_str(&r, "title"), "caf\xc3\xa9") ||
        strcmp(json_str(&r, "body"), "line\nquote\" \xe2\x98\xba"))
        die("PUT then GET: %s", r.body);
    resp_free(&r);

    /* the list, its limit and its cursor */
    int64_t more[3];
    for (int i = 0; i < 3; i++) {
        expect(c, "POST", "/notes", "{\"title\":\"t\",\"body\":\"b\"}", 201,
               &r);
        more[i] = json_id(&r);
        resp_free(&r);
    }
    snprintf(target, sizeof target, "/notes?after=%" PRId64 "&limit=2", id);
    expect(c, "GET", target, NULL, 200, &r);
    json_t *notes = json_object_get(r.json, "notes");
    if (json_array_size(notes) != 2 ||
        json_integer_value(json_object_get(json_array_get(notes, 0), "id")) !=
            more[0] ||
        json_integer_value(json_object_get(r.json, "next")) != more[1])
        die("GET %s: %s", target, r.body);
    resp_free(&r);
    snprintf(target, sizeof target, "/notes?after=%" PRId64 "&limit=2",
             more[1]);
    expect(c, "GET", target, NULL, 200, &r);
    if (json_array_size(json_object_get(r.json, "notes")) != 1 ||
        !json_is_null(json_object_get(r.json, "next")))
        die("GET %s: %s", target, r.body);
    resp_free(&r);
    const char *bad_lists[] = {
        "/notes?limit=0", "/notes?limit=1001", "/notes?limit=x",
        "/notes?limit=",  "/notes?after=-1",   "/notes?limit=+5"};
    for (size_t i = 0; i < sizeof bad_lists / sizeof *bad_lists; i++) {
        expect(c, "GET", bad_lists[i], NULL, 400, &r);
        expect_error_json(&r);
        resp_free(&r);
    }

    /* delete, then it is gone */
    snprintf(target, sizeof target, "/notes/%" PRId64, more[2]);
    expect(c, "DELETE", target, NULL, 204, &r);
    resp_free(&r);
    expect(c, "GET", target, NULL, 404, &r);
    expect_error_json(&r);
    resp_free(&r);
    expect(c, "DELETE", target, NULL, 404, &r);
    resp_free(&r);
    expect(c, "PUT", target, "{\"title\":\"t\",\"body\":\"b\"}", 404, &r);
    resp_free(&r);
    expect(c, "GET", "/notes/999999999", NULL, 404, &r);
    resp_free(&r);

    /* bad requests: a JSON error, and the connection goes on */
    const char *bad_bodies[] = {
        "{bad json",
        "",
        "[1,2]",
        "\"title\"",
        "{\"title\":\"t\"}",
        "{\"body\":\"b\"}",
        "{\"title\":1,\"body\":\"b\"}",
        "{\"title\":\"t\",\"body\":null}",
        "{\"title\":\"t\",\"body\":\"b\"} trailing",
    };
    for (size_t i = 0; i < sizeof bad_bodies / sizeof *bad_bodies; i++) {
        expect(c, "POST", "/notes", bad_bodies[i], 400, &r);
        expect_error_json(&r);
        resp_free(&r);
        snprintf(target, sizeof target, "/notes/%" PRId64, id);
        expect(c, "PUT", target, bad_bodies[i], 400, &r);
        expect_error_json(&r);
        resp_free(&r);
    }
    const char *bad_ids[] = {"/notes/abc", "/notes/0", "/notes/-1", "/notes/1x",
                             "/notes/99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof *bad_ids; i++) {
        expect(c, "GET", bad_ids[i], NULL, 400, &r);
        expect_error_json(&r);
        resp_free(&r);
    }

    /* a body past the server's limit: 413, the rest untouched */
    size_t big = max_body + 100;
    char *huge = malloc(big + 64);
    if (!huge)
        die("out of memory");
    int k = snprintf(huge, big + 64, "{\"title\":\"big\",\"body\":\"");
    memset(huge + k, 'x', big);
    strcpy(huge + k + big, "\"}");
    if (!request(c, "POST", "/notes", huge, strlen(huge), &r))
        die("POST of %zu bytes: no answer", strlen(huge));
    if (r.status != 413)
        die("POST of %zu bytes: %d, expected 413", strlen(huge), r.status);
    resp_free(&r);
    free(huge);
    /* the note just under the limit is taken */
    char *fits = malloc(max_body + 1);
    if (!fits)
        die("out of memory");
    k = snprintf(fits, max_body + 1, "{\"title\":\"fits\",\"body\":\"");
    memset(fits + k, 'y', max_body - (size_t)k - 2);
    strcpy(fits + max_body - 2, "\"}");
    expect(c, "POST", "/notes", fits, 201, &r);
    resp_free(&r);
    free(fits);

    expect(c, "GET", "/health", NULL, 200, &r);
    if (strcmp(json_str(&r, "status"), "ok"))
        die("health: %s", r.body);
    resp_free(&r);
    conn_free(c);
    printf("crud: routes, lists, 400s, 404s and 413 as expected\n");
}

/* ---- concurrent writers ------------------------------------------------- */

typedef struct writer {
    pthread_t th;
    unsigned client, n;
    int64_t *ids;
    uint64_t *hashes;
    unsigned done;
    FILE *log; /* hammer: acknowledged notes, or NULL */
    pthread_mutex_t *loglock;
} writer;

static void *write_notes(void *arg)
{
    writer *w = arg;
    conn *c = conn_new();
    unsigned seed = w->client * 7919u + 1;
    for (unsigned i = 0; i < w->n; i++) {
        char *body = make_body(w->client, i, &seed);
        char title[32];
        snprintf(title, sizeof title, "c%u-%u", w->client, i);
        char *js = note_json(title, body);
        resp r;
        bool ok = request(c, "POST", "/notes", js, strlen(js), &r);
        if (!w->log && (!ok || r.status != 201))
            die("writer %u: POST %u: %s", w->client, i,
                ok ? r.body : "no answer");
        if (!ok || r.status != 201) { /* the hammer: the server went */
            if (ok)
                resp_free(&r);
            free(js);
            free(body);
            break;
        }
        int64_t id = json_id(&r);
        uint64_t h;
        body_ok(body, &h);
        if (w->ids) {
            w->ids[i] = id;
            w->hashes[i] = h;
        }
        if (w->log) {
            pthread_mutex_lock(w->loglock);
            fprintf(w->log, "%" PRId64 " %s %016" PRIx64 "\n", id, title, h);
            fflush(w->log);
            pthread_mutex_unlock(w->loglock);
        }
        w->done++;
        resp_free(&r);
        free(js);
        free(body);
    }
    conn_free(c);
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* GET /notes/ID: the note whose body hashes to @p hash. */
static void check_note(conn *c, int64_t id, const char *title, uint64_t hash)
{
    char target[64];
    snprintf(target, sizeof target, "/notes/%" PRId64, id);
    resp r;
    if (!request(c, "GET", target, NULL, 0, &r))
        die("GET %s: no answer", target);
    if (r.status != 200)
        die("acknowledged note %" PRId64 " (%s): GET gives %d", id, title,
            r.status);
    uint64_t h;
    if (!body_ok(json_str(&r, "body"), &h) || h != hash)
        die("note %" PRId64 ": its body is not the one written", id);
    if (title && strcmp(json_str(&r, "title"), title))
        die("note %" PRId64 ": title %s, expected %s", id,
            json_str(&r, "title"), title);
    resp_free(&r);
}

/* Every note, page by page: each body must check. @return how many. */
static size_t check_all(conn *c)
{
    size_t count = 0;
    int64_t after = 0;
    for (;;) {
        char target[64];
        snprintf(target, sizeof target, "/notes?after=%" PRId64 "&limit=1000",
                 after);
        resp r;
        if (!request(c, "GET", target, NULL, 0, &r) || r.status != 200)
            die("GET %s failed", target);
        json_t *notes = json_object_get(r.json, "notes"), *n;
        size_t i;
        json_array_foreach(notes, i, n)
        {
            const char *b = json_string_value(json_object_get(n, "body"));
            const char *t = json_string_value(json_object_get(n, "title"));
            /* the notes of crud are not self-checking: only c%u-%u are */
            if (t && t[0] == 'c' && t[1] >= '0' && t[1] <= '9' &&
                !body_ok(b ? b : "", NULL))
                die("note %" PRId64 " (%s) is not whole: its hash fails",
                    (int64_t)json_integer_value(json_object_get(n, "id")), t);
            count++;
        }
        json_t *next = json_object_get(r.json, "next");
        if (json_is_null(next)) {
            resp_free(&r);
            return count;
        }
        after = json_integer_value(next);
        resp_free(&r);
    }
}

static void writers(unsigned clients, unsigned per)
{
    writer *w = calloc(clients, sizeof *w);
    if (!w)
        die("out of memory");
    for (unsigned i = 0; i < clients; i++) {
        w[i].client = i;
        w[i].n = per;
        w[i].ids = calloc(per, sizeof *w[i].ids);
        w[i].hashes = calloc(per, sizeof *w[i].hashes);
        if (!w[i].ids || !w[i].hashes)
            die("out of memory");
        if (pthread_create(&w[i].th, NULL, write_notes, &w[i]))
            die("pthread_create");
    }
    int64_t *all = malloc((size_t)clients * per * sizeof *all);
    if (!all)
        die("out of memory");
    for (unsigned i = 0; i < clients; i++) {
        pthread_join(w[i].th, NULL);
        memcpy(all + (size_t)i * per, w[i].ids, per * sizeof *all);
    }
    size_t n = (size_t)clients * per;
    qsort(all, n, sizeof *all, cmp_id);
    for (size_t i = 1; i < n; i++)
        if (all[i] == all[i - 1])
            die("id %" PRId64 " was given twice", all[i]);
    conn *c = conn_new();
    for (unsigned i = 0; i < clients; i++)
        for (unsigned j = 0; j < per; j++) {
            char title[32];
            snprintf(title, sizeof title, "c%u-%u", i, j);
            check_note(c, w[i].ids[j], title, w[i].hashes[j]);
        }
    size_t total = check_all(c);
    if (total < n)
        die("the list has %zu notes, fewer than the %zu written", total, n);
    conn_free(c);
    for (unsigned i = 0; i < clients; i++) {
        free(w[i].ids);
        free(w[i].hashes);
    }
    free(w);
    free(all);
    printf("writers: %u clients x %u notes: ids distinct, every note there "
           "and whole\n",
           clients, per);
}

/* ---- hammer and verify: writes across a restart ------------------------- */

static void hammer(unsigned clients, const char *log)
{
    FILE *f = fopen(log, "a");
    if (!f)
        die("%s: %s", log, strerror(errno));
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    writer *w = calloc(clients, sizeof *w);
    if (!w)
        die("out of memory");
    static unsigned round; /* distinct titles across runs: pid-based */
    round = (unsigned)getpid();
    unsigned total = 0;
    for (unsigned i = 0; i < clients; i++) {
        w[i].client = round * 100 + i;
        w[i].n = 200000; /* until the server goes */
        w[i].log = f;
        w[i].loglock = &lock;
        if (pthread_create(&w[i].th, NULL, write_notes, &w[i]))
            die("pthread_create");
    }
    for (unsigned i = 0; i < clients; i++) {
        pthread_join(w[i].th, NULL);
        total += w[i].done;
    }
    fclose(f);
    free(w);
    printf("hammer: %u notes acknowledged before the server went\n", total);
}

static void verify(const char *log)
{
    FILE *f = fopen(log, "r");
    if (!f)
        die("%s: %s", log, strerror(errno));
    conn *c = conn_new();
    char title[64];
    int64_t id;
    uint64_t hash;
    size_t n = 0;
    while (fscanf(f, "%" SCNd64 " %63s %" SCNx64, &id, title, &hash) == 3) {
        check_note(c, id, title, hash);
        n++;
    }
    fclose(f);
    size_t total = check_all(c);
    conn_free(c);
    printf("verify: all %zu acknowledged notes there and whole; all %zu "
           "notes self-check\n",
           n, total);
}

/* ---- deadlines and clients that go -------------------------------------- */

static json_int_t health(const char *key)
{
    conn *c = conn_new();
    resp r;
    expect(c, "GET", "/health", NULL, 200, &r);
    json_t *v = json_object_get(r.json, key);
    if (!json_is_integer(v))
        die("health has no %s: %s", key, r.body);
    json_int_t n = json_integer_value(v);
    resp_free(&r);
    conn_free(c);
    return n;
}

/* Wait for /health's @p key to reach @p want: an event, polled; the bound
 * is only against hanging. */
static void wait_health(const char *key, json_int_t want)
{
    for (int i = 0; i < 6000; i++) {
        if (health(key) >= want)
            return;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    die("/health's %s never reached %lld", key, (long long)want);
}

static void deadline(void)
{
    conn *c = conn_new();
    resp r;
    expect(c, "GET", "/notes", NULL, 504, &r);
    expect_error_json(&r);
    resp_free(&r);
    expect(c, "POST", "/notes", "{\"title\":\"late\",\"body\":\"b\"}", 504, &r);
    resp_free(&r);
    conn_free(c);
    if (health("timed_out") < 2)
        die("the deadlines were not counted");
    printf("deadline: slow queries cut at the request's deadline: 504\n");
}

static void disconnect(void)
{
    json_int_t before = health("cancelled");
    /* a request whose query is under way, then the client goes: three
     * times, with a close, a reset (SO_LINGER 0) and a half-close */
    for (int how = 0; how < 3; how++) {
        int fd = dial();
        if (fd < 0)
            die("cannot connect");
        const char *note = "{\"title\":\"t\",\"body\":\"b\"}";
        char req[256];
        if (how == 1)
            snprintf(req, sizeof req,
                     "POST /notes HTTP/1.1\r\nHost: x\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(note), note);
        else
            snprintf(req, sizeof req, "GET /notes HTTP/1.1\r\nHost: x\r\n\r\n");
        if (!send_all(fd, req, strlen(req)))
            die("send");
        /* the server counts the request in flight before we go */
        wait_health("in_flight", 1);
        if (how == 1) {
            struct linger l = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        } else if (how == 2) {
            shutdown(fd, SHUT_WR);
        }
        close(fd);
        wait_health("cancelled", before + how + 1);
        printf("disconnect: %s mid-query: the query was cancelled\n",
               how == 0   ? "a close"
               : how == 1 ? "a reset"
                          : "a half-close");
    }
    /* a body cut short: the request never reaches a handler */
    int fd = dial();
    const char *part = "POST /notes HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 1000\r\n\r\n{\"title\":";
    if (fd < 0 || !send_all(fd, part, strlen(part)))
        die("cannot send a partial request");
    close(fd);
    /* a head cut short */
    fd = dial();
    if (fd < 0 || !send_all(fd, "GET /notes HT", 13))
        die("cannot send a partial head");
    close(fd);
    /* healthy: nothing left in flight, every connection but the one
     * asking closed, and it still answers */
    for (int i = 0;
         i < 6000 && (health("in_flight") > 0 || health("connections") > 1);
         i++) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (health("in_flight") != 0)
        die("requests are left in flight");
    if (health("connections") != 1)
        die("connections are left open");
    printf("disconnect: 3 clients gone mid-query cancelled theirs; partial "
           "requests dropped; no connection left; the server answers\n");
}

int main(int argc, char **argv)
{
    if (argc < 3)
        die("usage: notes_check crud|writers|hammer|verify|deadline|"
            "disconnect PORT ...");
    port = atoi(argv[2]);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "crud") && argc == 4)
        crud(strtoul(argv[3], NULL, 10));
    else if (!strcmp(cmd, "writers") && argc == 5)
        writers((unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]));
    else if (!strcmp(cmd, "hammer") && argc == 5)
        hammer((unsigned)atoi(argv[3]), argv[4]);
    else if (!strcmp(cmd, "verify") && argc == 4)
        verify(argv[3]);
    else if (!strcmp(cmd, "deadline") && argc == 3)
        deadline();
    else if (!strcmp(cmd, "disconnect") && argc == 3)
        disconnect();
    else if (!strcmp(cmd, "waitfor") && argc == 5)
        wait_health(argv[3], atoll(argv[4]));
    else if (!strcmp(cmd, "status") && argc == 5) {
        conn *c = conn_new();
        resp r;
        if (request(c, argv[3], argv[4], NULL, 0, &r)) {
            printf("%d\n", r.status);
            resp_free(&r);
        } else
            printf("none\n");
        conn_free(c);
    } else
        die("bad arguments for %s", cmd);
    return 0;
}

/* pact-styles' results as tables, JSON and an SVG chart (see report.h). */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct row *floor_of(const struct table *t)
{
    for (int i = 0; i < t->nrows; i++)
        if (!strcmp(t->rows[i].name, "libevent") && t->rows[i].ok)
            return &t->rows[i];
    return NULL;
}

/* "0.95x", or "-" without a floor */
static const char *ratio(char *buf, double v, double base)
{
    if (base > 0 && v > 0)
        snprintf(buf, 16, "%.2fx", v / base);
    else
        snprintf(buf, 16, "-");
    return buf;
}

static void print_lines(const char *text, FILE *out)
{
    const char *p = text;
    while (p && *p) {
        size_t n = strcspn(p, "\n");
        fprintf(out, "    %.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
}

static void print_table(const struct table *t, FILE *out)
{
    const struct row *f = floor_of(t);
    fprintf(out, "\n%s\n",
            !strcmp(t->daemon, "echo")
                ? "TCP echo server: 64-byte messages, one round trip at a "
                  "time per connection"
                : "HTTP JSON API: GET /items/:id and POST /items (JSON in, "
                  "JSON out), in turn");
    fprintf(out, "%-10s %16s %9s %16s %17s %12s\n", "style", "requests/s",
            "p50 us", "p99 us", "peak RSS", "lines");
    for (int i = 0; i < t->nrows; i++) {
        const struct row *r = &t->rows[i];
        char a[16], b[16], c[16], d[16], lines[16] = "?";
        if (r->lines > 0)
            snprintf(lines, sizeof lines, "%d", r->lines);
        if (!r->ok) {
            fprintf(out, "%-10s failed: %s\n", r->name, r->error);
            continue;
        }
        fprintf(out, "%-10s %9.0f %6s %9.1f %9.1f %6s %6.1f MiB %6s %5s %6s\n",
                r->name, r->rps, ratio(a, r->rps, f ? f->rps : 0), r->p50_us,
                r->p99_us, ratio(b, r->p99_us, f ? f->p99_us : 0),
                (double)r->rss_kib / 1024,
                ratio(c, (double)r->rss_kib, f ? (double)f->rss_kib : 0), lines,
                ratio(d, r->lines, f ? f->lines : 0));
    }
}

void print_tables(const struct results *r, FILE *out)
{
    fprintf(out,
            "pact-styles: what each style costs on this machine (%d cores)\n"
            "each server in a process of its own pinned to core 0, the load "
            "client on core 1;\n%.1f s per run, %d connections; ratios are "
            "to raw libevent (the floor)\n",
            r->cores, r->duration, r->conns);
    for (int i = 0; i < 2; i++)
        if (r->tables[i].nrows)
            print_table(&r->tables[i], out);
    if (!r->has_blocking)
        return;
    const struct block_row *b0 = &r->block[0];
    fprintf(out,
            "\nthe cost of blocking the loop: %d connections ask for a hash "
            "of about 20 ms\n(%lu rounds), %d others ping; where the hash "
            "runs:\n",
            b0->heavy, r->hash_iters, b0->pingers);
    fprintf(out, "%-24s %12s %12s %10s\n", "hash runs", "ping p50", "ping p99",
            "hashes/s");
    static const char *const where[NMODES] = {
        "inline, on the loop", "pool, its CPU lane", "worker thread"};
    for (int i = 0; i < NMODES; i++) {
        const struct block_row *b = &r->block[i];
        if (!b->ok)
            fprintf(out, "%-24s failed: %s\n", where[i], b->error);
        else
            fprintf(out, "%-24s %9.2f ms %9.2f ms %10.1f\n", where[i],
                    b->p50_us / 1e3, b->p99_us / 1e3, b->hashes_per_s);
    }
    fprintf(out, "\nthe stall detector's report of the inline case "
                 "(pact_loop_watch_stalls, 10 ms):\n");
    print_lines(r->stall && *r->stall ? r->stall : "(no report)", out);
    fprintf(out, "\nthe task dump with a stuck request in it (GET /stuck, "
                 "pact_loop_dump):\n");
    print_lines(r->dump && *r->dump ? r->dump : "(no dump)", out);
}

void print_reading(FILE *out)
{
    fprintf(out, "\nhow to read this: doc/styles.md; each style's code: "
                 "examples/pact-styles/\n");
}

/* ---- JSON --------------------------------------------------------------- */

static json_t *row_json(const struct row *r, const struct row *f)
{
    json_t *o = json_pack("{s:s, s:b}", "style", r->name, "ok", r->ok);
    if (!o)
        return NULL;
    json_object_set_new(o, "lines",
                        r->lines > 0 ? json_integer(r->lines) : json_null());
    if (!r->ok) {
        json_object_set_new(o, "error", json_string(r->error));
        return o;
    }
    json_object_set_new(o, "requests_per_s", json_real(r->rps));
    json_object_set_new(o, "p50_us", json_real(r->p50_us));
    json_object_set_new(o, "p99_us", json_real(r->p99_us));
    json_object_set_new(o, "peak_rss_kib", json_integer(r->rss_kib));
    if (f)
        json_object_set_new(
            o, "vs_libevent",
            json_pack("{s:f, s:f, s:f, s:f}", "requests_per_s", r->rps / f->rps,
                      "p99_us", r->p99_us / f->p99_us, "peak_rss_kib",
                      (double)r->rss_kib / (double)f->rss_kib, "lines",
                      f->lines > 0 ? (double)r->lines / f->lines : 0.0));
    return o;
}

int print_json(const struct results *r, FILE *out)
{
    json_t *root = json_pack("{s:i, s:f, s:i}", "cores", r->cores, "duration_s",
                             r->duration, "connections", r->conns);
    if (!root)
        return -1;
    for (int i = 0; i < 2; i++) {
        const struct table *t = &r->tables[i];
        json_t *rows = json_array();
        for (int k = 0; k < t->nrows; k++)
            json_array_append_new(rows, row_json(&t->rows[k], floor_of(t)));
        json_object_set_new(root, i ? "api" : "echo", rows);
    }
    if (r->has_blocking) {
        json_t *rows = json_array();
        for (int i = 0; i < NMODES; i++) {
            const struct block_row *b = &r->block[i];
            json_t *o = json_pack("{s:s, s:b}", "mode", b->name, "ok", b->ok);
            if (o && b->ok) {
                json_object_set_new(o, "ping_p50_us", json_real(b->p50_us));
                json_object_set_new(o, "ping_p99_us", json_real(b->p99_us));
                json_object_set_new(o, "hashes_per_s",
                                    json_real(b->hashes_per_s));
            } else if (o) {
                json_object_set_new(o, "error", json_string(b->error));
            }
            json_array_append_new(rows, o);
        }
        json_t *blk = json_pack("{s:I, s:o}", "hash_rounds",
                                (json_int_t)r->hash_iters, "modes", rows);
        if (blk) {
            json_object_set_new(blk, "stall_report",
                                r->stall ? json_string(r->stall) : json_null());
            json_object_set_new(blk, "task_dump",
                                r->dump ? json_string(r->dump) : json_null());
        }
        json_object_set_new(root, "blocking", blk);
    }
    int rc = json_dumpf(root, out, JSON_INDENT(2));
    fputc('\n', out);
    json_decref(root);
    return rc;
}

/* ---- SVG ---------------------------------------------------------------- */

#define PANEL_W 480
#define LABEL_W 90
#define BAR_H 22

/* A round top for an axis: 1, 2 or 5 times a power of ten. */
static double nice_max(double v)
{
    if (v <= 0)
        return 1;
    double p = pow(10, floor(log10(v)));
    for (int i = 0; i < 3; i++) {
        double m = (double[]){1, 2, 5}[i] * p;
        if (v <= m)
            return m;
    }
    return 10 * p;
}

/* @p v for a label: whole from 100 up, else three digits */
static const char *num(char *buf, double v)
{
    snprintf(buf, 24, v >= 100 ? "%.0f" : "%.3g", v);
    return buf;
}

/* A horizontal bar chart at (@p x, @p y). @return its height. */
static int bars(FILE *f, int x, int y, const char *title, const char *unit,
                int n, const char *const *names, const double *v,
                const bool *ok)
{
    double max = 0;
    for (int i = 0; i < n; i++)
        if (ok[i] && v[i] > max)
            max = v[i];
    max = nice_max(max);
    char buf[24];
    int w = PANEL_W - LABEL_W - 70, top = y + 28, h = n * (BAR_H + 6);
    fprintf(f, "<text x='%d' y='%d' class='t'>%s</text>\n", x, y + 16, title);
    for (int i = 0; i < n; i++) {
        int by = top + i * (BAR_H + 6);
        fprintf(f, "<text x='%d' y='%d' class='l'>%s</text>\n", x + LABEL_W - 6,
                by + 15, names[i]);
        if (!ok[i]) {
            fprintf(f, "<text x='%d' y='%d'>failed</text>\n", x + LABEL_W + 4,
                    by + 15);
            continue;
        }
        double bw = v[i] / max * w;
        fprintf(f,
                "<rect x='%d' y='%d' width='%.1f' height='%d' class='%s'/>\n"
                "<text x='%.1f' y='%d'>%s</text>\n",
                x + LABEL_W, by, bw, BAR_H,
                !strcmp(names[i], "libevent") ? "floor" : "bar",
                x + LABEL_W + bw + 4, by + 15, num(buf, v[i]));
    }
    int ay = top + h;
    fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' class='axis'/>\n",
            x + LABEL_W, top - 2, x + LABEL_W, ay);
    fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' class='axis'/>\n",
            x + LABEL_W, ay, x + LABEL_W + w, ay);
    for (int k = 0; k <= 4; k++) {
        double tx = x + LABEL_W + w * k / 4.0;
        fprintf(f,
                "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' class='axis'/>\n"
                "<text x='%.1f' y='%d' class='m'>%s</text>\n",
                tx, ay, tx, ay + 4, tx, ay + 16, num(buf, max * k / 4));
    }
    fprintf(f, "<text x='%d' y='%d' class='m'>%s</text>\n", x + LABEL_W + w / 2,
            ay + 30, unit);
    return ay + 40 - y;
}

static int table_bars(FILE *f, int x, int y, const struct table *t, int what)
{
    static const char *const titles[][3] = {
        {"echo: throughput", "echo: p99 latency", "echo: lines of code"},
        {"HTTP API: throughput", "HTTP API: p99 latency",
         "HTTP API: lines of code"}};
    static const char *const units[] = {"requests per second (longer is "
                                        "better)",
                                        "microseconds (shorter is better)",
                                        "non-blank, non-comment lines"};
    const char *names[NSTYLES];
    double v[NSTYLES];
    bool ok[NSTYLES];
    for (int i = 0; i < t->nrows; i++) {
        const struct row *r = &t->rows[i];
        names[i] = r->name;
        v[i] = what == 0 ? r->rps : what == 1 ? r->p99_us : r->lines;
        ok[i] = what == 2 ? r->lines > 0 : r->ok;
    }
    int d = !strcmp(t->daemon, "api");
    return bars(f, x, y, titles[d][what], units[what], t->nrows, names, v, ok);
}

int write_svg(const struct results *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int n = 0;
    for (int i = 0; i < 2; i++)
        n = r->tables[i].nrows > n ? r->tables[i].nrows : n;
    int panel_h = 28 + n * (BAR_H + 6) + 44, rows = 3 + r->has_blocking;
    int width = 2 * PANEL_W + 40, height = 60 + rows * panel_h;
    fprintf(f,
            "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "font-family='sans-serif' font-size='12'>\n"
            "<style>.t{font-weight:bold;font-size:14px}"
            ".l{text-anchor:end}.m{text-anchor:middle;fill:#555}"
            ".bar{fill:#4a7ab8}.floor{fill:#999}"
            ".axis{stroke:#333;stroke-width:1}</style>\n"
            "<rect width='100%%' height='100%%' fill='white'/>\n"
            "<text x='20' y='26' class='t'>pact-styles: what each style "
            "costs (%d cores, %.1f s per run, %d connections; grey: raw "
            "libevent)</text>\n",
            width, height, r->cores, r->duration, r->conns);
    int y = 44;
    for (int what = 0; what < 3; what++, y += panel_h)
        for (int i = 0; i < 2; i++)
            table_bars(f, 20 + i * (PANEL_W + 20), y, &r->tables[i], what);
    if (r->has_blocking) {
        static const char *const names[NMODES] = {"inline", "pool", "worker"};
        double p99[NMODES], hps[NMODES];
        bool ok[NMODES];
        for (int i = 0; i < NMODES; i++) {
            p99[i] = r->block[i].p99_us / 1e3;
            hps[i] = r->block[i].hashes_per_s;
            ok[i] = r->block[i].ok;
        }
        bars(f, 20, y, "blocking the loop: ping p99 while hashing",
             "milliseconds (shorter is better)", NMODES, names, p99, ok);
        bars(f, 40 + PANEL_W, y, "blocking the loop: hashes done",
             "hashes per second", NMODES, names, hps, ok);
    }
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : -1;
}

bool results_failed(const struct results *r)
{
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < r->tables[i].nrows; k++)
            if (!r->tables[i].rows[k].ok)
                return true;
    for (int i = 0; r->has_blocking && i < NMODES; i++)
        if (!r->block[i].ok)
            return true;
    return false;
}

void results_free(struct results *r)
{
    free(r->stall);
    free(r->dump);
    r->stall = r->dump = NULL;
}

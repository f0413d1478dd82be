/* pact-styles' results and their forms: the tables on stdout, JSON, and
 * the SVG chart (report.c). */
#ifndef PACT_STYLES_REPORT_H
#define PACT_STYLES_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "styles.h"

/* One style under one daemon's load */
struct row {
    char name[16];
    bool ok;
    double rps, p50_us, p99_us;
    long rss_kib;
    int lines; /* 0: not known */
    char error[256];
};

struct table {
    char daemon[8]; /* "echo", "api" */
    struct row rows[NSTYLES];
    int nrows;
};

enum { NMODES = 3 }; /* inline, pool, worker */

/* One place the CPU-heavy work ran */
struct block_row {
    char name[16];
    bool ok;
    int heavy, pingers; /* connections asking for hashes, and pinging */
    double p50_us, p99_us, hashes_per_s;
    char error[256];
};

struct results {
    double duration;
    int conns, cores;
    struct table tables[2];
    bool has_blocking;
    unsigned long hash_iters;
    struct block_row block[NMODES];
    char *stall; /* the stall detector's report of the inline case */
    char *dump;  /* the task dump with a stuck request */
};

void print_tables(const struct results *r, FILE *out);
/* Where the tables are explained. */
void print_reading(FILE *out);
/* @return 0, -1 (no memory). */
int print_json(const struct results *r, FILE *out);
/* @return 0, -1 with errno. */
int write_svg(const struct results *r, const char *path);
/* @return whether some run failed. */
bool results_failed(const struct results *r);
void results_free(struct results *r);

#endif

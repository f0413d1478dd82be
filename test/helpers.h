/* Shared test scaffolding: a loop per test and an ordering trace. */
#ifndef PACT_TEST_HELPERS_H
#define PACT_TEST_HELPERS_H

#include <check.h>
#include <pact.h>

/* The fixture's loop: made in t_setup, and t_teardown asserts that
 * pact_loop_free succeeds (every handle closed). */
extern pact_loop *t_loop;
void t_setup(void);
void t_teardown(void);

/* An append-only trace of what ran, one line per entry. */
void trace_reset(void);
void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* @return the trace so far, lines joined with '\n' (each line ends in '\n'). */
const char *trace_text(void);

/* Read a whole file under $PACT_FIXTURES (malloc'd; NULL if missing). */
char *t_read_fixture(const char *relpath);

#endif

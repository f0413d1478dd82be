/* Naming a code address for people: its function, and its source file and
 * line, for the stall reports (stall.c) and the "started at" of errors
 * (error.c); and recording that call site: where the program called the
 * public function that started an operation. Layer 1.
 *
 * With elfutils' libdw (configure found it: HAVE_LIBDW) the answer comes from
 * the debug information, static functions included; without it, dladdr
 * gives the nearest exported symbol and the object file only. Never call it
 * from a signal handler: it takes a lock, allocates and reads files. Safe
 * from any thread; answers are cached per address. */
#ifndef PACT_SYMBOL_H
#define PACT_SYMBOL_H

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pact/error.h"

/* The program's call of the public function this is written in: its return
 * address (a GNU builtin, found by configure), or NULL without it. Write it
 * in the public entry point itself, never in a helper it calls (whose
 * return address is inside pact). */
#ifdef HAVE_BUILTIN_RETURN_ADDRESS
#define PACT__CALLER() ((const void *)__builtin_return_address(0))
#else
#define PACT__CALLER() ((const void *)0)
#endif

/* Record on @p err that the operation it fails was started by the call at
 * @p site (PACT__CALLER() of the entry point), for pact_error_print's
 * "started at". Only an error nobody else holds yet is marked (one
 * reference: the caller's), and only once: errors are immutable once
 * shared. Call it only with an error that is this operation's own: one
 * error handed in turn to several callbacks (a port's end of input, a
 * worker's exit error) would carry the first one's site. NULL-safe.
 * @return @p err. */
pact_error *pact__error_site(pact_error *err, const void *site);

/* What is known of an address; empty strings and 0 for what is not. */
struct pact__codeloc {
    char fn[128];  /* the function (its symbol), "" if unknown */
    char src[256]; /* its source file (libdw only), "" if unknown */
    int line;      /* and the line, 0 if unknown */
    char obj[256]; /* the executable or library holding it, "" if unknown */
    uintptr_t off; /* the address in @c obj, as addr2line -e obj takes it */
    bool fn_exact; /* @c fn starts at the address (a function pointer) */
};

/* Name @p addr: a function's address (@p is_return false), or a return
 * address (true: the call before it is what is named, as a stack trace
 * does). @return whether anything was found. */
bool pact__symbolize(const void *addr, bool is_return,
                     struct pact__codeloc *out);

/* Keep the debug information read by pact__symbolize between calls (@p on
 * true) until the matching call with false: for a batch of addresses (a
 * stack). Without it each lookup that misses the cache reads it again. */
void pact__symbolize_hold(bool on);

#endif

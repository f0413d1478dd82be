/* Naming a code address for people: its function, and its source file and
 * line, for the stall reports (stall.c) and the "started at" of errors
 * (error.c). Layer 1, needs nothing of pact's.
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

/* What is known of an address; empty strings and 0 for what is not. */
struct pact__where {
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
bool pact__symbolize(const void *addr, bool is_return, struct pact__where *out);

/* Whether pact__symbolize can give source lines (built with libdw). */
bool pact__symbolize_has_lines(void);

#endif

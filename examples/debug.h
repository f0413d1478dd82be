/* Every example's debug mode: `--debug` on the command line turns the
 * loop-stall detector on, reporting any step that keeps the loop thread busy
 * for 100 ms or more, with that thread's stack (doc/stall.md). */
#ifndef PACT_EXAMPLE_DEBUG_H
#define PACT_EXAMPLE_DEBUG_H

#include <string.h>

#include <pact.h>

/* @return 0, or the error of turning the detector on. */
static inline int example_debug(pact_loop *loop, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--debug") == 0) {
            pact_stall_opts debug = {.threshold_ms = 100, .stack = true};
            return pact_loop_watch_stalls_opts(loop, &debug);
        }
    return 0;
}

/* @return the first argument that is not --debug, or NULL. */
static inline const char *example_arg(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--debug") != 0)
            return argv[i];
    return NULL;
}

#endif

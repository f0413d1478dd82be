/* Pinning to a core, for the examples that measure (pact-styles): a
 * server and its load on cores of their own do not take turns on one. */
#ifndef PACT_EXAMPLE_COMMON_PIN_H
#define PACT_EXAMPLE_COMMON_PIN_H

/* Pin the calling thread to core @p cpu (modulo the cores online), or let
 * it run on every core when @p cpu is negative or there is only one. */
void pin_to_core(int cpu);

#endif

/* Deep copy and release of jansson trees without recursion: jansson's own
 * json_deep_copy and json_decref recurse once per level, so a tree a
 * hundred thousand levels deep overflows a thread's stack. Private to the
 * library (value.c, port.c); the work lists live on the heap. */
#ifndef PACT_JSON_DEEP_H
#define PACT_JSON_DEEP_H

#if defined(PACT__LAYER) && PACT__LAYER < 2
#error "json_deep.h is layer 2 (promise): a lower layer must not include it"
#endif

#include <jansson.h>

/* A deep copy of @p src (a new reference), or NULL if it holds a cycle
 * (as json_deep_copy) or memory ran out. Depth costs heap, not stack. */
json_t *pact__json_copy(json_t *src);

/* json_decref(@p j) (NULL-safe) that frees a tree of any depth without
 * recursing: subtrees still shared elsewhere are only decref'd. */
void pact__json_release(json_t *j);

#endif

/* Layer 4 (scope): task groups and cancel scopes. Its files include this,
 * which brings the layers below. */
#ifndef PACT_SCOPE_INTERNAL_H
#define PACT_SCOPE_INTERNAL_H

#if defined(PACT__LAYER) && PACT__LAYER < 4
#error "scope_internal.h is layer 4 (scope): a lower layer must not include it"
#endif

#include "task_internal.h"

#include "pact/group.h"
#include "pact/scope.h"
#include "promise_internal.h"

#endif

/** @file
 * The version of the headers, and of the library actually linked. */
#ifndef PACT_VERSION_H
#define PACT_VERSION_H

#include "pact/common.h"

/** The major version of these headers. */
#define PACT_VERSION_MAJOR 0
/** The minor version of these headers. */
#define PACT_VERSION_MINOR 1
/** The patch level of these headers. */
#define PACT_VERSION_PATCH 0
/** 0xMMmmpp: compare with >= to require a version at compile time. */
#define PACT_VERSION_HEX                                                       \
    ((PACT_VERSION_MAJOR << 16) | (PACT_VERSION_MINOR << 8) |                  \
     PACT_VERSION_PATCH)
/** "MAJOR.MINOR.PATCH" of these headers. */
#define PACT_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

/** @return PACT_VERSION_HEX of the library that is linked (may differ from
 * the headers). */
PACT_API unsigned pact_version(void);
/** @return the version string of the linked library; static storage. */
PACT_API const char *pact_version_string(void);

#ifdef __cplusplus
}
#endif
#endif

/** @file
 * pact: a Node-style event loop on libevent. Include this for everything. */
#ifndef PACT_H
#define PACT_H

#include "pact/abort.h"
#include "pact/async.h"
#include "pact/common.h"
#include "pact/errno.h"
#include "pact/error.h"
#include "pact/fs.h"
#include "pact/loop.h"
#include "pact/pool.h"
#include "pact/promise.h"
#include "pact/stall.h"
#include "pact/task.h"
#include "pact/value.h"
#include "pact/version.h"
#include "pact/worker.h"

#endif

/** @file
 * pact: a Node-style event loop on libevent. Include this for everything. */

/** @mainpage pact reference
 * pact is a Node-style event loop for C11 on libevent, with error-first
 * callbacks, promises, await (stackful tasks and stackless async functions),
 * an offload pool, file operations and message-passing workers. This
 * reference is generated from the public headers, one page per header (see
 * Files): each function says its errors, who owns what, and what
 * cancellation (abort tokens, pact_loop_close_all) does. The guide is doc/ in
 * the source tree (doc/README.md). */
#ifndef PACT_H
#define PACT_H

#include "pact/abort.h"
#include "pact/async.h"
#include "pact/chan.h"
#include "pact/cluster.h"
#include "pact/common.h"
#include "pact/dump.h"
#include "pact/errno.h"
#include "pact/error.h"
#include "pact/fetch.h"
#include "pact/frame.h"
#include "pact/fs.h"
#include "pact/group.h"
#include "pact/http.h"
#include "pact/loop.h"
#include "pact/op.h"
#include "pact/pool.h"
#include "pact/promise.h"
#include "pact/scope.h"
#include "pact/stall.h"
#include "pact/stream.h"
#include "pact/task.h"
#include "pact/tcp.h"
#include "pact/tls.h"
#include "pact/value.h"
#include "pact/version.h"
#include "pact/worker.h"

#endif

/** @file
 * Layer 5: several processes serving one port, as Node's cluster. A
 * supervisor forks N workers; each runs the program's main with a loop of
 * its own and listens on the same port with SO_REUSEPORT
 * (pact_tcp_listen_opts.reuseport), so the kernel spreads the connections
 * among them. The supervisor restarts a worker that dies abnormally (a
 * signal, a non-zero status) after a back-off, and forwards SIGTERM and
 * SIGINT to the workers for their graceful shutdown
 * (pact_tcp_server_shutdown_on_signals). doc/daemon.md is the guide. */
#ifndef PACT_CLUSTER_H
#define PACT_CLUSTER_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error "pact/cluster.h is layer 5 (services): a lower layer must not include it"
#endif

#include <stdbool.h>
#include <stdint.h>

#include "pact/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Options of pact_cluster_run; zero-initialise. */
typedef struct pact_cluster_opts {
    /** How many workers (0: one per online CPU). */
    unsigned workers;
    /** The first restart's delay (0: 100 ms); it doubles each time the same
     *  worker dies again within restart_max_ms of its start, up to
     *  restart_max_ms (0: 10 s), and starts over after a longer life. */
    uint64_t restart_ms;
    /** The longest restart delay (0: 10 s). */
    uint64_t restart_max_ms;
    /** After SIGTERM or SIGINT is forwarded, the workers still running
     *  after this long are killed with SIGKILL (0: 30 s). */
    uint64_t stop_ms;
    /** Say nothing on stderr (by default each death and restart is
     *  logged on one line). */
    bool quiet;
} pact_cluster_opts;

/** A worker's main: @p index (0 to workers - 1, kept across restarts) and
 *  the @p arg given to pact_cluster_run. It makes its own loop, listens with
 *  reuseport, and returns the worker's exit status (0: done, not
 *  restarted; other values: restarted). */
typedef int (*pact_cluster_main)(unsigned index, void *arg);

/**
 * Supervise @p opts->workers processes, each running @p worker(index, @p arg)
 * in a child of fork(), until they are all done: call it before any loop or
 * thread is made (a fork copies only the calling thread). The supervisor
 * blocks SIGCHLD, SIGTERM and SIGINT and waits for them; a worker that
 * exits with a non-zero status or is killed is started again with the same
 * index after the back-off; one that exits with 0 is not. On the first
 * SIGTERM or SIGINT the supervisor stops restarting and sends SIGTERM to
 * every worker (a second signal sends it again), then waits up to
 * opts->stop_ms before SIGKILL. Workers are sent SIGTERM if the
 * supervisor dies (Linux).
 * @return 0 when every worker exited with 0 (or, during the stop, was ended
 *   by the SIGTERM it was sent); 1 when one failed during the stop or had
 *   to be killed; PACT_EINVAL (NULL @p worker), PACT_ENOMEM, or the error of
 *   the first fork (then no worker runs).
 */
PACT_API int pact_cluster_run(const pact_cluster_opts *opts,
                              pact_cluster_main worker, void *arg);

#ifdef __cplusplus
}
#endif
#endif

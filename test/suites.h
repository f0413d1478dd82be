/* Every Check suite of the runner; one per subsystem (test/test_<name>.c). */
#ifndef PACT_TEST_SUITES_H
#define PACT_TEST_SUITES_H

#include <check.h>

Suite *suite_error(void);
Suite *suite_loop(void);
Suite *suite_foreign(void);
Suite *suite_timer(void);
Suite *suite_tick(void);
Suite *suite_io(void);
Suite *suite_post(void);
Suite *suite_abort(void);
Suite *suite_uncaught(void);
Suite *suite_order(void);
Suite *suite_aplus(void);
Suite *suite_promise(void);
Suite *suite_combine(void);
Suite *suite_chan(void);
Suite *suite_unhandled(void);
Suite *suite_porder(void);
Suite *suite_task(void);
Suite *suite_async(void);
Suite *suite_aorder(void);
Suite *suite_pool(void);
Suite *suite_fs(void);
Suite *suite_worker(void);
Suite *suite_stall(void);
Suite *suite_op(void);
Suite *suite_group(void);
Suite *suite_tcp(void);
Suite *suite_tls(void);
Suite *suite_frame(void);
Suite *suite_daemon(void);
Suite *suite_http(void);
Suite *suite_http_stream(void);
Suite *suite_fetch(void);

/* Every suite's name; clang-format does not settle on one layout for it. */
/* clang-format off */
#define PACT_TEST_SUITES(X)                                                    \
    X(error) X(loop) X(foreign) X(timer) X(tick) X(io) X(post) X(abort)   \
    X(uncaught) X(order) X(aplus) X(promise) X(combine) X(chan) X(unhandled)      \
    X(porder)                                                              \
    X(task) X(async) X(aorder) X(pool) X(fs) X(worker) X(stall) X(op) X(group) X(tcp) X(tls) \
    X(frame) X(daemon) X(http) X(http_stream) X(fetch)
/* clang-format on */

#endif

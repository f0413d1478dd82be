/* The echo examples' shared part: how each server is started (a port on
 * the command line: serve it until SIGTERM or ^C, then shut down
 * gracefully; none: a demonstration on a port
 * the system picks, driven by the client below), and that client, written
 * with callbacks: it sends three lines one at a time, prints each echo,
 * ends its side and prints what follows. Each server prints the same
 * transcript with it (test/check-styles.sh). */
#ifndef PACT_EXAMPLE_ECHO_CLIENT_H
#define PACT_EXAMPLE_ECHO_CLIENT_H

#include <pact.h>

/* Listen on 127.0.0.1 and the port in argv (none: 0, the demonstration),
 * with @p accept; in the demonstration, start the client, which closes the
 * server when it is done. @return the loop's run's result, 0 on success. */
int echo_main(int argc, char **argv, pact_tcp_accept_cb accept, void *ud);

/* The loop echo_main made (for the servers that spawn tasks). */
extern pact_loop *echo_loop;

#endif

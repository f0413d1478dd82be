/* Pinning to a core (see pin.h). */
#include "pin.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

void pin_to_core(int cpu)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    for (long i = 0; i < n && i < CPU_SETSIZE; i++)
        if (cpu < 0 || n < 2 || i == cpu % n)
            CPU_SET(i, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

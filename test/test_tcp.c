/* placeholder */
#include "helpers.h"
#include "suites.h"
Suite *suite_tcp(void)
{
    Suite *s = suite_create("tcp");
    return s;
}

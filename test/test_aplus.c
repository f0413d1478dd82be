/* Placeholder: being written (issue 3). */
#include "suites.h"

Suite *suite_aplus(void)
{
    return suite_create("aplus");
}

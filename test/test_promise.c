/* Placeholder: being written (issue 3). */
#include "suites.h"

Suite *suite_promise(void)
{
    return suite_create("promise");
}

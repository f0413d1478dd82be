/* Placeholder: being written (issue 3). */
#include "suites.h"

Suite *suite_unhandled(void)
{
    return suite_create("unhandled");
}

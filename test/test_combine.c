/* Placeholder: being written (issue 3). */
#include "suites.h"

Suite *suite_combine(void)
{
    return suite_create("combine");
}

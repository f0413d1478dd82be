/* Placeholder: being written (issue 3). */
#include "suites.h"

Suite *suite_porder(void)
{
    return suite_create("porder");
}

/* Placeholder: being written. */
#include "helpers.h"
#include "suites.h"

Suite *suite_task(void)
{
    return suite_create("task");
}

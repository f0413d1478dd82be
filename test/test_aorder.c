/* Placeholder: being written. */
#include "helpers.h"
#include "suites.h"

Suite *suite_aorder(void)
{
    return suite_create("aorder");
}

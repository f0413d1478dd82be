/* Placeholder: being written. */
#include "helpers.h"
#include "suites.h"

Suite *suite_async(void)
{
    return suite_create("async");
}

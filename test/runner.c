/* The one test runner. `runner NAME` or `runner path/NAME.suite` runs one
 * suite (that is how `make check` calls it, once per test/NAME.suite);
 * `runner` alone runs them all. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"

struct entry {
    const char *name;
    Suite *(*make)(void);
};

static const struct entry suites[] = {
#define PACT_TEST_ENTRY_(n) {#n, suite_##n},
    PACT_TEST_SUITES(PACT_TEST_ENTRY_)
#undef PACT_TEST_ENTRY_
};

static void suite_name(const char *arg, char *buf, size_t len)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", arg);
    snprintf(buf, len, "%s", basename(tmp));
    char *dot = strstr(buf, ".suite");
    if (dot)
        *dot = '\0';
}

int main(int argc, char **argv)
{
    SRunner *sr = NULL;
    size_t n = sizeof suites / sizeof suites[0];
    if (argc > 1) {
        char name[256];
        suite_name(argv[1], name, sizeof name);
        for (size_t i = 0; i < n; i++)
            if (strcmp(suites[i].name, name) == 0)
                sr = srunner_create(suites[i].make());
        if (!sr) {
            fprintf(stderr, "runner: no suite named '%s'\n", name);
            return 2;
        }
    } else {
        sr = srunner_create(suites[0].make());
        for (size_t i = 1; i < n; i++)
            srunner_add_suite(sr, suites[i].make());
    }
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* config: what both styles print, so that their output is the same. */
#ifndef CONFIG_SHOW_H
#define CONFIG_SHOW_H

#include <jansson.h>
#include <stdio.h>

#include <pact.h>

/* A string member, or "-" when it is missing. */
static inline const char *str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "-";
}

/* The configuration read from @p path, and whether local overrides were
 * applied (@p local_err NULL) or there were none (the read's error). */
static inline void show_config(const char *path, json_t *cfg,
                               const pact_error *local_err)
{
    json_t *listen = json_object_get(cfg, "listen");
    printf("config: %s\n", path);
    printf("  name: %s\n", str(cfg, "name"));
    printf("  listen: %s:%lld\n", str(listen, "host"),
           (long long)json_integer_value(json_object_get(listen, "port")));
    printf("  workers: %lld\n",
           (long long)json_integer_value(json_object_get(cfg, "workers")));
    printf("  log level: %s\n", str(json_object_get(cfg, "log"), "level"));
    if (local_err)
        printf("local overrides: none (%s)\n",
               pact_err_name(pact_error_code(local_err)));
    else
        printf("local overrides: applied\n");
}

#endif

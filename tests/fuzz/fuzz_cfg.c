/*
 * fuzz_cfg.c - the configuration parser on arbitrary text: never crashes,
 * and a configuration it accepts prints (cfg_print) and parses again to the
 * same normalised text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "obs_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *
normalised(const cfg_t *c, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (f == NULL)
        return NULL;
    cfg_print(c, f);
    fclose(f);
    return text;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cfg_t c;
    char err[512];
    cfg_init(&c);
    if (cfg_parse(&c, (const char *)data, size, "fuzz", err, sizeof(err)) ==
        OBS_OK) {
        size_t len = 0, len2 = 0;
        char *once = normalised(&c, &len);
        cfg_t again;
        cfg_init(&again);
        if (once &&
            cfg_parse(&again, once, len, "again", err, sizeof(err)) != OBS_OK)
            abort();
        char *twice = once ? normalised(&again, &len2) : NULL;
        if (once && twice && (len != len2 || memcmp(once, twice, len) != 0))
            abort();
        free(once);
        free(twice);
        cfg_fini(&again);
    }
    cfg_fini(&c);
    return 0;
}

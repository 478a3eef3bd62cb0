/*
 * fuzz_obs_key.c - libFuzzer target for store-key decoding: obs_key_decode
 * on the raw bytes must never read out of bounds, and whenever it accepts
 * a key, obs_key_encode of the result must give back identical bytes (the
 * decoder accepts canonical keys only). The same bytes, as text, go through
 * obs_pattern_parse and obs_pattern_match.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "obs_err.h"
#include "obs_key.h"

/* Not assert(): it must fire in release builds too. */
#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_key(const uint8_t *data, size_t size)
{
    obs_t o;
    obs_init(&o);
    if (obs_key_decode(data, size, &o) == OBS_OK) {
        uint8_t again[OBS_KEY_MAX];
        int n = obs_key_encode(&o, again, sizeof(again));
        CHECK(n >= 0 && (size_t)n == size);
        CHECK(memcmp(again, data, size) == 0);
        obs_pattern_t p;
        if (obs_pattern_parse("", &p) == OBS_OK)
            CHECK(obs_pattern_match(&p, (const char *const *)o.dims, o.n_dims));
        obs_pattern_fini(&p);
    }
    obs_fini(&o);
}

static void
check_pattern(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return;
    memcpy(text, data, size);
    text[size] = '\0';
    obs_pattern_t p;
    if (obs_pattern_parse(text, &p) == OBS_OK) {
        static const char *const dims[] = {"A", "COL", "HOM", "_T"};
        size_t fixed = obs_pattern_fixed_prefix(&p);
        CHECK(fixed <= p.n);
        (void)obs_pattern_match(&p, dims, 4);
    }
    obs_pattern_fini(&p);
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    check_key(data, size);
    check_pattern(data, size);
    return 0;
}

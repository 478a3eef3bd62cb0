/*
 * sha256.h - SHA-256 (FIPS 180-4), used for content hashes and digests.
 * Plain data, no allocation.
 */
#ifndef OBS_SHA256_H
#define OBS_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t used;
} sha256_t;

void sha256_init(sha256_t *ctx);
void sha256_update(sha256_t *ctx, const void *data, size_t len);
void sha256_final(sha256_t *ctx, uint8_t out[32]);
/** Chooses the x86 SHA extensions (when on and the CPU has them) or the
 * portable code; returns whether the extensions are used. By default they
 * are, where present. For tests and benchmarks: not thread-safe. */
bool sha256_use_hw(bool on);
/** One-shot convenience. */
void sha256(const void *data, size_t len, uint8_t out[32]);

#endif

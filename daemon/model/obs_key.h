/*
 * obs_key.h - canonical store keys for observations, and series-key patterns.
 *
 * Key layout (bytes, all fields in order):
 *   dataflow text          "OID:DF_VIOLENCE(1.0)"
 *   0x00
 *   n_dims                 one byte
 *   dim code, 0x00         n_dims times, in DSD order
 *   period sort key        8 bytes (period_sort_key)
 *   time period text       as received, to the end of the key
 * Codes never contain 0x00, so byte order = dataflow, then dimensions in DSD
 * order (a shorter code before its extensions), then time. A prefix of
 * dataflow + leading dimensions selects "all of COL's drug-use series".
 * Pure: no allocation except obs_key_decode's strings, owned by the obs_t.
 */
#ifndef OBS_KEY_H
#define OBS_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "obs.h"

#define OBS_KEY_MAX 511 /* LMDB's default maximum key size */

/** Encodes the identity of obs. The period text must parse (period_parse
 * with no year bounds). Returns the length, or OBS_EINVAL (bad period,
 * a code containing 0x00 or '.') or OBS_ETOOBIG (longer than cap or
 * OBS_KEY_MAX). */
int obs_key_encode(const obs_t *obs, uint8_t *buf, size_t cap);

/** obs_key_encode of an identity given as counted strings (a view into
 * received bytes): the same key and errors, also OBS_EINVAL for a string
 * holding 0x00. */
int obs_key_encode_id(const obs_id_view_t *id, uint8_t *buf, size_t cap);

/** Encodes the prefix shared by every key of dataflow whose first n_dims
 * dimensions are dims (n_dims may be 0). Returns the length or OBS_ETOOBIG.
 * total_dims is the DSD's number of dimensions. */
int obs_key_prefix(const char *dataflow, size_t total_dims,
                   const char *const *dims, size_t n_dims, uint8_t *buf,
                   size_t cap);

/** Decodes a key into obs's identity (dataflow, dims, time_period); other
 * fields untouched. OBS_EINVAL for malformed keys, OBS_ENOMEM. */
int obs_key_decode(const uint8_t *key, size_t len, obs_t *obs);

/** A parsed series-key pattern "A.COL.." : n positions, empty = wildcard.
 * Alternatives "COL+MEX" are allowed in a position (SDMX REST). */
typedef struct {
    size_t n;
    char *pos[OBS_MAX_DIMS]; /* owned; NULL = wildcard */
} obs_pattern_t;

/** Parses "A.COL..". Empty text = match everything (n = 0). OBS_EINVAL if more
 * than OBS_MAX_DIMS positions. */
int obs_pattern_parse(const char *text, obs_pattern_t *out);
void obs_pattern_fini(obs_pattern_t *p);
/** True when dims match the pattern. A pattern with n = 0 matches all; a
 * pattern whose n differs from n_dims matches nothing. */
bool obs_pattern_match(const obs_pattern_t *p, const char *const *dims,
                       size_t n_dims);
/** Number of leading positions that are single codes (usable as a prefix). */
size_t obs_pattern_fixed_prefix(const obs_pattern_t *p);

#endif

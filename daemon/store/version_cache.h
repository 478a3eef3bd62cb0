/*
 * version_cache.h - the versions of the newest hub log entries, by hub_seq.
 * The hub decodes every change it accepts; applying the log to its state a
 * moment later needs each entry's version again, and reading it back from
 * the record was a tenth of the hub's work. The cache keeps the last
 * `slots` versions accepted (a ring indexed by hub_seq); an entry that fell
 * out, or was never put (a local write at the hub, a restart), is simply
 * not found and the caller decodes it.
 *
 * Ownership: a version_cache_t owns its slots (version_cache_fini frees
 * them); version_cache_find's pointer is valid until the next put.
 * Errors: version_cache_init returns OBS_ENOMEM; nothing else fails. No I/O,
 * not thread-safe (the hub's loop thread). Tested on its own
 * (test_version_cache).
 */
#ifndef VERSION_CACHE_H
#define VERSION_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "obs.h"

typedef struct {
    obs_version_t *slots; /* owned; slot i holds a version whose hub_seq
                             is i modulo n, or hub_seq 0 (empty) */
    size_t n;             /* a power of two */
} version_cache_t;

/** An empty cache of slots versions (rounded up to a power of two, at
 * least 1). OBS_ENOMEM (the cache is then empty and finds nothing). */
int version_cache_init(version_cache_t *c, size_t slots);
/** Frees the slots. NULL-safe; the cache finds nothing afterwards. */
void version_cache_fini(version_cache_t *c);
/** Remembers v under v->hub_seq (not 0), replacing whatever had its slot. */
void version_cache_put(version_cache_t *c, const obs_version_t *v);
/** Forgets the versions of hub_seqs first..last (a transaction that
 * assigned them did not commit: the seqs go to other changes). */
void version_cache_forget(version_cache_t *c, uint64_t first, uint64_t last);
/** The version put last under hub_seq, or NULL when its slot holds another
 * (or none). */
const obs_version_t *version_cache_find(const version_cache_t *c,
                                        uint64_t hub_seq);

#endif

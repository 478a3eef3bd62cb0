/*
 * version.h - the winner rule: which of two versions of one observation is
 * the current one. Every daemon applies the same rule to the same versions,
 * in whatever order they arrive, so every store ends with the same current
 * version of every key: a change that loses is stored in history and loses
 * again wherever it is applied.
 *
 * The rule, on (hlc, origin) only:
 *   1. the greater HLC wins (compared as unsigned 64-bit integers, so the
 *      later wall-clock millisecond, then the greater logical counter);
 *   2. equal HLCs: the greater origin node id wins, compared byte by byte
 *      as unsigned chars (strcmp order: "B" < "a", "a" < "ab");
 *   3. equal HLC and origin: the same version (0). Nothing else counts:
 *      origin_seq, hub_seq, provider, base, action, content and the
 *      tombstone flag are ignored, so a tombstone wins or loses exactly as
 *      a value with its stamp would.
 * The store's history keys sort the same way (be64 hlc | origin | 0x00),
 * so a key's versions lie in its history in this order.
 *
 * Pure: no allocation, no I/O, no state; safe from any thread. Called by the
 * store (obsdb: replicated puts, history walks, as-of scans, outbox
 * rewrites); the replication code relies on it through the store.
 */
#ifndef VERSION_H
#define VERSION_H

#include "obs.h"

/** Compares a and b by the winner rule above: <0 when b wins, >0 when a
 * wins, 0 when they are the same version (same hlc and origin). Both must
 * be non-NULL; each origin is read up to its NUL or OBS_ID_MAX + 1 bytes.
 * Never fails. */
int version_cmp(const obs_version_t *a, const obs_version_t *b);

#endif

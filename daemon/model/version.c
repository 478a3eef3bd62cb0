/*
 * version.c - the winner rule between two versions of one observation
 * (version.h): the greater (hlc, origin) wins. It is the rule only, not the
 * writes it decides: the store (obsdb_obs.c, obsdb_scan.c, obsdb_outbox.c)
 * applies it when it puts, walks or rewrites versions, and the replication
 * code relies on it through the store.
 * Pure, no I/O.
 */
#include "version.h"

#include <string.h>

int
version_cmp(const obs_version_t *a, const obs_version_t *b)
{
    if (a->hlc != b->hlc)
        return a->hlc < b->hlc ? -1 : 1;
    /* strncmp compares as unsigned char; the bound keeps an origin that
     * lost its NUL inside its own array */
    int c = strncmp(a->origin, b->origin, sizeof(a->origin));
    return (c > 0) - (c < 0);
}

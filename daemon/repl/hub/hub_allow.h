/*
 * hub_allow.h - the hub's allow-list: the nodes it lets in, one public
 * certificate per key in a directory (curve_allow_dir). Each certificate
 * names the node_id the key speaks for and the provider it writes as
 * (default: the node_id). One node may have several keys (a rotation in
 * progress); one key belongs to one node.
 *
 * Loading is all or nothing: a directory with one bad file is refused with
 * "FILE: what", so a typo never locks a node out silently (at a reload the
 * hub keeps the list it had). Files whose name starts with '.' or ends in
 * '~' are skipped; a `_secret` file is an error (it does not belong here).
 * Ownership: hub_allow_t owns its entries; hub_allow_free releases it.
 */
#ifndef HUB_ALLOW_H
#define HUB_ALLOW_H

#include <stddef.h>
#include <stdint.h>

#include "curve_cert.h"

#define HUB_ALLOW_MAX 4096 /* keys in one allow-list */

typedef struct {
    char key[CURVE_KEY_TXT];
    char node_id[OBS_ID_MAX + 1];
    char provider[OBS_ID_MAX + 1];
    char file[256]; /* its file's name in the directory */
} allow_entry_t;

typedef struct {
    allow_entry_t *entries; /* sorted by key */
    size_t n;
    uint64_t signature; /* of the directory's listing when it was read */
} hub_allow_t;

/** Reads every certificate in dir into a new list. OBS_OK; OBS_ESYS (the
 * directory cannot be read), OBS_EINVAL (a bad or duplicated certificate),
 * OBS_ETOOBIG (more than HUB_ALLOW_MAX), OBS_ENOMEM; err names the file. */
int hub_allow_load(const char *dir, hub_allow_t **out, char *err, size_t cap);

/** Frees *allowp and sets it to NULL (NULL is fine). */
void hub_allow_free(hub_allow_t **allowp);

/** The entry of the Z85 public key, or NULL when it is not allowed. */
const allow_entry_t *hub_allow_find(const hub_allow_t *allow, const char *key);

/** A cheap fingerprint of dir's listing (names, sizes, mtimes, inodes): it
 * differs from allow->signature when a file was added, removed or edited.
 * 0 when the directory cannot be read. */
uint64_t hub_allow_dir_signature(const char *dir);

#endif

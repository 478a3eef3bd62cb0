/*
 * curve_cert.h - CURVE certificates in ZeroMQ's format (the ZPL files that
 * CZMQ's zcert writes and `obsync keygen` makes): a public file holds
 * curve/public-key and metadata; its `_secret` twin adds curve/secret-key.
 * obsync's metadata: node_id and provider (the hub's allow-list reads them).
 *
 * The text is parsed by CZMQ's zconfig; this module checks what obsync
 * needs: 40 Z85 characters per key, ids in obs_id_valid's grammar, and for
 * a secret file its permissions. Errors say what and where ("PATH: what").
 * Ownership: curve_cert_t is plain data; curve_cert_wipe clears the secret.
 */
#ifndef CURVE_CERT_H
#define CURVE_CERT_H

#include <stdbool.h>
#include <stddef.h>

#include "obs.h"

#define CURVE_KEY_TXT     41                  /* 40 Z85 characters and a NUL */
#define CURVE_CERT_MAX    ((size_t)64 * 1024) /* a certificate file, at most */
#define CURVE_FINGERPRINT 9                   /* first 8 characters, for logs */

typedef struct {
    char public_txt[CURVE_KEY_TXT];
    char secret_txt[CURVE_KEY_TXT]; /* "" in a public certificate */
    char node_id[OBS_ID_MAX + 1];   /* metadata; "" when absent */
    char provider[OBS_ID_MAX + 1];  /* metadata; "" when absent */
    bool hub;                       /* metadata role = hub (`keygen --hub`) */
} curve_cert_t;

/** Parses certificate text (len bytes, need not be NUL-terminated); name
 * prefixes messages. OBS_OK; OBS_EINVAL with "name: what" in err (not ZPL,
 * no or a malformed key, a metadata id out of grammar, a NUL byte);
 * OBS_ETOOBIG over CURVE_CERT_MAX; OBS_ENOMEM. */
int curve_cert_parse(const char *text, size_t len, const char *name,
                     curve_cert_t *out, char *err, size_t cap);

/** Reads and parses the certificate file at path. want_secret: it must
 * hold a secret key and be readable by its owner only (a mode with group
 * or other bits is refused, naming the mode); otherwise it must not hold
 * one (a secret file given where a public one belongs is refused). Errors
 * as curve_cert_parse, plus OBS_ESYS (unreadable, not a regular file). */
int curve_cert_load(const char *path, bool want_secret, curve_cert_t *out,
                    char *err, size_t cap);

/** True for 40 characters of Z85 text that decode to a 32-byte key. */
bool curve_key_txt_valid(const char *txt);

/** The first 8 characters of a public key, for logs and status (never a
 * secret). out has CURVE_FINGERPRINT bytes. */
void curve_fingerprint(const char *public_txt, char *out);

/** Clears the secret key of c. */
void curve_cert_wipe(curve_cert_t *c);

#endif

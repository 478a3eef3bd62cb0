/*
 * curve_cert.c - reading CURVE certificates (curve_cert.h). zconfig parses
 * the ZPL text exactly as zcert_load does; unlike zcert_load this refuses
 * what zcert would take silently (a key that is not Z85 decodes to zeros
 * there) and says what is wrong, where.
 */
#include "curve_cert.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "obs.h"
#include "obs_err.h"

bool
curve_key_txt_valid(const char *txt)
{
    uint8_t key[32];
    return txt != NULL && strlen(txt) == CURVE_KEY_TXT - 1 &&
           zmq_z85_decode(key, txt) != NULL;
}

void
curve_fingerprint(const char *public_txt, char *out)
{
    (void)snprintf(out, CURVE_FINGERPRINT, "%s", public_txt);
}

void
curve_cert_wipe(curve_cert_t *c)
{
    explicit_bzero(c->secret_txt, sizeof(c->secret_txt));
}

/* Copies the metadata id at path (optional) into out after checking it. */
static int
meta_id(zconfig_t *root, const char *path, const char *name, char *out,
        char *err, size_t cap)
{
    const char *v = zconfig_get(root, path, NULL);
    out[0] = '\0';
    if (v == NULL)
        return OBS_OK;
    if (!obs_id_valid(v)) {
        (void)snprintf(err, cap,
                       "%s: %s: \"%.70s\" is not an id (letters, digits, "
                       "'_' or '-', at most %d)",
                       name, path + 1, v, OBS_ID_MAX);
        return OBS_EINVAL;
    }
    (void)snprintf(out, OBS_ID_MAX + 1, "%s", v);
    return OBS_OK;
}

static int
key_field(zconfig_t *root, const char *path, const char *name, char *out,
          char *err, size_t cap)
{
    const char *v = zconfig_get(root, path, NULL);
    out[0] = '\0';
    if (v == NULL)
        return OBS_ENOENT;
    if (!curve_key_txt_valid(v)) {
        /* never echo the value: it may be a secret */
        (void)snprintf(err, cap, "%s: %s: not a key (40 Z85 characters)", name,
                       path + 1);
        return OBS_EINVAL;
    }
    (void)snprintf(out, CURVE_KEY_TXT, "%s", v);
    return OBS_OK;
}

int
curve_cert_parse(const char *text, size_t len, const char *name,
                 curve_cert_t *out, char *err, size_t cap)
{
    memset(out, 0, sizeof(*out));
    if (len > CURVE_CERT_MAX) {
        (void)snprintf(err, cap, "%s: more than %zu bytes: not a certificate",
                       name, CURVE_CERT_MAX);
        return OBS_ETOOBIG;
    }
    if (memchr(text, '\0', len) != NULL) {
        (void)snprintf(err, cap, "%s: a NUL byte: not a certificate", name);
        return OBS_EINVAL;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return OBS_ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    zconfig_t *root = zconfig_str_load(copy);
    explicit_bzero(copy, len);
    free(copy);
    if (root == NULL) {
        (void)snprintf(err, cap,
                       "%s: not a certificate (ZPL text as `obsync keygen` "
                       "writes it)",
                       name);
        return OBS_EINVAL;
    }
    int rc =
        key_field(root, "/curve/public-key", name, out->public_txt, err, cap);
    if (rc == OBS_ENOENT) {
        (void)snprintf(err, cap, "%s: curve/public-key: missing", name);
        rc = OBS_EINVAL;
    }
    if (rc == OBS_OK) {
        rc = key_field(root, "/curve/secret-key", name, out->secret_txt, err,
                       cap);
        rc = rc == OBS_ENOENT ? OBS_OK : rc;
    }
    if (rc == OBS_OK)
        rc = meta_id(root, "/metadata/node_id", name, out->node_id, err, cap);
    if (rc == OBS_OK)
        rc = meta_id(root, "/metadata/provider", name, out->provider, err, cap);
    const char *role = zconfig_get(root, "/metadata/role", "");
    out->hub = strcmp(role, "hub") == 0;
    zconfig_destroy(&root);
    if (rc != OBS_OK)
        curve_cert_wipe(out);
    return rc;
}

/* Reads at most CURVE_CERT_MAX + 1 bytes of the regular file at path. */
static int
read_small(const char *path, bool want_secret, char *buf, size_t *len,
           char *err, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ELOOP) /* a symlink: follow it, then check */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        (void)snprintf(err, cap, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return OBS_ESYS;
    }
    int rc = OBS_OK;
    if (!S_ISREG(sb.st_mode)) {
        (void)snprintf(err, cap, "%s: not a regular file", path);
        rc = OBS_ESYS;
    } else if (want_secret && (sb.st_mode & 077) != 0) {
        (void)snprintf(err, cap,
                       "%s: a secret key readable or writable by group or "
                       "others (mode %04o): chmod 600 it",
                       path, (unsigned)(sb.st_mode & 07777));
        rc = OBS_EINVAL;
    }
    ssize_t n = 0;
    *len = 0;
    while (rc == OBS_OK && *len <= CURVE_CERT_MAX &&
           (n = read(fd, buf + *len, CURVE_CERT_MAX + 1 - *len)) > 0)
        *len += (size_t)n;
    if (rc == OBS_OK && n < 0) {
        (void)snprintf(err, cap, "%s: %s", path, strerror(errno));
        rc = OBS_ESYS;
    }
    close(fd);
    return rc;
}

int
curve_cert_load(const char *path, bool want_secret, curve_cert_t *out,
                char *err, size_t cap)
{
    memset(out, 0, sizeof(*out));
    char *buf = malloc(CURVE_CERT_MAX + 1);
    if (buf == NULL)
        return OBS_ENOMEM;
    size_t len = 0;
    int rc = read_small(path, want_secret, buf, &len, err, cap);
    if (rc == OBS_OK)
        rc = curve_cert_parse(buf, len, path, out, err, cap);
    explicit_bzero(buf, len);
    free(buf);
    if (rc == OBS_OK && want_secret && out->secret_txt[0] == '\0') {
        (void)snprintf(err, cap,
                       "%s: no curve/secret-key: give the secret half "
                       "(`obsync keygen` writes it as NAME.key_secret)",
                       path);
        rc = OBS_EINVAL;
    } else if (rc == OBS_OK && !want_secret && out->secret_txt[0] != '\0') {
        curve_cert_wipe(out);
        (void)snprintf(err, cap,
                       "%s: holds a secret key: only the public half belongs "
                       "here; keep the secret file on its own machine",
                       path);
        rc = OBS_EINVAL;
    }
    return rc;
}

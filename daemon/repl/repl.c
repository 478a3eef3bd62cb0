/*
 * repl.c - helpers shared by both ends of replication (see repl.h): frame
 * sending, subscription lists and filters, the structure hash.
 */
#include "repl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "log.h"
#include "obs_err.h"
#include "sha256.h"

int
repl_structure_hash(const structure_t *st, char hex[65])
{
    char *text = NULL;
    size_t len = 0;
    int rc = structure_to_text(st, &text, &len);
    if (rc != OBS_OK)
        return rc;
    uint8_t h[32];
    sha256(text, len, h);
    free(text);
    for (size_t i = 0; i < 32; i++)
        (void)snprintf(hex + 2 * i, 3, "%02x", h[i]);
    return OBS_OK;
}

int
repl_send_bytes(void *sock, const uint8_t *id, size_t id_len,
                const uint8_t *buf, size_t len, uint64_t *bytes)
{
    if (id != NULL &&
        zmq_send(sock, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return zmq_errno() == EAGAIN ? OBS_EBUSY : OBS_ESYS;
    if (zmq_send(sock, buf, len, ZMQ_DONTWAIT) < 0)
        return zmq_errno() == EAGAIN ? OBS_EBUSY : OBS_ESYS;
    if (bytes)
        *bytes += len;
    return OBS_OK;
}

int
repl_send(void *sock, const uint8_t *id, size_t id_len, const msg_t *m,
          uint64_t *bytes)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = msg_encode(m, &buf, &len);
    if (rc == OBS_OK)
        rc = repl_send_bytes(sock, id, id_len, buf, len, bytes);
    free(buf);
    return rc;
}

void
repl_list_free(char ***list)
{
    if (list == NULL || *list == NULL)
        return;
    for (char **p = *list; *p; p++)
        free(*p);
    free(*list);
    *list = NULL;
}

int
repl_list_parse(const char *text, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 1, count = 0;
    for (const char *p = text ? text : ""; *p; p++)
        cap += *p == ',' || *p == ' ';
    char **list = calloc(cap + 1, sizeof(char *));
    if (list == NULL)
        return OBS_ENOMEM;
    const char *p = text ? text : "";
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, ", \t");
        if (len == 0)
            break;
        list[count] = strndup(p, len);
        if (list[count] == NULL) {
            repl_list_free(&list);
            return OBS_ENOMEM;
        }
        count++;
        p += len;
    }
    *out = list;
    *n = count;
    return OBS_OK;
}

static bool
in_list(const char *s, size_t len, char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0)
            return true;
    return false;
}

/* Reads the canonical key layout of obs_key.h without allocating. */
bool
repl_key_passes(const structure_t *st, const uint8_t *key, size_t klen,
                char *const *dfs, size_t n_dfs, char *const *areas,
                size_t n_areas)
{
    if (n_dfs == 0 && n_areas == 0)
        return true;
    const uint8_t *nul = memchr(key, 0, klen);
    if (nul == NULL || (size_t)(nul - key) + 2 > klen)
        return false;
    size_t dflen = (size_t)(nul - key);
    char df[OBS_DATAFLOW_MAX + 1];
    if (dflen > OBS_DATAFLOW_MAX)
        return false;
    memcpy(df, key, dflen);
    df[dflen] = '\0';
    if (n_dfs > 0) {
        const sdmx_dataflow_t *d = structure_find_dataflow(st, df);
        bool ok = in_list(df, dflen, dfs, n_dfs);
        for (size_t i = 0; !ok && d && i < n_dfs; i++) {
            const sdmx_dataflow_t *want = structure_find_dataflow(st, dfs[i]);
            ok = want == d;
        }
        if (!ok)
            return false;
    }
    if (n_areas == 0)
        return true;
    const sdmx_dataflow_t *d = structure_find_dataflow(st, df);
    int area = d ? structure_dim_index(d->dsd, "REF_AREA") : -1;
    if (area < 0)
        return true; /* no REF_AREA dimension: the area filter does not apply */
    size_t pos = dflen + 2, n_dims = key[dflen + 1];
    for (size_t i = 0; i < n_dims && pos < klen; i++) {
        const uint8_t *end = memchr(key + pos, 0, klen - pos);
        if (end == NULL)
            return false;
        size_t len = (size_t)(end - (key + pos));
        if ((int)i == area)
            return in_list((const char *)key + pos, len, areas, n_areas);
        pos += len + 1;
    }
    return false;
}

void
repl_session_ended(const char *who, bool progress, unsigned *stalled,
                   double secs, uint64_t rate_bps, unsigned timeout_ms)
{
    if (progress) {
        *stalled = 0;
        return;
    }
    if (++*stalled % 3 != 0)
        return;
    log_warnx("%s: %u sessions in a row ended without progress (the last "
              "after %.1f s; link measured at %" PRIu64
              " B/s): the link is too slow or stalls for longer than "
              "peer_timeout_ms (%u ms); check the link, or raise "
              "peer_timeout_ms at both ends",
              who, *stalled, secs, rate_bps, timeout_ms);
}

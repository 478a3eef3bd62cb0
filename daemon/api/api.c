/*
 * api.c - the local API's front: request dispatch, the clock refusal, replies,
 * and the helpers every handler uses (keys, validation contexts).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "log.h"
#include "mem.h"
#include "obs_err.h"
#include "period.h"

static int
current_year(void)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    return tm.tm_year + 1900;
}

validate_ctx_t
api_vctx(const engine_t *self, bool decimal_comma)
{
    validate_ctx_t c = {.st = self->st,
                        .provider = self->cfg->provider,
                        .min_year = 1900,
                        .max_year = current_year() + 1,
                        .decimal_comma = decimal_comma};
    return c;
}

/* Splits "A.COL.X" into exactly n codes (no wildcards). */
static int
split_key(const char *key, char codes[][OBS_CODE_MAX + 1], size_t max,
          size_t *n)
{
    size_t k = 0, len = 0;
    for (const char *p = key;; p++) {
        if (*p == '.' || *p == '\0') {
            if (k == max || len == 0)
                return OBS_EINVAL;
            codes[k][len] = '\0';
            k++;
            len = 0;
            if (*p == '\0')
                break;
            continue;
        }
        if (len == OBS_CODE_MAX)
            return OBS_EINVAL;
        codes[k][len++] = *p;
    }
    *n = k;
    return OBS_OK;
}

/* Resolves a KeyRef into an identity. Writes a reason to why on error. */
int
api_key_to_identity(const engine_t *self, const msg_key_ref_t *ref, obs_t *obs,
                    const sdmx_dataflow_t **dfp, char *why, size_t cap)
{
    if (!ref->dataflow[0] && !ref->series_key[0] && !ref->time_period[0]) {
        (void)snprintf(why, cap, "request has no key");
        return OBS_EINVAL;
    }
    const sdmx_dataflow_t *df =
        structure_find_dataflow(self->st, ref->dataflow);
    if (df == NULL) {
        (void)snprintf(why, cap, "unknown dataflow '%.100s'", ref->dataflow);
        return OBS_ENOENT;
    }
    char codes[OBS_MAX_DIMS][OBS_CODE_MAX + 1];
    size_t n = 0;
    if (split_key(ref->series_key, codes, OBS_MAX_DIMS, &n) != OBS_OK ||
        n != df->dsd->n_dims) {
        (void)snprintf(why, cap,
                       "series key '%.100s' must have %zu non-empty codes "
                       "separated by '.' for %s",
                       ref->series_key, df->dsd->n_dims, df->urn);
        return OBS_EINVAL;
    }
    const char *dims[OBS_MAX_DIMS];
    for (size_t i = 0; i < n; i++)
        dims[i] = codes[i];
    period_t p;
    if (period_parse(ref->time_period, 0, 9999, &p, why, cap) != OBS_OK)
        return OBS_EINVAL;
    if (dfp)
        *dfp = df;
    return obs_set_identity(obs, df->urn, dims, n, ref->time_period);
}

/* -------------------------------------------------------------- replies */

void
api_reply(engine_t *self, const ctl_peer_t *peer, msg_t *m)
{
    int rc = ctl_reply(self->ctl, peer, m);
    if (rc != OBS_OK && rc != OBS_ESYS)
        log_warnr(rc, "local API: could not send a reply");
}

void
api_reply_summary(engine_t *self, const ctl_peer_t *peer, issue_list_t *issues,
                  const counts_t *c, uint64_t rejected, bool committed,
                  const char *batch_id)
{
    size_t n = 0;
    msg_issue_t *rows =
        issues ? issue_list_rows(issues, ISSUES_PER_REPLY, &n) : NULL;
    char batch[OBS_ID_MAX + 1];
    (void)snprintf(batch, sizeof(batch), "%s", batch_id ? batch_id : "");
    msg_t m = {.type = MSG_WRITE_SUMMARY};
    m.u.write_summary = (msg_write_summary_t){
        .accepted = c ? c->accepted : 0,
        .unchanged = c ? c->unchanged : 0,
        .deleted = c ? c->deleted : 0,
        .rejected = rejected,
        .warnings = issues ? issues->warnings : 0,
        .committed = committed,
        .issues = {rows, n},
        .issues_omitted = issues ? (issues->n - n) + issues->omitted : 0,
        .batch_id = batch};
    api_reply(self, peer, &m);
    free(rows);
}

/* A node whose clock is further from its hub's than the hub accepts
 * refuses local writes at once (PROTOCOL.md §5.4 "Clocks"): acknowledged,
 * they would be refused by the hub. An import open then is dropped (what
 * it committed in parts stays). True when req was refused. */
static bool
refused_for_clock(engine_t *self, const ctl_peer_t *peer, const msg_t *req)
{
    char why[256];
    uint64_t import_id = 0;
    switch (req->type) {
    case MSG_IMPORT_ROWS:
        import_id = req->u.import_rows.import_id;
        break;
    case MSG_IMPORT_FINISH:
        if (req->u.import_finish.abort)
            return false;
        import_id = req->u.import_finish.import_id;
        break;
    case MSG_PUT:
    case MSG_DELETE:
    case MSG_IMPORT_BEGIN:
        break;
    default:
        return false;
    }
    if (self->node == NULL ||
        repl_node_clock_check(self->node, why, sizeof(why)) == OBS_OK)
        return false;
    import_t **slot = import_id ? import_find(self, import_id) : NULL;
    if (slot != NULL) {
        log_warnx("import %" PRIu64 " of '%s' dropped: %s", (*slot)->id,
                  (*slot)->source, why);
        import_free(*slot);
        *slot = NULL;
    } else {
        log_warnx("local write refused: %s", why);
    }
    ctl_reply_error(self->ctl, peer, OBS_ECLOCK, "%s", why);
    return true;
}

void
api_on_request(void *arg, const ctl_peer_t *peer, const msg_t *req)
{
    engine_t *self = arg;
    if (refused_for_clock(self, peer, req))
        return;
    switch (req->type) {
    case MSG_PUT:
        write_on_put(self, peer, &req->u.put);
        break;
    case MSG_GET:
        read_on_get(self, peer, &req->u.get.key, false);
        break;
    case MSG_HISTORY:
        read_on_get(self, peer, &req->u.history.key, true);
        break;
    case MSG_DELETE:
        write_on_delete(self, peer, &req->u.del);
        break;
    case MSG_QUERY:
        read_on_query(self, peer, &req->u.query);
        break;
    case MSG_IMPORT_BEGIN:
        import_on_begin(self, peer, &req->u.import_begin);
        break;
    case MSG_IMPORT_ROWS:
        import_on_rows(self, peer, &req->u.import_rows);
        break;
    case MSG_IMPORT_FINISH:
        import_on_finish(self, peer, &req->u.import_finish);
        break;
    case MSG_STRUCTURE_LIST:
        admin_on_structure_list(self, peer, &req->u.structure_list);
        break;
    case MSG_STRUCTURE_LOAD:
        admin_on_structure_load(self, peer, &req->u.structure_load);
        break;
    case MSG_STATUS:
        admin_on_status(self, peer, req->u.status.reload);
        break;
    default:
        ctl_reply_error(self->ctl, peer, OBS_EPROTO,
                        "message type %d (%s) is not a local API request",
                        (int)req->type, msg_type_name(req->type));
    }
}

/*
 * write.c - put and delete requests: validated at once, then queued for the
 * group commit.
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

/* A merge gives only what changes, so the merged result is validated; the
 * op itself stays as given (normalised), and is merged again at apply time
 * with whatever is current then: two merges of one key in one group commit
 * both keep their attributes. */
static int
validate_put(obsdb_txn_t *rtxn, const validate_ctx_t *vc, op_t *op,
             uint64_t line, issue_list_t *issues)
{
    obs_t merged, cur;
    obs_init(&merged);
    obs_init(&cur);
    int rc = obs_copy(&merged, &op->obs);
    if (rc == OBS_OK && rtxn && op->action == OBS_ACTION_MERGE &&
        obsdb_get(rtxn, &op->obs, &cur) == OBS_OK && !cur.ver.tombstone)
        rc = apply_merge_attrs(&merged, &cur);
    if (rc == OBS_OK)
        rc = validate_obs(vc, op->df, &merged, line, issues);
    /* keep the normalised decimal texts of what was given */
    if (rc == OBS_OK)
        rc = obs_set_value(&op->obs, merged.value);
    /* backwards: an attribute normalised away shifts only those after it */
    for (size_t i = op->obs.n_attrs; rc == OBS_OK && i-- > 0;) {
        char id[OBS_CODE_MAX + 1];
        /* fits: every decoder caps ids at OBS_CODE_MAX */
        (void)snprintf(id, sizeof(id), "%s", op->obs.attrs[i].id);
        rc = obs_set_attr(&op->obs, id, obs_get_attr(&merged, id));
    }
    /* checked before queuing: one over-long key cannot fail a group commit */
    if (rc == OBS_OK && !obsdb_key_fits(&op->obs)) {
        issue_add(issues, line, "", "R-length", false,
                  "the observation's key is longer than the store allows "
                  "(%d bytes)",
                  OBS_KEY_MAX - 8);
        rc = OBS_EREJECTED;
    }
    obs_fini(&merged);
    obs_fini(&cur);
    return rc;
}

void
write_on_put(engine_t *self, const ctl_peer_t *peer, const msg_put_t *r)
{
    pending_t *p = commit_pending_new(peer, "put", hlc_wall_ms());
    if (p == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_ENOMEM, "out of memory");
        return;
    }
    p->dry_run = r->dry_run;
    validate_ctx_t vc = api_vctx(self, false);
    obs_action_t action =
        r->action == OBS_ACTION_REPLACE ? OBS_ACTION_REPLACE : OBS_ACTION_MERGE;
    obsdb_txn_t *rtxn = NULL; /* to merge with what is stored */
    if (action == OBS_ACTION_MERGE &&
        obsdb_begin(self->db, false, &rtxn) != OBS_OK)
        rtxn = NULL;
    for (size_t i = 0; i < r->obs.n; i++) {
        op_t *op = ops_push(&p->ops);
        if (op == NULL || obs_copy(&op->obs, &r->obs.items[i]) != OBS_OK) {
            if (op)
                ops_pop(&p->ops);
            issue_add(&p->issues, i + 1, "", "R0-shape", false,
                      "observation %zu is malformed or over a limit", i + 1);
            p->rejected++;
            continue;
        }
        op->action = action;
        op->df = structure_find_dataflow(self->st, op->obs.dataflow);
        memset(&op->obs.ver, 0, sizeof(op->obs.ver));
        op->obs.ver.action = action;
        if (op->df && strcmp(op->df->urn, op->obs.dataflow) != 0) {
            free(op->obs.dataflow);
            op->obs.dataflow = strdup(op->df->urn);
        }
        if (op->obs.dataflow == NULL ||
            validate_put(rtxn, &vc, op, i + 1, &p->issues) != OBS_OK) {
            ops_pop(&p->ops);
            p->rejected++;
        }
    }
    obsdb_abort(&rtxn);
    if (p->rejected > 0 && r->strict) {
        api_reply_summary(self, peer, &p->issues, NULL, p->rejected, false,
                          p->batch_id);
        commit_pending_free(p);
        return;
    }
    commit_queue(self, p);
}

void
write_on_delete(engine_t *self, const ctl_peer_t *peer, const msg_delete_t *r)
{
    pending_t *p = commit_pending_new(peer, "del", hlc_wall_ms());
    op_t *op = p ? ops_push(&p->ops) : NULL;
    if (op == NULL) {
        commit_pending_free(p);
        ctl_reply_error(self->ctl, peer, OBS_ENOMEM, "out of memory");
        return;
    }
    char why[256];
    int rc =
        api_key_to_identity(self, &r->key, &op->obs, &op->df, why, sizeof(why));
    if (rc != OBS_OK) {
        commit_pending_free(p);
        ctl_reply_error(self->ctl, peer, rc, "%s", why);
        return;
    }
    op->action = OBS_ACTION_DELETE;
    op->obs.ver.action = OBS_ACTION_DELETE;
    validate_ctx_t vc = api_vctx(self, false);
    if (validate_obs(&vc, op->df, &op->obs, 0, &p->issues) != OBS_OK) {
        api_reply_summary(self, peer, &p->issues, NULL, 1, false, p->batch_id);
        commit_pending_free(p);
        return;
    }
    p->dry_run = r->dry_run;
    commit_queue(self, p);
}

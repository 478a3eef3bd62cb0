/*
 * hub_accept.c - the hub's write path: every queued Publish of every node
 * checked (hub_rules.h) and appended to the log in one group commit, then
 * acknowledged.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_int.h"
#include "hub_rules.h"
#include "log.h"
#include "obs_err.h"

/* ------------------------------------------------------- group commit */

/* Logs a change the worker prepared (hub_prep) and found good, when it is
 * the next of its origin and its clock is sane: true. false leaves it to
 * apply_change's usual checks, which also word any reject. */
static bool
append_prepared(repl_hub_t *self, obsdb_txn_t *txn, sess_t *s,
                const prep_change_t *pc, int *rc)
{
    /* a merge is checked against its base (R-partial): the loop's work */
    if (pc == NULL || pc->verdict != PREP_OK ||
        (pc->ver.action == OBS_ACTION_MERGE && pc->ver.base_hlc != 0) ||
        hub_rules_order(pc->ver.origin_seq, pc->ver.hlc, s->last_seq,
                        hlc_wall_ms(),
                        (uint64_t)REPL_MAX_SKEW_MS) != HUB_ORDER_NEXT)
        return false;
    obs_version_t ver; /* a copy: a retried commit reuses pc */
    memcpy(&ver, &pc->ver, sizeof(ver)); /* padding too (version_cache) */
    s->last_seq = ver.origin_seq;
    s->last_hlc = ver.hlc;
    *rc = obsdb_log_append_body(txn, pc->buf, pc->key_len,
                                pc->buf + pc->key_len, pc->body_len, &ver);
    if (*rc == OBS_OK) {
        version_cache_put(&self->vcache, &ver);
        seq_ranges_add(&s->own, ver.hub_seq);
        hub_sess_peer(self, s)->accepted++;
        hlc_observe(self->env.hlc, ver.hlc, hlc_wall_ms());
    }
    return true;
}

/* The base version of merge o (named by its version) as the hub holds
 * it: current or in history. */
typedef struct {
    const obs_version_t *want;
    obs_t found;
    bool hit;
} base_find_t;

static bool
is_base(const obs_version_t *v, const obs_version_t *want)
{
    return v->hlc == want->base_hlc && v->origin_seq == want->base_origin_seq &&
           strcmp(v->origin, want->base_origin) == 0;
}

static int
base_cb(const obs_t *obs, void *arg)
{
    base_find_t *f = arg;
    if (f->hit || !is_base(&obs->ver, f->want))
        return OBS_OK;
    f->hit = true;
    return obs_copy(&f->found, obs);
}

/* The first attribute of o's base version that merge o lacks, or NULL
 * (none, or the hub does not hold the base: its state is applied behind
 * the log, PROTOCOL.md §5.2). A merge keeps the attributes it does not
 * give, so the change it publishes carries every one of them. */
static const char *
merge_lacks(obsdb_txn_t *txn, const obs_t *o, char *buf, size_t cap)
{
    base_find_t f = {.want = &o->ver};
    obs_init(&f.found);
    int rc = obsdb_get(txn, o, &f.found);
    if (rc == OBS_OK && is_base(&f.found.ver, &o->ver))
        f.hit = true;
    else if (rc == OBS_OK || rc == OBS_ENOENT)
        (void)obsdb_history(txn, o, base_cb, &f);
    const char *lack = NULL;
    for (size_t i = 0; f.hit && lack == NULL && i < f.found.n_attrs; i++)
        if (obs_get_attr(o, f.found.attrs[i].id) == NULL) {
            (void)snprintf(buf, cap, "%s", f.found.attrs[i].id);
            lack = buf;
        }
    obs_fini(&f.found);
    return lack;
}

/* One change from node s, expected to be its expect_seq: order, checks
 * (hub_rules.h), then the log; pc is what the worker prepared of it
 * (NULL: nothing). A change that breaks the protocol stops the session's
 * publishes (*stop) with its reason kept for the Goodbye. */
static int
apply_change(repl_hub_t *self, obsdb_txn_t *txn, sess_t *s,
             const msg_bytes_t *bin, const prep_change_t *pc,
             uint64_t expect_seq, uint64_t *resend_from, bool *stop)
{
    int rc = OBS_OK;
    if (append_prepared(self, txn, s, pc, &rc))
        return rc;
    peer_t *p = hub_sess_peer(self, s);
    /* a view into the bytes: checked and logged without a copy per field */
    codec_obs_ro_t ro;
    obs_t *o = &ro.obs;
    char why[200];
    if (codec_obs_decode_ro(bin->ptr, bin->len, &ro) != OBS_OK) {
        (void)snprintf(why, sizeof(why),
                       "change %" PRIu64 " is not a readable Observation",
                       expect_seq);
        rc = OBS_EPROTO;
    } else {
        rc =
            hub_rules_wire(bin->ptr, bin->len, o, expect_seq, why, sizeof(why));
    }
    if (rc != OBS_OK) {
        codec_obs_ro_release(&ro);
        if (rc != OBS_EPROTO)
            return rc; /* ours (memory), not the node's: the commit fails */
        *stop = true;  /* nothing after it can be read as meant */
        hub_sess_refuse(self, s, OBS_EPROTO, "%s", why);
        return OBS_OK;
    }
    uint64_t seq = o->ver.origin_seq;
    switch (hub_rules_order(seq, o->ver.hlc, s->last_seq, hlc_wall_ms(),
                            (uint64_t)REPL_MAX_SKEW_MS)) {
    case HUB_ORDER_DUPLICATE:
        p->duplicates++;
        goto out;
    case HUB_ORDER_GAP:
        *resend_from = s->last_seq + 1;
        *stop = true;
        goto out;
    case HUB_ORDER_CLOCK:
        /* Nor is its number consumed: the node keeps it, re-stamps it from
         * the clock the next Welcome tells, and sends it again. */
        p->clock_refused++;
        s->clock_refused = seq;
        *stop = true;
        issue_add(&s->rejects, seq, "", "R-clock", false,
                  "change %" PRIu64 " is stamped %" PRIu64
                  " ms ahead of the hub's clock",
                  seq, HLC_MS(o->ver.hlc) - hlc_wall_ms());
        goto out;
    case HUB_ORDER_NEXT:
        break;
    }
    s->last_seq = seq;
    s->last_hlc = o->ver.hlc;
    validate_ctx_t vc = {.st = self->env.st,
                         .memo = &self->vmemo,
                         .provider = s->provider,
                         .texts = &self->vtexts};
    uint8_t key[OBS_KEY_MAX];
    size_t klen = 0;
    if (hub_rules_check(&vc, o, p->node_id, s->provider, key, &klen,
                        &s->rejects) != OBS_OK) {
        p->rejected++;
        goto out;
    }
    char attr[OBS_CODE_MAX + 1];
    const char *lack = o->ver.action == OBS_ACTION_MERGE && o->ver.base_hlc
                           ? merge_lacks(txn, o, attr, sizeof(attr))
                           : NULL;
    if (lack != NULL) {
        issue_add(&s->rejects, seq, lack, "R-partial", false,
                  "change %" PRIu64 " is a merge without attribute %s of the "
                  "version it replaced: a change carries the whole "
                  "observation",
                  seq, lack);
        p->rejected++;
        goto out;
    }
    rc = obsdb_log_append_key(txn, o, key, klen);
    if (rc == OBS_OK) {
        version_cache_put(&self->vcache, &o->ver);
        seq_ranges_add(&s->own, o->ver.hub_seq);
        p->accepted++;
        hlc_observe(self->env.hlc, o->ver.hlc, hlc_wall_ms());
    }
out:
    codec_obs_ro_release(&ro);
    return rc;
}

/* Applies whole queued publishes of s while *budget lasts; s->n_applied
 * says how many, so the ack frees exactly those. After a gap the rest is
 * dropped too: the node resends from resend_from. */
static int
apply_session(repl_hub_t *self, obsdb_txn_t *txn, sess_t *s,
              uint64_t *resend_from, size_t *budget, size_t *budget_bytes)
{
    bool stop = false;
    int rc = OBS_OK;
    s->n_applied = 0;
    for (pub_t *p = s->pubs;
         p && !stop && rc == OBS_OK && *budget > 0 && *budget_bytes > 0;
         p = p->next) {
        hub_prep_wait(self->prep, &p->job);
        for (size_t i = 0; i < p->n && !stop && rc == OBS_OK; i++)
            rc = apply_change(self, txn, s, &p->changes[i],
                              p->job.out ? &p->job.out[i] : NULL, p->first + i,
                              resend_from, &stop);
        *budget = p->n < *budget ? *budget - p->n : 0;
        *budget_bytes = p->bytes < *budget_bytes ? *budget_bytes - p->bytes : 0;
        s->n_applied++;
    }
    if (stop)
        s->n_applied = hub_pubs_queued(s);
    if (rc == OBS_OK)
        rc = obsdb_origin_put(txn, hub_sess_peer(self, s)->node_id,
                              s->node_epoch, s->last_seq, s->last_hlc);
    return rc;
}

/* One transaction for the queued publishes of `list`; grows the map and
 * redoes it on MDB_MAP_FULL. On failure every session's position and
 * counters are as before, so nothing is counted twice. */
static int
commit_sessions(repl_hub_t *self, sess_t **list, size_t n, uint64_t *resend)
{
    uint64_t saved[HUB_SESSIONS_MAX], saved_hlc[HUB_SESSIONS_MAX];
    seq_ranges_mark_t saved_own[HUB_SESSIONS_MAX];
    peer_t counts[HUB_SESSIONS_MAX];
    self->vmemo.df = NULL;
    for (int attempt = 0; attempt < 8; attempt++) {
        for (size_t i = 0; i < n; i++) {
            saved[i] = list[i]->last_seq;
            saved_hlc[i] = list[i]->last_hlc;
            list[i]->clock_refused = 0;
            saved_own[i] = seq_ranges_mark(&list[i]->own);
            counts[i] = *hub_sess_peer(self, list[i]);
            resend[i] = 0;
            issue_list_clear(&list[i]->rejects);
        }
        obsdb_txn_t *txn = NULL;
        int rc = obsdb_begin(self->env.db, true, &txn);
        size_t budget = HUB_COMMIT_MAX, budget_bytes = HUB_COMMIT_BYTES;
        for (size_t i = 0; rc == OBS_OK && i < n; i++)
            rc = apply_session(self, txn, list[i], &resend[i], &budget,
                               &budget_bytes);
        uint64_t first = 0, last = 0;
        if (rc == OBS_OK)
            rc = obsdb_log_bounds(txn, &first, &last);
        if (rc == OBS_OK) /* later local writes must stamp above these */
            rc = obsdb_meta_put_u64(txn, "hlc", self->env.hlc->last);
        if (rc == OBS_OK)
            rc = obsdb_commit(&txn);
        else
            obsdb_abort(&txn);
        if (rc == OBS_OK) {
            if (last > self->log_last)
                self->log_grew = true;
            self->log_first = first;
            self->log_last = last;
            return OBS_OK;
        }
        /* the seqs this try assigned go to other changes next time */
        version_cache_forget(&self->vcache, self->log_last + 1, UINT64_MAX);
        for (size_t i = 0; i < n; i++) {
            list[i]->last_seq = saved[i];
            list[i]->last_hlc = saved_hlc[i];
            seq_ranges_rewind(&list[i]->own, saved_own[i]); /* this try's */
            *hub_sess_peer(self, list[i]) = counts[i];
        }
        if (rc != OBS_ESTOREFULL || !obsdb_grow(self->env.db))
            return rc;
    }
    return OBS_ESTOREFULL;
}

/* A session with a reason to end (hub_sess_refuse: a change that broke
 * the protocol, one refused for its clock, publishes the hub could not
 * store) ends after the ack of what came before: Goodbye with the code. */
static void
close_refused(repl_hub_t *self, sess_t *s)
{
    if (s->close_code == 0 || s->fsm.state == RH_DEAD)
        return;
    hub_pubs_free(self, s);
    rh_event_t ev = {.type = RH_EV_PROTO_ERROR, .now_ms = hub_now_ms()};
    hub_step(self, s, &ev);
}

static void
ack_session(repl_hub_t *self, sess_t *s, uint64_t resend)
{
    if (s->n_applied == 0) {
        close_refused(self, s);
        return; /* nothing of it fitted in this commit: no ack yet */
    }
    hub_pubs_drop(self, s, s->n_applied);
    hub_sess_peer(self, s)->last_origin_seq = s->last_seq;
    s->progress = true;
    hub_sess_peer(self, s)->stalled = 0;
    rh_event_t ev = {.type = RH_EV_COMMITTED,
                     .now_ms = hub_now_ms(),
                     .seq = s->last_seq,
                     .first = resend};
    hub_step(self, s, &ev);
    if (s->clock_refused != 0)
        hub_sess_refuse(self, s, OBS_ECLOCK,
                        "change %" PRIu64 " is stamped too far ahead of the "
                        "hub's clock: reconnect, re-stamp it and send it again",
                        s->clock_refused);
    close_refused(self, s);
}

/* Group commit of every queued publish. If the shared transaction fails for
 * another reason than a full map, each node's publishes are retried on their
 * own, so one node whose change cannot be stored does not stop the others:
 * that node's session is closed (it reconnects and resends). */
void
hub_commit_publishes(repl_hub_t *self)
{
    sess_t *list[HUB_SESSIONS_MAX];
    uint64_t resend[HUB_SESSIONS_MAX];
    size_t n = 0;
    /* Round robin: the commit budget goes to a different node first each
     * turn, so one busy node cannot starve the others. */
    size_t start = self->n_sess ? self->rr++ % self->n_sess : 0;
    for (size_t k = 0; k < self->n_sess; k++) {
        sess_t *s = self->sess[(start + k) % self->n_sess];
        if (s->pubs && s->peer != SIZE_MAX && s->fsm.state != RH_DEAD)
            list[n++] = s;
    }
    self->committed = n > 0;
    if (n == 0)
        return;
    int rc = commit_sessions(self, list, n, resend);
    if (rc == OBS_OK) {
        for (size_t i = 0; i < n; i++)
            ack_session(self, list[i], resend[i]);
        return;
    }
    log_errr(rc, "hub: group commit of %zu node(s) failed", n);
    int group_rc = rc;
    for (size_t i = 0; i < n; i++) {
        uint64_t one = 0;
        sess_t *s = list[i];
        rc = n > 1 && group_rc != OBS_ESTOREFULL
                 ? commit_sessions(self, &s, 1, &one)
                 : group_rc;
        if (rc == OBS_OK) {
            ack_session(self, s, one);
            continue;
        }
        hub_sess_refuse(self, s, OBS_ESTORE,
                        "your changes could not be stored (%s); resend",
                        obs_strerror(rc));
        close_refused(self, s);
    }
}

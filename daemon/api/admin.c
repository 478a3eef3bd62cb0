/*
 * admin.c - structure load and list, and status.
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

int
admin_persist_structure(engine_t *self)
{
    char *text = NULL;
    size_t len = 0;
    int rc = structure_to_text(self->st, &text, &len);
    for (int tries = 0; rc == OBS_OK && tries < 8; tries++) {
        obsdb_txn_t *txn = NULL;
        rc = obsdb_begin(self->db, true, &txn);
        if (rc == OBS_OK)
            rc = obsdb_structure_put(txn, text, len);
        if (rc == OBS_OK)
            rc = obsdb_commit(&txn);
        else
            obsdb_abort(&txn);
        if (rc != OBS_ESTOREFULL || !obsdb_grow(self->db))
            break;
        rc = OBS_OK;
    }
    free(text);
    return rc;
}

static void
reply_structure(engine_t *self, const ctl_peer_t *peer, issue_list_t *issues,
                size_t loaded, const msg_artefact_t *arts, size_t n_arts)
{
    size_t n = 0;
    msg_issue_t *rows =
        issues ? issue_list_rows(issues, ISSUES_PER_REPLY, &n) : NULL;
    msg_t m = {.type = MSG_STRUCTURE_REPLY};
    m.u.structure_reply = (msg_structure_reply_t){.artefacts = arts,
                                                  .n_artefacts = n_arts,
                                                  .issues = {rows, n},
                                                  .loaded = (uint32_t)loaded};
    api_reply(self, peer, &m);
    free(rows);
}

/* For a dry run: *scratch (the caller destroys it) gets a copy of the
 * current structure, to load into instead. */
static int
dry_run_copy(const structure_t *st, structure_t **scratch, issue_list_t *issues)
{
    char *text = NULL;
    size_t len = 0;
    *scratch = structure_new();
    int rc = *scratch ? structure_to_text(st, &text, &len) : OBS_ENOMEM;
    if (rc == OBS_OK)
        rc = structure_load_text(*scratch, text, len, "current", issues, NULL);
    free(text);
    return rc;
}

/* After a load that changed the structure: persists it (logged either way)
 * and tells the node. */
static int
structure_changed(engine_t *self, const msg_structure_load_t *r, size_t loaded)
{
    int rc = admin_persist_structure(self);
    if (rc != OBS_OK)
        log_errr(rc, "structure: loaded but not persisted");
    else
        log_notice("structure: %zu artefact(s) loaded from '%s'", loaded,
                   r->source_name);
    if (self->node)
        repl_node_structure_changed(self->node);
    return rc;
}

void
admin_on_structure_load(engine_t *self, const ctl_peer_t *peer,
                        const msg_structure_load_t *r)
{
    commit_flush(self); /* queued writes point into the structure */
    if (import_any_open(self)) {
        ctl_reply_error(self->ctl, peer, OBS_EBUSY,
                        "imports are in progress; load structure after them");
        return;
    }
    issue_list_t issues;
    issue_list_init(&issues, ISSUES_PER_REPLY);
    size_t loaded = 0;
    structure_t *target = self->st, *scratch = NULL;
    int rc = OBS_OK;
    if (r->dry_run) {
        rc = dry_run_copy(self->st, &scratch, &issues);
        target = scratch;
    }
    if (self->hub && !r->dry_run) /* its checking thread reads it */
        repl_hub_structure_changing(self->hub);
    if (rc == OBS_OK)
        rc = structure_load_text(target, r->text, strlen(r->text),
                                 r->source_name[0] ? r->source_name : "input",
                                 &issues, &loaded);
    if (self->hub && !r->dry_run)
        repl_hub_structure_loaded(self->hub, rc == OBS_OK && loaded > 0);
    if (rc == OBS_OK && !r->dry_run && loaded > 0)
        rc = structure_changed(self, r, loaded);
    structure_destroy(&scratch);
    if (rc == OBS_OK || rc == OBS_ESTRUCT)
        reply_structure(self, peer, &issues, rc == OBS_OK ? loaded : 0, NULL,
                        0);
    else
        ctl_reply_error(self->ctl, peer, rc, "structure load failed: %s",
                        obs_strerror(rc));
    issue_list_fini(&issues);
}

typedef struct {
    msg_artefact_t *items;
    size_t n;
} arts_t;

static void
art_add(arts_t *a, const char *kind, const char *urn, const char *name,
        size_t items)
{
    a->items[a->n++] = (msg_artefact_t){.kind = kind,
                                        .urn = urn,
                                        .name = name ? name : "",
                                        .items = (uint32_t)items};
}

/* Keeps the artefacts whose URN is urn, by exact match; how many. */
static size_t
keep_urn(arts_t *a, const char *urn)
{
    size_t w = 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->items[i].urn, urn) == 0)
            a->items[w++] = a->items[i];
    a->n = w;
    return w;
}

void
admin_on_structure_list(engine_t *self, const ctl_peer_t *peer,
                        const msg_structure_list_t *r)
{
    const structure_t *st = self->st;
    size_t total = structure_codelist_count(st) + structure_dsd_count(st) +
                   structure_dataflow_count(st) + structure_agreement_count(st);
    arts_t a = {calloc(total + 1, sizeof(*a.items)), 0};
    char(*agr_urn)[OBS_ID_MAX + OBS_DATAFLOW_MAX + 2] =
        calloc(structure_agreement_count(st) + 1, sizeof(*agr_urn));
    if (a.items == NULL || agr_urn == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_ENOMEM, "out of memory");
        goto out;
    }
    const char *k = r->kind;
    bool all = k[0] == '\0';
    for (size_t i = 0;
         (all || !strcmp(k, "codelist")) && i < structure_codelist_count(st);
         i++) {
        const sdmx_codelist_t *c = structure_codelist_at(st, i);
        art_add(&a, "codelist", c->urn, c->name, c->n_codes);
    }
    for (size_t i = 0;
         (all || !strcmp(k, "dsd")) && i < structure_dsd_count(st); i++) {
        const sdmx_dsd_t *d = structure_dsd_at(st, i);
        art_add(&a, "dsd", d->urn, d->name, d->n_dims + d->n_attrs);
    }
    for (size_t i = 0;
         (all || !strcmp(k, "dataflow")) && i < structure_dataflow_count(st);
         i++) {
        const sdmx_dataflow_t *d = structure_dataflow_at(st, i);
        art_add(&a, "dataflow", d->urn, d->name, d->dsd->n_dims);
    }
    for (size_t i = 0;
         (all || !strcmp(k, "agreement")) && i < structure_agreement_count(st);
         i++) {
        const sdmx_agreement_t *g = structure_agreement_at(st, i);
        (void)snprintf(agr_urn[i], sizeof(agr_urn[i]), "%s:%s", g->provider,
                       g->dataflow->urn); /* sized for both */
        art_add(&a, "agreement", agr_urn[i], g->n_areas ? g->areas[0] : "",
                g->n_areas);
    }
    if (r->urn[0] && keep_urn(&a, r->urn) == 0) {
        ctl_reply_error(self->ctl, peer, OBS_ENOENT, "no artefact '%.150s'",
                        r->urn);
        goto out;
    }
    reply_structure(self, peer, NULL, 0, a.items, a.n);
out:
    free(a.items);
    free(agr_urn);
}

void
admin_on_status(engine_t *self, const ctl_peer_t *peer, bool reload)
{
    char reloaded[300] = "";
    if (reload && self->hub == NULL)
        (void)snprintf(reloaded, sizeof(reloaded),
                       "a node has no allow-list to reload");
    else if (reload &&
             repl_hub_reload(self->hub, reloaded, sizeof(reloaded)) != OBS_OK) {
        ctl_reply_error(self->ctl, peer, OBS_EINVAL, "reload: %s", reloaded);
        return;
    }
    obsdb_stats_t s = {0};
    obsdb_txn_t *txn = NULL;
    int rc = obsdb_begin(self->db, false, &txn);
    if (rc == OBS_OK)
        rc = obsdb_stats(txn, &s);
    obsdb_abort(&txn);
    if (rc != OBS_OK) {
        ctl_reply_error(self->ctl, peer, rc, "status: %s", obs_strerror(rc));
        return;
    }
    msg_t m = {.type = MSG_STATUS_REPLY};
    msg_status_reply_t *sr = &m.u.status_reply;
    sr->node_id = self->cfg->node_id;
    sr->role = cfg_role_name(self->cfg->role);
    sr->epoch = obsdb_epoch(self->db);
    sr->provider = self->cfg->provider;
    sr->observations = s.observations - s.tombstones;
    sr->tombstones = s.tombstones;
    sr->history_versions = s.history;
    sr->outbox_depth = s.outbox;
    sr->last_origin_seq = self->origin_seq;
    sr->hlc = self->hlc.last;
    sr->map_size = s.map_size;
    sr->map_used = s.map_used;
    sr->uptime_s = (uint64_t)(time(NULL) - self->started);
    sr->commits = self->commits;
    sr->writes_grouped = self->writes_grouped;
    sr->security = self->cfg->security;
    sr->reload = reloaded;
    size_t n = structure_dataflow_count(self->st);
    const char **dfs = calloc(n + 1, sizeof(*dfs));
    for (size_t i = 0; dfs && i < n; i++)
        dfs[i] = structure_dataflow_at(self->st, i)->urn;
    sr->dataflows = (msg_strs_t){dfs, dfs ? n : 0};
    if (self->hub)
        repl_hub_status(self->hub, sr);
    if (self->node)
        repl_node_status(self->node, sr);
    api_reply(self, peer, &m);
    free(dfs);
}

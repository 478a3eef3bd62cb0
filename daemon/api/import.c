/*
 * import.c - imports: an SDMX-CSV file mapped row by row as ImportRows arrive,
 * staged in memory and committed at ImportFinish (or in parts of commit_rows).
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

void
import_free(import_t *imp)
{
    if (imp == NULL)
        return;
    sdmx_csv_close(&imp->mapper);
    ops_fini(&imp->ops);
    issue_list_fini(&imp->header_issues);
    free(imp);
}

import_t **
import_find(engine_t *self, uint64_t id)
{
    for (size_t i = 0; i < IMPORTS_MAX; i++)
        if (self->imports[i] && self->imports[i]->id == id)
            return &self->imports[i];
    return NULL;
}

static void
reply_progress(engine_t *self, const ctl_peer_t *peer, const import_t *imp,
               issue_list_t *issues)
{
    size_t n = 0;
    msg_issue_t *rows =
        issues ? issue_list_rows(issues, ISSUES_PER_REPLY, &n) : NULL;
    msg_t m = {.type = MSG_IMPORT_PROGRESS};
    m.u.import_progress =
        (msg_import_progress_t){.import_id = imp->id,
                                .rows_seen = imp->rows_seen,
                                .rows_rejected = imp->rejected,
                                .rows_committed = imp->rows_committed,
                                .issues = {rows, n}};
    api_reply(self, peer, &m);
    free(rows);
}

void
import_on_begin(engine_t *self, const ctl_peer_t *peer,
                const msg_import_begin_t *r)
{
    import_t **slot = NULL;
    for (size_t i = 0; i < IMPORTS_MAX && slot == NULL; i++)
        if (self->imports[i] == NULL)
            slot = &self->imports[i];
    if (slot == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_EBUSY,
                        "%d imports are already open; try again later",
                        IMPORTS_MAX);
        return;
    }
    import_t *imp = calloc(1, sizeof(*imp));
    if (imp == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_ENOMEM, "out of memory");
        return;
    }
    issue_list_init(&imp->header_issues, ISSUES_PER_REPLY);
    sdmx_csv_opts_t o = {.vctx = api_vctx(self, r->decimal_comma),
                         .ignore_columns = r->ignore_columns.items,
                         .n_ignore = r->ignore_columns.n};
    int rc = sdmx_csv_open(&o, r->header.items, r->header.n,
                           r->header_line ? r->header_line : 1, &imp->mapper,
                           &imp->header_issues);
    if (rc != OBS_OK) {
        if (imp->header_issues.n == 0)
            issue_add(&imp->header_issues, r->header_line, "", "R0-header",
                      false, "unusable header: %s", obs_strerror(rc));
        api_reply_summary(self, peer, &imp->header_issues, NULL, 0, false, "");
        import_free(imp);
        return;
    }
    if (r->commit_rows > 0 && r->strict) {
        ctl_reply_error(self->ctl, peer, OBS_EINVAL,
                        "a strict import is one transaction: it cannot be "
                        "committed in parts (commit_rows = %" PRIu64 ")",
                        r->commit_rows);
        import_free(imp);
        return;
    }
    imp->id = ++self->next_import_id;
    imp->strict = r->strict;
    imp->dry_run = r->dry_run;
    /* A dry run stages everything: its counts must see its own rows. */
    imp->commit_rows = r->dry_run ? 0 : r->commit_rows;
    (void)snprintf(imp->batch_id, sizeof(imp->batch_id),
                   "imp-%" PRIx64 "-%" PRIu64, hlc_wall_ms(), peer->corr_id);
    imp->last_active_ms = hlc_mono_ms();
    (void)snprintf(imp->source, sizeof(imp->source), "%s", r->source_name);
    *slot = imp;
    log_info("import %" PRIu64 " of '%s' started", imp->id, imp->source);
    reply_progress(self, peer, imp, NULL);
}

/* Moves a mapped row into the import's staged ops: a wildcard delete as
 * an op, an observation packed. */
static int
stage_row(import_t *imp, sdmx_row_t *row)
{
    if (row->kind != SDMX_ROW_DELETE_MATCHING)
        return ops_push_packed(&imp->ops, &row->obs, row->key,
                               (size_t)row->key_len, row->action);
    op_t *op = ops_push(&imp->ops);
    if (op == NULL)
        return OBS_ENOMEM;
    op->df = row->df;
    op->action = row->action;
    op->matching = true;
    if ((op->pattern = malloc(sizeof(*op->pattern))) == NULL) {
        ops_pop(&imp->ops);
        return OBS_ENOMEM;
    }
    *op->pattern = row->pattern;
    memset(&row->pattern, 0, sizeof(row->pattern));
    (void)snprintf(op->period, sizeof(op->period), "%s",
                   row->time_period); /* same size */
    return OBS_OK;
}

/* Commits what an import in parts has staged, in a transaction of its own
 * after every write queued before it (arrival order). The staged ops are
 * consumed either way. */
static int
commit_import_part(engine_t *self, import_t *imp)
{
    commit_flush(self);
    pending_t part = {.is_import = true, .ops = imp->ops};
    memset(&imp->ops, 0, sizeof(imp->ops));
    (void)snprintf(part.batch_id, sizeof(part.batch_id), "%s", imp->batch_id);
    pending_t *group = &part;
    int rc = commit_group(self, &group, 1, false);
    size_t rows = part.ops.n;
    ops_fini(&part.ops);
    if (rc != OBS_OK)
        return rc;
    counts_add(&imp->counts, &part.counts);
    imp->rows_committed += rows;
    imp->parts++;
    return OBS_OK;
}

void
import_on_rows(engine_t *self, const ctl_peer_t *peer,
               const msg_import_rows_t *r)
{
    import_t **slot = import_find(self, r->import_id);
    if (slot == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_ENOENT,
                        "no open import %" PRIu64 " (finished or expired)",
                        r->import_id);
        return;
    }
    import_t *imp = *slot;
    imp->last_active_ms = hlc_mono_ms();
    /* Staged rows are held in memory until they commit. */
    if (imp->ops.n + r->n_rows > self->cfg->max_import_rows) {
        ctl_reply_error(self->ctl, peer, OBS_ETOOBIG,
                        "import exceeds max_import_rows = %" PRIu64
                        " rows staged before a commit; split the file or "
                        "commit it in parts",
                        self->cfg->max_import_rows);
        import_free(imp);
        *slot = NULL;
        return;
    }
    issue_list_t issues;
    issue_list_init(&issues, ISSUES_PER_REPLY);
    sdmx_row_t row;
    sdmx_row_init(&row);
    int rc = OBS_OK;
    for (size_t i = 0; rc == OBS_OK && i < r->n_rows; i++) {
        const msg_csv_row_t *cr = &r->rows[i];
        imp->rows_seen++;
        rc = sdmx_csv_map(imp->mapper, cr->line, cr->cells.items, cr->cells.n,
                          &row, &issues);
        if (rc != OBS_OK)
            break;
        if (row.kind == SDMX_ROW_OBS &&
            (row.key_len <= 0 || !obsdb_key_len_fits((size_t)row.key_len))) {
            issue_add(&issues, cr->line, "", "R-length", false,
                      "the observation's key is longer than the store allows "
                      "(%d bytes)",
                      OBS_KEY_MAX - 8);
            row.kind = SDMX_ROW_REJECTED;
        }
        if (row.kind == SDMX_ROW_REJECTED)
            imp->rejected++;
        else if (row.kind == SDMX_ROW_OBS ||
                 row.kind == SDMX_ROW_DELETE_MATCHING)
            rc = stage_row(imp, &row);
    }
    sdmx_row_fini(&row);
    imp->warnings += issues.warnings;
    uint64_t committed_before = imp->rows_committed;
    if (rc == OBS_OK && imp->commit_rows > 0 &&
        imp->ops.n >= imp->commit_rows) {
        rc = commit_import_part(self, imp);
        if (rc != OBS_OK)
            log_warnr(rc, "import %" PRIu64 " of '%s': part %" PRIu64 " failed",
                      imp->id, imp->source, imp->parts + 1);
    }
    if (rc != OBS_OK && committed_before > 0) {
        ctl_reply_error(self->ctl, peer, rc,
                        "import %" PRIu64 " failed: %s; %" PRIu64
                        " row(s) of it were committed before (batch %s)",
                        imp->id, obs_strerror(rc), committed_before,
                        imp->batch_id);
        import_free(imp);
        *slot = NULL;
    } else if (rc != OBS_OK) {
        ctl_reply_error(self->ctl, peer, rc, "import %" PRIu64 " failed: %s",
                        imp->id, obs_strerror(rc));
        import_free(imp);
        *slot = NULL;
    } else {
        reply_progress(self, peer, imp, &issues);
    }
    issue_list_fini(&issues);
}

void
import_on_finish(engine_t *self, const ctl_peer_t *peer,
                 const msg_import_finish_t *r)
{
    import_t **slot = import_find(self, r->import_id);
    if (slot == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_ENOENT,
                        "no open import %" PRIu64 " (finished or expired)",
                        r->import_id);
        return;
    }
    import_t *imp = *slot;
    *slot = NULL;
    if (r->abort || (imp->strict && imp->rejected > 0)) {
        log_info("import %" PRIu64 " of '%s' %s; %" PRIu64
                 " row(s) committed in parts before",
                 imp->id, imp->source,
                 r->abort ? "aborted by the client"
                          : "not committed: strict and rows rejected",
                 imp->rows_committed);
        api_reply_summary(self, peer, NULL, &imp->counts, imp->rejected,
                          imp->parts > 0, imp->parts > 0 ? imp->batch_id : "");
        import_free(imp);
        return;
    }
    pending_t *p = commit_pending_new(peer, "imp", hlc_wall_ms());
    if (p == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_ENOMEM, "out of memory");
        import_free(imp);
        return;
    }
    p->is_import = true;
    p->dry_run = imp->dry_run;
    p->ops = imp->ops;
    memset(&imp->ops, 0, sizeof(imp->ops));
    p->rejected = imp->rejected;
    p->issues.warnings = imp->warnings;
    p->prior = imp->counts;
    p->rows_committed_before = imp->rows_committed;
    (void)snprintf(p->batch_id, sizeof(p->batch_id), "%s", imp->batch_id);
    log_info("import %" PRIu64 " of '%s': committing %zu row(s), %" PRIu64
             " rejected, after %" PRIu64 " row(s) in %" PRIu64 " part(s)",
             imp->id, imp->source, p->ops.n, imp->rejected, imp->rows_committed,
             imp->parts);
    import_free(imp);
    commit_queue(self, p);
}

void
import_expire(engine_t *self)
{
    uint64_t now = hlc_mono_ms();
    for (size_t i = 0; i < IMPORTS_MAX; i++) {
        import_t *imp = self->imports[i];
        if (imp &&
            now - imp->last_active_ms > self->cfg->import_idle_timeout * 1000) {
            log_notice("import %" PRIu64 " of '%s' dropped after %" PRIu64
                       " s idle; %" PRIu64 " row(s) of it were committed in "
                       "parts before (batch %s), the rest was not stored",
                       imp->id, imp->source, self->cfg->import_idle_timeout,
                       imp->rows_committed, imp->batch_id);
            import_free(imp);
            self->imports[i] = NULL;
        }
    }
}

bool
import_any_open(const engine_t *self)
{
    for (size_t i = 0; i < IMPORTS_MAX; i++)
        if (self->imports[i])
            return true;
    return false;
}

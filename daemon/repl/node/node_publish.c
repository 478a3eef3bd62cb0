/*
 * node_publish.c - the node's outbox on its way to the hub (PROTOCOL.md §5):
 * Publishes read from the outbox in origin_seq order and sized by the link
 * (link.h), what a PublishAck says, the outbox trimmed only after the hub
 * acknowledged a durable commit, put back when the hub lost our changes,
 * and renumbered or re-stamped (node_rebase.h) when a Welcome shows they
 * would be dropped or refused otherwise.
 *
 * It decides nothing about the protocol (repl_fsm.c does: the window of
 * unacknowledged batches, what to resend); repl_node.c calls it for the
 * state machine's SEND_PUBLISH, ACK_OUTBOX and RESTORE_OUTBOX actions, for
 * each PublishAck and Welcome, and from cron. Threading: the engine's loop
 * only. Ownership: messages are borrowed; a Publish borrows the outbox's
 * bytes from a read transaction that outlives its encoding.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "node_int.h"
#include "obs_err.h"

typedef struct {
    msg_bytes_t *items;
    size_t n;
    uint64_t first, last;
    uint64_t stamp_limit; /* changes stamped past it wait (UINT64_MAX: none) */
    bool held;            /* ... and one did */
} outbatch_t;

static int
outbox_cb(uint64_t origin_seq, const uint8_t *key, size_t klen,
          const uint8_t *rec, size_t rlen, void *arg)
{
    (void)key;
    (void)klen;
    outbatch_t *b = arg;
    obs_version_t ver;
    if (b->stamp_limit != UINT64_MAX &&
        (codec_obs_decode_version(rec, rlen, &ver) != OBS_OK ||
         ver.hlc > b->stamp_limit)) {
        b->held = true; /* the hub would refuse it: see pub_limit */
        return 1;
    }
    /* zero copy: the outbox holds each change encoded as it goes out */
    b->items[b->n] = (msg_bytes_t){rec, rlen};
    if (b->n == 0)
        b->first = origin_seq;
    b->last = origin_seq;
    b->n++;
    return 0;
}

/* The stamp past which the hub would refuse a change of ours now (our
 * estimate of its clock + its bound - a margin: node_rebase.h), or
 * UINT64_MAX when nothing of ours can be stamped past it (every local stamp
 * is at most our HLC) or the hub's clock is unknown. */
static uint64_t
pub_limit(repl_node_t *self)
{
    uint64_t hub_now = hlc_ref_now(&self->hub_clock, node_now_ms());
    if (hub_now == 0)
        return UINT64_MAX;
    uint64_t limit = node_stamp_bound(hub_now);
    return self->env.hlc->last > limit ? limit : UINT64_MAX;
}

uint64_t
pub_send(repl_node_t *self, uint64_t after)
{
    if (!link_may_send(&self->up))
        return 0; /* the link is full: the next ack sends it */
    outbatch_t b = {.items = calloc(REPL_BATCH_MAX, sizeof(msg_bytes_t)),
                    .stamp_limit = pub_limit(self)};
    if (b.items == NULL)
        return 0;
    obsdb_txn_t *txn = NULL;
    int rc = obsdb_begin(self->env.db, false, &txn);
    if (rc == OBS_OK) /* sized for the link (link.h) */
        rc = obsdb_outbox_walk_raw(txn, after, REPL_BATCH_MAX,
                                   link_batch_bytes(&self->up), outbox_cb, &b);
    if (rc == 1) /* stopped before a change stamped too far ahead */
        rc = OBS_OK;
    if (b.held && b.n == 0 && self->pending_rejects == 0) {
        self->pending_rejects = self->fsm.outbox_last - after;
        if (node_now_ms() - self->held_warned_ms >= 60000) { /* once a min */
            self->held_warned_ms = node_now_ms();
            log_warnx("node: %" PRIu64 " change(s) from origin_seq %" PRIu64
                      " are stamped further ahead of the hub's clock than "
                      "it accepts: they wait in the outbox",
                      self->pending_rejects, after + 1);
        }
    } else if (b.n > 0) {
        self->pending_rejects = 0;
    }
    if (rc == OBS_OK && b.n > 0) {
        msg_t m = {.type = MSG_PUBLISH};
        m.u.publish.first_seq = b.first;
        m.u.publish.last_seq = b.last;
        m.u.publish.changes = (msg_changes_t){b.items, b.n};
        /* encoded while the map pages are valid */
        link_sent(&self->up, node_send(self, &m), b.last, hlc_mono_us());
    } else if (rc != OBS_OK) {
        log_warnr(rc, "node: reading the outbox");
    }
    obsdb_abort(&txn);
    free(b.items);
    return b.n > 0 && rc == OBS_OK ? b.last : 0;
}

void
pub_on_ack(repl_node_t *self, const msg_publish_ack_t *a)
{
    if (link_confirm_upto(&self->up, a->acked_seq, hlc_mono_us()) > 0)
        self->progress = true;
    if (a->resend_from != 0) /* a resend: what was in flight is forgotten */
        link_reset(&self->up);
    for (size_t i = 0; i < a->rejects.n; i++) {
        const msg_issue_t *r = &a->rejects.items[i];
        bool clock = strcmp(r->rule, "R-clock") == 0;
        if (clock && r->line > 0 && self->fsm.outbox_last >= r->line)
            self->pending_rejects = self->fsm.outbox_last - r->line + 1;
        if (i < 5)
            log_warnx("node: hub %s change %" PRIu64 ": %s: %s",
                      clock ? "refused" : "rejected", r->line, r->rule,
                      r->message);
    }
}

void
pub_ack(repl_node_t *self, uint64_t upto)
{
    if (upto <= self->trimmed)
        return;
    obsdb_txn_t *txn = NULL;
    /* lazy: entries a crash brings back are resent, and the hub drops them */
    int rc = obsdb_begin_lazy(self->env.db, &txn);
    if (rc == OBS_OK)
        rc = obsdb_outbox_ack(txn, upto);
    if (rc == OBS_OK)
        rc = obsdb_meta_put_u64(txn, "pub_acked", upto);
    if (rc == OBS_OK)
        rc = obsdb_commit(&txn);
    else
        obsdb_abort(&txn);
    if (rc != OBS_OK) /* harmless: the entries are resent and deduplicated */
        log_warnr(rc, "node: trimming the outbox up to %" PRIu64, upto);
    else
        self->trimmed = upto;
    self->trimmed_ms = node_now_ms();
    if (self->trimmed >= self->fsm.outbox_last)
        self->trim_now = false;
}

void
pub_maybe_ack(repl_node_t *self, uint64_t now)
{
    uint64_t acked = self->fsm.pub_acked;
    if (acked > self->trimmed &&
        (self->trim_now || now - self->trimmed_ms >= OUTBOX_TRIM_MS ||
         acked - self->trimmed >= OUTBOX_TRIM_EVERY))
        pub_ack(self, acked);
}

/* The hub holds our changes only up to `after` although it acknowledged
 * more: it was restored from a backup or wiped. Our later changes go back to
 * the outbox from the stored versions and are published again. */
void
pub_restore(repl_node_t *self, uint64_t after)
{
    size_t n = 0;
    obsdb_txn_t *txn = NULL;
    int rc = obsdb_begin(self->env.db, true, &txn);
    if (rc == OBS_OK)
        rc = obsdb_outbox_restore(txn, after, UINT64_MAX, &n);
    if (rc == OBS_OK)
        rc = obsdb_meta_put_u64(txn, "pub_acked", after);
    if (rc == OBS_OK)
        rc = obsdb_commit(&txn);
    else
        obsdb_abort(&txn);
    if (rc != OBS_OK) {
        log_errr(rc, "node: could not restore the outbox after %" PRIu64,
                 after);
        return;
    }
    self->trimmed = after;
    self->trim_now = true; /* see trim_now */
    log_warnx("node: the hub holds our changes only up to %" PRIu64
              " (restored from a backup, or wiped?): %zu change(s) put "
              "back in the outbox to publish again",
              after, n);
}

/* Takes the hub's clock, and renumbers (this store is an older copy of
 * itself) or re-stamps (stamped too far ahead of the hub's clock) the
 * changes not acknowledged yet, so that none is dropped or refused
 * (node_rebase.h). When the rewrite fails, the session is closed before
 * anything is published, and the next Welcome tries again. */
bool
pub_rebase_on_welcome(repl_node_t *self, const msg_welcome_t *w, rn_event_t *ev)
{
    hlc_ref_sample(&self->hub_clock, w->now_ms, node_now_ms());
    uint64_t last = w->last_origin_seq, acked = self->fsm.pub_acked;
    uint64_t made = *self->env.origin_seq;
    bool older = false;
    int rc = node_rebase_is_older_copy(self->env.db, last, w->last_origin_hlc,
                                       made, acked, &older);
    if (rc != OBS_OK) { /* not knowing, nothing may be dropped as acked */
        log_warnr(rc, "node: reading the outbox to compare with the hub's");
        return false;
    }
    rebase_plan_t plan = {.after = last > acked ? last : acked,
                          .stamp_limit = UINT64_MAX,
                          .floor_hlc = w->last_origin_hlc};
    uint64_t hub_now = hlc_ref_now(&self->hub_clock, node_now_ms());
    if (hub_now != 0 && last >= acked) {
        plan.hub_now_ms = hub_now;
        plan.stamp_limit = node_stamp_bound(hub_now);
    }
    if (older) {
        plan.after = acked;
        plan.renumber_after = last;
    }
    if (!older && self->env.hlc->last <= plan.stamp_limit)
        return true; /* nothing of ours is stamped past the hub's bound */
    rebase_result_t res;
    rc = node_rebase_run(self->env.db, &plan, self->env.hlc,
                         self->env.origin_seq, &res);
    if (rc != OBS_OK) {
        log_errr(rc, "node: could not renumber or re-stamp the outbox");
        return false;
    }
    self->restamped += res.restamped;
    self->renumbered += res.renumbered;
    self->pending_rejects = res.held;
    if (older) {
        self->trimmed = last; /* stored with the rewrite */
        ev->to = res.last_seq;
        log_warnx("node: this store is an older copy of itself (restored "
                  "from a backup?): the hub holds our changes up to %" PRIu64
                  " and this copy made %" PRIu64 "; %zu change(s) not "
                  "acknowledged are renumbered %" PRIu64 "..%" PRIu64
                  " and published, the hub's come back through the log",
                  last, made, res.renumbered, last + 1, res.last_seq);
    }
    if (plan.stamp_limit != UINT64_MAX && res.restamped > 0)
        log_warnx("node: %zu change(s) stamped more than %d s ahead of the "
                  "hub's clock (this clock is %+.1f s off) re-stamped from "
                  "the hub's clock",
                  res.restamped, (REPL_MAX_SKEW_MS - REBASE_MARGIN_MS) / 1000,
                  (double)hlc_ref_skew(&self->hub_clock, hlc_wall_ms(),
                                       node_now_ms()) /
                      1000.0);
    if (res.held > 0)
        log_warnx("node: %zu change(s) stamped further ahead of the hub's "
                  "clock than it accepts cannot be re-stamped (a new stamp "
                  "must stay above what the hub holds of ours, and that is "
                  "past its bound too: its clock went back?): they wait in "
                  "the outbox for the hub's clock",
                  res.held);
    else if (!older && res.restamped == 0)
        log_warnx("node: this node's clock stamp ran past the hub's bound; "
                  "brought back to the hub's clock");
    return true;
}

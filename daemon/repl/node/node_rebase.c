/*
 * node_rebase.c - renumbers and re-stamps a node's unacknowledged changes
 * (see node_rebase.h). The outbox is read in origin_seq order, which is also
 * the order of its stamps (one origin's stamps increase), so a change
 * re-stamped makes every later one re-stamped too, and the base of a later
 * change that names an earlier rewritten one follows it.
 */
#include "node_rebase.h"

#include <stdlib.h>
#include <string.h>

#include "obs_err.h"

/* One change rewritten: its old stamp, its new stamp and number. */
typedef struct {
    uint64_t old_hlc, new_hlc, new_seq;
} moved_t;

typedef struct {
    const rebase_plan_t *plan;
    uint64_t next_seq; /* 0: numbers kept */
    hlc_t clock;       /* new stamps */
    bool restamping;
    bool stuck; /* no stamp both above what a change must beat and within
                   the hub's bound: it and the rest keep theirs */
    moved_t *moved;
    size_t n_moved, cap_moved;
    rebase_result_t *res;
} rebase_t;

static const moved_t *
moved_find(const rebase_t *r, uint64_t old_hlc)
{
    size_t lo = 0, hi = r->n_moved; /* sorted: stamps increase */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->moved[mid].old_hlc < old_hlc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->n_moved && r->moved[lo].old_hlc == old_hlc ? &r->moved[lo]
                                                              : NULL;
}

static int
moved_add(rebase_t *r, uint64_t old_hlc, const obs_version_t *v)
{
    if (r->n_moved > 0 && old_hlc <= r->moved[r->n_moved - 1].old_hlc)
        return OBS_OK; /* out of order (cannot happen): no base follows it */
    if (r->n_moved == r->cap_moved) {
        size_t cap = r->cap_moved ? r->cap_moved * 2 : 256;
        moved_t *m = realloc(r->moved, cap * sizeof(*m));
        if (m == NULL)
            return OBS_ENOMEM;
        r->moved = m;
        r->cap_moved = cap;
    }
    r->moved[r->n_moved++] = (moved_t){old_hlc, v->hlc, v->origin_seq};
    return OBS_OK;
}

static int
rebase_one(obs_t *o, void *arg)
{
    rebase_t *r = arg;
    obs_version_t *v = &o->ver;
    uint64_t old_hlc = v->hlc, old_seq = v->origin_seq;
    if (v->base_hlc != 0 && strcmp(v->base_origin, v->origin) == 0) {
        const moved_t *m = moved_find(r, v->base_hlc);
        if (m != NULL) {
            v->base_hlc = m->new_hlc;
            v->base_origin_seq = m->new_seq;
        }
    }
    if (r->next_seq != 0)
        v->origin_seq = r->next_seq++;
    /* A new stamp is above the version this change replaced, so it still
     * wins over it, and above every stamp of ours the hub holds. */
    if (v->base_hlc > r->clock.last)
        r->clock.last = v->base_hlc;
    if (!r->stuck && (r->restamping || v->hlc > r->plan->stamp_limit)) {
        r->restamping = true;
        hlc_t next = r->clock;
        uint64_t stamp = hlc_now(&next, r->plan->hub_now_ms);
        if (stamp <= r->plan->stamp_limit) {
            r->clock = next;
            v->hlc = stamp;
            r->res->restamped++;
        } else {
            r->stuck = true; /* the hub's clock is behind what it took */
        }
    }
    if (r->stuck)
        r->res->held++;
    if (v->hlc > r->clock.last)
        r->clock.last = v->hlc;
    r->res->renumbered += v->origin_seq != old_seq;
    r->res->last_seq = v->origin_seq;
    r->res->rewritten++;
    return v->hlc != old_hlc || v->origin_seq != old_seq
               ? moved_add(r, old_hlc, v)
               : OBS_OK;
}

int
node_rebase_is_older_copy(obsdb_t *db, uint64_t last, uint64_t last_hlc,
                          uint64_t made, uint64_t pub_acked, bool *older)
{
    *older = false;
    if (last <= pub_acked)
        return OBS_OK; /* acknowledged to this very store */
    if (made < last) {
        *older = true; /* the hub holds numbers we never made */
        return OBS_OK;
    }
    if (last_hlc == 0)
        return OBS_OK;
    obsdb_txn_t *txn = NULL;
    uint64_t ours = 0;
    int rc = obsdb_begin(db, false, &txn);
    if (rc == OBS_OK)
        rc = obsdb_outbox_hlc(txn, last, &ours);
    obsdb_abort(&txn);
    if (rc == OBS_ENOENT)
        return OBS_OK;
    *older = rc == OBS_OK && ours != last_hlc;
    return rc;
}

/* Whether the outbox after plan->after holds a change to rewrite: always
 * when renumbering; when only re-stamping, when its newest change (the
 * highest stamp: ours increase) is past the limit. Else only the HLC comes
 * back, and the outbox is not read into memory for nothing. */
static int
needs_rewrite(obsdb_txn_t *txn, const rebase_plan_t *plan, bool *rewrite)
{
    uint64_t last = 0, newest = 0;
    *rewrite = true;
    if (plan->renumber_after != 0)
        return OBS_OK;
    int rc = obsdb_outbox_last(txn, &last);
    if (rc == OBS_OK && last <= plan->after) {
        *rewrite = false;
        return OBS_OK;
    }
    if (rc == OBS_OK)
        rc = obsdb_outbox_hlc(txn, last, &newest);
    if (rc == OBS_OK)
        *rewrite = newest > plan->stamp_limit;
    return rc == OBS_ENOENT ? OBS_OK : rc;
}

/* The highest origin_seq made once the outbox is renumbered. */
static uint64_t
new_origin_seq(const rebase_plan_t *plan, const rebase_result_t *res,
               uint64_t origin_seq)
{
    uint64_t seq = origin_seq;
    if (res->last_seq > seq)
        seq = res->last_seq;
    if (plan->renumber_after > seq)
        seq = plan->renumber_after;
    return seq;
}

/* Our clock ran past what the hub takes: back to its clock (stamp() keeps
 * every new version above the one it replaces), or to the last re-stamp. */
static uint64_t
new_clock(const rebase_plan_t *plan, const hlc_t *hlc, const hlc_t *restamped)
{
    uint64_t clock = hlc->last;
    if (clock > plan->stamp_limit) {
        clock = HLC_MAKE(plan->hub_now_ms, 0);
        if (restamped->last > clock)
            clock = restamped->last;
    }
    return clock;
}

/* The node's meta in the rebase's transaction: acked (0: unchanged),
 * origin_seq and hlc. */
static int
put_meta(obsdb_txn_t *txn, uint64_t acked, uint64_t seq, uint64_t clock)
{
    int rc = OBS_OK;
    if (acked != 0)
        rc = obsdb_meta_put_u64(txn, "pub_acked", acked);
    if (rc == OBS_OK)
        rc = obsdb_meta_put_u64(txn, "origin_seq", seq);
    if (rc == OBS_OK)
        rc = obsdb_meta_put_u64(txn, "hlc", clock);
    return rc;
}

int
node_rebase_run(obsdb_t *db, const rebase_plan_t *plan, hlc_t *hlc,
                uint64_t *origin_seq, rebase_result_t *res)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        rebase_t r = {.plan = plan,
                      .next_seq =
                          plan->renumber_after ? plan->renumber_after + 1 : 0,
                      .clock = {plan->floor_hlc},
                      .res = res};
        memset(res, 0, sizeof(*res));
        obsdb_txn_t *txn = NULL;
        bool rewrite = true;
        int rc = obsdb_begin(db, true, &txn);
        if (rc == OBS_OK)
            rc = needs_rewrite(txn, plan, &rewrite);
        if (rc == OBS_OK && rewrite)
            rc = obsdb_outbox_rewrite(txn, plan->after, rebase_one, &r, NULL);
        free(r.moved);
        uint64_t seq = new_origin_seq(plan, res, *origin_seq);
        uint64_t clock = new_clock(plan, hlc, &r.clock);
        if (rc == OBS_OK)
            rc = put_meta(txn, plan->renumber_after, seq, clock);
        if (rc == OBS_OK)
            rc = obsdb_commit(&txn);
        else
            obsdb_abort(&txn);
        if (rc == OBS_OK) {
            *origin_seq = seq;
            hlc->last = clock;
            if (res->last_seq == 0)
                res->last_seq = plan->renumber_after;
            return OBS_OK;
        }
        if (rc != OBS_ESTOREFULL || !obsdb_grow(db))
            return rc;
    }
    return OBS_ESTOREFULL;
}

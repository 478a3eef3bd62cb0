/*
 * node_rebase.h - puts a node's unacknowledged changes right before they are
 * published, when the hub's Welcome shows that they would be lost otherwise
 * (PROTOCOL.md §5.4, "A node restored from an older copy" and "Clocks"):
 *
 *   - renumbered after the hub's last origin_seq of ours, when this store is
 *     an older copy of itself (restored from a backup: the hub holds changes
 *     of ours under numbers this copy never made, or made again for other
 *     changes);
 *   - re-stamped from the hub's clock, when stamped further ahead of it than
 *     the hub accepts (this node's clock ran fast while it could not tell).
 *
 * Both rewrite the outbox and the stored versions in one synced transaction
 * (obsdb_outbox_rewrite), with the node's counters (pub_acked, origin_seq,
 * hlc), so a crash leaves either the old state (done again at the next
 * Welcome) or the new one. It decides nothing about sockets: the node's
 * replication glue calls it when a Welcome arrives (node_publish.c).
 * Loop thread only. Errors: OBS_E* codes; nothing is changed on error.
 */
#ifndef NODE_REBASE_H
#define NODE_REBASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hlc.h"
#include "obsdb.h"

/* A change stamped past the hub's bound less this margin is re-stamped
 * (and held while it cannot be): room for the error of our estimate of the
 * hub's clock (a one-way latency). Small, so that stamps the hub accepts,
 * which every node observes, are not held. */
#define REBASE_MARGIN_MS (5 * 1000)

typedef struct {
    uint64_t after;          /* outbox entries <= it are acknowledged */
    uint64_t renumber_after; /* 0: keep the numbers; else the first change
                                becomes renumber_after + 1, and so on, and
                                pub_acked becomes renumber_after */
    uint64_t stamp_limit;    /* re-stamp changes stamped above it (and every
                                one after them); UINT64_MAX: none */
    uint64_t hub_now_ms;     /* the hub's clock, for the new stamps */
    uint64_t floor_hlc;      /* new stamps are above it: the hub's hlc of
                                our last change it holds */
} rebase_plan_t;

typedef struct {
    size_t rewritten, renumbered, restamped;
    /* changes past the limit that could not be re-stamped: a new stamp must
     * beat the version the change replaced and our stamps the hub holds,
     * and those are already past the hub's bound (its clock went back).
     * They keep their stamps and wait (the node publishes nothing stamped
     * past the bound) until the hub's clock has caught up. */
    size_t held;
    uint64_t last_seq; /* highest origin_seq in the outbox after it */
} rebase_result_t;

/** Whether this store is an older copy of itself. The hub holds our changes
 * up to last, the last one stamped last_hlc (0: the hub does not say);
 * this store made changes up to made and knows the hub acknowledged up to
 * pub_acked. Older when the hub holds numbers this store never made, or
 * when our change numbered last is in the outbox with another stamp. When
 * neither can be told (last_hlc 0, or that change not in the outbox) the
 * store is taken as current. */
int node_rebase_is_older_copy(obsdb_t *db, uint64_t last, uint64_t last_hlc,
                              uint64_t made, uint64_t pub_acked, bool *older);

/** Rewrites the outbox after plan->after as planned, in one synced
 * transaction that also stores pub_acked (renumber_after when
 * renumbering), origin_seq (*origin_seq, raised to the last new number)
 * and the hlc (*hlc: brought back to the hub's clock when it ran past
 * stamp_limit). */
int node_rebase_run(obsdb_t *db, const rebase_plan_t *plan, hlc_t *hlc,
                    uint64_t *origin_seq, rebase_result_t *res);

#endif

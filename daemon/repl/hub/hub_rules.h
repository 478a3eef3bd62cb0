/*
 * hub_rules.h - whether the hub accepts a change: the one decision, pure.
 *
 * Two parts, because they are taken at two times. hub_rules_check needs only
 * the change, the structure and who sent it: is it the session's own (its
 * origin and provider), does its key fit every store, does it pass every
 * validation rule, is its content_hash the hash of its content. The checking
 * thread (hub_prep.c) takes it ahead for a whole Publish, and the loop
 * (hub_accept.c) takes it for what the thread left to it, the same function
 * either way. hub_rules_order needs the origin's last accepted number and the
 * hub's clock: next, duplicate, gap, or stamped too far ahead; the loop takes
 * it for every change.
 *
 * No I/O, no store, no clock reads (now is an argument). Ownership: all
 * borrowed for the call.
 */
#ifndef HUB_RULES_H
#define HUB_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "issue.h"
#include "obs.h"
#include "obs_key.h"
#include "validate.h"

typedef enum {
    HUB_ORDER_NEXT = 0,  /* origin_seq = last + 1 and a sane stamp */
    HUB_ORDER_DUPLICATE, /* at or below last: already accepted */
    HUB_ORDER_GAP,       /* beyond last + 1: the node resends from last + 1 */
    HUB_ORDER_CLOCK,     /* stamped more than max_skew_ms ahead of now_ms */
} hub_order_t;

/** Where a change with origin_seq seq and stamp hlc stands after the
 * origin's last accepted number last, at the hub's wall clock now_ms. */
hub_order_t hub_rules_order(uint64_t seq, uint64_t hlc, uint64_t last,
                            uint64_t now_ms, uint64_t max_skew_ms);

/** Whether change i of a Publish (bin, len bytes, decoded into o) may be
 * read at all: in the canonical encoding (codec_obs_canonical) and
 * numbered where it stands, origin_seq = expect_seq (the Publish's
 * first_seq + i). OBS_OK; OBS_EPROTO with why (cap bytes) worded for the
 * Goodbye that ends the session (PROTOCOL.md §5.3: the node's client is
 * at fault); OBS_ENOMEM. */
int hub_rules_wire(const uint8_t *bin, size_t len, const obs_t *o,
                   uint64_t expect_seq, char *why, size_t cap);

/** Checks change o (decoded) from the session of node_id and provider:
 * its key fits a store (rule "R-length"), it is the session's own
 * ("R-origin"), it passes validate_obs with vc (whose provider must be
 * the session's), its decimals are in normal form and its content_hash is
 * obs_content_hash's ("R-hash": a receiver never trusts a peer's hash). On
 * OBS_OK the key is in key (*klen bytes, OBS_KEY_MAX room). OBS_EREJECTED: one
 * issue saying why is added to reject (which may be NULL when the caller needs
 * only the verdict), its line o's origin_seq. Like validate_obs it may
 * normalise o's decimal texts (into vc->texts when set). */
int hub_rules_check(const validate_ctx_t *vc, obs_t *o, const char *node_id,
                    const char *provider, uint8_t *key, size_t *klen,
                    issue_list_t *reject);

#endif

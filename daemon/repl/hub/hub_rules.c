/*
 * hub_rules.c - whether the hub accepts a change (see hub_rules.h). Pure:
 * called by the checking thread and by the loop, so both decide alike.
 */
#include "hub_rules.h"

#include <inttypes.h>
#include <string.h>

#include "hlc.h"
#include "obs_err.h"
#include "obsdb.h"

hub_order_t
hub_rules_order(uint64_t seq, uint64_t hlc, uint64_t last, uint64_t now_ms,
                uint64_t max_skew_ms)
{
    if (seq <= last)
        return HUB_ORDER_DUPLICATE;
    if (seq > last + 1)
        return HUB_ORDER_GAP;
    /* One stamp from a clock far ahead would drag every clock of the
     * federation with it: such a change is refused, not observed. */
    if (HLC_MS(hlc) > now_ms + max_skew_ms)
        return HUB_ORDER_CLOCK;
    return HUB_ORDER_NEXT;
}

int
hub_rules_check(const validate_ctx_t *vc, obs_t *o, const char *node_id,
                const char *provider, uint8_t *key, size_t *klen,
                issue_list_t *reject)
{
    uint64_t seq = o->ver.origin_seq;
    /* logged under: validation normalises decimal texts, never the
     * identity */
    int n = obs_key_encode(o, key, OBS_KEY_MAX);
    if (n <= 0 || !obsdb_key_len_fits((size_t)n)) { /* every store refuses */
        if (reject)
            issue_add(reject, seq, "", "R-length", false,
                      "change %" PRIu64 " has a key longer than a store allows",
                      seq);
        return OBS_EREJECTED;
    }
    *klen = (size_t)n;
    /* The node's provider decides which REF_AREA it may write (rule 12).
     * Until CURVE authenticates nodes the hub takes the provider the Hello
     * names; a change must carry that same provider. */
    if (strcmp(o->ver.origin, node_id) != 0 ||
        strcmp(o->ver.provider, provider) != 0) {
        if (reject)
            issue_add(reject, seq, "", "R-origin", false,
                      "change %" PRIu64 " claims origin %s provider %s, not "
                      "the session's",
                      seq, o->ver.origin, o->ver.provider);
        return OBS_EREJECTED;
    }
    issue_list_t issues;
    issue_list_init(&issues, 4);
    int rc = validate_obs(vc, structure_find_dataflow(vc->st, o->dataflow), o,
                          seq, &issues);
    if (rc != OBS_OK && reject && issues.n)
        issue_add(reject, seq, issues.items[0].column, issues.items[0].rule,
                  false, "%s", issues.items[0].message);
    else if (rc != OBS_OK && reject)
        issue_add(reject, seq, "", "R0-shape", false,
                  "change %" PRIu64 " failed validation: %s", seq,
                  obs_strerror(rc));
    issue_list_fini(&issues);
    return rc == OBS_OK ? OBS_OK : OBS_EREJECTED;
}

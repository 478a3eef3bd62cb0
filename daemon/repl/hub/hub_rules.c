/*
 * hub_rules.c - whether the hub accepts a change (see hub_rules.h). Pure:
 * called by the checking thread and by the loop, so both decide alike.
 */
#include "hub_rules.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
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
hub_rules_wire(const uint8_t *bin, size_t len, const obs_t *o,
               uint64_t expect_seq, char *why, size_t cap)
{
    const char *what = NULL;
    size_t at = 0;
    int rc = codec_obs_canonical(bin, len, o, &what, &at);
    if (rc == OBS_EPROTO) {
        (void)snprintf(why, cap, "change %" PRIu64 ": %s (byte %zu)",
                       expect_seq, what, at);
        return rc;
    }
    if (rc == OBS_OK && o->ver.origin_seq != expect_seq) {
        (void)snprintf(why, cap,
                       "change %" PRIu64
                       " of the Publish says origin_seq %" PRIu64,
                       expect_seq, o->ver.origin_seq);
        return OBS_EPROTO;
    }
    if (rc == OBS_OK &&
        (o->ver.tombstone != (o->ver.action == OBS_ACTION_DELETE) ||
         (o->ver.tombstone && ((o->value && o->value[0]) || o->n_attrs > 0)))) {
        (void)snprintf(why, cap,
                       "change %" PRIu64 ": a tombstone goes with "
                       "ACTION_DELETE and only with it, and has no value "
                       "and no attributes",
                       expect_seq);
        return OBS_EPROTO;
    }
    return rc;
}

/* Whether validation rewrote a decimal text of o (it points elsewhere
 * now): the change did not carry its decimals in normal form. */
static bool
rewritten(const obs_t *o, const char *value, const char *const *attr_values,
          size_t n_attrs)
{
    if (o->value != value || o->n_attrs != n_attrs)
        return true;
    for (size_t i = 0; i < n_attrs; i++)
        if (o->attrs[i].value != attr_values[i])
            return true;
    return false;
}

int
hub_rules_check(const validate_ctx_t *vc, obs_t *o, const char *node_id,
                const char *provider, uint8_t *key, size_t *klen,
                issue_list_t *reject)
{
    uint64_t seq = o->ver.origin_seq;
    /* The node's provider decides which REF_AREA it may write (rule 12).
     * The session's provider is its key's (hub_security.c; in plaintext
     * its Hello's); a change must carry that same provider. */
    if (strcmp(o->ver.origin, node_id) != 0 ||
        strcmp(o->ver.provider, provider) != 0) {
        if (reject)
            issue_add(reject, seq, "", "R-origin", false,
                      "change %" PRIu64 " claims origin %s provider %s, not "
                      "the session's",
                      seq, o->ver.origin, o->ver.provider);
        return OBS_EREJECTED;
    }
    /* a key names its dataflow one way, or one observation has two keys */
    const sdmx_dataflow_t *df = structure_find_dataflow(vc->st, o->dataflow);
    if (df != NULL && strcmp(df->urn, o->dataflow) != 0) {
        if (reject)
            issue_add(reject, seq, "", "R1-dataflow", false,
                      "change %" PRIu64 " names dataflow %s, not %s in full",
                      seq, o->dataflow, df->urn);
        return OBS_EREJECTED;
    }
    const char *value = o->value;
    const char *attr_values[OBS_MAX_ATTRS] = {NULL};
    size_t n_attrs = o->n_attrs < OBS_MAX_ATTRS ? o->n_attrs : OBS_MAX_ATTRS;
    for (size_t i = 0; i < n_attrs; i++)
        attr_values[i] = o->attrs[i].value;
    issue_list_t issues;
    issue_list_init(&issues, 4);
    int rc = validate_obs(vc, df, o, seq, &issues);
    if (rc != OBS_OK) {
        if (reject && issues.n)
            issue_add(reject, seq, issues.items[0].column, issues.items[0].rule,
                      false, "%s", issues.items[0].message);
        else if (reject)
            issue_add(reject, seq, "", "R0-shape", false,
                      "change %" PRIu64 " failed validation: %s", seq,
                      obs_strerror(rc));
        issue_list_fini(&issues);
        return OBS_EREJECTED;
    }
    issue_list_fini(&issues);
    /* logged under (after validation, which rewrites decimal texts, never
     * the identity) */
    int n = obs_key_encode(o, key, OBS_KEY_MAX);
    if (n <= 0 || !obsdb_key_len_fits((size_t)n)) { /* every store refuses */
        if (reject)
            issue_add(reject, seq, "", "R-length", false,
                      "change %" PRIu64 " has a key longer than a store allows",
                      seq);
        return OBS_EREJECTED;
    }
    *klen = (size_t)n;
    /* a replicated change is stored as sent: the hub rewrites nothing */
    if (rewritten(o, value, attr_values, n_attrs)) {
        if (reject)
            issue_add(reject, seq, "", "R4-decimal", false,
                      "change %" PRIu64 " carries a decimal not in normal "
                      "form (blanks, a leading '+', or nan not written NaN)",
                      seq);
        return OBS_EREJECTED;
    }
    uint8_t hash[OBS_HASH_LEN];
    obs_content_hash(o, hash);
    if (memcmp(hash, o->ver.content_hash, OBS_HASH_LEN) == 0)
        return OBS_OK;
    if (reject)
        issue_add(reject, seq, "", "R-hash", false,
                  "change %" PRIu64 " has a content_hash that is not the "
                  "SHA-256 of its content (PROTOCOL.md §3)",
                  seq);
    return OBS_EREJECTED;
}

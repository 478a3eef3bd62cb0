/*
 * test_obs.c - the observation model: identity, attributes kept sorted,
 * deep copies, the content hash (what it covers and what it leaves out),
 * and the series key text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "obs.h"
#include "obs_err.h"
#include "sha256.h"

#define assert_ok(expr)                                   \
    do {                                                  \
        int rc_ = (expr);                                 \
        if (rc_ != OBS_OK)                                \
            fail_msg("%s: %s", #expr, obs_strerror(rc_)); \
    } while (0)

static const char *const col_dims[] = {"A",  "COL", "VC_IHR_PSRC", "_T",
                                       "_T", "_T",  "HARM"};

static void
make_obs(obs_t *o)
{
    obs_init(o);
    assert_ok(obs_set_identity(o, "OID:DF_VIOLENCE(1.0)", col_dims, 7, "2019"));
    assert_ok(obs_set_value(o, "25.7"));
    assert_ok(obs_set_attr(o, "UNIT_MEASURE", "PER_100000_POP"));
    assert_ok(obs_set_attr(o, "OBS_STATUS", "A"));
}

static void
test_obs_set_identity_copies_strings(void **state)
{
    (void)state;
    obs_t o;
    obs_init(&o);
    char df[] = "OID:DF_VIOLENCE(1.0)";
    assert_ok(obs_set_identity(&o, df, col_dims, 7, "2019"));
    df[0] = 'X';
    assert_string_equal(o.dataflow, "OID:DF_VIOLENCE(1.0)");
    assert_int_equal(o.n_dims, 7);
    assert_string_equal(o.dims[1], "COL");
    assert_string_equal(o.time_period, "2019");
    obs_fini(&o);
}

static void
test_obs_set_identity_rejects_too_many_dims_unchanged(void **state)
{
    (void)state;
    obs_t o;
    make_obs(&o);
    const char *dims[OBS_MAX_DIMS + 1];
    for (size_t i = 0; i <= OBS_MAX_DIMS; i++)
        dims[i] = "X";
    assert_int_equal(obs_set_identity(&o, "DF", dims, OBS_MAX_DIMS + 1, "2020"),
                     OBS_EINVAL);
    assert_int_equal(obs_set_identity(&o, NULL, dims, 1, "2020"), OBS_EINVAL);
    assert_int_equal(obs_set_identity(&o, "DF", NULL, 1, "2020"), OBS_EINVAL);
    assert_string_equal(o.time_period, "2019");
    assert_int_equal(o.n_dims, 7);
    obs_fini(&o);
}

static void
test_obs_set_value_null_means_empty(void **state)
{
    (void)state;
    obs_t o;
    make_obs(&o);
    assert_ok(obs_set_value(&o, NULL));
    assert_string_equal(o.value, "");
    obs_fini(&o);
}

static void
test_obs_attrs_stay_sorted_and_unique(void **state)
{
    (void)state;
    obs_t o;
    obs_init(&o);
    const char *ids[] = {"UNIT_MULT", "COMMENT_OBS", "OBS_STATUS",
                         "DECIMALS",  "CONF_STATUS", "OBS_STATUS"};
    for (size_t i = 0; i < 6; i++)
        assert_ok(obs_set_attr(&o, ids[i], "v"));
    assert_int_equal(o.n_attrs, 5);
    for (size_t i = 1; i < o.n_attrs; i++)
        assert_true(strcmp(o.attrs[i - 1].id, o.attrs[i].id) < 0);
    obs_fini(&o);
}

static void
test_obs_get_attr_finds_and_misses(void **state)
{
    (void)state;
    obs_t o;
    make_obs(&o);
    assert_string_equal(obs_get_attr(&o, "OBS_STATUS"), "A");
    assert_string_equal(obs_get_attr(&o, "UNIT_MEASURE"), "PER_100000_POP");
    assert_null(obs_get_attr(&o, "CONF_STATUS"));
    assert_null(obs_get_attr(&o, "ZZZ"));
    obs_fini(&o);
}

static void
test_obs_set_attr_replaces_value(void **state)
{
    (void)state;
    obs_t o;
    make_obs(&o);
    assert_ok(obs_set_attr(&o, "OBS_STATUS", "P"));
    assert_string_equal(obs_get_attr(&o, "OBS_STATUS"), "P");
    assert_int_equal(o.n_attrs, 2);
    obs_fini(&o);
}

static void
test_obs_set_attr_empty_or_null_removes(void **state)
{
    (void)state;
    obs_t o;
    make_obs(&o);
    assert_ok(obs_set_attr(&o, "OBS_STATUS", ""));
    assert_null(obs_get_attr(&o, "OBS_STATUS"));
    assert_ok(obs_set_attr(&o, "UNIT_MEASURE", NULL));
    assert_int_equal(o.n_attrs, 0);
    assert_ok(obs_set_attr(&o, "ABSENT", NULL));
    obs_fini(&o);
}

static void
test_obs_set_attr_caps_count(void **state)
{
    (void)state;
    obs_t o;
    obs_init(&o);
    char id[16];
    for (int i = 0; i < OBS_MAX_ATTRS; i++) {
        snprintf(id, sizeof(id), "A%03d", i);
        assert_ok(obs_set_attr(&o, id, "x"));
    }
    assert_int_equal(obs_set_attr(&o, "ZZZ", "x"), OBS_ETOOBIG);
    assert_ok(obs_set_attr(&o, "A000", "y")); /* replacing is still fine */
    obs_fini(&o);
}

static void
test_obs_copy_is_deep(void **state)
{
    (void)state;
    obs_t a, b;
    make_obs(&a);
    a.ver.hlc = 42;
    obs_init(&b);
    assert_ok(obs_set_value(&b, "old")); /* dst is finalised first */
    assert_ok(obs_copy(&b, &a));
    assert_ptr_not_equal(a.dims, b.dims);
    assert_ptr_not_equal(a.attrs, b.attrs);
    assert_string_equal(b.dims[6], "HARM");
    assert_string_equal(b.value, "25.7");
    assert_string_equal(obs_get_attr(&b, "OBS_STATUS"), "A");
    assert_int_equal(b.ver.hlc, 42);
    obs_fini(&a);
    assert_string_equal(b.dataflow, "OID:DF_VIOLENCE(1.0)");
    obs_fini(&b);
}

static void
test_obs_fini_reinitialises(void **state)
{
    (void)state;
    obs_t o;
    make_obs(&o);
    obs_fini(&o);
    assert_null(o.dataflow);
    assert_int_equal(o.n_attrs, 0);
    obs_fini(&o); /* twice is fine */
    obs_fini(NULL);
}

static void
test_obs_content_hash_ignores_identity_and_version(void **state)
{
    (void)state;
    obs_t a, b;
    make_obs(&a);
    make_obs(&b);
    const char *dims[] = {"A", "MEX"};
    assert_ok(obs_set_identity(&b, "OID:DF_DRUG_USE(1.0)", dims, 2, "2020"));
    b.ver.hlc = 99;
    snprintf(b.ver.origin, sizeof(b.ver.origin), "%s", "node-mex");
    uint8_t ha[OBS_HASH_LEN], hb[OBS_HASH_LEN];
    obs_content_hash(&a, ha);
    obs_content_hash(&b, hb);
    assert_memory_equal(ha, hb, OBS_HASH_LEN);
    obs_fini(&a);
    obs_fini(&b);
}

static void
assert_hash_differs(const obs_t *a, const obs_t *b)
{
    uint8_t ha[OBS_HASH_LEN], hb[OBS_HASH_LEN];
    obs_content_hash(a, ha);
    obs_content_hash(b, hb);
    assert_memory_not_equal(ha, hb, OBS_HASH_LEN);
}

static void
test_obs_content_hash_sees_value_attrs_and_tombstone(void **state)
{
    (void)state;
    obs_t a, b;
    make_obs(&a);
    make_obs(&b);
    assert_ok(obs_set_value(&b, "25.70")); /* exact text, not the number */
    assert_hash_differs(&a, &b);
    assert_ok(obs_set_value(&b, "25.7"));
    assert_ok(obs_set_attr(&b, "OBS_STATUS", "P"));
    assert_hash_differs(&a, &b);
    assert_ok(obs_set_attr(&b, "OBS_STATUS", "A"));
    b.ver.tombstone = true;
    assert_hash_differs(&a, &b);
    obs_fini(&a);
    obs_fini(&b);
}

static size_t
put_field(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    memcpy(p + 8, s, n);
    return 8 + n;
}

/* The hash is SHA-256 of the layout obs.h documents, byte for byte (stores
 * and peers compare stored hashes: it may never change), for short and
 * long fields (a value past the hasher's 512-byte gathering buffer). */
static void
test_obs_content_hash_is_sha256_of_the_layout(void **state)
{
    (void)state;
    static char comment[1500];
    for (size_t len = 0; len < sizeof(comment); len += 97) {
        memset(comment, 'c', len);
        comment[len] = '\0';
        obs_t o;
        make_obs(&o);
        if (len > 0)
            assert_ok(obs_set_attr(&o, "COMMENT_OBS", comment));
        static uint8_t lay[4096];
        size_t n = put_field(lay, "obs-content-v1");
        n += put_field(lay + n, o.value);
        lay[n++] = (uint8_t)(o.n_attrs >> 24);
        lay[n++] = (uint8_t)(o.n_attrs >> 16);
        lay[n++] = (uint8_t)(o.n_attrs >> 8);
        lay[n++] = (uint8_t)o.n_attrs;
        for (size_t i = 0; i < o.n_attrs; i++) {
            n += put_field(lay + n, o.attrs[i].id);
            n += put_field(lay + n, o.attrs[i].value);
        }
        lay[n++] = 0; /* not a tombstone */
        uint8_t want[32], got[OBS_HASH_LEN];
        sha256(lay, n, want);
        obs_content_hash(&o, got);
        assert_memory_equal(got, want, 32);
        obs_fini(&o);
    }
}

static void
test_obs_content_hash_is_unambiguous(void **state)
{
    (void)state;
    /* "AB"="C" vs "A"="BC": a plain concatenation would collide. */
    obs_t a, b;
    obs_init(&a);
    obs_init(&b);
    assert_ok(obs_set_attr(&a, "AB", "C"));
    assert_ok(obs_set_attr(&b, "A", "BC"));
    assert_hash_differs(&a, &b);
    obs_fini(&a);
    obs_fini(&b);
}

static void
test_obs_content_hash_null_and_empty_value_agree(void **state)
{
    (void)state;
    obs_t a, b;
    obs_init(&a);
    obs_init(&b);
    assert_ok(obs_set_value(&b, ""));
    uint8_t ha[OBS_HASH_LEN], hb[OBS_HASH_LEN];
    obs_content_hash(&a, ha);
    obs_content_hash(&b, hb);
    assert_memory_equal(ha, hb, OBS_HASH_LEN);
    obs_fini(&b);
}

static void
test_obs_series_key_joins_dims(void **state)
{
    (void)state;
    obs_t o;
    make_obs(&o);
    char buf[128];
    int n = obs_series_key(&o, buf, sizeof(buf));
    assert_string_equal(buf, "A.COL.VC_IHR_PSRC._T._T._T.HARM");
    assert_int_equal(n, (int)strlen(buf));
    obs_fini(&o);
}

static void
test_obs_series_key_too_small_buffer(void **state)
{
    (void)state;
    obs_t o;
    make_obs(&o);
    char buf[8];
    assert_int_equal(obs_series_key(&o, buf, sizeof(buf)), OBS_ETOOBIG);
    assert_string_equal(buf, "A.COL"); /* a prefix, still terminated */
    char exact[32];                    /* 31 characters + NUL fits exactly */
    assert_int_equal(obs_series_key(&o, exact, sizeof(exact)), 31);
    assert_int_equal(obs_series_key(&o, exact, 31), OBS_ETOOBIG);
    obs_fini(&o);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_obs_set_identity_copies_strings),
        cmocka_unit_test(test_obs_set_identity_rejects_too_many_dims_unchanged),
        cmocka_unit_test(test_obs_set_value_null_means_empty),
        cmocka_unit_test(test_obs_attrs_stay_sorted_and_unique),
        cmocka_unit_test(test_obs_get_attr_finds_and_misses),
        cmocka_unit_test(test_obs_set_attr_replaces_value),
        cmocka_unit_test(test_obs_set_attr_empty_or_null_removes),
        cmocka_unit_test(test_obs_set_attr_caps_count),
        cmocka_unit_test(test_obs_copy_is_deep),
        cmocka_unit_test(test_obs_fini_reinitialises),
        cmocka_unit_test(test_obs_content_hash_ignores_identity_and_version),
        cmocka_unit_test(test_obs_content_hash_sees_value_attrs_and_tombstone),
        cmocka_unit_test(test_obs_content_hash_is_sha256_of_the_layout),
        cmocka_unit_test(test_obs_content_hash_is_unambiguous),
        cmocka_unit_test(test_obs_content_hash_null_and_empty_value_agree),
        cmocka_unit_test(test_obs_series_key_joins_dims),
        cmocka_unit_test(test_obs_series_key_too_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

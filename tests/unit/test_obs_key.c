/*
 * test_obs_key.c - canonical observation keys: round trips, the sort order
 * the store relies on (dataflow, dimensions with "CO" < "COL" < "COLX",
 * then time), prefixes, strict decoding of malformed keys (every truncation,
 * every single-byte change, pseudo-random bytes), and series-key patterns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "obs_err.h"
#include "obs_key.h"

#define DF_V "OID:DF_VIOLENCE(1.0)"
#define DF_D "OID:DF_DRUG_USE(1.0)"

typedef struct {
    uint8_t b[OBS_KEY_MAX];
    int len;
} key_t_;

static void
encode(const char *df, const char *const *dims, size_t n, const char *tp,
       key_t_ *k)
{
    obs_t o;
    obs_init(&o);
    int rc = obs_set_identity(&o, df, dims, n, tp);
    if (rc != OBS_OK)
        fail_msg("set_identity: %s", obs_strerror(rc));
    k->len = obs_key_encode(&o, k->b, sizeof(k->b));
    if (k->len < 0)
        fail_msg("encode %s %s: %s", df, tp, obs_strerror(k->len));
    obs_fini(&o);
}

static int
key_cmp(const key_t_ *a, const key_t_ *b)
{
    size_t n = (size_t)(a->len < b->len ? a->len : b->len);
    int c = memcmp(a->b, b->b, n);
    return c != 0 ? c : a->len - b->len;
}

static void
test_obs_key_round_trip(void **state)
{
    (void)state;
    const char *dims[] = {"A", "COL", "VC_IHR_PSRC", "_T", "_T", "_T", "HARM"};
    const char *periods[] = {"2019",
                             "2019-Q1",
                             "2019-M06",
                             "2019-W05",
                             "2020-01-16T08:16:20Z",
                             "2022-11-01/P7M"};
    for (size_t i = 0; i < 6; i++) {
        key_t_ k;
        encode(DF_V, dims, 7, periods[i], &k);
        obs_t o;
        obs_init(&o);
        int rc = obs_key_decode(k.b, (size_t)k.len, &o);
        if (rc != OBS_OK)
            fail_msg("decode %s: %s", periods[i], obs_strerror(rc));
        assert_string_equal(o.dataflow, DF_V);
        assert_int_equal(o.n_dims, 7);
        for (size_t d = 0; d < 7; d++)
            assert_string_equal(o.dims[d], dims[d]);
        assert_string_equal(o.time_period, periods[i]);
        uint8_t again[OBS_KEY_MAX];
        assert_int_equal(obs_key_encode(&o, again, sizeof(again)), k.len);
        assert_memory_equal(again, k.b, (size_t)k.len);
        obs_fini(&o);
    }
}

static void
test_obs_key_layout_matches_header_comment(void **state)
{
    (void)state;
    const char *dims[] = {"A", "COL"};
    key_t_ k;
    encode("DF", dims, 2, "1970-01-01", &k);
    const uint8_t want[] = {'D',  'F',  0,    2,    'A', 0,   'C',
                            'O',  'L',  0,    0x80, 0,   0,   0,
                            0xff, 0xff, 0xff, 0xff, '1', '9', '7',
                            '0',  '-',  '0',  '1',  '-', '0', '1'};
    assert_int_equal(k.len, (int)sizeof(want));
    assert_memory_equal(k.b, want, sizeof(want));
}

/* Keys in the order the store must keep them. */
static void
test_obs_key_sort_order(void **state)
{
    (void)state;
    static const struct {
        const char *df, *area, *tp;
    } order[] = {
        {DF_D, "COL", "2019"},     {DF_V, "CO", "2019"},
        {DF_V, "COL", "1999"},     {DF_V, "COL", "2018-12"},
        {DF_V, "COL", "2019-W01"}, {DF_V, "COL", "2018-12-31"},
        {DF_V, "COL", "2019"},     {DF_V, "COL", "2019-Q1"},
        {DF_V, "COL", "2019-01"},  {DF_V, "COL", "2019-M02"},
        {DF_V, "COL", "2019-12"},  {DF_V, "COL", "2020"},
        {DF_V, "COLX", "1900"},    {DF_V, "MEX", "2019"},
    };
    key_t_ prev, cur;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *dims[] = {"A", order[i].area, "HOM"};
        encode(order[i].df, dims, 3, order[i].tp, &cur);
        if (i > 0 && key_cmp(&prev, &cur) >= 0)
            fail_msg("%s/%s/%s does not sort after the previous key",
                     order[i].df, order[i].area, order[i].tp);
        prev = cur;
    }
}

static void
test_obs_key_same_day_ties_break_on_text(void **state)
{
    (void)state;
    const char *dims[] = {"A", "COL"};
    key_t_ a, b;
    encode(DF_V, dims, 2, "2019-01-01", &a);
    encode(DF_V, dims, 2, "2019-D001", &b);
    assert_true(key_cmp(&a, &b) < 0);
}

static void
test_obs_key_encode_rejects_bad_identity(void **state)
{
    (void)state;
    obs_t o;
    obs_init(&o);
    uint8_t buf[OBS_KEY_MAX];
    const char *dot[] = {"A", "C.L"};
    assert_int_equal(obs_set_identity(&o, DF_V, dot, 2, "2019"), OBS_OK);
    assert_int_equal(obs_key_encode(&o, buf, sizeof(buf)), OBS_EINVAL);
    const char *empty[] = {"A", ""};
    assert_int_equal(obs_set_identity(&o, DF_V, empty, 2, "2019"), OBS_OK);
    assert_int_equal(obs_key_encode(&o, buf, sizeof(buf)), OBS_EINVAL);
    const char *ok[] = {"A", "COL"};
    assert_int_equal(obs_set_identity(&o, DF_V, ok, 2, "2023/24"), OBS_OK);
    assert_int_equal(obs_key_encode(&o, buf, sizeof(buf)), OBS_EINVAL);
    assert_int_equal(obs_set_identity(&o, "", ok, 2, "2019"), OBS_OK);
    assert_int_equal(obs_key_encode(&o, buf, sizeof(buf)), OBS_EINVAL);
    obs_fini(&o);
    assert_int_equal(obs_key_encode(&o, buf, sizeof(buf)), OBS_EINVAL);
}

static void
test_obs_key_encode_too_big(void **state)
{
    (void)state;
    const char *dims[] = {"A", "COL"};
    obs_t o;
    obs_init(&o);
    assert_int_equal(obs_set_identity(&o, DF_V, dims, 2, "2019"), OBS_OK);
    uint8_t buf[OBS_KEY_MAX + 100];
    int len = obs_key_encode(&o, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(obs_key_encode(&o, buf, (size_t)len), len);
    assert_int_equal(obs_key_encode(&o, buf, (size_t)len - 1), OBS_ETOOBIG);
    assert_int_equal(obs_key_encode(&o, buf, 0), OBS_ETOOBIG);
    /* 32 codes of 64 bytes exceed OBS_KEY_MAX whatever cap says. */
    char code[OBS_CODE_MAX + 1];
    memset(code, 'X', OBS_CODE_MAX);
    code[OBS_CODE_MAX] = '\0';
    const char *many[OBS_MAX_DIMS];
    for (size_t i = 0; i < OBS_MAX_DIMS; i++)
        many[i] = code;
    assert_int_equal(obs_set_identity(&o, DF_V, many, OBS_MAX_DIMS, "2019"),
                     OBS_OK);
    assert_int_equal(obs_key_encode(&o, buf, sizeof(buf)), OBS_ETOOBIG);
    obs_fini(&o);
}

/* Counted strings read in place (each followed here by bytes that are not
 * part of it) give obs_key_encode's key and errors; a 0x00 inside one is
 * refused. */
static void
test_obs_key_encode_id_matches_encode(void **state)
{
    (void)state;
    const char *text = DF_V "|A|COL|VC_IHR_PSRC|2019-Q1|" DF_D "|2023/24";
    const char *df = text, *a = df + strlen(DF_V) + 1, *col = a + 2;
    const char *ind = col + 4, *tp = ind + 12;
    obs_id_view_t id = {.dataflow = df,
                        .dataflow_len = strlen(DF_V),
                        .dims = {a, col, ind},
                        .dim_lens = {1, 3, 11},
                        .n_dims = 3,
                        .time_period = tp,
                        .time_period_len = 7};
    key_t_ want;
    const char *cs[] = {"A", "COL", "VC_IHR_PSRC"};
    encode(DF_V, cs, 3, "2019-Q1", &want);
    uint8_t buf[OBS_KEY_MAX];
    assert_int_equal(obs_key_encode_id(&id, buf, sizeof(buf)), want.len);
    assert_memory_equal(buf, want.b, (size_t)want.len);
    assert_int_equal(obs_key_encode_id(&id, buf, (size_t)want.len - 1),
                     OBS_ETOOBIG);
    id.time_period = tp + 8 + strlen(DF_D) + 1; /* "2023/24": no period */
    assert_int_equal(obs_key_encode_id(&id, buf, sizeof(buf)), OBS_EINVAL);
    id.time_period = tp;
    id.dim_lens[1] = 4; /* exactly the bytes given: "COL|" */
    const char *cs4[] = {"A", "COL|", "VC_IHR_PSRC"};
    encode(DF_V, cs4, 3, "2019-Q1", &want);
    assert_int_equal(obs_key_encode_id(&id, buf, sizeof(buf)), want.len);
    assert_memory_equal(buf, want.b, (size_t)want.len);
    id.dim_lens[1] = 3;
    const char nul_code[] = {'C', 0, 'L'};
    id.dims[1] = nul_code;
    assert_int_equal(obs_key_encode_id(&id, buf, sizeof(buf)), OBS_EINVAL);
    id.dims[1] = col;
    id.dataflow_len = 0;
    assert_int_equal(obs_key_encode_id(&id, buf, sizeof(buf)), OBS_EINVAL);
    id.dataflow_len = strlen(DF_V);
    const char nul_tp[] = {'2', '0', '1', '9', 0, 'Q', '1'};
    id.time_period = nul_tp;
    assert_int_equal(obs_key_encode_id(&id, buf, sizeof(buf)), OBS_EINVAL);
}

static void
test_obs_key_prefix_selects_series(void **state)
{
    (void)state;
    const char *dims[] = {"A", "COL", "HOM"};
    const char *mexd[] = {"A", "MEX", "HOM"};
    key_t_ col, colx, mex;
    encode(DF_V, dims, 3, "2019-Q2", &col);
    const char *colxd[] = {"A", "COLX", "HOM"};
    encode(DF_V, colxd, 3, "2019", &colx);
    encode(DF_V, mexd, 3, "2019", &mex);
    uint8_t pre[OBS_KEY_MAX];
    int n = obs_key_prefix(DF_V, 3, dims, 2, pre, sizeof(pre));
    assert_true(n > 0);
    assert_memory_equal(col.b, pre, (size_t)n);
    assert_memory_not_equal(colx.b, pre, (size_t)n); /* "COL" is not "COLX" */
    assert_memory_not_equal(mex.b, pre, (size_t)n);
    int all = obs_key_prefix(DF_V, 3, NULL, 0, pre, sizeof(pre));
    assert_int_equal(all, (int)strlen(DF_V) + 2);
    assert_memory_equal(mex.b, pre, (size_t)all);
}

static void
test_obs_key_prefix_errors(void **state)
{
    (void)state;
    const char *dims[] = {"A", "COL"};
    uint8_t pre[16];
    assert_int_equal(obs_key_prefix(DF_V, 3, dims, 2, pre, 8), OBS_ETOOBIG);
    assert_int_equal(obs_key_prefix(DF_V, 1, dims, 2, pre, sizeof(pre)),
                     OBS_EINVAL);
}

static void
expect_decode_fails(const uint8_t *b, size_t len, const char *what)
{
    obs_t o;
    obs_init(&o);
    int rc = obs_key_decode(b, len, &o);
    if (rc != OBS_EINVAL)
        fail_msg("%s (len %zu) decoded: %s", what, len, obs_strerror(rc));
    assert_null(o.dataflow);
    obs_fini(&o);
}

static void
test_obs_key_decode_rejects_every_truncation(void **state)
{
    (void)state;
    const char *dims[] = {"A", "COL", "HOM"};
    key_t_ k;
    encode(DF_V, dims, 3, "2019-Q1", &k);
    /* Every prefix fails, including "...2019": that period parses, but
     * the stored sort key is the quarter's, not the year's. */
    for (int len = 0; len < k.len; len++)
        expect_decode_fails(k.b, (size_t)len, "truncated key");
}

static void
test_obs_key_decode_rejects_single_byte_changes(void **state)
{
    (void)state;
    const char *dims[] = {"A", "COL", "HOM"};
    key_t_ k;
    encode(DF_V, dims, 3, "2019-06", &k);
    for (int i = 0; i < k.len; i++) {
        for (int v = 0; v < 256; v += 17) {
            uint8_t b[OBS_KEY_MAX];
            memcpy(b, k.b, (size_t)k.len);
            if (b[i] == (uint8_t)v)
                continue;
            b[i] = (uint8_t)v;
            obs_t o;
            obs_init(&o);
            int rc = obs_key_decode(b, (size_t)k.len, &o);
            if (rc == OBS_OK) {
                /* Accepted changes must be canonical: re-encode is equal. */
                uint8_t again[OBS_KEY_MAX];
                int n = obs_key_encode(&o, again, sizeof(again));
                assert_int_equal(n, k.len);
                assert_memory_equal(again, b, (size_t)n);
            } else {
                assert_int_equal(rc, OBS_EINVAL);
            }
            obs_fini(&o);
        }
    }
}

static void
test_obs_key_decode_rejects_malformed_shapes(void **state)
{
    (void)state;
    const uint8_t no_nul[] = {'D', 'F'};
    expect_decode_fails(no_nul, sizeof(no_nul), "dataflow without 0x00");
    const uint8_t empty_df[] = {0,    0,    0x80, 0,    0,  0,
                                0xff, 0xff, 0xff, 0xff, '1'};
    expect_decode_fails(empty_df, sizeof(empty_df), "empty dataflow");
    const uint8_t too_many[] = {'D', 0, 33, 'A', 0};
    expect_decode_fails(too_many, sizeof(too_many), "33 dims");
    const uint8_t dims_short[] = {'D', 0, 3, 'A', 0, 'B', 0};
    expect_decode_fails(dims_short, sizeof(dims_short), "missing dims");
    uint8_t big[OBS_KEY_MAX + 1];
    memset(big, 'A', sizeof(big));
    expect_decode_fails(big, sizeof(big), "longer than OBS_KEY_MAX");
    obs_t o;
    obs_init(&o);
    assert_int_equal(obs_key_decode(NULL, 0, &o), OBS_EINVAL);
}

static void
test_obs_key_decode_survives_pseudo_random_bytes(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15u; /* xorshift64, fixed seed */
    uint8_t b[64];
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(round % 64);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* Bias towards 0x00 and small values so structure appears. */
            b[i] = (x & 3) == 0 ? 0 : (uint8_t)(x >> 24);
        }
        obs_t o;
        obs_init(&o);
        if (obs_key_decode(b, len, &o) == OBS_OK) {
            uint8_t again[OBS_KEY_MAX];
            assert_int_equal(obs_key_encode(&o, again, sizeof(again)),
                             (int)len);
            assert_memory_equal(again, b, len);
        }
        obs_fini(&o);
    }
}

static void
test_obs_pattern_parse_positions(void **state)
{
    (void)state;
    obs_pattern_t p;
    assert_int_equal(obs_pattern_parse("A.COL..", &p), OBS_OK);
    assert_int_equal(p.n, 4);
    assert_string_equal(p.pos[0], "A");
    assert_string_equal(p.pos[1], "COL");
    assert_null(p.pos[2]);
    assert_null(p.pos[3]);
    assert_int_equal(obs_pattern_fixed_prefix(&p), 2);
    obs_pattern_fini(&p);
    assert_int_equal(p.n, 0);
}

static void
test_obs_pattern_empty_matches_everything(void **state)
{
    (void)state;
    obs_pattern_t p;
    assert_int_equal(obs_pattern_parse("", &p), OBS_OK);
    assert_int_equal(p.n, 0);
    const char *dims[] = {"A", "COL"};
    assert_true(obs_pattern_match(&p, dims, 2));
    assert_true(obs_pattern_match(&p, NULL, 0));
    assert_int_equal(obs_pattern_fixed_prefix(&p), 0);
    obs_pattern_fini(&p);
}

static void
test_obs_pattern_match_alternatives_and_wildcards(void **state)
{
    (void)state;
    obs_pattern_t p;
    assert_int_equal(obs_pattern_parse("A.COL+MEX..", &p), OBS_OK);
    assert_int_equal(obs_pattern_fixed_prefix(&p), 1);
    const char *col[] = {"A", "COL", "HOM", "_T"};
    const char *mex[] = {"A", "MEX", "X", "Y"};
    const char *co[] = {"A", "CO", "HOM", "_T"};
    const char *colx[] = {"A", "COLX", "HOM", "_T"};
    const char *q[] = {"Q", "COL", "HOM", "_T"};
    assert_true(obs_pattern_match(&p, col, 4));
    assert_true(obs_pattern_match(&p, mex, 4));
    assert_false(obs_pattern_match(&p, co, 4));
    assert_false(obs_pattern_match(&p, colx, 4));
    assert_false(obs_pattern_match(&p, q, 4));
    assert_false(obs_pattern_match(&p, col, 3)); /* arity differs */
    obs_pattern_fini(&p);
}

static void
test_obs_pattern_parse_rejects_bad_text(void **state)
{
    (void)state;
    obs_pattern_t p;
    char many[2 * OBS_MAX_DIMS + 2];
    memset(many, '.', OBS_MAX_DIMS); /* OBS_MAX_DIMS + 1 positions */
    many[OBS_MAX_DIMS] = '\0';
    assert_int_equal(obs_pattern_parse(many, &p), OBS_EINVAL);
    assert_int_equal(p.n, 0);
    many[OBS_MAX_DIMS - 1] = '\0'; /* exactly OBS_MAX_DIMS */
    assert_int_equal(obs_pattern_parse(many, &p), OBS_OK);
    assert_int_equal(p.n, OBS_MAX_DIMS);
    obs_pattern_fini(&p);
    assert_int_equal(obs_pattern_parse("A.COL+.X", &p), OBS_EINVAL);
    assert_int_equal(obs_pattern_parse("A.+MEX", &p), OBS_EINVAL);
    assert_int_equal(obs_pattern_parse(NULL, &p), OBS_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_obs_key_round_trip),
        cmocka_unit_test(test_obs_key_layout_matches_header_comment),
        cmocka_unit_test(test_obs_key_sort_order),
        cmocka_unit_test(test_obs_key_same_day_ties_break_on_text),
        cmocka_unit_test(test_obs_key_encode_rejects_bad_identity),
        cmocka_unit_test(test_obs_key_encode_too_big),
        cmocka_unit_test(test_obs_key_encode_id_matches_encode),
        cmocka_unit_test(test_obs_key_prefix_selects_series),
        cmocka_unit_test(test_obs_key_prefix_errors),
        cmocka_unit_test(test_obs_key_decode_rejects_every_truncation),
        cmocka_unit_test(test_obs_key_decode_rejects_single_byte_changes),
        cmocka_unit_test(test_obs_key_decode_rejects_malformed_shapes),
        cmocka_unit_test(test_obs_key_decode_survives_pseudo_random_bytes),
        cmocka_unit_test(test_obs_pattern_parse_positions),
        cmocka_unit_test(test_obs_pattern_empty_matches_everything),
        cmocka_unit_test(test_obs_pattern_match_alternatives_and_wildcards),
        cmocka_unit_test(test_obs_pattern_parse_rejects_bad_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

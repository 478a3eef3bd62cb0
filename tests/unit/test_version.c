/*
 * test_version.c - the winner rule (version.c): the greater hlc wins; equal
 * hlcs are decided by the origin id in byte order; equal (hlc, origin) is
 * the same version whatever else differs; a tombstone is ordered like any
 * other version. Table-driven: each case is checked both ways round, so the
 * rule is also seen to be antisymmetric.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "hlc.h"
#include "obs.h"
#include "version.h"

static obs_version_t
ver(uint64_t hlc, const char *origin)
{
    obs_version_t v;
    memset(&v, 0, sizeof(v));
    v.hlc = hlc;
    (void)snprintf(v.origin, sizeof(v.origin), "%s", origin);
    return v;
}

static int
sign(int c)
{
    return (c > 0) - (c < 0);
}

/* cmp(a, b) has sign want, cmp(b, a) the opposite one, and each is equal to
 * itself. */
static void
check_order(const obs_version_t *a, const obs_version_t *b, int want,
            const char *what)
{
    int ab = sign(version_cmp(a, b));
    int ba = sign(version_cmp(b, a));
    if (ab != want || ba != -want)
        print_error("%s: cmp(a, b) = %d, cmp(b, a) = %d, want %d\n", what, ab,
                    ba, want);
    assert_int_equal(ab, want);
    assert_int_equal(ba, -want);
    assert_int_equal(version_cmp(a, a), 0);
    assert_int_equal(version_cmp(b, b), 0);
}

typedef struct {
    const char *what;
    uint64_t a_hlc;
    const char *a_origin;
    uint64_t b_hlc;
    const char *b_origin;
    int want; /* sign of version_cmp(a, b) */
} order_case_t;

static void
test_version_greater_hlc_wins_whatever_the_origin(void **state)
{
    (void)state;
    static const order_case_t cases[] = {
        {"later ms", HLC_MAKE(2000, 0), "a", HLC_MAKE(1000, 0), "z", 1},
        {"same ms, greater logical", HLC_MAKE(1000, 2), "a", HLC_MAKE(1000, 1),
         "z", 1},
        {"logical full, next ms", HLC_MAKE(1001, 0), "a",
         HLC_MAKE(1000, 0xffff), "z", 1},
        {"earlier ms", HLC_MAKE(999, 0), "zz", HLC_MAKE(1000, 0), "a", -1},
        /* unsigned: the top bit set is the greatest, not negative */
        {"top bit", UINT64_MAX, "a", UINT64_C(1) << 62, "z", 1},
        {"zero loses", 0, "z", 1, "a", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        obs_version_t a = ver(cases[i].a_hlc, cases[i].a_origin);
        obs_version_t b = ver(cases[i].b_hlc, cases[i].b_origin);
        check_order(&a, &b, cases[i].want, cases[i].what);
    }
}

static void
test_version_equal_hlc_greater_origin_wins(void **state)
{
    (void)state;
    static const order_case_t cases[] = {
        {"c over b", 5, "c", 5, "b", 1},
        {"node-2 over node-10 (bytes, not numbers)", 5, "node-2", 5, "node-10",
         1},
        {"a longer id over its prefix", 5, "ab", 5, "a", 1},
        {"lower case over upper case", 5, "a", 5, "B", 1},
        /* unsigned bytes: UTF-8 past ASCII sorts after 'z' */
        {"byte 0xc3 over z", 5, "\xc3\xa9", 5, "z", 1},
        {"empty origin loses", 5, "", 5, "a", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        obs_version_t a = ver(cases[i].a_hlc, cases[i].a_origin);
        obs_version_t b = ver(cases[i].b_hlc, cases[i].b_origin);
        check_order(&a, &b, cases[i].want, cases[i].what);
    }
}

static void
test_version_full_length_origins_compare_to_the_end(void **state)
{
    (void)state;
    obs_version_t a = ver(7, "");
    obs_version_t b = ver(7, "");
    memset(a.origin, 'n', OBS_ID_MAX);
    memset(b.origin, 'n', OBS_ID_MAX);
    a.origin[OBS_ID_MAX - 1] = 'o'; /* the last character decides */
    check_order(&a, &b, 1, "differ in the last of OBS_ID_MAX chars");
    b.origin[OBS_ID_MAX - 1] = 'o';
    check_order(&a, &b, 0, "OBS_ID_MAX chars, all equal");
}

/* Same (hlc, origin): one version, whatever the other fields say. */
static void
test_version_same_hlc_and_origin_is_the_same_version(void **state)
{
    (void)state;
    obs_version_t a = ver(HLC_MAKE(1000, 3), "node-a");
    obs_version_t b = a;
    b.origin_seq = 99;
    b.hub_seq = 12;
    b.base_hlc = HLC_MAKE(900, 0);
    (void)snprintf(b.base_origin, sizeof(b.base_origin), "node-b");
    b.base_origin_seq = 4;
    (void)snprintf(b.provider, sizeof(b.provider), "COL");
    (void)snprintf(b.batch_id, sizeof(b.batch_id), "batch-1");
    b.action = OBS_ACTION_REPLACE;
    memset(b.content_hash, 0xab, sizeof(b.content_hash));
    check_order(&a, &b, 0, "other fields differ");
}

/* A tombstone is a version like any other: its stamp decides. */
static void
test_version_tombstones_order_by_their_stamp(void **state)
{
    (void)state;
    obs_version_t live = ver(HLC_MAKE(1000, 0), "node-a");
    obs_version_t del = ver(HLC_MAKE(1001, 0), "node-a");
    del.tombstone = true;
    del.action = OBS_ACTION_DELETE;
    check_order(&del, &live, 1, "a later delete wins");

    del.hlc = HLC_MAKE(999, 0);
    check_order(&del, &live, -1, "an earlier delete loses");

    del.hlc = live.hlc;
    (void)snprintf(del.origin, sizeof(del.origin), "node-b");
    check_order(&del, &live, 1, "same hlc: the delete's greater origin wins");
    (void)snprintf(del.origin, sizeof(del.origin), "node-0");
    check_order(&del, &live, -1, "same hlc: the delete's lesser origin loses");

    (void)snprintf(del.origin, sizeof(del.origin), "node-a");
    check_order(&del, &live, 0, "same (hlc, origin): the same version");

    obs_version_t del2 = del;
    del2.hlc++;
    check_order(&del2, &del, 1, "tombstone against tombstone");
}

/* A total order: over a mixed set listed in winning order (a tombstone
 * among them), every pair compares as the positions do. */
static void
test_version_order_is_total(void **state)
{
    (void)state;
    obs_version_t v[] = {
        ver(1, "a"), ver(1, "b"), ver(2, ""),   ver(2, "a"),
        ver(2, "b"), ver(3, "a"), ver(3, "ab"), ver(UINT64_MAX, ""),
    };
    size_t n = sizeof(v) / sizeof(v[0]);
    v[4].tombstone = true;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            assert_int_equal(sign(version_cmp(&v[i], &v[j])),
                             (i > j) - (i < j));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_greater_hlc_wins_whatever_the_origin),
        cmocka_unit_test(test_version_equal_hlc_greater_origin_wins),
        cmocka_unit_test(test_version_full_length_origins_compare_to_the_end),
        cmocka_unit_test(test_version_same_hlc_and_origin_is_the_same_version),
        cmocka_unit_test(test_version_tombstones_order_by_their_stamp),
        cmocka_unit_test(test_version_order_is_total),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

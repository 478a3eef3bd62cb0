/*
 * test_version_cache.c - the hub's cache of the newest log entries'
 * versions (version_cache.c): found by hub_seq while in the ring, not found
 * once a later entry took the slot or when never put, and the sizes a
 * caller may ask for.
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
#include "version_cache.h"

static obs_version_t
version(uint64_t hub_seq)
{
    obs_version_t v;
    memset(&v, 0, sizeof(v));
    v.hub_seq = hub_seq;
    v.hlc = hub_seq * 1000;
    v.origin_seq = hub_seq + 7;
    (void)snprintf(v.origin, sizeof(v.origin), "N%llu",
                   (unsigned long long)hub_seq);
    return v;
}

static void
test_finds_what_the_ring_still_holds(void **state)
{
    (void)state;
    version_cache_t c;
    assert_int_equal(version_cache_init(&c, 8), OBS_OK);
    for (uint64_t s = 1; s <= 20; s++) {
        obs_version_t v = version(s);
        version_cache_put(&c, &v);
    }
    for (uint64_t s = 13; s <= 20; s++) { /* the last 8 */
        const obs_version_t *v = version_cache_find(&c, s);
        assert_non_null(v);
        obs_version_t want = version(s);
        assert_memory_equal(v, &want, sizeof(want));
    }
    for (uint64_t s = 1; s <= 12; s++) /* their slots were taken */
        assert_null(version_cache_find(&c, s));
    assert_null(version_cache_find(&c, 21)); /* never put */
    assert_null(version_cache_find(&c, 28)); /* 20's slot, other seq */
    assert_null(version_cache_find(&c, 0));
    version_cache_fini(&c);
    assert_null(version_cache_find(&c, 20));
    version_cache_fini(&c); /* twice: harmless */
    version_cache_fini(NULL);
}

/* A put for a seq whose slot holds another replaces it: a transaction that
 * was retried assigns the same hub_seqs again, and the last put wins. */
static void
test_put_again_replaces(void **state)
{
    (void)state;
    version_cache_t c;
    assert_int_equal(version_cache_init(&c, 4), OBS_OK);
    obs_version_t a = version(5), b = version(5);
    b.hlc = 42;
    version_cache_put(&c, &a);
    version_cache_put(&c, &b);
    assert_int_equal(version_cache_find(&c, 5)->hlc, 42);
    obs_version_t zero = version(0); /* not logged yet: never kept */
    version_cache_put(&c, &zero);
    assert_int_equal(version_cache_find(&c, 5)->hlc, 42);
    version_cache_fini(&c);
}

/* A failed transaction's seqs are forgotten, the others kept, whether the
 * range is narrower or wider than the ring. */
static void
test_forget_drops_exactly_the_range(void **state)
{
    (void)state;
    version_cache_t c;
    assert_int_equal(version_cache_init(&c, 8), OBS_OK);
    for (uint64_t s = 11; s <= 18; s++) {
        obs_version_t v = version(s);
        version_cache_put(&c, &v);
    }
    version_cache_forget(&c, 14, 16);
    for (uint64_t s = 11; s <= 18; s++)
        assert_int_equal(version_cache_find(&c, s) != NULL, s < 14 || s > 16);
    version_cache_forget(&c, 17, 16); /* empty range */
    assert_non_null(version_cache_find(&c, 17));
    version_cache_forget(&c, 12, 100); /* wider than the ring */
    assert_non_null(version_cache_find(&c, 11));
    for (uint64_t s = 12; s <= 18; s++)
        assert_null(version_cache_find(&c, s));
    version_cache_forget(&c, 0, UINT64_MAX);
    assert_null(version_cache_find(&c, 11));
    version_cache_fini(&c);
}

static void
test_sizes_round_up_to_a_power_of_two(void **state)
{
    (void)state;
    version_cache_t c;
    assert_int_equal(version_cache_init(&c, 0), OBS_OK);
    assert_int_equal(c.n, 1);
    obs_version_t v = version(3);
    version_cache_put(&c, &v);
    assert_non_null(version_cache_find(&c, 3));
    version_cache_fini(&c);
    assert_int_equal(version_cache_init(&c, 1000), OBS_OK);
    assert_int_equal(c.n, 1024);
    version_cache_fini(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_what_the_ring_still_holds),
        cmocka_unit_test(test_put_again_replaces),
        cmocka_unit_test(test_forget_drops_exactly_the_range),
        cmocka_unit_test(test_sizes_round_up_to_a_power_of_two),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_hlc.c - the hybrid logical clock: stamps strictly increase whatever
 * the wall clock does, the logical counter rolls into the next millisecond,
 * and observing a remote stamp yields one greater than both.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "hlc.h"

static void
test_hlc_follows_wall_clock_when_it_advances(void **state)
{
    (void)state;
    hlc_t h;
    hlc_init(&h, 0);
    uint64_t s = hlc_now(&h, 1000);
    assert_int_equal(HLC_MS(s), 1000);
    assert_int_equal(HLC_LOGICAL(s), 0);
    s = hlc_now(&h, 2000);
    assert_int_equal(s, HLC_MAKE(2000, 0));
}

static void
test_hlc_same_ms_bumps_logical(void **state)
{
    (void)state;
    hlc_t h;
    hlc_init(&h, 0);
    uint64_t a = hlc_now(&h, 5000);
    uint64_t b = hlc_now(&h, 5000);
    assert_true(b > a);
    assert_int_equal(HLC_MS(b), 5000);
    assert_int_equal(HLC_LOGICAL(b), 1);
}

static void
test_hlc_monotonic_when_wall_clock_steps_back(void **state)
{
    (void)state;
    hlc_t h;
    hlc_init(&h, 0);
    uint64_t prev = hlc_now(&h, 10000);
    const uint64_t walls[] = {9000, 9500, 10000, 1, 0, 10001, 10001, 500};
    for (size_t i = 0; i < sizeof(walls) / sizeof(walls[0]); i++) {
        uint64_t s = hlc_now(&h, walls[i]);
        assert_true(s > prev);
        prev = s;
    }
    assert_int_equal(HLC_MS(prev), 10001);
}

static void
test_hlc_logical_overflow_rolls_into_next_ms(void **state)
{
    (void)state;
    hlc_t h;
    hlc_init(&h, HLC_MAKE(7000, 0xfffe));
    uint64_t a = hlc_now(&h, 7000);
    assert_int_equal(a, HLC_MAKE(7000, 0xffff));
    uint64_t b = hlc_now(&h, 7000);
    assert_int_equal(b, HLC_MAKE(7001, 0));
    assert_true(b > a);
}

static void
test_hlc_resumes_after_persisted_stamp(void **state)
{
    (void)state;
    hlc_t h;
    hlc_init(&h, HLC_MAKE(90000, 3));
    uint64_t s = hlc_now(&h, 80000); /* clock behind the stored stamp */
    assert_int_equal(s, HLC_MAKE(90000, 4));
}

static void
test_hlc_observe_remote_ahead(void **state)
{
    (void)state;
    hlc_t h;
    hlc_init(&h, 0);
    hlc_now(&h, 1000);
    uint64_t remote = HLC_MAKE(5000, 7);
    uint64_t s = hlc_observe(&h, remote, 1200);
    assert_int_equal(s, HLC_MAKE(5000, 8));
    assert_true(hlc_now(&h, 1300) > s);
}

static void
test_hlc_observe_remote_behind(void **state)
{
    (void)state;
    hlc_t h;
    hlc_init(&h, 0);
    uint64_t local = hlc_now(&h, 8000);
    uint64_t s = hlc_observe(&h, HLC_MAKE(3000, 9), 8000);
    assert_true(s > local);
    assert_int_equal(s, HLC_MAKE(8000, 1));
}

static void
test_hlc_observe_with_wall_ahead_of_both(void **state)
{
    (void)state;
    hlc_t h;
    hlc_init(&h, HLC_MAKE(100, 5));
    assert_int_equal(hlc_observe(&h, HLC_MAKE(200, 9), 300), HLC_MAKE(300, 0));
}

static void
test_hlc_never_wraps_at_maximum(void **state)
{
    (void)state;
    hlc_t h;
    hlc_init(&h, 0);
    uint64_t s = hlc_observe(&h, UINT64_MAX, 0);
    assert_int_equal(s, UINT64_MAX);
    assert_int_equal(hlc_now(&h, 0), UINT64_MAX);
}

static void
test_hlc_wall_ms_is_plausible(void **state)
{
    (void)state;
    uint64_t ms = hlc_wall_ms();
    assert_true(ms > UINT64_C(1700000000000)); /* after November 2023 */
    assert_true(ms < (UINT64_C(1) << 48));
}

/* The hub's clock known from one sample, carried on the monotonic clock:
 * our skew is our wall clock minus it, and a step of our wall clock shows
 * at once, with no new sample. */
static void
test_hlc_ref_carries_the_sample_forward(void **state)
{
    (void)state;
    hlc_ref_t r = {0};
    assert_false(r.known);
    assert_int_equal(hlc_ref_now(&r, 500), 0);
    assert_int_equal(hlc_ref_skew(&r, 123456, 500), 0);
    hlc_ref_sample(&r, 0, 500); /* not a sample (an older hub sends 0) */
    assert_false(r.known);

    hlc_ref_sample(&r, 1000000, 500); /* hub read 1,000,000 at mono 500 */
    assert_true(r.known);
    assert_int_equal(hlc_ref_now(&r, 500), 1000000);
    assert_int_equal(hlc_ref_now(&r, 2500), 1002000);
    /* our wall clock an hour ahead, then fixed: the skew follows */
    assert_int_equal(hlc_ref_skew(&r, 1002000 + 3600000, 2500), 3600000);
    assert_int_equal(hlc_ref_skew(&r, 1002000, 2500), 0);
    assert_int_equal(hlc_ref_skew(&r, 1002000 - 86400000, 2500), -86400000);
    /* a monotonic reading from before the sample does not go back */
    assert_int_equal(hlc_ref_now(&r, 100), 1000000);
    hlc_ref_sample(&r, 5000, 3000); /* the hub's clock went back */
    assert_int_equal(hlc_ref_now(&r, 4000), 6000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hlc_follows_wall_clock_when_it_advances),
        cmocka_unit_test(test_hlc_same_ms_bumps_logical),
        cmocka_unit_test(test_hlc_monotonic_when_wall_clock_steps_back),
        cmocka_unit_test(test_hlc_logical_overflow_rolls_into_next_ms),
        cmocka_unit_test(test_hlc_resumes_after_persisted_stamp),
        cmocka_unit_test(test_hlc_observe_remote_ahead),
        cmocka_unit_test(test_hlc_observe_remote_behind),
        cmocka_unit_test(test_hlc_observe_with_wall_ahead_of_both),
        cmocka_unit_test(test_hlc_never_wraps_at_maximum),
        cmocka_unit_test(test_hlc_wall_ms_is_plausible),
        cmocka_unit_test(test_hlc_ref_carries_the_sample_forward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

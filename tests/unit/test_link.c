/*
 * test_link.c - unit tests for core/link.c: the rate a session's direction
 * carries, measured from confirmations, and the message size and bytes in
 * flight it allows; confirmations by count (Credit) and cumulative
 * (PublishAck); a new session keeps the rate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "link.h"

/* A line of bps bytes/s: sends messages of the allowed size while the
 * window allows, each confirmed when the line has carried it (plus rtt),
 * for ms milliseconds of simulated time (link.c takes microseconds).
 * Returns the bytes confirmed. */
static uint64_t
simulate(link_t *l, uint64_t bps, uint64_t rtt_ms, uint64_t ms)
{
    uint64_t now = 1, line_free = 1, total = 0;
    uint64_t done_at[LINK_INFLIGHT_MAX];
    unsigned head = 0, n = 0;
    while (now < ms) {
        while (link_may_send(l) && n < LINK_INFLIGHT_MAX) {
            uint64_t b = link_batch_bytes(l);
            assert_true(link_sent(l, b, now, now * 1000));
            line_free = (line_free > now ? line_free : now) + b * 1000 / bps;
            done_at[(head + n++) % LINK_INFLIGHT_MAX] = line_free + rtt_ms;
        }
        if (n > 0 && done_at[head] <= now) {
            total += link_confirm_n(l, 1, now * 1000, NULL);
            head = (head + 1) % LINK_INFLIGHT_MAX;
            n--;
        }
        now++;
    }
    return total;
}

static void
test_link_starts_small(void **state)
{
    (void)state;
    link_t l = {0};
    assert_int_equal(link_batch_bytes(&l), LINK_START_BATCH);
    assert_true(link_may_send(&l));
    assert_true(link_sent(&l, LINK_START_BATCH, 1, 10));
    assert_true(link_may_send(&l)); /* two in flight before a rate */
    assert_true(link_sent(&l, LINK_START_BATCH, 2, 10));
    assert_false(link_may_send(&l));
    assert_false(link_is_slow(&l)); /* not measured: not called slow */
}

/* On a 2 kB/s line with 600 ms of round trip the rate is measured within a
 * few seconds, messages shrink to the minimum (about 2 s each) and what is
 * in flight stays a few seconds' worth: a heartbeat never waits long. */
static void
test_link_measures_a_slow_line(void **state)
{
    (void)state;
    link_t l = {0};
    uint64_t got = simulate(&l, 2000, 600, 60000);
    assert_true(l.rate_bps > 1500 && l.rate_bps < 2500);
    assert_true(got > 60 * 2000 * 8 / 10); /* at least 80% of the line */
    assert_int_equal(link_batch_bytes(&l), LINK_MIN_BATCH);
    assert_true(l.inflight <= 3 * LINK_MIN_BATCH);
    assert_true(link_is_slow(&l));
}

static void
test_link_fills_a_20kBps_line(void **state)
{
    (void)state;
    link_t l = {0};
    uint64_t got = simulate(&l, 20000, 600, 60000);
    assert_true(l.rate_bps > 16000 && l.rate_bps < 24000);
    assert_true(got > 60 * 20000 * 8 / 10);
    /* about a second a message, about three seconds in flight */
    assert_true(link_batch_bytes(&l) >= 16000 && link_batch_bytes(&l) <= 24000);
    assert_true(l.inflight <= 4 * 24000);
}

/* A LAN: within a second the messages reach the usual maximum. */
static void
test_link_grows_to_the_maximum_on_a_fast_line(void **state)
{
    (void)state;
    link_t l = {0};
    simulate(&l, 100u * 1000 * 1000, 1, 1000);
    assert_int_equal(link_batch_bytes(&l), LINK_MAX_BATCH);
    assert_false(link_is_slow(&l));
}

/* A fast line whose sender empties its window at every burst (a group
 * commit acks everything in flight at once): the rate is still measured,
 * from the busy time only, and the sizes grow. */
static void
test_link_measures_bursts_that_empty_the_window(void **state)
{
    (void)state;
    link_t l = {0};
    uint64_t now = 1000;
    for (int burst = 0; burst < 400; burst++) {
        unsigned n = 0;
        while (link_may_send(&l) && n < 8) {
            assert_true(link_sent(&l, link_batch_bytes(&l), n + 1, now));
            n++;
        }
        now += 2000;                            /* 2 ms on the line */
        link_confirm_upto(&l, UINT64_MAX, now); /* one ack for all */
        assert_int_equal(l.n, 0);
        now += 50000; /* 50 ms idle: not the line's */
    }
    assert_true(l.rate_bps > 4u * 1000 * 1000);
    assert_int_equal(link_batch_bytes(&l), LINK_MAX_BATCH);
}

static void
test_link_confirm_upto_is_cumulative(void **state)
{
    (void)state;
    link_t l = {0};
    assert_true(link_sent(&l, 100, 10, 1));
    assert_true(link_sent(&l, 200, 20, 1));
    assert_true(link_sent(&l, 300, 30, 1));
    assert_int_equal(link_confirm_upto(&l, 5, 2), 0);
    assert_int_equal(link_confirm_upto(&l, 25, 300), 300); /* 10 and 20 */
    assert_int_equal(l.n, 1);
    assert_int_equal(l.inflight, 300);
    uint64_t mark = 0;
    assert_int_equal(link_confirm_n(&l, 5, 600, &mark), 300); /* only one */
    assert_int_equal(mark, 30);
    assert_int_equal(l.confirmed, 600);
    assert_int_equal(link_confirm_n(&l, 1, 700, &mark), 0);
    assert_int_equal(mark, 30); /* unchanged: nothing was in flight */
}

static void
test_link_reset_forgets_in_flight_keeps_rate(void **state)
{
    (void)state;
    link_t l = {0};
    simulate(&l, 20000, 100, 5000);
    uint64_t rate = l.rate_bps;
    assert_true(rate > 0);
    assert_true(link_sent(&l, 1000, 1, 6000));
    link_reset(&l);
    assert_int_equal(l.n, 0);
    assert_int_equal(l.inflight, 0);
    assert_int_equal(l.rate_bps, rate);
    assert_int_equal(link_confirm_n(&l, 1, 7000, NULL), 0);
}

static void
test_link_bounds_messages_in_flight(void **state)
{
    (void)state;
    link_t l = {.rate_bps = 1000u * 1000 * 1000};
    for (unsigned i = 0; i < LINK_INFLIGHT_MAX; i++)
        assert_true(link_sent(&l, 1, i + 1, 1));
    assert_false(link_may_send(&l));
    assert_false(link_sent(&l, 1, 99, 1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_starts_small),
        cmocka_unit_test(test_link_measures_a_slow_line),
        cmocka_unit_test(test_link_fills_a_20kBps_line),
        cmocka_unit_test(test_link_grows_to_the_maximum_on_a_fast_line),
        cmocka_unit_test(test_link_measures_bursts_that_empty_the_window),
        cmocka_unit_test(test_link_confirm_upto_is_cumulative),
        cmocka_unit_test(test_link_reset_forgets_in_flight_keeps_rate),
        cmocka_unit_test(test_link_bounds_messages_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

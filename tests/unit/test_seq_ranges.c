/*
 * test_seq_ranges.c - the hub's record of a node's own hub_seqs
 * (seq_ranges.c): runs merged as they are added, queries over the live
 * ranges, forgetting up to a cursor (and compacting), and rewinding the
 * adds of a failed transaction. The hub's no-echo rule and its shared
 * LogBatches rest on these answers (PROTOCOL.md §5.4); the integration
 * tests cannot steer the hub into every interleaving, so each query is
 * checked here at its edges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "seq_ranges.h"

/* {5..7} {10..12} {20} */
static void
fill(seq_ranges_t *s)
{
    static const uint64_t seqs[] = {5, 6, 7, 10, 11, 12, 20};
    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++)
        seq_ranges_add(s, seqs[i]);
}

static void
test_consecutive_adds_make_one_range(void **state)
{
    (void)state;
    seq_ranges_t s = {0};
    fill(&s);
    assert_int_equal(s.n - s.head, 3);
    assert_int_equal(s.r[0].first, 5);
    assert_int_equal(s.r[0].last, 7);
    assert_int_equal(s.r[2].first, 20);
    assert_int_equal(s.r[2].last, 20);
    seq_ranges_fini(&s);
    assert_null(s.r);
    assert_int_equal(s.n, 0);
}

static void
test_has_at_the_edges(void **state)
{
    (void)state;
    seq_ranges_t s = {0};
    assert_false(seq_ranges_has(&s, 1));
    fill(&s);
    static const uint64_t in[] = {5, 6, 7, 10, 12, 20};
    static const uint64_t out[] = {0, 4, 8, 9, 13, 19, 21, UINT64_MAX};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        assert_true(seq_ranges_has(&s, in[i]));
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
        assert_false(seq_ranges_has(&s, out[i]));
    seq_ranges_fini(&s);
}

/* A cached LogBatch (after, to] may go as it is to a node only when none
 * of its entries is that node's own: a gap between two runs is not enough
 * to miss the run after it. */
static void
test_overlaps_sees_a_run_inside_the_span(void **state)
{
    (void)state;
    seq_ranges_t s = {0};
    fill(&s);
    assert_false(seq_ranges_overlaps(&s, 7, 9)); /* 8..9: the gap */
    assert_true(seq_ranges_overlaps(&s, 7, 10)); /* reaches 10 */
    assert_true(seq_ranges_overlaps(&s, 8, 30)); /* 10..12 inside */
    assert_true(seq_ranges_overlaps(&s, 0, 5));  /* ends on 5 */
    assert_false(seq_ranges_overlaps(&s, 0, 4)); /* before all */
    assert_true(seq_ranges_overlaps(&s, 11, 11 + 1));
    assert_false(seq_ranges_overlaps(&s, 12, 19)); /* 13..19 */
    assert_false(seq_ranges_overlaps(&s, 20, 99)); /* after all */
    assert_false(seq_ranges_overlaps(&s, 6, 6));   /* empty span */
    seq_ranges_fini(&s);
}

static void
test_run_end_follows_a_run_from_its_start(void **state)
{
    (void)state;
    seq_ranges_t s = {0};
    fill(&s);
    assert_int_equal(seq_ranges_run_end(&s, 4, 100), 7); /* 5..7 */
    assert_int_equal(seq_ranges_run_end(&s, 5, 100), 7); /* 6..7 */
    assert_int_equal(seq_ranges_run_end(&s, 4, 6), 6);   /* capped */
    assert_int_equal(seq_ranges_run_end(&s, 7, 100), 7); /* 8: not own */
    assert_int_equal(seq_ranges_run_end(&s, 3, 100), 3); /* 4: not own */
    assert_int_equal(seq_ranges_run_end(&s, 19, 100), 20);
    assert_int_equal(seq_ranges_run_end(&s, 20, 100), 20);
    seq_ranges_fini(&s);
}

static void
test_drop_upto_forgets_whole_ranges_only(void **state)
{
    (void)state;
    seq_ranges_t s = {0};
    fill(&s);
    seq_ranges_drop_upto(&s, 6); /* 5..7 straddles 6: kept whole */
    assert_true(seq_ranges_has(&s, 5));
    seq_ranges_drop_upto(&s, 7);
    assert_false(seq_ranges_has(&s, 7));
    assert_false(seq_ranges_overlaps(&s, 0, 9));
    assert_int_equal(seq_ranges_run_end(&s, 4, 100), 4);
    assert_true(seq_ranges_has(&s, 10));
    seq_ranges_drop_upto(&s, 1000);
    assert_false(seq_ranges_has(&s, 20));
    seq_ranges_add(&s, 1001); /* a new range after all were forgotten */
    assert_true(seq_ranges_has(&s, 1001));
    assert_false(seq_ranges_has(&s, 1000));
    seq_ranges_fini(&s);
}

/* Thousands of separate ranges, forgotten in steps: the array is compacted
 * and every answer stays right. */
static void
test_many_ranges_compacted(void **state)
{
    (void)state;
    seq_ranges_t s = {0};
    for (uint64_t i = 1; i <= 5000; i++)
        seq_ranges_add(&s, 2 * i); /* even seqs: 5000 ranges */
    for (uint64_t cursor = 0; cursor <= 10000; cursor += 250) {
        seq_ranges_drop_upto(&s, cursor);
        assert_true(s.n - s.head <= 5000);
        for (uint64_t q = cursor + 1; q <= cursor + 6 && q <= 10001; q++)
            assert_int_equal(seq_ranges_has(&s, q), q % 2 == 0 && q <= 10000);
    }
    assert_true(s.n < 5000); /* compacted at least once */
    seq_ranges_fini(&s);
}

/* A group commit that failed takes back the hub_seqs it recorded: the
 * range it extended ends where it did before, the ones it opened are gone. */
static void
test_rewind_undoes_the_adds_since_the_mark(void **state)
{
    (void)state;
    seq_ranges_t s = {0};
    fill(&s);
    seq_ranges_mark_t m = seq_ranges_mark(&s);
    seq_ranges_add(&s, 21); /* extends 20 */
    seq_ranges_add(&s, 30);
    seq_ranges_add(&s, 31);
    assert_true(seq_ranges_has(&s, 21));
    seq_ranges_rewind(&s, m);
    assert_true(seq_ranges_has(&s, 20));
    assert_false(seq_ranges_has(&s, 21));
    assert_false(seq_ranges_has(&s, 30));
    assert_int_equal(s.n - s.head, 3);
    /* the same hub_seqs again, as the retry assigns them */
    seq_ranges_add(&s, 21);
    assert_int_equal(s.n - s.head, 3);
    assert_true(seq_ranges_overlaps(&s, 20, 21));
    /* a mark on the empty set */
    seq_ranges_t e = {0};
    m = seq_ranges_mark(&e);
    seq_ranges_add(&e, 1);
    seq_ranges_rewind(&e, m);
    assert_false(seq_ranges_has(&e, 1));
    seq_ranges_fini(&e);
    seq_ranges_fini(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consecutive_adds_make_one_range),
        cmocka_unit_test(test_has_at_the_edges),
        cmocka_unit_test(test_overlaps_sees_a_run_inside_the_span),
        cmocka_unit_test(test_run_end_follows_a_run_from_its_start),
        cmocka_unit_test(test_drop_upto_forgets_whole_ranges_only),
        cmocka_unit_test(test_many_ranges_compacted),
        cmocka_unit_test(test_rewind_undoes_the_adds_since_the_mark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

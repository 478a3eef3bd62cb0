/*
 * test_key_set.c - unit tests for model/key_set.c: the keys of one import
 * file, found again when given twice (rule R6), in order and out of order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "key_set.h"
#include "obs_err.h"

static uint64_t
add(key_set_t *ks, const char *key, uint8_t cls, uint64_t line)
{
    uint64_t first = 99;
    assert_int_equal(
        key_set_add(ks, (const uint8_t *)key, strlen(key), cls, line, &first),
        OBS_OK);
    return first;
}

/* Keys in order are new; the same key again, out of order, names the line
 * it came on first; the same key in the other class is another key. */
static void
test_key_set_finds_repeats(void **state)
{
    (void)state;
    key_set_t ks;
    memset(&ks, 0, sizeof(ks));
    assert_int_equal(add(&ks, "a", 0, 1), 0);
    assert_int_equal(add(&ks, "b", 0, 2), 0);
    assert_int_equal(add(&ks, "c", 0, 3), 0);
    assert_false(ks.unsorted); /* in order: nothing indexed yet */
    assert_int_equal(add(&ks, "b", 0, 4), 2);
    assert_true(ks.unsorted);
    assert_int_equal(add(&ks, "b", 1, 5), 0); /* a delete of it: another */
    assert_int_equal(add(&ks, "b", 1, 6), 5);
    assert_int_equal(add(&ks, "ab", 0, 7), 0); /* a prefix is not the key */
    assert_int_equal(add(&ks, "a", 0, 8), 1);
    key_set_fini(&ks);
    assert_null(ks.slots);
    assert_null(ks.first_block);
}

/* Many keys out of order, across key blocks and table growth: every
 * second giving of each is found with the line of the first. */
static void
test_key_set_many_keys(void **state)
{
    (void)state;
    key_set_t ks;
    memset(&ks, 0, sizeof(ks));
    enum { N = 120000 }; /* ~1.6 MB of records: more than one block */
    char key[32];
    for (uint64_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "k%08llu", (unsigned long long)(N - i));
        assert_int_equal(add(&ks, key, 0, i + 1), 0);
    }
    for (uint64_t i = 0; i < N; i += 997) {
        snprintf(key, sizeof(key), "k%08llu", (unsigned long long)(N - i));
        assert_int_equal(add(&ks, key, 0, N + i + 1), i + 1);
    }
    assert_true(ks.n_used == N);
    key_set_fini(&ks);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_set_finds_repeats),
        cmocka_unit_test(test_key_set_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

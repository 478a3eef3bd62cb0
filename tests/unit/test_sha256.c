/*
 * test_sha256.c - SHA-256 against the FIPS 180-4 / NIST example vectors,
 * and incremental updates split at every block boundary; each vector runs
 * on the portable code and, where the CPU has them, the x86 SHA extensions,
 * and both must agree on many lengths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "sha256.h"

static void
hex(const uint8_t d[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void
check_oneshot(const char *msg, const char *want)
{
    uint8_t d[32];
    char got[65];
    sha256(msg, strlen(msg), d);
    hex(d, got);
    assert_string_equal(got, want);
}

static void
test_sha256_empty_string(void **state)
{
    (void)state;
    check_oneshot("", "e3b0c44298fc1c149afbf4c8996fb924"
                      "27ae41e4649b934ca495991b7852b855");
}

static void
test_sha256_abc(void **state)
{
    (void)state;
    check_oneshot("abc", "ba7816bf8f01cfea414140de5dae2223"
                         "b00361a396177a9cb410ff61f20015ad");
}

static void
test_sha256_448_bit_message(void **state)
{
    (void)state;
    check_oneshot("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                  "248d6a61d20638b8e5c026930c3e6039"
                  "a33ce45964ff2167f6ecedd419db06c1");
}

static void
test_sha256_896_bit_message(void **state)
{
    (void)state;
    check_oneshot("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                  "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                  "cf5b16a778af8380036ce59e7b049237"
                  "0b249b11e8f07a51afac45037afee9d1");
}

static void
test_sha256_million_a_incremental(void **state)
{
    (void)state;
    char chunk[1000];
    memset(chunk, 'a', sizeof(chunk));
    sha256_t ctx;
    sha256_init(&ctx);
    for (int i = 0; i < 1000; i++)
        sha256_update(&ctx, chunk, sizeof(chunk));
    uint8_t d[32];
    char got[65];
    sha256_final(&ctx, d);
    hex(d, got);
    assert_string_equal(got, "cdc76e5c9914fb9281a1c7e284d73e67"
                             "f1809a48a497200e046d39ccc7112cd0");
}

static void
test_sha256_split_updates_match_oneshot(void **state)
{
    (void)state;
    uint8_t msg[200], want[32], got[32];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof(msg); len++) {
        sha256(msg, len, want);
        for (size_t cut = 0; cut <= len; cut += 13) {
            sha256_t ctx;
            sha256_init(&ctx);
            sha256_update(&ctx, msg, cut);
            sha256_update(&ctx, msg + cut, len - cut);
            sha256_final(&ctx, got);
            assert_memory_equal(got, want, 32);
        }
    }
}

static void
test_sha256_hw_and_portable_agree(void **state)
{
    (void)state;
    uint8_t msg[300], a[32], b[32];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 31 + 17);
    bool hw = sha256_use_hw(true);
    for (size_t len = 0; len <= sizeof(msg); len++) {
        sha256_use_hw(true);
        sha256(msg, len, a);
        sha256_use_hw(false);
        sha256(msg, len, b);
        assert_memory_equal(a, b, 32);
    }
    print_message("SHA extensions %s\n", hw ? "used" : "not available");
}

static int
portable(void **state)
{
    (void)state;
    sha256_use_hw(false);
    return 0;
}

static int
hardware(void **state)
{
    (void)state;
    sha256_use_hw(true);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_empty_string),
        cmocka_unit_test(test_sha256_abc),
        cmocka_unit_test(test_sha256_448_bit_message),
        cmocka_unit_test(test_sha256_896_bit_message),
        cmocka_unit_test(test_sha256_million_a_incremental),
        cmocka_unit_test(test_sha256_split_updates_match_oneshot),
        cmocka_unit_test(test_sha256_hw_and_portable_agree),
    };
    int failed = cmocka_run_group_tests_name("portable", tests, portable, NULL);
    return failed +
           cmocka_run_group_tests_name("hardware", tests, hardware, NULL);
}

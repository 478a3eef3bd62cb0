/*
 * test_sha256.c - SHA-256 against known digests on BOTH code paths: the
 * portable C and the x86 SHA extensions (sha256_use_hw). The known-digest
 * tests run twice, in the group "portable" and the group "hardware"; the
 * group state names the path and each test selects it itself, so a test
 * never runs on the other path by accident. A third group compares the two
 * paths on every length 0..300. The known digests are the FIPS 180-2 / NIST
 * example vectors ("", "abc", the 448- and 896-bit messages, one million
 * 'a') and, around the padding boundaries (55/56/57, 63/64/65, 119/120,
 * 127/128/129 ... bytes), digests of a fixed byte pattern computed once with
 * python3 hashlib and pasted here as constants. Each is checked one-shot
 * and fed in pieces (1 byte, 7 bytes, 64 bytes) so both the buffered and
 * the whole-block branch of sha256_update reach the compression function.
 *
 * On a CPU without the SHA extensions the hardware group skips; it fails
 * instead when CPUID (read here, independently of sha256.c) and
 * sha256_use_hw(true) disagree: detection broken, the hardware code would
 * go untested and unused without anyone noticing, or be run where it
 * faults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "sha256.h"

enum path { PATH_PORTABLE, PATH_HW };

static enum path path_portable = PATH_PORTABLE;
static enum path path_hw = PATH_HW;

/* Whether the CPU, as this process sees it (CPUID: so also under valgrind,
 * which hides the extensions it does not emulate), has the SHA extensions
 * and the SSSE3/SSE4.1 they need. Written from the Intel SDM, apart from
 * sha256.c's own detection, which it checks. */
static bool
cpu_has_sha_ext(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return false;
    bool sha = (b >> 29) & 1u; /* CPUID.(EAX=7,ECX=0):EBX[29] */
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return false;
    return sha && ((c >> 9) & 1u) && ((c >> 19) & 1u); /* SSSE3, SSE4.1 */
#else
    return false;
#endif
}

/* Selects the group's path for this test; skips the test when the path is
 * the hardware one and the CPU lacks the extensions. */
static void
use_path(void **state)
{
    enum path p = *(const enum path *)*state;

    if (p == PATH_PORTABLE) {
        assert_false(sha256_use_hw(false));
        return;
    }
    bool hw = sha256_use_hw(true);
    if (hw != cpu_has_sha_ext())
        fail_msg("CPUID says the SHA extensions are %s, sha256_use_hw(true) "
                 "chose the %s code",
                 hw ? "absent" : "present", hw ? "hardware" : "portable");
    if (!hw) {
        print_message("SHA extensions not available: hardware path "
                      "not checked\n");
        skip();
    }
}

static void
hex(const uint8_t d[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Digest of msg[0..len) fed in pieces of `piece` bytes (0: one-shot). */
static void
digest_hex(const void *msg, size_t len, size_t piece, char out[65])
{
    uint8_t d[32];

    if (piece == 0) {
        sha256(msg, len, d);
    } else {
        const uint8_t *p = msg;
        sha256_t ctx;
        sha256_init(&ctx);
        for (size_t off = 0; off < len; off += piece)
            sha256_update(&ctx, p + off, len - off < piece ? len - off : piece);
        sha256_final(&ctx, d);
    }
    hex(d, out);
}

/* msg must hash to want one-shot and in pieces of 1, 7 and 64 bytes. */
static void
check_digest(const void *msg, size_t len, const char *want)
{
    static const size_t pieces[] = {0, 1, 7, 64};
    char got[65];

    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        digest_hex(msg, len, pieces[i], got);
        if (strcmp(got, want) != 0)
            fail_msg("len %zu, pieces of %zu: got %s, want %s", len, pieces[i],
                     got, want);
    }
}

/* FIPS 180-2 appendix B and the NIST example vectors. */
static const struct {
    const char *msg;
    const char *want;
} nist[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb924"
         "27ae41e4649b934ca495991b7852b855"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223"
            "b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039"
     "a33ce45964ff2167f6ecedd419db06c1"},
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
     "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b049237"
     "0b249b11e8f07a51afac45037afee9d1"},
};

static void
test_sha256_nist_vectors(void **state)
{
    use_path(state);
    for (size_t i = 0; i < sizeof(nist) / sizeof(nist[0]); i++)
        check_digest(nist[i].msg, strlen(nist[i].msg), nist[i].want);
}

static void
test_sha256_million_a(void **state)
{
    use_path(state);
    static char msg[1000000];
    memset(msg, 'a', sizeof(msg));
    check_digest(msg, sizeof(msg),
                 "cdc76e5c9914fb9281a1c7e284d73e67"
                 "f1809a48a497200e046d39ccc7112cd0");
}

/* pattern[i] = i * 31 + 17 (mod 256); the digests of its prefixes were
 * computed with python3:
 *   msg = bytes(((i * 31 + 17) & 0xff) for i in range(300))
 *   hashlib.sha256(msg[:n]).hexdigest()
 * 55 is the longest message whose padding fits its block, 56..63 take a
 * second block for the length, 64 is a whole block plus a padding block. */
static const struct {
    size_t len;
    const char *want;
} boundary[] = {
    {1, "4a64a107f0cb32536e5bce6c98c393db21cca7f4ea187ba8c4dca8b51d4ea80a"},
    {55, "c096925d8ee622ec75c396b1712bcb599952e05c2cd1f3e33032514893edbc83"},
    {56, "4e3bd718369bf855312b6fae0e874c697a5c910c0270ebab390f15872a7878a5"},
    {57, "a95f9745ff3e28365a048b4659b6e5fff8532d9afaa811ddb9af0abba41b8363"},
    {63, "e5e8e5e7481532428a3d324d4163fe92fea5f52e85fbe33abfa5aa9235c5addf"},
    {64, "f616afd08efb65e91c7fa856fff5e2b991980c5b3fbdffb81f1e4d9dbdb509d7"},
    {65, "8ce44bf6e55d58f6f5fa326e9fa574cf8fd80adcaf299d4b2f93e9b7414a9821"},
    {111, "303f75cd8117d19fa91cdee51f6284df7051f2845eb5e4164c860376f184a9c3"},
    {112, "0c27e67ed1ff3acb4c1c895998320898c3ae0a00292619abd28fa7229a4b56d0"},
    {119, "c00e1cc2347e04aa6a068b6b5c23009fa561f4ef726da233b8b5f32794ae0332"},
    {120, "d6fe8be9a4f9a257e2f833c02739fffb8dfe6ea0d5ff008a0782d3b00d246274"},
    {127, "45cfe66b76289d753ceee6558f70d82af6b8c590265cacb2d4aa11f3b0396fb0"},
    {128, "fdb50d75cc2ca56537d86f78e871f423691c3822ad1ac9653e84ab9781328f9f"},
    {129, "7b69204869f4800e543ca75165bbe5b2d5dab3379c9b5f6caacfd36888958834"},
    {191, "3cdf163a51bd8fad96e5b3ab48258666d3dd2882efe4304ca9907bbdcdbddbfc"},
    {192, "a734533331ac2f324dfaa70ae66f6b40fc34982d0935552cc28f6c2ccbdefad8"},
    {193, "0e5b497f13755a52474236e0c0f88d30a057f5022187209a88c03beb38c4d2c3"},
    {300, "6b6f5725583e6e2d38862b721f198762e8c175c5ddf1ab8e50bb6bdabaf6d67a"},
};

static void
fill_pattern(uint8_t *msg, size_t len)
{
    for (size_t i = 0; i < len; i++)
        msg[i] = (uint8_t)(i * 31 + 17);
}

static void
test_sha256_padding_boundaries(void **state)
{
    use_path(state);
    uint8_t msg[300];
    fill_pattern(msg, sizeof(msg));
    for (size_t i = 0; i < sizeof(boundary) / sizeof(boundary[0]); i++)
        check_digest(msg, boundary[i].len, boundary[i].want);
}

static void
test_sha256_split_updates_match_oneshot(void **state)
{
    use_path(state);
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

/* The two paths agree on every length 0..300 (the known digests above pin
 * both to the right answer at the boundaries; this covers the rest). Needs
 * the extensions, so skips without them. */
static void
test_sha256_hw_and_portable_agree(void **state)
{
    use_path(state);
    uint8_t msg[300], a[32], b[32];
    fill_pattern(msg, sizeof(msg));
    for (size_t len = 0; len <= sizeof(msg); len++) {
        assert_true(sha256_use_hw(true));
        sha256(msg, len, a);
        assert_false(sha256_use_hw(false));
        sha256(msg, len, b);
        assert_memory_equal(a, b, 32);
    }
}

static int
portable(void **state)
{
    *state = &path_portable;
    return 0;
}

static int
hardware(void **state)
{
    *state = &path_hw;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_nist_vectors),
        cmocka_unit_test(test_sha256_million_a),
        cmocka_unit_test(test_sha256_padding_boundaries),
        cmocka_unit_test(test_sha256_split_updates_match_oneshot),
    };
    const struct CMUnitTest hw_only[] = {
        cmocka_unit_test(test_sha256_hw_and_portable_agree),
    };
    int failed = cmocka_run_group_tests_name("portable", tests, portable, NULL);
    failed += cmocka_run_group_tests_name("hardware", tests, hardware, NULL);
    return failed + cmocka_run_group_tests_name("hardware_vs_portable", hw_only,
                                                hardware, NULL);
}

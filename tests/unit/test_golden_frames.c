/*
 * test_golden_frames.c - the v1 wire format, frozen: for every message type
 * tests/golden/frames/v1/<Message>.bin (Message as in obsync.proto) is one
 * frame of the fixed content of msg_fixtures.h. msg_decode must read each
 * file back to that content, and msg_encode of the content must give the
 * file byte for byte: peers of other builds send and expect these bytes. A
 * missing file fails, it is not skipped.
 *
 * OBSYNC_GOLDEN_WRITE=1 writes the missing files from msg_encode first
 * (then checks them all as usual); an existing file is never overwritten.
 * tests/golden/README.md says when that is legitimate: never to change an
 * existing v1 frame.
 */
/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
/* clang-format off */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "codec.h"
#include "msg.h"
#include "msg_fixtures.h"
#include "obs_err.h"

#ifndef OBSYNC_SOURCE_DIR
#error "OBSYNC_SOURCE_DIR must name the source tree"
#endif

#define GOLDEN_MAX (64 * 1024) /* every frame here is far smaller */

/* tests/golden/frames/v1/<name>.bin of the source tree. */
static void
golden_path(msg_type_t t, char *buf, size_t cap)
{
    const char *src = getenv("OBSYNC_SOURCE_DIR");
    int n = snprintf(buf, cap, "%s/tests/golden/frames/v1/%s.bin",
                     src && src[0] ? src : OBSYNC_SOURCE_DIR, msg_type_name(t));
    assert_true(n > 0 && (size_t)n < cap);
}

/* Reads the whole file into buf; its length, or fails the test. */
static size_t
read_golden(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("%s: %s (a golden frame is missing: every message type "
                 "has one; see tests/golden/README.md)",
                 path, strerror(errno));
    size_t n = fread(buf, 1, cap, f);
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad)
        fail_msg("%s: unreadable or over %d bytes", path, GOLDEN_MAX);
    return n;
}

/* Writes a missing frame; an existing one is left for the checks. */
static void
write_golden(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wbx");
    if (f == NULL && errno == EEXIST)
        return;
    if (f == NULL)
        fail_msg("%s: %s", path, strerror(errno));
    size_t n = fwrite(buf, 1, len, f);
    if (fclose(f) != 0 || n != len)
        fail_msg("%s: write failed", path);
}

static bool
write_mode(void)
{
    const char *w = getenv("OBSYNC_GOLDEN_WRITE");
    return w != NULL && strcmp(w, "1") == 0;
}

/* state: the type. */
static void
test_golden_frame(void **state)
{
    msg_type_t t = (msg_type_t)(uintptr_t)*state;
    char path[4096];
    golden_path(t, path, sizeof(path));
    msg_t want;
    fx_build(t, &want);
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    assert_int_equal(msg_encode(&want, &enc, &enc_len), OBS_OK);
    if (write_mode())
        write_golden(path, enc, enc_len);

    static uint8_t file[GOLDEN_MAX];
    size_t len = read_golden(path, file, sizeof(file));
    msg_t *got = NULL; /* the frame reads back as the fixed content */
    int rc = msg_decode(file, len, CODEC_MAX_FRAME, &got);
    if (rc != OBS_OK)
        fail_msg("%s: msg_decode: %s", path, obs_strerror(rc));
    fx_assert_equal(&want, got);
    msg_destroy(&got);

    if (enc_len != len || memcmp(enc, file, len) != 0) {
        size_t at = 0; /* the first byte that differs, for the log */
        while (at < len && at < enc_len && enc[at] == file[at])
            at++;
        fail_msg("%s: msg_encode gives %zu bytes, the file has %zu; first "
                 "difference at byte %zu",
                 path, enc_len, len, at);
    }
    free(enc);
}

/* No message type without a golden frame: every body number msg.h names
 * is among the types checked above. */
static void
test_golden_every_body_is_covered(void **state)
{
    (void)state;
    size_t named = 0;
    for (int f = 1; f < 128; f++) {
        if (strcmp(msg_type_name((msg_type_t)f), "unknown") == 0)
            continue;
        named++;
        bool listed = false;
        for (size_t i = 0; i < FX_N_TYPES; i++)
            listed = listed || fx_types[i] == (msg_type_t)f;
        if (!listed)
            fail_msg("%s (%d) has no golden frame", msg_type_name(f), f);
    }
    assert_int_equal(named, FX_N_TYPES);
}

static int
teardown_fixtures(void **state)
{
    (void)state;
    fx_fini();
    return 0;
}

#define GOLDEN(t) \
    {"golden_" #t, test_golden_frame, NULL, NULL, (void *)(uintptr_t)t},

int
main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TYPES(GOLDEN) cmocka_unit_test(test_golden_every_body_is_covered)};
    return cmocka_run_group_tests(tests, NULL, teardown_fixtures);
}

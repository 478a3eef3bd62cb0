/*
 * test_msg.c - proto/msg.h: every message type survives msg_encode then
 * msg_decode field for field; msg_decode refuses what it must (a frame
 * over max_frame, another protocol version, no body or an unknown one,
 * garbage, an observation over obs.h's limits, a frame whose decoding
 * would pass its allocation budget); msg_decode_limited's limits (the
 * local API's, ctl_decode_limits: rows and cells of an ImportRows counted
 * before unpacking, its own budget, what the CLI sends still decoding);
 * what msg_decode fills in for absent
 * parts, and how it leaves attributes. The bytes themselves are
 * test_golden_frames.c's.
 */
/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
/* clang-format off */
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
#include "ctl.h"
#include "msg.h"
#include "msg_fixtures.h"
#include "obs_err.h"

static void
check_rc(int rc, int want, const char *expr, const char *file, int line)
{
    if (rc != want) {
        print_error("%s: got %s (%s), want %s\n", expr, obs_errname(rc),
                    obs_strerror(rc), obs_errname(want));
        _fail(file, line);
    }
}

#define assert_ok(expr) check_rc((expr), OBS_OK, #expr, __FILE__, __LINE__)
#define assert_rc(expr, want) \
    check_rc((expr), (want), #expr, __FILE__, __LINE__)

/* A frame built by hand: bytes appended to a fixed buffer. */
typedef struct {
    uint8_t b[4096];
    size_t n;
} frame_t;

static void
put_bytes(frame_t *f, const void *p, size_t n)
{
    assert_true(f->n + n <= sizeof(f->b));
    memcpy(f->b + f->n, p, n);
    f->n += n;
}

static void
put_varint(frame_t *f, uint64_t v)
{
    uint8_t tmp[10];
    put_bytes(f, tmp, (size_t)(codec_varint_put(tmp, v) - tmp));
}

/* A length-delimited field: tag, length, bytes. */
static void
put_field(frame_t *f, unsigned field, const void *p, size_t n)
{
    put_varint(f, (uint64_t)field << 3 | 2);
    put_varint(f, n);
    put_bytes(f, p, n);
}

/* version 1, corr_id 7, then body (field, bytes). */
static void
envelope(frame_t *f, unsigned field, const void *body, size_t n)
{
    f->n = 0;
    put_bytes(f, "\x08\x01\x10\x07", 4);
    put_field(f, field, body, n);
}

static msg_t *
decode_ok(const uint8_t *buf, size_t len)
{
    msg_t *m = NULL;
    assert_ok(msg_decode(buf, len, CODEC_MAX_FRAME, &m));
    assert_non_null(m);
    return m;
}

/* ---------------------------------------------------------------- round trips
 */

/* state: the type. Encode the fixed content, decode it, every field equal. */
static void
test_msg_roundtrip(void **state)
{
    msg_type_t t = (msg_type_t)(uintptr_t)*state;
    msg_t want;
    fx_build(t, &want);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(msg_encode(&want, &buf, &len));
    msg_t *got = decode_ok(buf, len);
    fx_assert_equal(&want, got);
    msg_destroy(&got);
    assert_null(got);
    free(buf);
}

/* Fields added to a message after its golden frame (PROTOCOL.md §5.3):
 * they travel, and the golden frames (without them) read as 0. */
static void
test_msg_later_fields_roundtrip(void **state)
{
    (void)state;
    msg_t w, b;
    fx_build(MSG_WELCOME, &w);
    w.u.welcome.peer_timeout_ms = 30000;
    fx_build(MSG_GOODBYE, &b);
    b.u.goodbye.code = OBS_EEXIST;
    const msg_t *in[] = {&w, &b};
    for (size_t i = 0; i < 2; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_ok(msg_encode(in[i], &buf, &len));
        msg_t *got = decode_ok(buf, len);
        fx_assert_equal(in[i], got);
        if (got->type == MSG_WELCOME)
            assert_int_equal(got->u.welcome.peer_timeout_ms, 30000);
        else
            assert_int_equal(got->u.goodbye.code, OBS_EEXIST);
        msg_destroy(&got);
        free(buf);
    }
    /* a negative code is a sint32: zigzag, two bytes on the wire */
    frame_t f;
    envelope(&f, 51, "\x10\x1d", 2); /* Goodbye{code = -15} */
    msg_t *m = decode_ok(f.b, f.n);
    assert_int_equal(m->type, MSG_GOODBYE);
    assert_int_equal(m->u.goodbye.code, -15);
    msg_destroy(&m);
}

static void
test_msg_type_names_are_the_proto_messages(void **state)
{
    (void)state;
    assert_string_equal(msg_type_name(MSG_HELLO), "Hello");
    assert_string_equal(msg_type_name(MSG_STATUS), "StatusRequest");
    assert_string_equal(msg_type_name(MSG_ERROR), "ErrorReply");
    assert_string_equal(msg_type_name(MSG_NONE), "unknown");
    assert_string_equal(msg_type_name((msg_type_t)30), "unknown");
    for (size_t i = 0; i < FX_N_TYPES; i++)
        assert_string_not_equal(msg_type_name(fx_types[i]), "unknown");
}

static void
test_msg_encode_refuses_a_message_without_a_type(void **state)
{
    (void)state;
    msg_t m = {.type = MSG_NONE};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_rc(msg_encode(&m, &buf, &len), OBS_EINVAL);
    assert_null(buf);
    m.type = (msg_type_t)30; /* not a body of obsync.proto */
    assert_rc(msg_encode(&m, &buf, &len), OBS_EINVAL);
    assert_null(buf);
}

static void
test_msg_encode_refuses_an_observation_over_the_limits(void **state)
{
    (void)state;
    char df[OBS_DATAFLOW_MAX + 2];
    memset(df, 'D', sizeof(df) - 1);
    df[sizeof(df) - 1] = '\0';
    obs_t o = fx_put_obs[0];
    o.dataflow = df;
    msg_t m = {.type = MSG_PUT, .u.put.obs = {&o, 1}};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_rc(msg_encode(&m, &buf, &len), OBS_ETOOBIG);
    assert_null(buf);
}

static void
test_msg_encode_writes_null_strings_as_empty(void **state)
{
    (void)state;
    const char *with_null[] = {"FREQ", NULL, "TIME_PERIOD"};
    const char *with_empty[] = {"FREQ", "", "TIME_PERIOD"};
    msg_t a = {.type = MSG_IMPORT_BEGIN}, b = a;
    a.u.import_begin.header = (msg_strs_t){with_null, 3};
    a.u.import_begin.source_name = NULL;
    b.u.import_begin.header = (msg_strs_t){with_empty, 3};
    b.u.import_begin.source_name = "";
    uint8_t *ba = NULL, *bb = NULL;
    size_t la = 0, lb = 0;
    assert_ok(msg_encode(&a, &ba, &la));
    assert_ok(msg_encode(&b, &bb, &lb));
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    msg_t *m = decode_ok(ba, la);
    assert_string_equal(m->u.import_begin.header.items[1], "");
    assert_string_equal(m->u.import_begin.source_name, "");
    msg_destroy(&m);
    free(ba);
    free(bb);
}

/* ---------------------------------------------------------------- refusals */

static void
test_msg_decode_refuses_a_frame_over_max_frame(void **state)
{
    (void)state;
    msg_t want;
    fx_build(MSG_HEARTBEAT, &want);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(msg_encode(&want, &buf, &len));
    msg_t *m = NULL;
    assert_rc(msg_decode(buf, len, len - 1, &m), OBS_ETOOBIG);
    assert_null(m);
    m = decode_ok(buf, len); /* the same frame at the cap is fine */
    msg_destroy(&m);
    free(buf);
}

static void
test_msg_decode_refuses_a_frame_over_the_hard_cap(void **state)
{
    (void)state;
    uint8_t byte = 0; /* refused on its length: never read past byte */
    msg_t *m = NULL;
    assert_rc(msg_decode(&byte, (size_t)CODEC_MAX_FRAME + 1, SIZE_MAX, &m),
              OBS_ETOOBIG);
    assert_null(m);
}

static void
test_msg_decode_refuses_another_version(void **state)
{
    (void)state;
    msg_t want;
    fx_build(MSG_STATUS, &want);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(msg_encode(&want, &buf, &len));
    assert_int_equal(buf[0], 0x08); /* version is the first field */
    assert_int_equal(buf[1], CODEC_VERSION);
    buf[1] = CODEC_VERSION + 1;
    msg_t *m = NULL;
    assert_rc(msg_decode(buf, len, CODEC_MAX_FRAME, &m), OBS_EVERSION);
    assert_null(m);
    free(buf);
}

static void
test_msg_decode_refuses_a_frame_without_a_body(void **state)
{
    (void)state;
    static const uint8_t f[] = {0x08, 0x01, 0x10, 0x07};
    msg_t *m = NULL;
    assert_rc(msg_decode(f, sizeof(f), CODEC_MAX_FRAME, &m), OBS_EPROTO);
    assert_null(m);
}

static void
test_msg_decode_refuses_an_unknown_body(void **state)
{
    (void)state;
    frame_t f;
    envelope(&f, 30, "", 0); /* between the local API and replication */
    msg_t *m = NULL;
    assert_rc(msg_decode(f.b, f.n, CODEC_MAX_FRAME, &m), OBS_EPROTO);
    assert_null(m);
    envelope(&f, 80, "\x08\x01", 2); /* past every body */
    assert_rc(msg_decode(f.b, f.n, CODEC_MAX_FRAME, &m), OBS_EPROTO);
    assert_null(m);
}

static void
test_msg_decode_refuses_garbage(void **state)
{
    (void)state;
    static const uint8_t cut[] = {0x08, 0x01, 0x5a, 0x10, 0x0a}; /* cut short */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t bad_wire[] = {0x0f, 0x01}; /* wire type 7 */
    msg_t *m = NULL;
    assert_rc(msg_decode(cut, sizeof(cut), CODEC_MAX_FRAME, &m), OBS_EPROTO);
    assert_rc(msg_decode(junk, sizeof(junk), CODEC_MAX_FRAME, &m), OBS_EPROTO);
    assert_rc(msg_decode(bad_wire, sizeof(bad_wire), CODEC_MAX_FRAME, &m),
              OBS_EPROTO);
    assert_null(m);
}

/* A PutRequest of one observation whose bytes are obs_body. */
static void
put_frame(frame_t *f, const uint8_t *obs_body, size_t n)
{
    frame_t put = {.n = 0};
    put_field(&put, 1, obs_body, n);
    envelope(f, MSG_PUT, put.b, put.n);
}

static void
test_msg_decode_refuses_an_observation_over_the_limits(void **state)
{
    (void)state;
    frame_t obs = {.n = 0}, f;
    char df[OBS_DATAFLOW_MAX + 1];
    memset(df, 'D', sizeof(df));
    put_field(&obs, 1, df, sizeof(df)); /* dataflow one byte too long */
    put_frame(&f, obs.b, obs.n);
    msg_t *m = NULL;
    assert_rc(msg_decode(f.b, f.n, CODEC_MAX_FRAME, &m), OBS_EPROTO);
    assert_null(m);

    obs.n = 0; /* one dimension more than an obs_t holds */
    for (int i = 0; i <= OBS_MAX_DIMS; i++)
        put_field(&obs, 2, "A", 1);
    put_frame(&f, obs.b, obs.n);
    assert_rc(msg_decode(f.b, f.n, CODEC_MAX_FRAME, &m), OBS_EPROTO);
    assert_null(m);
}

static void
test_msg_decode_refuses_an_attribute_without_an_id(void **state)
{
    (void)state;
    frame_t attr = {.n = 0}, obs = {.n = 0}, f;
    put_field(&attr, 2, "A", 1); /* value, no id */
    put_field(&obs, 1, FX_VIOLENCE, strlen(FX_VIOLENCE));
    put_field(&obs, 5, attr.b, attr.n);
    put_frame(&f, obs.b, obs.n);
    msg_t *m = NULL;
    assert_rc(msg_decode(f.b, f.n, CODEC_MAX_FRAME, &m), OBS_EPROTO);
    assert_null(m);
}

/* An ImportRows of n empty rows, 2 bytes each: the most a frame can make
 * a decoder allocate per byte (protobuf-c takes ~100 bytes a row, the
 * plain rows 24 more). */
static int
decode_empty_rows(size_t n)
{
    size_t len = 4 + 2 + 5 + 2 * n;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    uint8_t *p = buf;
    memcpy(p, "\x08\x01\x10\x07", 4);
    p += 4;
    p = codec_varint_put(p, MSG_IMPORT_ROWS << 3 | 2);
    p = codec_varint_put(p, 2 * n);
    for (size_t i = 0; i < n; i++) {
        *p++ = 0x12; /* rows: an empty CsvRow */
        *p++ = 0x00;
    }
    msg_t *m = NULL;
    int rc = msg_decode(buf, (size_t)(p - buf), CODEC_MAX_FRAME, &m);
    if (rc == OBS_OK)
        assert_int_equal(m->u.import_rows.n_rows, n);
    msg_destroy(&m);
    free(buf);
    return rc;
}

static void
test_msg_decode_keeps_to_the_allocation_budget(void **state)
{
    (void)state;
    /* 20 KB: 1.1 MB for protobuf-c and 0.24 MB of rows, of 1.7 MB */
    assert_ok(decode_empty_rows(10000));
    /* 40 KB: 2.2 MB for protobuf-c (it fits) and 0.48 MB of rows, past
     * the 2.3 MB budget: the plain structs count too */
    assert_rc(decode_empty_rows(20000), OBS_ENOMEM);
    assert_rc(decode_empty_rows(100000), OBS_ENOMEM);
}

/* ---------------------------------------------------------------- limits */

/* An ImportRows frame (version 1, corr_id 7, import_id 1) of rows rows of
 * cells cells each, every cell cell_len bytes of 'A', malloc'd; *len set. */
static uint8_t *
rows_frame(size_t rows, size_t cells, size_t cell_len, size_t *len)
{
    size_t cell_wire = 1 + 5 + cell_len;
    size_t row_wire = 1 + 5 + 2 + cells * cell_wire;
    size_t cap = 32 + rows * row_wire;
    uint8_t *buf = malloc(cap), *row = malloc(row_wire);
    assert_non_null(buf);
    assert_non_null(row);
    uint8_t *r = row;
    *r++ = 0x08; /* line 2 */
    *r++ = 0x02;
    for (size_t c = 0; c < cells; c++) {
        *r++ = 0x12; /* cells */
        r = codec_varint_put(r, cell_len);
        memset(r, 'A', cell_len);
        r += cell_len;
    }
    size_t row_len = (size_t)(r - row);
    size_t body_len = 2;
    uint8_t tmp[10];
    for (size_t i = 0; i < rows; i++)
        body_len +=
            1 + (size_t)(codec_varint_put(tmp, row_len) - tmp) + row_len;
    uint8_t *p = buf;
    memcpy(p, "\x08\x01\x10\x07", 4);
    p += 4;
    p = codec_varint_put(p, MSG_IMPORT_ROWS << 3 | 2);
    p = codec_varint_put(p, body_len);
    *p++ = 0x08; /* import_id 1 */
    *p++ = 0x01;
    for (size_t i = 0; i < rows; i++) {
        *p++ = 0x12; /* rows */
        p = codec_varint_put(p, row_len);
        memcpy(p, row, row_len);
        p += row_len;
    }
    free(row);
    *len = (size_t)(p - buf);
    return buf;
}

static int
decode_limited(const uint8_t *buf, size_t len, const msg_limits_t *lim,
               msg_refusal_t *why)
{
    msg_t *m = NULL;
    int rc = msg_decode_limited(buf, len, lim, &m, why);
    if (rc == OBS_OK) {
        assert_non_null(m);
        assert_int_equal(why->limit, MSG_LIMIT_NONE);
    } else {
        assert_null(m);
    }
    msg_destroy(&m);
    return rc;
}

/* The 8 MB frame of 4 million empty rows that took a node to 240 MB:
 * refused on its count of rows, before anything is unpacked (a budget of
 * 1 byte would refuse any unpacking, and it is the rows that refuse). */
static void
test_msg_decode_limited_counts_rows_before_unpacking(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *buf = rows_frame(4000000, 0, 0, &len);
    assert_true(len > 8000000);
    msg_limits_t lim = ctl_decode_limits(64u << 20);
    lim.budget = 1;
    lim.budget_per_byte = lim.budget_per_row = lim.budget_per_cell = 0;
    msg_refusal_t why;
    assert_rc(decode_limited(buf, len, &lim, &why), OBS_ETOOBIG);
    assert_int_equal(why.limit, MSG_LIMIT_ROWS);
    assert_true(why.got == 4000000);
    assert_int_equal(why.max, lim.max_rows);
    free(buf);

    /* rows with one empty cell each: the rows again */
    buf = rows_frame(2000000, 1, 0, &len);
    lim = ctl_decode_limits(64u << 20);
    assert_rc(decode_limited(buf, len, &lim, &why), OBS_ETOOBIG);
    assert_int_equal(why.limit, MSG_LIMIT_ROWS);
    assert_true(why.got == 2000000);
    free(buf);

    /* exactly max_rows rows decode */
    buf = rows_frame(lim.max_rows, 1, 0, &len);
    assert_ok(decode_limited(buf, len, &lim, &why));
    free(buf);
    buf = rows_frame(lim.max_rows + 1, 1, 0, &len);
    assert_rc(decode_limited(buf, len, &lim, &why), OBS_ETOOBIG);
    assert_int_equal(why.limit, MSG_LIMIT_ROWS);
    free(buf);
}

/* One row of 4 million empty cells (8 MB): refused on its cells. */
static void
test_msg_decode_limited_counts_cells_before_unpacking(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *buf = rows_frame(1, 4000000, 0, &len);
    msg_limits_t lim = ctl_decode_limits(64u << 20);
    msg_refusal_t why;
    assert_rc(decode_limited(buf, len, &lim, &why), OBS_ETOOBIG);
    assert_int_equal(why.limit, MSG_LIMIT_CELLS);
    assert_true(why.got == 4000000);
    assert_int_equal(why.max, lim.max_cells);
    free(buf);
    /* msg_decode (replication, libobsync) counts nothing: it decodes */
    msg_t *m = NULL;
    buf = rows_frame(1, 1000000, 0, &len);
    assert_ok(msg_decode(buf, len, CODEC_MAX_FRAME, &m));
    assert_int_equal(m->u.import_rows.rows[0].cells.n, 1000000);
    msg_destroy(&m);
    free(buf);
}

/* Every ImportRows body of an Envelope counts (protobuf-c unpacks each
 * and keeps the last); a frame that breaks off is left to protobuf-c to
 * refuse. */
static void
test_msg_decode_limited_counts_every_body(void **state)
{
    (void)state;
    size_t n1 = 0, n2 = 0;
    uint8_t *a = rows_frame(6000, 1, 1, &n1), *b = rows_frame(6000, 1, 1, &n2);
    uint8_t *two = malloc(n1 + n2 - 4);
    assert_non_null(two);
    memcpy(two, a, n1);
    memcpy(two + n1, b + 4, n2 - 4); /* the second body, no header */
    msg_limits_t lim = ctl_decode_limits(64u << 20);
    msg_refusal_t why;
    assert_ok(decode_limited(a, n1, &lim, &why));
    assert_rc(decode_limited(two, n1 + n2 - 4, &lim, &why), OBS_ETOOBIG);
    assert_int_equal(why.limit, MSG_LIMIT_ROWS);
    assert_true(why.got == 12000);
    msg_t *m = NULL; /* what protobuf-c makes of it: one body */
    assert_ok(msg_decode(two, n1 + n2 - 4, CODEC_MAX_FRAME, &m));
    assert_int_equal(m->u.import_rows.n_rows, 6000);
    msg_destroy(&m);
    /* cut short: malformed, whatever was counted */
    assert_rc(decode_limited(a, n1 - 1, &lim, &why), OBS_EPROTO);
    assert_int_equal(why.limit, MSG_LIMIT_NONE);
    free(a);
    free(b);
    free(two);
}

/* A Publish (LogBatch, SnapshotChunk) of n empty changes, malloc'd. */
static uint8_t *
changes_frame(msg_type_t type, size_t n, size_t *len)
{
    unsigned field = type == MSG_SNAPSHOT_CHUNK ? 1 : 3;
    uint8_t *buf = malloc(32 + 2 * n), *p = buf;
    assert_non_null(buf);
    memcpy(p, "\x08\x01\x10\x07", 4);
    p += 4;
    p = codec_varint_put(p, (uint64_t)type << 3 | 2);
    p = codec_varint_put(p, 2 * n);
    for (size_t i = 0; i < n; i++) {
        *p++ = (uint8_t)(field << 3 | 2);
        *p++ = 0x00;
    }
    *len = (size_t)(p - buf);
    return buf;
}

/* Replication's bulk bodies counted too: a Publish of more changes than
 * PROTOCOL.md allows (1,000) refused before unpacking. */
static void
test_msg_decode_limited_counts_changes_before_unpacking(void **state)
{
    (void)state;
    static const msg_type_t types[] = {MSG_PUBLISH, MSG_LOG_BATCH,
                                       MSG_SNAPSHOT_CHUNK};
    msg_limits_t lim = {.max_changes = 1000, .budget = 1};
    for (size_t i = 0; i < 3; i++) {
        size_t len = 0;
        uint8_t *buf = changes_frame(types[i], 4000000, &len);
        msg_refusal_t why;
        assert_rc(decode_limited(buf, len, &lim, &why), OBS_ETOOBIG);
        assert_int_equal(why.limit, MSG_LIMIT_CHANGES);
        assert_true(why.got == 4000000);
        assert_int_equal(why.max, 1000);
        free(buf);
        buf = changes_frame(types[i], 1000, &len); /* at the limit: decodes */
        msg_limits_t ok = {.max_changes = 1000};
        assert_ok(decode_limited(buf, len, &ok, &why));
        free(buf);
    }
}

/* The budget is passed to protobuf-c: over it is OBS_ETOOBIG naming the
 * budget under msg_decode_limited, OBS_ENOMEM under msg_decode as ever. */
static void
test_msg_decode_limited_keeps_to_its_budget(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *buf = rows_frame(100, 100, 0, &len); /* ~20 KB, ~0.9 MB */
    msg_limits_t lim = {.budget = 256 * 1024};
    msg_refusal_t why;
    assert_rc(decode_limited(buf, len, &lim, &why), OBS_ETOOBIG);
    assert_int_equal(why.limit, MSG_LIMIT_BUDGET);
    assert_int_equal(why.max, 256 * 1024);
    assert_true(why.got == len);
    lim.budget = 4u << 20;
    assert_ok(decode_limited(buf, len, &lim, &why));
    /* no model: msg_decode's own 32 * len + 1 MiB */
    lim.budget = 0;
    assert_int_equal(msg_decode_budget(len, 0, 0, &lim), 32 * len + (1u << 20));
    assert_int_equal(msg_decode_budget(len, 0, 0, NULL), 32 * len + (1u << 20));
    free(buf);
    /* the cost model: fixed + per byte + per row + per cell */
    msg_limits_t model = {.budget = 1000,
                          .budget_per_byte = 2,
                          .budget_per_row = 10,
                          .budget_per_cell = 3};
    assert_int_equal(msg_decode_budget(100, 5, 7, &model),
                     1000 + 200 + 50 + 21);
    model.budget_per_cell = SIZE_MAX; /* saturates */
    assert_int_equal(msg_decode_budget(100, 5, 7, &model), SIZE_MAX);
    /* a frame over max_frame is refused on its length */
    lim = (msg_limits_t){.max_frame = 100};
    buf = rows_frame(10, 10, 0, &len);
    assert_rc(decode_limited(buf, len, &lim, &why), OBS_ETOOBIG);
    assert_int_equal(why.limit, MSG_LIMIT_FRAME);
    assert_true(why.got == len);
    assert_int_equal(why.max, 100);
    free(buf);
}

/* What the CLI sends (client/lib/import.c: <= 2000 rows or <= 4 MiB a
 * chunk) decodes under the local API's limits, up to the widest header
 * the daemon maps (512 columns and a trailing empty cell), short cells
 * or empty ones (the most protobuf-c takes per byte: ~90 bytes a cell). */
static void
test_msg_decode_limited_takes_what_the_cli_sends(void **state)
{
    (void)state;
    static const struct {
        size_t rows, cells, cell_len;
    } chunks[] = {{2000, 15, 5},  {2000, 15, 0},   {2000, 30, 0},
                  {2000, 102, 3}, {2000, 240, 0},  {2000, 513, 0},
                  {2000, 513, 3}, {1, 1, 4000000}, {100, 100, 400},
                  {2000, 40, 50}};
    msg_limits_t lim = ctl_decode_limits(64u << 20);
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        size_t len = 0;
        uint8_t *buf = rows_frame(chunks[i].rows, chunks[i].cells,
                                  chunks[i].cell_len, &len);
        msg_refusal_t why;
        int rc = decode_limited(buf, len, &lim, &why);
        if (rc != OBS_OK)
            fail_msg("%zu rows of %zu cells of %zu bytes (%zu bytes): %s, "
                     "limit %d, budget %zu",
                     chunks[i].rows, chunks[i].cells, chunks[i].cell_len, len,
                     obs_errname(rc), (int)why.limit,
                     msg_decode_budget(len, chunks[i].rows,
                                       chunks[i].rows * chunks[i].cells, &lim));
        free(buf);
    }
}

/* ---------------------------------------------------------------- contents */

static void
test_msg_decode_reads_absent_parts_as_empty(void **state)
{
    (void)state;
    frame_t f;
    msg_t *m = NULL;
    envelope(&f, MSG_GET, "", 0); /* a GetRequest without its KeyRef */
    m = decode_ok(f.b, f.n);
    assert_int_equal(m->type, MSG_GET);
    assert_true(m->corr_id == 7);
    assert_string_equal(m->u.get.key.dataflow, "");
    assert_string_equal(m->u.get.key.series_key, "");
    assert_string_equal(m->u.get.key.time_period, "");
    msg_destroy(&m);

    envelope(&f, MSG_HELLO, "", 0); /* a Hello without anything */
    m = decode_ok(f.b, f.n);
    assert_string_equal(m->u.hello.node_id, "");
    assert_string_equal(m->u.hello.provider, "");
    assert_int_equal(m->u.hello.subscription.dataflows.n, 0);
    assert_int_equal(m->u.hello.subscription.areas.n, 0);
    msg_destroy(&m);

    envelope(&f, MSG_STATUS_REPLY, "", 0);
    m = decode_ok(f.b, f.n);
    assert_string_equal(m->u.status_reply.node_id, "");
    assert_string_equal(m->u.status_reply.link, "");
    assert_int_equal(m->u.status_reply.n_peers, 0);
    msg_destroy(&m);
}

static void
test_msg_decode_sorts_and_merges_attributes(void **state)
{
    (void)state;
    /* as a client may send them: unsorted, one repeated, one emptied */
    obs_attr_t attrs[] = {{"UNIT_MEASURE", "KG"},
                          {"OBS_STATUS", "E"},
                          {"COMMENT_OBS", "provisional"},
                          {"OBS_STATUS", "A"},
                          {"COMMENT_OBS", ""}};
    obs_t o = fx_put_obs[1];
    o.attrs = attrs;
    o.n_attrs = 5;
    msg_t want = {.type = MSG_PUT, .u.put.obs = {&o, 1}};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(msg_encode(&want, &buf, &len));
    msg_t *m = decode_ok(buf, len);
    const obs_t *got = &m->u.put.obs.items[0];
    assert_int_equal(got->n_attrs, 2);
    assert_string_equal(got->attrs[0].id, "OBS_STATUS");
    assert_string_equal(got->attrs[0].value, "A");
    assert_string_equal(got->attrs[1].id, "UNIT_MEASURE");
    assert_string_equal(got->attrs[1].value, "KG");
    msg_destroy(&m);
    free(buf);
}

static void
test_msg_put_observations_travel_without_a_version(void **state)
{
    (void)state;
    msg_t want = {.type = MSG_PUT, .u.put.obs = {fx_stored_obs, 2}};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(msg_encode(&want, &buf, &len));
    msg_t *m = decode_ok(buf, len);
    static const obs_version_t zero;
    for (size_t i = 0; i < 2; i++)
        assert_memory_equal(&m->u.put.obs.items[i].ver, &zero, sizeof(zero));
    msg_destroy(&m);
    free(buf);
}

static void
test_msg_changes_point_into_the_decoded_message(void **state)
{
    (void)state;
    msg_t want;
    fx_build(MSG_LOG_BATCH, &want);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(msg_encode(&want, &buf, &len));
    msg_t *m = decode_ok(buf, len);
    memset(buf, 0, len); /* the frame may go as soon as it is decoded */
    free(buf);
    const msg_changes_t *c = &m->u.log_batch.changes;
    assert_int_equal(c->n, 2);
    obs_t o;
    obs_init(&o);
    assert_ok(codec_obs_decode(c->items[1].ptr, c->items[1].len, &o));
    assert_string_equal(o.dataflow, FX_DRUG_USE);
    assert_true(o.ver.hub_seq == 1002);
    obs_fini(&o);
    msg_destroy(&m);
}

static void
test_msg_destroy_is_null_safe(void **state)
{
    (void)state;
    msg_t *m = NULL;
    msg_destroy(&m);
    msg_destroy(NULL);
    assert_null(m);
}

static int
teardown_fixtures(void **state)
{
    (void)state;
    fx_fini();
    return 0;
}

#define RT(t) \
    {"roundtrip_" #t, test_msg_roundtrip, NULL, NULL, (void *)(uintptr_t)t},
#define T(f) cmocka_unit_test(f),

int
main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TYPES(RT) /* every message type */
        T(test_msg_later_fields_roundtrip) T(test_msg_type_names_are_the_proto_messages) T(
            test_msg_encode_refuses_a_message_without_a_type)
            T(test_msg_encode_refuses_an_observation_over_the_limits) T(
                test_msg_encode_writes_null_strings_as_empty) T(test_msg_decode_refuses_a_frame_over_max_frame)
                T(test_msg_decode_refuses_a_frame_over_the_hard_cap) T(
                    test_msg_decode_refuses_another_version) T(test_msg_decode_refuses_a_frame_without_a_body)
                    T(test_msg_decode_refuses_an_unknown_body) T(
                        test_msg_decode_refuses_garbage) T(test_msg_decode_refuses_an_observation_over_the_limits)
                        T(test_msg_decode_refuses_an_attribute_without_an_id) T(
                            test_msg_decode_keeps_to_the_allocation_budget)
                            T(test_msg_decode_limited_counts_rows_before_unpacking) T(
                                test_msg_decode_limited_counts_cells_before_unpacking)
                                T(test_msg_decode_limited_counts_every_body) T(
                                    test_msg_decode_limited_counts_changes_before_unpacking)
                                    T(test_msg_decode_limited_keeps_to_its_budget) T(
                                        test_msg_decode_limited_takes_what_the_cli_sends)
                                        T(test_msg_decode_reads_absent_parts_as_empty) T(
                                            test_msg_decode_sorts_and_merges_attributes)
                                            T(test_msg_put_observations_travel_without_a_version)
                                                T(test_msg_changes_point_into_the_decoded_message)
                                                    T(test_msg_destroy_is_null_safe)};
    return cmocka_run_group_tests(tests, NULL, teardown_fixtures);
}

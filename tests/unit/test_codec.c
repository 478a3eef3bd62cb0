/*
 * test_codec.c - the stored Observation codec: a round trip through the
 * decoder's arena (small records and records past its inline buffer), a
 * body encoded once and joined with its version later, the read-only view,
 * the
 * version-only decoder and the origin check agreeing with the full
 * decoder, and malformed records refused by all three.
 */
#include "codec.h"
#include "codec_pb.h"
#include "obs.h"
#include "test_support.h"

static const char *const col_dims[] = {"A",  "COL", "VC_IHR_PSRC", "_T",
                                       "_T", "_T",  "HARM"};

static void
make_obs(obs_t *o)
{
    obs_init(o);
    assert_ok(obs_set_identity(o, "OID:DF_VIOLENCE(1.0)", col_dims, 7, "2019"));
    assert_ok(obs_set_value(o, "25.7"));
    assert_ok(obs_set_attr(o, "UNIT_MEASURE", "PER_100000_POP"));
    assert_ok(obs_set_attr(o, "OBS_STATUS", "A"));
    obs_version_t *v = &o->ver;
    v->hlc = 0x0123456789abcdefULL;
    snprintf(v->origin, sizeof(v->origin), "COL");
    v->origin_seq = 42;
    snprintf(v->provider, sizeof(v->provider), "COL");
    v->base_hlc = 7;
    snprintf(v->base_origin, sizeof(v->base_origin), "MEX");
    v->base_origin_seq = 9;
    v->action = OBS_ACTION_REPLACE;
    snprintf(v->batch_id, sizeof(v->batch_id), "import-1");
    for (int i = 0; i < OBS_HASH_LEN; i++)
        v->content_hash[i] = (uint8_t)i;
    v->tombstone = true;
    v->hub_seq = 1234;
}

static void
assert_version_equal(const obs_version_t *a, const obs_version_t *b)
{
    assert_true(a->hlc == b->hlc);
    assert_string_equal(a->origin, b->origin);
    assert_true(a->origin_seq == b->origin_seq);
    assert_string_equal(a->provider, b->provider);
    assert_true(a->base_hlc == b->base_hlc);
    assert_string_equal(a->base_origin, b->base_origin);
    assert_true(a->base_origin_seq == b->base_origin_seq);
    assert_int_equal(a->action, b->action);
    assert_string_equal(a->batch_id, b->batch_id);
    assert_memory_equal(a->content_hash, b->content_hash, OBS_HASH_LEN);
    assert_int_equal(a->tombstone, b->tombstone);
    assert_true(a->hub_seq == b->hub_seq);
}

static void
test_codec_roundtrip_and_version_only(void **state)
{
    (void)state;
    obs_t o, back;
    make_obs(&o);
    obs_init(&back);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(codec_obs_encode(&o, &buf, &len));
    assert_ok(codec_obs_decode(buf, len, &back));
    assert_string_equal(back.dataflow, o.dataflow);
    assert_int_equal(back.n_dims, 7);
    assert_string_equal(back.dims[6], "HARM");
    assert_string_equal(back.value, "25.7");
    assert_string_equal(obs_get_attr(&back, "OBS_STATUS"), "A");
    assert_version_equal(&back.ver, &o.ver);

    obs_version_t v;
    assert_ok(codec_obs_decode_version(buf, len, &v));
    assert_version_equal(&v, &o.ver);

    free(buf);
    obs_fini(&back);
    obs_fini(&o);
}

/* Records larger than the decoder's inline arena take its malloc'd blocks:
 * every byte must come back (and ASan sees the blocks freed). */
static void
test_codec_large_record_past_the_arena(void **state)
{
    (void)state;
    obs_t o, back;
    make_obs(&o);
    obs_init(&back);
    char text[OBS_TEXT_MAX + 1];
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof(id), "NOTE_%02d", i);
        memset(text, 'a' + i % 26, OBS_TEXT_MAX);
        text[OBS_TEXT_MAX] = '\0';
        assert_ok(obs_set_attr(&o, id, text));
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(codec_obs_encode(&o, &buf, &len));
    assert_true(len > 40 * OBS_TEXT_MAX);
    assert_ok(codec_obs_decode(buf, len, &back));
    assert_int_equal(back.n_attrs, o.n_attrs);
    for (size_t i = 0; i < o.n_attrs; i++) {
        assert_string_equal(back.attrs[i].id, o.attrs[i].id);
        assert_string_equal(back.attrs[i].value, o.attrs[i].value);
    }
    obs_version_t v;
    assert_ok(codec_obs_decode_version(buf, len, &v));
    assert_version_equal(&v, &o.ver);
    free(buf);
    obs_fini(&back);
    obs_fini(&o);
}

/* A body plus a version is byte for byte the whole encoding, for versions
 * of every size (the length prefix is a varint); so is an encoding after
 * room for a header. */
static void
test_codec_body_plus_version_is_the_encoding(void **state)
{
    (void)state;
    obs_t o;
    make_obs(&o);
    for (int round = 0; round < 3; round++) {
        if (round == 1)
            memset(&o.ver, 0, sizeof(o.ver)); /* an empty Version */
        if (round == 2)                       /* a Version over 127 bytes */
            memset(o.ver.batch_id, 'b', OBS_ID_MAX);
        uint8_t *whole = NULL, *body = NULL, *joined = NULL;
        size_t wlen = 0, blen = 0, jlen = 0;
        assert_ok(codec_obs_encode(&o, &whole, &wlen));
        assert_ok(codec_obs_encode_body(&o, 0, &body, &blen));
        assert_true(blen < wlen);
        assert_ok(
            codec_obs_encode_with_body(body, blen, &o.ver, 0, &joined, &jlen));
        assert_int_equal(jlen, wlen);
        assert_memory_equal(joined, whole, wlen);
        uint8_t *after = NULL; /* and after room left for a header */
        size_t alen = 0;
        assert_ok(codec_obs_encode_after(&o, 77, &after, &alen));
        assert_int_equal(alen, 77 + wlen);
        assert_memory_equal(after + 77, whole, wlen);
        free(after);
        uint8_t *body_after = NULL; /* the body after room, then joined */
        size_t balen = 0;
        assert_ok(codec_obs_encode_body(&o, 5, &body_after, &balen));
        assert_int_equal(balen, 5 + blen);
        assert_memory_equal(body_after + 5, body, blen);
        assert_ok(codec_obs_encode_with_body(body_after + 5, blen, &o.ver, 9,
                                             &after, &alen));
        assert_int_equal(alen, 9 + wlen);
        assert_memory_equal(after + 9, whole, wlen);
        free(after);
        free(body_after);
        free(whole);
        free(body);
        free(joined);
    }
    obs_fini(&o);
}

/* The read-only view agrees with the full decoder on identity, value and
 * version, allocates nothing per field, and refuses what it refuses. */
static void
test_codec_read_only_view(void **state)
{
    (void)state;
    obs_t o;
    make_obs(&o);
    char text[OBS_TEXT_MAX + 1]; /* past the inline arena, too */
    memset(text, 'c', OBS_TEXT_MAX);
    text[OBS_TEXT_MAX] = '\0';
    assert_ok(obs_set_attr(&o, "COMMENT_OBS", text));
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(codec_obs_encode(&o, &buf, &len));
    codec_obs_ro_t ro;
    assert_ok(codec_obs_decode_ro(buf, len, &ro));
    assert_string_equal(ro.obs.dataflow, o.dataflow);
    assert_int_equal(ro.obs.n_dims, o.n_dims);
    for (size_t i = 0; i < o.n_dims; i++)
        assert_string_equal(ro.obs.dims[i], o.dims[i]);
    assert_string_equal(ro.obs.time_period, o.time_period);
    assert_string_equal(ro.obs.value, o.value);
    assert_int_equal(ro.obs.n_attrs, o.n_attrs);
    for (size_t i = 0; i < o.n_attrs; i++) {
        assert_string_equal(ro.obs.attrs[i].id, o.attrs[i].id);
        assert_string_equal(ro.obs.attrs[i].value, o.attrs[i].value);
    }
    assert_version_equal(&ro.obs.ver, &o.ver);
    codec_obs_ro_release(&ro);
    codec_obs_id_t d; /* identity in place, version */
    const obs_id_view_t *id = &d.id;
    assert_ok(codec_obs_decode_id(buf, len, &d));
    assert_int_equal(id->dataflow_len, strlen(o.dataflow));
    assert_memory_equal(id->dataflow, o.dataflow, id->dataflow_len);
    assert_int_equal(id->n_dims, o.n_dims);
    for (size_t i = 0; i < o.n_dims; i++) {
        assert_int_equal(id->dim_lens[i], strlen(o.dims[i]));
        assert_memory_equal(id->dims[i], o.dims[i], id->dim_lens[i]);
    }
    assert_int_equal(id->time_period_len, strlen(o.time_period));
    assert_memory_equal(id->time_period, o.time_period, id->time_period_len);
    assert_version_equal(&d.ver, &o.ver);
    assert_int_equal(codec_obs_decode_id(buf, len - 1, &d), OBS_EPROTO);
    assert_int_equal(id->n_dims, 0);

    assert_int_equal(codec_obs_decode_ro(buf, len - 1, &ro), OBS_EPROTO);
    assert_null(ro.obs.dataflow);
    codec_obs_ro_release(&ro);
    free(buf);
    obs_fini(&o);
}

/* Attributes as another encoder may send them (unsorted, an id twice, an
 * empty value): the view holds what codec_obs_decode makes of them, an
 * empty id is refused by both. */
static void
test_codec_view_merges_attributes_like_decode(void **state)
{
    (void)state;
    Obsync__V1__Attribute a[5];
    Obsync__V1__Attribute *ap[5];
    char kv[5][2][16] = {{"UNIT_MEASURE", "PT"},
                         {"OBS_STATUS", "E"},
                         {"COMMENT_OBS", "gone"},
                         {"UNIT_MEASURE", "NUMBER"},
                         {"COMMENT_OBS", ""}};
    for (int i = 0; i < 5; i++) {
        obsync__v1__attribute__init(&a[i]);
        a[i].id = kv[i][0];
        a[i].value = kv[i][1];
        ap[i] = &a[i];
    }
    char codes[7][16], *dims[7];
    for (int i = 0; i < 7; i++) {
        snprintf(codes[i], sizeof(codes[i]), "%s", col_dims[i]);
        dims[i] = codes[i];
    }
    Obsync__V1__Observation m;
    obsync__v1__observation__init(&m);
    m.dataflow = "OID:DF_VIOLENCE(1.0)";
    m.n_dims = 7;
    m.dims = dims;
    m.time_period = "2019";
    m.value = "1";
    m.n_attrs = 5;
    m.attrs = ap;
    uint8_t buf[1024];
    size_t len = obsync__v1__observation__pack(&m, buf);

    obs_t o;
    obs_init(&o);
    assert_ok(codec_obs_decode(buf, len, &o));
    codec_obs_ro_t ro;
    assert_ok(codec_obs_decode_ro(buf, len, &ro));
    assert_int_equal(o.n_attrs, 2);
    assert_int_equal(ro.obs.n_attrs, 2);
    assert_string_equal(ro.obs.attrs[0].id, "OBS_STATUS");
    assert_string_equal(ro.obs.attrs[0].value, "E");
    assert_string_equal(ro.obs.attrs[1].id, "UNIT_MEASURE");
    assert_string_equal(ro.obs.attrs[1].value, "NUMBER");
    for (size_t i = 0; i < o.n_attrs; i++) {
        assert_string_equal(ro.obs.attrs[i].id, o.attrs[i].id);
        assert_string_equal(ro.obs.attrs[i].value, o.attrs[i].value);
    }
    codec_obs_ro_release(&ro);

    kv[1][0][0] = '\0';
    len = obsync__v1__observation__pack(&m, buf);
    assert_int_equal(codec_obs_decode(buf, len, &o), OBS_EPROTO);
    assert_int_equal(codec_obs_decode_ro(buf, len, &ro), OBS_EPROTO);
    codec_obs_ro_release(&ro);
    obs_fini(&o);
}

/* codec_obs_encode writes protobuf-c's bytes exactly, with and without
 * the version, for full and for sparse observations (defaults left out). */
static void
assert_encoding_is_protobuf_cs(const obs_t *o)
{
    codec_obs_view_t v;
    assert_ok(codec_obs_view_init(&v, o));
    uint8_t want[4096], *got = NULL;
    size_t got_len = 0;
    size_t want_len = obsync__v1__observation__pack(&v.msg, want);
    assert_ok(codec_obs_encode(o, &got, &got_len));
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    free(got);
    v.msg.version = NULL;
    want_len = obsync__v1__observation__pack(&v.msg, want);
    assert_ok(codec_obs_encode_body(o, 0, &got, &got_len));
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    free(got);
    codec_obs_view_fini(&v);
}

static void
test_codec_encoding_is_protobuf_cs(void **state)
{
    (void)state;
    obs_t o;
    make_obs(&o);
    assert_encoding_is_protobuf_cs(&o);
    o.ver.tombstone = false; /* defaults: left out */
    o.ver.action = OBS_ACTION_MERGE;
    o.ver.hub_seq = 0;
    o.ver.base_hlc = 0;
    o.ver.base_origin[0] = '\0';
    o.ver.hlc = UINT64_MAX; /* the longest varint */
    assert_ok(obs_set_value(&o, ""));
    assert_encoding_is_protobuf_cs(&o);
    obs_fini(&o);
    obs_init(&o); /* nothing set at all */
    assert_encoding_is_protobuf_cs(&o);
    char code[OBS_CODE_MAX + 1], text[300]; /* two-byte lengths */
    memset(code, 'X', OBS_CODE_MAX);
    code[OBS_CODE_MAX] = '\0';
    memset(text, 't', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    const char *dims[] = {code, "", "B"};
    assert_ok(obs_set_identity(&o, "OID:DF(1.0)", dims, 3, "2019-Q1"));
    assert_ok(obs_set_attr(&o, "COMMENT_OBS", text));
    assert_encoding_is_protobuf_cs(&o);
    obs_fini(&o);
}

static void
test_codec_record_without_version(void **state)
{
    (void)state;
    obs_t o;
    obs_init(&o);
    assert_ok(
        obs_set_identity(&o, "OID:DF_VIOLENCE(1.0)", col_dims, 7, "2019"));
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(codec_obs_encode(&o, &buf, &len));
    obs_version_t v;
    memset(&v, 0xff, sizeof(v));
    assert_ok(codec_obs_decode_version(buf, len, &v));
    assert_true(v.hlc == 0 && v.origin[0] == '\0' && v.origin_seq == 0);
    free(buf);
    obs_fini(&o);
}

static void
test_codec_malformed_records_refused(void **state)
{
    (void)state;
    obs_t o, back;
    make_obs(&o);
    obs_init(&back);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(codec_obs_encode(&o, &buf, &len));
    obs_version_t v;
    /* truncated anywhere inside the last field (the version) */
    for (size_t cut = len - 1; cut > len - 20; cut--) {
        assert_int_equal(codec_obs_decode(buf, cut, &back), OBS_EPROTO);
        assert_int_equal(codec_obs_decode_version(buf, cut, &v), OBS_EPROTO);
        assert_true(v.hlc == 0 && v.origin[0] == '\0');
    }
    /* wire types 3 and 4 (groups) and 6, 7 are not ours */
    const uint8_t bad_wire[] = {0x0b, 0x00};
    assert_int_equal(codec_obs_decode_version(bad_wire, sizeof(bad_wire), &v),
                     OBS_EPROTO);
    /* a length running past the end */
    const uint8_t bad_len[] = {0x32, 0x7f, 0x08, 0x01};
    assert_int_equal(codec_obs_decode_version(bad_len, sizeof(bad_len), &v),
                     OBS_EPROTO);
    /* a varint that never ends */
    uint8_t endless[12];
    memset(endless, 0xff, sizeof(endless));
    endless[0] = 0x08;
    assert_int_equal(codec_obs_decode_version(endless, sizeof(endless), &v),
                     OBS_EPROTO);
    /* inside the version, a string given twice: the last one counts, as
     * for protobuf-c; one with a NUL in it ends there, as a C string */
    const uint8_t two_origins[] = {0x32, 0x08, 0x12, 0x01, 'T',
                                   0x12, 0x03, 'C',  'O',  'L'};
    assert_ok(codec_obs_decode_version(two_origins, sizeof(two_origins), &v));
    assert_string_equal(v.origin, "COL");
    const uint8_t nul_origin[] = {0x32, 0x05, 0x12, 0x03, 'C', 0x00, 'X'};
    assert_ok(codec_obs_decode_version(nul_origin, sizeof(nul_origin), &v));
    assert_string_equal(v.origin, "C");
    /* the version message given twice (protobuf-c would merge them), or
     * with another wire type: refused */
    const uint8_t two_versions[] = {0x32, 0x02, 0x18, 0x01,
                                    0x32, 0x02, 0x18, 0x02};
    assert_int_equal(
        codec_obs_decode_version(two_versions, sizeof(two_versions), &v),
        OBS_EPROTO);
    assert_int_equal(
        codec_obs_decode(two_versions, sizeof(two_versions), &back),
        OBS_EPROTO);
    /* protobuf-c's framing rules, which the whole decoder keeps: a tag byte
     * with no field bits is refused, an over-long tag for field 0 is an
     * unknown field; a length prefix of more than 5 bytes is refused */
    const uint8_t zero_tag[] = {0x00, 0x00};
    assert_int_equal(codec_obs_decode(zero_tag, sizeof(zero_tag), &back),
                     OBS_EPROTO);
    const uint8_t long_zero_tag[] = {0x82, 0x00, 0x00, 0x1a, 0x01, '7'};
    assert_ok(codec_obs_decode(long_zero_tag, sizeof(long_zero_tag), &back));
    assert_string_equal(back.time_period, "7");
    const uint8_t long_len[] = {0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    assert_int_equal(codec_obs_decode(long_len, sizeof(long_len), &back),
                     OBS_EPROTO);
    const uint8_t ok_len[] = {0x12, 0x80, 0x80, 0x80, 0x80, 0x00};
    assert_ok(codec_obs_decode(ok_len, sizeof(ok_len), &back));
    assert_int_equal(back.n_dims, 1);
    const uint8_t version_varint[] = {0x30, 0x01};
    assert_int_equal(
        codec_obs_decode_version(version_varint, sizeof(version_varint), &v),
        OBS_EPROTO);
    /* a content hash of the wrong length inside the version */
    const uint8_t bad_hash[] = {0x32, 0x04, 0x52, 0x02, 0xaa, 0xbb};
    assert_int_equal(codec_obs_decode_version(bad_hash, sizeof(bad_hash), &v),
                     OBS_EPROTO);
    free(buf);
    obs_fini(&back);
    obs_fini(&o);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_roundtrip_and_version_only),
        cmocka_unit_test(test_codec_large_record_past_the_arena),
        cmocka_unit_test(test_codec_body_plus_version_is_the_encoding),
        cmocka_unit_test(test_codec_read_only_view),
        cmocka_unit_test(test_codec_view_merges_attributes_like_decode),
        cmocka_unit_test(test_codec_encoding_is_protobuf_cs),
        cmocka_unit_test(test_codec_record_without_version),
        cmocka_unit_test(test_codec_malformed_records_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_vectors.c - the test vectors of PROTOCOL.md §3 and §5.3, which a
 * third party checks its implementation against (tests/conformance does,
 * in Python): proto/vectors/content_hash.json (observations, their
 * canonical encoding, the content hash's input and the hash) and
 * proto/vectors/structure_hash.json (a canonical structure text and the
 * hash a Hello names).
 *
 * The files are the C side's output for the observations below, compared
 * byte for byte. The hash's input is built here a second time, from the
 * layout PROTOCOL.md states, and must hash to what obs_content_hash gives.
 * OBSYNC_GOLDEN_WRITE=1 writes a missing file first (never overwrites).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "repl.h"
#include "sha256.h"
#include "structure.h"
#include "test_support.h"

typedef struct {
    char *p;
    size_t len, cap;
} text_t;

static void
put(text_t *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
        assert_non_null(t->p);
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void
puts_(text_t *t, const char *s)
{
    put(t, s, strlen(s));
}

/* A JSON string: UTF-8 as it is, '"', '\' and control bytes escaped. */
static void
put_json(text_t *t, const char *s)
{
    puts_(t, "\"");
    for (; *s; s++) {
        char esc[8];
        if (*s == '"' || *s == '\\') {
            esc[0] = '\\';
            esc[1] = *s;
            put(t, esc, 2);
        } else if ((unsigned char)*s < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned char)*s);
            puts_(t, esc);
        } else {
            put(t, s, 1);
        }
    }
    puts_(t, "\"");
}

static void
put_hex(text_t *t, const uint8_t *b, size_t n)
{
    puts_(t, "\"");
    for (size_t i = 0; i < n; i++) {
        char h[3];
        snprintf(h, sizeof(h), "%02x", b[i]);
        put(t, h, 2);
    }
    puts_(t, "\"");
}

static void
put_u64(text_t *t, uint64_t v)
{
    char b[24];
    snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
    puts_(t, b);
}

/* The hash's input as PROTOCOL.md §3 lays it out: field("obs-content-v1"),
 * field(value), the attribute count (4 bytes, big-endian), field(id) and
 * field(value) of each attribute, then 1 byte tombstone; field(s) = its
 * length in 8 bytes big-endian, then its bytes. */
static void
field(text_t *t, const char *s)
{
    uint64_t n = strlen(s);
    char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (char)(n >> (56 - 8 * i));
    put(t, len, 8);
    put(t, s, n);
}

static void
hash_input(const obs_t *o, text_t *t)
{
    field(t, "obs-content-v1");
    field(t, o->value ? o->value : "");
    char n[4] = {(char)(o->n_attrs >> 24), (char)(o->n_attrs >> 16),
                 (char)(o->n_attrs >> 8), (char)o->n_attrs};
    put(t, n, 4);
    for (size_t i = 0; i < o->n_attrs; i++) {
        field(t, o->attrs[i].id);
        field(t, o->attrs[i].value);
    }
    char tomb = o->ver.tombstone ? 1 : 0;
    put(t, &tomb, 1);
}

typedef struct {
    const char *name, *period, *value;
    const char *attrs[4][2];
    bool tombstone;
    obs_action_t action;
} vector_t;

static const vector_t VECTORS[] = {
    {"value and two attributes",
     "2023",
     "24.858995",
     {{"OBS_STATUS", "A"}, {"UNIT_MEASURE", "PER_100000_POP"}},
     false,
     OBS_ACTION_MERGE},
    {"missing value with its status",
     "2022",
     "",
     {{"OBS_STATUS", "M"}},
     false,
     OBS_ACTION_REPLACE},
    {"empty value, no attributes",
     "2021",
     "",
     {{NULL, NULL}},
     false,
     OBS_ACTION_MERGE},
    {"tombstone", "2020", "", {{NULL, NULL}}, true, OBS_ACTION_DELETE},
    {"unicode comment, NaN",
     "2019-Q3",
     "NaN",
     {{"COMMENT_OBS", "Estimación preliminar — fuente: Ministério da Saúde, "
                      "Perú/Brasil; ±2 % «revisado» 数据"},
      {"OBS_STATUS", "E"}},
     false,
     OBS_ACTION_MERGE},
    {"long attribute (a two-byte length)",
     "2018-05",
     "-0.000125",
     {{"COMMENT_OBS",
       "Homicidios intencionales por cada 100.000 habitantes; incluye "
       "feminicidios; excluye muertes por intervención legal; fuente: "
       "registros policiales y forenses consolidados por el observatorio "
       "nacional"}},
     false,
     OBS_ACTION_REPLACE},
};

static void
build(const vector_t *v, obs_t *o)
{
    obs_init(o);
    const char *dims[] = {"A", "COL", "VC_IHR_PSRC", "_T", "_T", "_T", "HARM"};
    assert_ok(obs_set_identity(o, "OID:DF_VIOLENCE(1.0)", dims, 7, v->period));
    assert_ok(obs_set_value(o, v->value));
    for (size_t i = 0; i < 4 && v->attrs[i][0]; i++)
        assert_ok(obs_set_attr(o, v->attrs[i][0], v->attrs[i][1]));
    obs_version_t *ver = &o->ver;
    ver->hlc = ((uint64_t)1733600000123 << 16) | 7;
    snprintf(ver->origin, sizeof(ver->origin), "COL");
    ver->origin_seq = 42;
    snprintf(ver->provider, sizeof(ver->provider), "COL");
    if (v->action != OBS_ACTION_MERGE || v->tombstone) {
        ver->base_hlc = ((uint64_t)1733500000000 << 16) | 1;
        snprintf(ver->base_origin, sizeof(ver->base_origin), "MEX");
        ver->base_origin_seq = 9;
    }
    ver->action = v->action;
    snprintf(ver->batch_id, sizeof(ver->batch_id), "imp-193a1b2c3d4-1");
    ver->tombstone = v->tombstone;
    obs_content_hash(o, ver->content_hash);
}

static void
put_obs_json(text_t *t, const obs_t *o)
{
    const obs_version_t *v = &o->ver;
    puts_(t, "{\"dataflow\": ");
    put_json(t, o->dataflow);
    puts_(t, ", \"dims\": [");
    for (size_t i = 0; i < o->n_dims; i++) {
        puts_(t, i ? ", " : "");
        put_json(t, o->dims[i]);
    }
    puts_(t, "], \"time_period\": ");
    put_json(t, o->time_period);
    puts_(t, ", \"value\": ");
    put_json(t, o->value);
    puts_(t, ", \"attrs\": [");
    for (size_t i = 0; i < o->n_attrs; i++) {
        puts_(t, i ? ", [" : "[");
        put_json(t, o->attrs[i].id);
        puts_(t, ", ");
        put_json(t, o->attrs[i].value);
        puts_(t, "]");
    }
    puts_(t, "],\n    \"version\": {\"hlc\": ");
    put_u64(t, v->hlc);
    puts_(t, ", \"origin\": ");
    put_json(t, v->origin);
    puts_(t, ", \"origin_seq\": ");
    put_u64(t, v->origin_seq);
    puts_(t, ", \"provider\": ");
    put_json(t, v->provider);
    puts_(t, ", \"base_hlc\": ");
    put_u64(t, v->base_hlc);
    puts_(t, ", \"base_origin\": ");
    put_json(t, v->base_origin);
    puts_(t, ", \"base_origin_seq\": ");
    put_u64(t, v->base_origin_seq);
    puts_(t, ", \"action\": ");
    put_u64(t, (uint64_t)v->action);
    puts_(t, ", \"batch_id\": ");
    put_json(t, v->batch_id);
    puts_(t, ", \"content_hash\": ");
    put_hex(t, v->content_hash, OBS_HASH_LEN);
    puts_(t, ", \"tombstone\": ");
    puts_(t, v->tombstone ? "true" : "false");
    puts_(t, ", \"hub_seq\": 0}}");
}

/* Compares text with the file under proto/vectors (written when missing
 * and OBSYNC_GOLDEN_WRITE=1). */
static void
same_as_file(const char *name, const text_t *t)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/proto/vectors/%s", OBSYNC_SOURCE_DIR,
             name);
    FILE *f = fopen(path, "rb");
    const char *w = getenv("OBSYNC_GOLDEN_WRITE");
    if (f == NULL && w != NULL && strcmp(w, "1") == 0) {
        f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(t->p, 1, t->len, f), t->len);
        assert_int_equal(fclose(f), 0);
        f = fopen(path, "rb");
    }
    if (f == NULL)
        fail_msg("%s missing (OBSYNC_GOLDEN_WRITE=1 writes it)", path);
    char *file = malloc(t->len + 2);
    assert_non_null(file);
    size_t n = fread(file, 1, t->len + 1, f);
    fclose(f);
    if (n != t->len || memcmp(file, t->p, n) != 0)
        fail_msg("%s differs from what this build computes: the encoding or "
                 "a hash changed, which breaks every other implementation",
                 path);
    free(file);
}

static void
test_content_hash_vectors(void **state)
{
    (void)state;
    text_t out = {0};
    puts_(&out, "[\n");
    size_t n = sizeof(VECTORS) / sizeof(VECTORS[0]);
    for (size_t i = 0; i < n; i++) {
        obs_t o;
        build(&VECTORS[i], &o);
        text_t in = {0};
        hash_input(&o, &in);
        uint8_t want[OBS_HASH_LEN];
        sha256(in.p, in.len, want);
        assert_memory_equal(want, o.ver.content_hash, OBS_HASH_LEN);
        uint8_t *enc = NULL;
        size_t len = 0;
        assert_ok(codec_obs_encode(&o, &enc, &len));
        /* what a receiver takes as canonical */
        obs_t back;
        obs_init(&back);
        assert_ok(codec_obs_decode(enc, len, &back));
        const char *why = NULL;
        size_t at = 0;
        assert_ok(codec_obs_canonical(enc, len, &back, &why, &at));
        obs_fini(&back);
        puts_(&out, "  {\"name\": ");
        put_json(&out, VECTORS[i].name);
        puts_(&out, ",\n   \"observation\": ");
        put_obs_json(&out, &o);
        puts_(&out, ",\n   \"encoding_hex\": ");
        put_hex(&out, enc, len);
        puts_(&out, ",\n   \"hash_input_hex\": ");
        put_hex(&out, (const uint8_t *)in.p, in.len);
        puts_(&out, ",\n   \"content_hash_hex\": ");
        put_hex(&out, want, OBS_HASH_LEN);
        puts_(&out, i + 1 < n ? "},\n" : "}\n");
        free(enc);
        free(in.p);
        obs_fini(&o);
    }
    puts_(&out, "]\n");
    same_as_file("content_hash.json", &out);
    free(out.p);
}

/* Encodings a receiver refuses as not canonical, though they decode. */
static void
test_not_canonical(void **state)
{
    (void)state;
    obs_t o;
    build(&VECTORS[0], &o);
    uint8_t *enc = NULL;
    size_t len = 0;
    assert_ok(codec_obs_encode(&o, &enc, &len));
    uint8_t *twice = malloc(len + 4);
    assert_non_null(twice);
    /* an unknown field (number 15, varint 1) at the end */
    memcpy(twice, enc, len);
    twice[len] = 15 << 3;
    twice[len + 1] = 1;
    obs_t back;
    obs_init(&back);
    const char *why = NULL;
    size_t at = 0;
    assert_ok(codec_obs_decode(twice, len + 2, &back));
    assert_int_equal(codec_obs_canonical(twice, len + 2, &back, &why, &at),
                     OBS_EPROTO);
    assert_int_equal(at, len);
    obs_fini(&back);
    /* a string that is not UTF-8: 0xff in the period */
    char *bad = strdup("20\xff"
                       "3");
    assert_non_null(bad);
    free(o.time_period);
    o.time_period = bad;
    uint8_t *enc2 = NULL;
    size_t len2 = 0;
    assert_ok(codec_obs_encode(&o, &enc2, &len2));
    assert_int_equal(codec_obs_canonical(enc2, len2, &o, &why, &at),
                     OBS_EPROTO);
    assert_non_null(strstr(why, "UTF-8"));
    free(enc2);
    free(twice);
    free(enc);
    obs_fini(&o);
}

static void
test_utf8(void **state)
{
    (void)state;
    assert_true(obs_utf8_valid("plain ASCII"));
    assert_true(obs_utf8_valid("Perú — 数据 \xf0\x9f\x93\x8a"));
    assert_false(obs_utf8_valid("\xc0\xaf"));         /* overlong '/' */
    assert_false(obs_utf8_valid("\xed\xa0\x80"));     /* a surrogate */
    assert_false(obs_utf8_valid("\xf4\x90\x80\x80")); /* > U+10FFFF */
    assert_false(obs_utf8_valid("\xe2\x82"));         /* cut short */
    assert_false(obs_utf8_valid("\x80"));             /* continuation first */
}

/* What a Hello names: the SHA-256 of the canonical structure text, which
 * StructureUpdate.text carries as it is. */
static void
test_structure_hash_vector(void **state)
{
    (void)state;
    structure_t *st = NULL;
    assert_ok(test_load_fixture(&st));
    char *text = NULL;
    size_t len = 0;
    assert_ok(structure_to_text(st, &text, &len));
    char hex[65];
    assert_ok(repl_structure_hash(st, hex));
    uint8_t h[32];
    sha256(text, len, h);
    char mine[65];
    for (size_t i = 0; i < 32; i++)
        snprintf(mine + 2 * i, 3, "%02x", h[i]);
    assert_string_equal(mine, hex);
    text_t out = {0};
    puts_(&out, "{\"text\": ");
    put_json(&out, text);
    puts_(&out, ",\n \"hash\": \"");
    puts_(&out, hex);
    puts_(&out, "\"}\n");
    same_as_file("structure_hash.json", &out);
    free(out.p);
    free(text);
    structure_destroy(&st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_hash_vectors),
        cmocka_unit_test(test_not_canonical),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_structure_hash_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

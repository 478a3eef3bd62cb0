/*
 * fuzz_codec.c - every decoder of proto/ on arbitrary bytes: the frames
 * (msg_decode of msg.h, and the Envelope under it) and the stored
 * Observation (whole, as a read-only view, its version alone).
 * A decoded observation must encode and decode again to the same content,
 * and its encoding be protobuf-c's byte for byte; the hand-written decoder
 * must take what protobuf-c takes, the same way. A decoded message must
 * encode, and what it encodes to must decode and encode again to the same
 * bytes, which protobuf-c's packer also writes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec_pb.h"
#include "msg.h"
#include "obs_err.h"
#include "obs_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_obs_roundtrip(const obs_t *o)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (codec_obs_encode(o, &buf, &len) != OBS_OK)
        return;
    obs_t back;
    obs_init(&back);
    if (codec_obs_decode(buf, len, &back) != OBS_OK)
        abort(); /* what we encode must decode */
    uint8_t h1[OBS_HASH_LEN], h2[OBS_HASH_LEN];
    obs_content_hash(o, h1);
    obs_content_hash(&back, h2);
    if (memcmp(h1, h2, sizeof(h1)) != 0 ||
        strcmp(o->time_period, back.time_period) != 0 ||
        o->n_dims != back.n_dims)
        abort();
    obs_version_t v; /* the version-only decoder agrees on what we encode */
    if (codec_obs_decode_version(buf, len, &v) != OBS_OK ||
        v.hlc != o->ver.hlc || v.origin_seq != o->ver.origin_seq ||
        strcmp(v.origin, o->ver.origin) != 0 ||
        memcmp(v.content_hash, o->ver.content_hash, OBS_HASH_LEN) != 0)
        abort();
    uint8_t *body = NULL, *joined = NULL; /* body + version = the whole */
    size_t blen = 0, jlen = 0;
    if (codec_obs_encode_body(o, 0, &body, &blen) == OBS_OK &&
        codec_obs_encode_with_body(body, blen, &o->ver, 0, &joined, &jlen) ==
            OBS_OK &&
        (jlen != len || memcmp(joined, buf, len) != 0))
        abort();
    free(body);
    free(joined);
    codec_obs_view_t view; /* the hand encoder writes protobuf-c's bytes */
    if (codec_obs_view_init(&view, o) == OBS_OK) {
        size_t want_len = obsync__v1__observation__get_packed_size(&view.msg);
        uint8_t *want = malloc(want_len ? want_len : 1);
        if (want != NULL) {
            obsync__v1__observation__pack(&view.msg, want);
            if (want_len != len || memcmp(want, buf, len) != 0)
                abort();
        }
        free(want);
        codec_obs_view_fini(&view);
    }
    obs_fini(&back);
    free(buf);
}

/* What the hand decoder takes, protobuf-c (then codec_obs_from_pb) takes
 * the same way. It is stricter on odd framings protobuf-c lets through (a
 * Version given twice, which protobuf-c merges; a bool field with another
 * wire type), but never on a canonical encoding of what protobuf-c took. */
static void
check_against_protobuf_c(const uint8_t *data, size_t size)
{
    obs_t mine, ref;
    obs_init(&mine);
    obs_init(&ref);
    int my_rc = codec_obs_decode(data, size, &mine);
    Obsync__V1__Observation *pb =
        size <= CODEC_MAX_RECORD
            ? obsync__v1__observation__unpack(NULL, size, data)
            : NULL;
    int ref_rc = pb ? codec_obs_from_pb(pb, &ref) : OBS_EPROTO;
    if (pb)
        obsync__v1__observation__free_unpacked(pb, NULL);
    if (my_rc == OBS_OK && ref_rc != OBS_OK)
        abort();
    if (my_rc != OBS_OK && ref_rc == OBS_OK) {
        uint8_t *canon = NULL;
        size_t clen = 0;
        if (codec_obs_encode(&ref, &canon, &clen) == OBS_OK &&
            codec_obs_decode(canon, clen, &mine) != OBS_OK)
            abort();
        free(canon);
    }
    if (my_rc == OBS_OK) {
        uint8_t *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        if (codec_obs_encode(&mine, &a, &al) == OBS_OK &&
            codec_obs_encode(&ref, &b, &bl) == OBS_OK &&
            (al != bl || memcmp(a, b, al) != 0))
            abort();
        free(a);
        free(b);
    }
    obs_fini(&mine);
    obs_fini(&ref);
}

/* What codec_obs_decode takes, codec_obs_decode_id takes too, with the
 * same identity and version, and the key encoded in place is o's own. */
static void
check_identity_in_place(const uint8_t *data, size_t size, const obs_t *o)
{
    codec_obs_id_t d;
    const obs_id_view_t *id = &d.id;
    if (codec_obs_decode_id(data, size, &d) != OBS_OK ||
        id->dataflow_len != strlen(o->dataflow) ||
        memcmp(id->dataflow, o->dataflow, id->dataflow_len) != 0 ||
        id->n_dims != o->n_dims ||
        id->time_period_len != strlen(o->time_period) ||
        memcmp(id->time_period, o->time_period, id->time_period_len) != 0 ||
        d.ver.hlc != o->ver.hlc || d.ver.hub_seq != o->ver.hub_seq ||
        d.ver.origin_seq != o->ver.origin_seq ||
        strcmp(d.ver.origin, o->ver.origin) != 0)
        abort();
    for (size_t i = 0; i < o->n_dims; i++)
        if (id->dim_lens[i] != strlen(o->dims[i]) ||
            memcmp(id->dims[i], o->dims[i], id->dim_lens[i]) != 0)
            abort();
    uint8_t a[OBS_KEY_MAX], b[OBS_KEY_MAX];
    int al = obs_key_encode_id(id, a, sizeof(a));
    int bl = obs_key_encode(o, b, sizeof(b));
    if (al != bl || (al > 0 && memcmp(a, b, (size_t)al) != 0))
        abort();
}

/* A frame msg_encode wrote is canonical: protobuf-c unpacks and packs it
 * to the same bytes. */
static void
check_canonical(const uint8_t *buf, size_t len)
{
    codec_env_t *env = NULL;
    if (codec_envelope_unpack(buf, len, CODEC_MAX_FRAME, &env) != OBS_OK)
        abort();
    uint8_t *again = NULL;
    size_t again_len = 0;
    if (codec_envelope_pack(env, &again, &again_len) != OBS_OK ||
        again_len != len || memcmp(again, buf, len) != 0)
        abort();
    free(again);
    codec_envelope_free(&env);
}

/* msg_decode fails where the Envelope does, with its code; what it takes
 * encodes, and the encoding is a fixed point: it decodes (the budget
 * aside) and encodes to the same bytes again. */
static void
check_msg(const uint8_t *data, size_t size)
{
    const size_t max_frame = 1u << 20;
    codec_env_t *env = NULL;
    int env_rc = codec_envelope_unpack(data, size, max_frame, &env);
    codec_envelope_free(&env);
    msg_t *m = NULL;
    int rc = msg_decode(data, size, max_frame, &m);
    if (env_rc != OBS_OK ? rc != env_rc
                         : rc != OBS_OK && rc != OBS_EPROTO && rc != OBS_ENOMEM)
        abort(); /* EPROTO: an observation over a limit; ENOMEM: budget */
    if (rc != OBS_OK)
        return;
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;
    if (strcmp(msg_type_name(m->type), "unknown") == 0 ||
        msg_encode(m, &b1, &l1) != OBS_OK)
        abort(); /* a known type, and what decodes encodes */
    msg_destroy(&m);
    rc = msg_decode(b1, l1, CODEC_MAX_FRAME, &m);
    if (rc != OBS_OK && rc != OBS_ENOMEM)
        abort();
    if (rc == OBS_OK) {
        if (msg_encode(m, &b2, &l2) != OBS_OK || l2 != l1 ||
            memcmp(b1, b2, l1) != 0)
            abort();
        check_canonical(b1, l1);
    }
    msg_destroy(&m);
    free(b1);
    free(b2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_against_protobuf_c(data, size);
    codec_env_t *env = NULL;
    if (codec_envelope_unpack(data, size, 1u << 20, &env) == OBS_OK) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (codec_envelope_pack(env, &buf, &len) == OBS_OK)
            free(buf);
        codec_envelope_free(&env);
    }
    check_msg(data, size);
    obs_version_t v;
    (void)codec_obs_decode_version(data, size, &v);
    codec_obs_ro_t ro;
    int ro_rc = codec_obs_decode_ro(data, size, &ro);
    obs_t o;
    obs_init(&o);
    if (codec_obs_decode(data, size, &o) == OBS_OK) {
        /* what the full decoder takes, the view takes the same way */
        if (ro_rc != OBS_OK || strcmp(ro.obs.dataflow, o.dataflow) != 0 ||
            ro.obs.n_dims != o.n_dims ||
            strcmp(ro.obs.time_period, o.time_period) != 0 ||
            ro.obs.ver.hlc != o.ver.hlc || ro.obs.n_attrs != o.n_attrs)
            abort();
        for (size_t i = 0; i < o.n_attrs; i++)
            if (strcmp(ro.obs.attrs[i].id, o.attrs[i].id) != 0 ||
                strcmp(ro.obs.attrs[i].value, o.attrs[i].value) != 0)
                abort();
        check_identity_in_place(data, size, &o);
        /* the version-only reader never disagrees with it */
        if (codec_obs_decode_version(data, size, &v) == OBS_OK &&
            (v.hlc != o.ver.hlc || v.origin_seq != o.ver.origin_seq ||
             strcmp(v.origin, o.ver.origin) != 0))
            abort();
        check_obs_roundtrip(&o);
        /* canonical input is exactly what the encoder writes, and the view
         * and the full decode judge it alike */
        const char *why = NULL;
        size_t at = 0;
        int canon = codec_obs_canonical(data, size, &o, &why, &at);
        if (canon == OBS_OK) {
            uint8_t *enc = NULL;
            size_t elen = 0;
            if (codec_obs_encode(&o, &enc, &elen) == OBS_OK &&
                (elen != size || memcmp(enc, data, size) != 0))
                abort();
            free(enc);
        }
        if (canon != OBS_ENOMEM &&
            codec_obs_canonical(data, size, &ro.obs, &why, &at) != canon)
            abort();
    }
    codec_obs_ro_release(&ro);
    obs_fini(&o);
    return 0;
}

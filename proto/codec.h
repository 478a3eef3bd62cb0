/*
 * codec.h - obsync's wire and record encoding: obs_t <-> protobuf bytes, and
 * the limits every decoder enforces before it allocates.
 *
 * The store keeps each observation version as an encoded Observation message;
 * the local API and replication frames are Envelope messages (obsync.proto).
 * Decoders never trust sizes from the input: the frame length is checked
 * against a cap before unpack, and protobuf-c allocates through a counting
 * allocator with a per-message budget (protobuf-c issues #375, #796).
 * Ownership: encode functions return malloc'd buffers the caller frees.
 */
#ifndef CODEC_H
#define CODEC_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "obs.h"

#define CODEC_VERSION    1                     /* protocol major version */
#define CODEC_MAX_FRAME  (256u * 1024 * 1024)  /* hard cap on any frame */
#define CODEC_MAX_RECORD ((size_t)1024 * 1024) /* one stored observation */

/** Writes v as a protobuf varint at p (room for 10 bytes); returns the end. */
uint8_t *codec_varint_put(uint8_t *p, uint64_t v);
/** Reads a protobuf varint at *p (before end), moving *p past it; false
 * when it is cut short or longer than 64 bits' worth. */
bool codec_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out);

/** Encodes obs (identity, value, attributes, version) as an Observation.
 * *buf is malloc'd (caller frees). OBS_ENOMEM. */
int codec_obs_encode(const obs_t *obs, uint8_t **buf, size_t *len);

/** codec_obs_encode after room bytes left for the caller's own header:
 * *buf holds them (unwritten), then the encoding; *len counts both. */
int codec_obs_encode_after(const obs_t *obs, size_t room, uint8_t **buf,
                           size_t *len);

/** Encodes obs without its version (an import row waiting to be stamped,
 * a change checked ahead of its hub_seq), after room bytes left for the
 * caller as in codec_obs_encode_after. *buf is malloc'd (caller frees).
 * OBS_ENOMEM, OBS_ETOOBIG (more dims or attributes than obs.h allows). */
int codec_obs_encode_body(const obs_t *obs, size_t room, uint8_t **buf,
                          size_t *len);
/** The Observation whose identity, value and attributes are body (from
 * codec_obs_encode_body) and whose version is ver, after room bytes: the
 * same bytes codec_obs_encode(_after) gives, without encoding body again.
 * *buf is malloc'd (caller frees). OBS_ENOMEM. */
int codec_obs_encode_with_body(const uint8_t *body, size_t body_len,
                               const obs_version_t *ver, size_t room,
                               uint8_t **buf, size_t *len);

/** Decodes an Observation into obs (initialised; finalised first). Enforces
 * the OBS_* limits of obs.h: OBS_EPROTO for malformed or over-limit input
 * (also a Version given twice, or a field with another wire type than its
 * own, which protobuf-c would let through), OBS_ENOMEM. On error obs is
 * left empty. */
int codec_obs_decode(const uint8_t *buf, size_t len, obs_t *obs);

/** A bump allocator for one decoded message (fields are private; see
 * codec.c). CODEC_ARENA_INLINE bytes live in the struct itself. */
#define CODEC_ARENA_INLINE 4096
typedef struct {
    unsigned char *cur, *end;
    struct codec_arena_block *blocks;
    size_t used, budget;
    alignas(max_align_t) unsigned char first[CODEC_ARENA_INLINE];
} codec_arena_t;

/** A read-only decoded Observation: obs's identity (dataflow, dims,
 * time_period), value, attributes (sorted and merged as codec_obs_decode
 * leaves them) and version point into the arena, with no allocation per
 * field. For applying or checking a replicated change. Never obs_fini obs
 * or change its strings or attributes; its version's scalars may be set.
 * Release with codec_obs_ro_release. */
typedef struct {
    obs_t obs;
    codec_arena_t arena;
} codec_obs_ro_t;

/** Decodes buf into *out under the limits of codec_obs_decode. OBS_EPROTO
 * (out->obs zeroed). Release *out either way. */
int codec_obs_decode_ro(const uint8_t *buf, size_t len, codec_obs_ro_t *out);
/** A change's identity as spans of its encoded bytes, and its version: for
 * applying a change stored as received. The strings point into the buffer
 * given to codec_obs_decode_id (an absent one is "") and are not NUL-ended;
 * each length stops at the string's first 0x00, as codec_obs_decode_ro's
 * copies do. */
typedef struct {
    obs_id_view_t id;
    obs_version_t ver;
} codec_obs_id_t;

/** Identity and version of an Observation without copying anything: it
 * refuses what codec_obs_decode_ro refuses in the framing (attributes'
 * too), the identity, the value's length and the version; the attributes'
 * contents (codec_obs_decode_ro's limits on their ids and values) are not
 * looked at. OBS_EPROTO (*out zeroed). */
int codec_obs_decode_id(const uint8_t *buf, size_t len, codec_obs_id_t *out);
/** Frees what v's arena took beyond its inline bytes. */
void codec_obs_ro_release(codec_obs_ro_t *v);

/** Whether buf, decoded into *o (codec_obs_decode or codec_obs_decode_ro),
 * is an Observation in the canonical encoding of PROTOCOL.md §1: exactly
 * the bytes codec_obs_encode gives for *o (fields in number order, no
 * default written, attributes sorted by id, unique and non-empty, one
 * version, no unknown field, no string cut at a NUL) and every string
 * valid UTF-8. OBS_OK; OBS_EPROTO with *why a static phrase and *at the
 * offset of the first byte that differs (len when buf is a prefix);
 * OBS_ENOMEM. */
int codec_obs_canonical(const uint8_t *buf, size_t len, const obs_t *o,
                        const char **why, size_t *at);

/** Decodes only the version of a stored Observation into *ver, without
 * unpacking the rest: several times cheaper than codec_obs_decode where the
 * winner of two versions is all that matters. Checks the framing of the
 * top-level fields and the Version message, not the other fields' contents
 * (the full decoders do that wherever input is untrusted). No version field
 * gives a zeroed *ver, as codec_obs_decode does. OBS_EPROTO (ver zeroed). */
int codec_obs_decode_version(const uint8_t *buf, size_t len,
                             obs_version_t *ver);

#endif

/*
 * codec_pb.h - the protobuf-c side of the codec: a private header of
 * proto/. Only proto's own sources include it (codec.c, codec_pb.c, msg.c,
 * msg_enc.c), and the tests of proto's internals (test_codec.c,
 * fuzz_codec.c); everything else speaks msg.h.
 *
 * Why it exists: the generated obsync.pb-c.h types stay inside proto/
 * (STYLE.md §2.1). The daemon and libobsync build and read msg.h's plain
 * structs, which msg.c and msg_enc.c turn into Envelopes and back with the
 * functions here; codec.h keeps the model and the store free of generated
 * types. Every decode goes through codec_envelope_unpack, which enforces the
 * frame cap and an allocation budget before trusting any size in the input.
 */
#ifndef CODEC_PB_H
#define CODEC_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "obs.h"
#include "obsync.pb-c.h"

typedef Obsync__V1__Envelope codec_env_t;

/* ---- the arena of codec.h (codec.c) */

/** Makes a an empty arena that hands out at most budget bytes. */
void codec_arena_init(codec_arena_t *a, size_t budget);
/** ProtobufCAllocator.alloc on the codec_arena_t data: aligned memory, or
 * NULL past the budget or when malloc fails. Lives until
 * codec_arena_release. */
void *codec_arena_alloc(void *data, size_t size);
/** ProtobufCAllocator.free: a no-op (the arena is released as a whole). */
void codec_arena_free(void *data, void *ptr);
/** Frees the arena's malloc'd blocks (not its inline bytes). */
void codec_arena_release(codec_arena_t *a);

Obsync__V1__Action codec_action_to_pb(obs_action_t a);
/** Unknown values read as OBS_ACTION_MERGE, the proto3 default. */
obs_action_t codec_action_from_pb(Obsync__V1__Action a);

/** Sets attribute id to val in at[0..*n), kept sorted by id, as
 * obs_set_attr does: val "" removes id. at must have room for one more.
 * The strings are borrowed, not copied. */
void codec_attrs_set(obs_attr_t *at, size_t *n, char *id, char *val);

/* ---- Envelope frames (codec_pb.c) */

/** Unpacks one frame. len must be <= max_frame (and CODEC_MAX_FRAME);
 * protobuf-c may allocate at most 32 * len + 1 MiB for it (a
 * frame of empty strings or messages legitimately decodes ~30x larger). The
 * version must be CODEC_VERSION (OBS_EVERSION otherwise) and a body must be set
 * (OBS_EPROTO: unknown or missing body). On OBS_OK *out is owned by the
 * caller: free with codec_envelope_free. */
int codec_envelope_unpack(const uint8_t *buf, size_t len, size_t max_frame,
                          codec_env_t **out);
/** codec_envelope_unpack under a budget of the caller's: at most budget
 * bytes (0: the default, 32 * len + 1 MiB). A
 * frame that needs more is OBS_ETOOBIG, and *over is set when given;
 * OBS_ENOMEM is then only a failing malloc. For the local API, which
 * holds frames to less than replication does (msg_decode_limited). */
int codec_envelope_unpack_budget(const uint8_t *buf, size_t len,
                                 size_t max_frame, size_t budget,
                                 codec_env_t **out, bool *over);
void codec_envelope_free(codec_env_t **envp);
/** The arena an unpacked envelope lives in, with what is left of its
 * budget: what is allocated from it lives until codec_envelope_free. */
codec_arena_t *codec_envelope_arena(codec_env_t *env);

/** Packs env (version is forced to CODEC_VERSION) into a malloc'd buffer.
 * OBS_ENOMEM, OBS_ETOOBIG (over CODEC_MAX_FRAME). */
int codec_envelope_pack(codec_env_t *env, uint8_t **buf, size_t *len);

/* ---- Observations as generated messages (codec_pb.c) */

/** A borrowed protobuf view of an obs_t: the strings point into obs, so obs
 * must outlive the view and stay unchanged. Arrays are owned by the view:
 * release with codec_obs_view_fini. OBS_ENOMEM. */
typedef struct {
    Obsync__V1__Observation msg;
    Obsync__V1__Version ver;
    Obsync__V1__Attribute *attrs;
    Obsync__V1__Attribute **attr_ptrs;
    char **dims;
} codec_obs_view_t;
int codec_obs_view_init(codec_obs_view_t *v, const obs_t *obs);
void codec_obs_view_fini(codec_obs_view_t *v);

/** The view of codec_obs_view_init allocated in arena a (nothing to
 * release but the arena); with_version false leaves the Version out (a
 * PutRequest's observations carry none). Refuses an observation over the
 * obs.h limits (counts and string lengths) with OBS_ETOOBIG, so what is
 * encoded decodes; OBS_ENOMEM. */
int codec_obs_pb_view(codec_arena_t *a, const obs_t *obs, bool with_version,
                      Obsync__V1__Observation **out);

/** Copies a decoded Observation into obs (initialised), enforcing the obs.h
 * limits (OBS_EPROTO when exceeded) and sorting attributes. OBS_ENOMEM. */
int codec_obs_from_pb(const Obsync__V1__Observation *pb, obs_t *obs);

/** codec_obs_from_pb without copies: obs's strings are pb's, its attribute
 * array comes from arena a (sorted and merged the same way), so obs is
 * read-only and lives as long as pb and the arena. OBS_EPROTO (over a
 * limit, an empty attribute id, a bad version), OBS_ENOMEM (the arena's
 * budget is spent). */
int codec_obs_ro_from_pb(codec_arena_t *a, const Obsync__V1__Observation *pb,
                         obs_t *obs);

#endif

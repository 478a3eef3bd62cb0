/*
 * codec_pb.h - the protobuf side of the codec, for the two endpoints of the
 * local API (daemon/core/ctl.c, client/lib/client.c) and codec.c itself.
 *
 * Why a second header: codec.h keeps the model and the store free of
 * generated types; the local API's request/reply messages are used field by
 * field by exactly two files, and a hand-written mirror of each message would
 * be a third copy to keep in step. Every decode still goes through
 * codec_envelope_unpack, which enforces the frame cap and an allocation
 * budget before trusting any size in the input.
 */
#ifndef CODEC_PB_H
#define CODEC_PB_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "obs.h"
#include "obsync.pb-c.h"

typedef Obsync__V1__Envelope codec_env_t;

/** Unpacks one frame. len must be <= max_frame (and CODEC_MAX_FRAME);
 * protobuf-c may allocate at most 32 * len + 1 MiB for it (a
 * frame of empty strings or messages legitimately decodes ~30x larger). The
 * version must be CODEC_VERSION (OBS_EVERSION otherwise) and a body must be set
 * (OBS_EPROTO: unknown or missing body). On OBS_OK *out is owned by the
 * caller: free with codec_envelope_free. */
int codec_envelope_unpack(const uint8_t *buf, size_t len, size_t max_frame,
                          codec_env_t **out);
void codec_envelope_free(codec_env_t **envp);

/** Packs env (version is forced to CODEC_VERSION) into a malloc'd buffer.
 * OBS_ENOMEM. */
int codec_envelope_pack(codec_env_t *env, uint8_t **buf, size_t *len);

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

/** Copies a decoded Observation into obs (initialised), enforcing the obs.h
 * limits (OBS_EPROTO when exceeded) and sorting attributes. OBS_ENOMEM. */
int codec_obs_from_pb(const Obsync__V1__Observation *pb, obs_t *obs);

#endif

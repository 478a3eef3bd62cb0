/*
 * obs.h - the observation model shared by the daemon and libobsync.
 *
 * An observation is (dataflow, dimension codes in DSD order, TIME_PERIOD) plus
 * OBS_VALUE as decimal text, its attributes and obsync's version metadata
 * (DESIGN.md §1). This is plain data: no I/O, no LMDB, no sockets.
 *
 * Ownership: every char * inside obs_t is owned by the obs_t and released by
 * obs_fini(). obs_init() must run before any other call on a struct.
 */
#ifndef OBS_H
#define OBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OBS_ID_MAX       63   /* node ids, provider ids, batch ids */
#define OBS_HASH_LEN     32   /* SHA-256 content hash */
#define OBS_MAX_DIMS     32   /* dimensions per DSD */
#define OBS_MAX_ATTRS    64   /* attributes per observation */
#define OBS_CODE_MAX     64   /* a dimension/attribute code */
#define OBS_DATAFLOW_MAX 160  /* AGENCY:ID(VERSION) */
#define OBS_TEXT_MAX     4096 /* a free-text attribute value */
#define OBS_VALUE_MAX    64   /* OBS_VALUE decimal text */
#define OBS_PERIOD_MAX   40   /* TIME_PERIOD text */

typedef enum {
    OBS_ACTION_MERGE = 0,
    OBS_ACTION_REPLACE = 1,
    OBS_ACTION_DELETE = 2,
} obs_action_t;

typedef struct {
    char *id;    /* owned */
    char *value; /* owned, never empty */
} obs_attr_t;

typedef struct {
    uint64_t hlc;                /* hlc.h stamp */
    char origin[OBS_ID_MAX + 1]; /* node that made the change */
    uint64_t origin_seq;         /* per-origin change number */
    char provider[OBS_ID_MAX + 1];
    uint64_t base_hlc; /* the version this one replaced; 0 = none */
    char base_origin[OBS_ID_MAX + 1];
    uint64_t base_origin_seq;
    obs_action_t action;
    char batch_id[OBS_ID_MAX + 1];
    uint8_t content_hash[OBS_HASH_LEN];
    bool tombstone;
    uint64_t hub_seq; /* 0 until the hub has logged it */
} obs_version_t;

typedef struct {
    char *dataflow; /* owned */
    size_t n_dims;
    char **dims;       /* owned array of owned codes, DSD order */
    char *time_period; /* owned */
    char *value;       /* owned; "" = missing value */
    size_t n_attrs;
    obs_attr_t *attrs; /* owned, sorted by id, unique ids */
    obs_version_t ver;
} obs_t;

/* An observation's identity as counted strings, none NUL-ended: a view
 * into received bytes (codec_obs_decode_id) from which a key is made
 * without copying (obs_key_encode_id). Borrowed pointers only. */
typedef struct {
    const char *dataflow;
    size_t dataflow_len;
    const char *dims[OBS_MAX_DIMS];
    size_t dim_lens[OBS_MAX_DIMS];
    size_t n_dims;
    const char *time_period;
    size_t time_period_len;
} obs_id_view_t;

void obs_init(obs_t *obs);
/** Frees everything obs owns and re-initialises it. NULL-safe. */
void obs_fini(obs_t *obs);

/** Sets the identity. Copies every string. OBS_ENOMEM, OBS_EINVAL (too many
 * dims, NULL arguments). On error obs is unchanged. */
int obs_set_identity(obs_t *obs, const char *dataflow, const char *const *dims,
                     size_t n_dims, const char *time_period);
/** Replaces OBS_VALUE with a copy of value (NULL = ""). */
int obs_set_value(obs_t *obs, const char *value);
/** Sets attribute id to a copy of value, keeping attrs sorted; value NULL or
 * "" removes it. OBS_ENOMEM, OBS_ETOOBIG (more than OBS_MAX_ATTRS). */
int obs_set_attr(obs_t *obs, const char *id, const char *value);
/** Borrowed pointer to the attribute's value (valid until obs changes), or
 * NULL when absent. */
const char *obs_get_attr(const obs_t *obs, const char *id);

/** Deep copy of src into dst (dst must be initialised; it is finalised first).
 * OBS_ENOMEM leaves dst initialised and empty. */
int obs_copy(obs_t *dst, const obs_t *src);

/** SHA-256 over the canonical content (value + sorted attributes + tombstone),
 * written to out. Identity and version metadata are not part of it. */
void obs_content_hash(const obs_t *obs, uint8_t out[OBS_HASH_LEN]);

/** Whether s (NUL-ended) is well-formed UTF-8: shortest forms only, no
 * surrogates, nothing above U+10FFFF (what proto3 requires of a string). */
bool obs_utf8_valid(const char *s);

/** A node, provider or hub id: 1-63 of [A-Za-z0-9_-] (PROTOCOL.md §5.3). */
bool obs_id_valid(const char *s);
/** Exactly n lowercase hex digits (a store epoch: 32; a SHA-256: 64). */
bool obs_hex_valid(const char *s, size_t n);

/** Series key text "A.COL.VC_IHR_PSRC._T._T._T.HARM" into buf. Returns the
 * length, or OBS_ETOOBIG when cap is too small (buf then holds a prefix). */
int obs_series_key(const obs_t *obs, char *buf, size_t cap);

#endif

/*
 * structure.h - the SDMX structural metadata a node or hub knows: code lists,
 * data structure definitions (DSDs), dataflows and provision agreements
 * (DESIGN.md §1, DOMAIN.md §5). Loaded from the text format documented in
 * deploy/structure/README.md; serialised back to the same format so the store
 * can persist it and the hub can replicate it.
 *
 * Pure data + parser: no LMDB, no sockets. Not thread-safe (one loop owns it).
 * Ownership: a structure_t owns every artefact in it; pointers returned by the
 * find functions are borrowed and valid until the structure_t is changed or
 * destroyed.
 */
#ifndef STRUCTURE_H
#define STRUCTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "issue.h"
#include "obs.h"

typedef struct {
    char *id;     /* owned, e.g. "COL" */
    char *name;   /* owned, may be "" */
    char *parent; /* owned, NULL for top-level codes */
} sdmx_code_t;

typedef struct {
    char *urn;  /* owned "OID:CL_AREA(1.0)" */
    char *name; /* owned */
    size_t n_codes;
    sdmx_code_t *codes; /* owned, sorted by id for bsearch */
} sdmx_codelist_t;

typedef enum {
    SDMX_ATTR_OBS = 0,     /* attached to the observation */
    SDMX_ATTR_SERIES = 1,  /* attached to the series */
    SDMX_ATTR_DATASET = 2, /* attached to the dataset */
} sdmx_attach_t;

typedef enum {
    SDMX_TYPE_CODED = 0,   /* value from codelist */
    SDMX_TYPE_STRING = 1,  /* free text up to max_len */
    SDMX_TYPE_DECIMAL = 2, /* decimal number */
    SDMX_TYPE_INTEGER = 3,
    SDMX_TYPE_DATE = 4,   /* YYYY-MM-DD */
    SDMX_TYPE_PERIOD = 5, /* any TIME_PERIOD form */
} sdmx_type_t;

typedef struct {
    char *id; /* owned, e.g. "REF_AREA" */
    sdmx_type_t type;
    const sdmx_codelist_t *codelist; /* borrowed; set when type is CODED */
    size_t max_len;                  /* for STRING; 0 = OBS_TEXT_MAX */
    sdmx_attach_t attach;            /* attributes only */
    bool mandatory;                  /* attributes only */
} sdmx_component_t;

typedef struct {
    char *urn;  /* owned "OID:DSD_VIOLENCE(1.0)" */
    char *name; /* owned */
    size_t n_dims;
    sdmx_component_t *dims; /* owned, DSD order, excluding TIME_PERIOD */
    size_t n_attrs;
    sdmx_component_t *attrs; /* owned, DSD order, at most OBS_MAX_ATTRS */
    /* Derived at load for the validator: the attributes' indices in id
     * order, and the dimension indices of FREQ, REF_AREA and INDICATOR
     * (-1 = none). */
    uint8_t attr_by_id[OBS_MAX_ATTRS];
    int freq_dim, area_dim, indicator_dim;
} sdmx_dsd_t;

/* Semantic rules (DOMAIN.md §7 rules 7-8) are errors or warnings per
 * dataflow. */
typedef enum {
    SDMX_POLICY_REJECT = 0,
    SDMX_POLICY_WARN = 1,
} sdmx_policy_t;

typedef struct {
    char *urn;              /* owned "OID:DF_VIOLENCE(1.0)" */
    char *name;             /* owned */
    const sdmx_dsd_t *dsd;  /* borrowed */
    sdmx_policy_t semantic; /* rules 7-8 */
} sdmx_dataflow_t;

/* provider x dataflow x REF_AREA codes it may write (DOMAIN.md §2). */
typedef struct {
    char *provider;                  /* owned, e.g. "COL" */
    const sdmx_dataflow_t *dataflow; /* borrowed */
    size_t n_areas;
    char **areas; /* owned; a single "*" = every area */
} sdmx_agreement_t;

typedef struct structure structure_t;

/** Empty structure, or NULL on OOM. */
structure_t *structure_new(void);
/** Destroys *selfp and sets it to NULL. NULL-safe. */
void structure_destroy(structure_t **selfp);

/** Parses text (the deploy/structure format) and merges its artefacts into
 * self. All or nothing: on any error nothing is merged, the errors (with
 * line numbers, source_name prefixed) are appended to issues, and
 * OBS_ESTRUCT is returned. Re-loading an identical artefact is a no-op;
 * a different definition under the same URN replaces it only when the URN's
 * version differs (final artefacts are immutable): same URN with different
 * content is an error. *loaded (may be NULL) gets the number of new or
 * replaced artefacts. OBS_ENOMEM. */
int structure_load_text(structure_t *self, const char *text, size_t len,
                        const char *source_name, issue_list_t *issues,
                        size_t *loaded);

/** Serialises every artefact to the text format (canonical order, so two
 * equal structures give equal text). *out is malloc'd, caller frees.
 * OBS_ENOMEM. */
int structure_to_text(const structure_t *self, char **out, size_t *len);

/** Finds a dataflow by "AGENCY:ID(VERSION)"; "AGENCY:ID" (no version) picks
 * the highest version. Also accepts the DSD-qualified v1 form
 * "AGENCY:DSD@DF(VERSION)" by taking the part after '@'. NULL if unknown. */
const sdmx_dataflow_t *structure_find_dataflow(const structure_t *self,
                                               const char *ref);
const sdmx_dsd_t *structure_find_dsd(const structure_t *self, const char *urn);
const sdmx_codelist_t *structure_find_codelist(const structure_t *self,
                                               const char *urn);
/** bsearch in a code list; NULL if the code is not in it. */
const sdmx_code_t *structure_find_code(const sdmx_codelist_t *cl,
                                       const char *id);
/** Index of a dimension in the DSD, or -1. */
int structure_dim_index(const sdmx_dsd_t *dsd, const char *id);
/** The attribute component, or NULL. */
const sdmx_component_t *structure_find_attr(const sdmx_dsd_t *dsd,
                                            const char *id);

/** Iteration in canonical (URN) order; i from 0 to count-1. */
size_t structure_codelist_count(const structure_t *self);
const sdmx_codelist_t *structure_codelist_at(const structure_t *self, size_t i);
size_t structure_dsd_count(const structure_t *self);
const sdmx_dsd_t *structure_dsd_at(const structure_t *self, size_t i);
size_t structure_dataflow_count(const structure_t *self);
const sdmx_dataflow_t *structure_dataflow_at(const structure_t *self, size_t i);
size_t structure_agreement_count(const structure_t *self);
const sdmx_agreement_t *structure_agreement_at(const structure_t *self,
                                               size_t i);

/** Rule 12: may provider write REF_AREA area in dataflow df? True when an
 * agreement for (provider, df) lists area or "*". A provider with no
 * agreement at all for df may write nothing. */
bool structure_may_write(const structure_t *self, const char *provider,
                         const sdmx_dataflow_t *df, const char *area);

#endif

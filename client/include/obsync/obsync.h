/*
 * obsync.h - libobsync, the C client of an obsyncd node's local API.
 *
 * One header, self-contained: it needs only the C standard library. The
 * library talks to the daemon over ZeroMQ (ipc://) but exposes none of it.
 *
 * Errors: every function returns 0 (OBSYNC_OK) or a negative OBSYNC_E* code
 * (the same numbers as the daemon's OBS_E* codes, which travel on the wire).
 * obsync_strerror() gives the sentence for a code; obsync_client_errmsg()
 * gives the detail of the last error on a client ("daemon unreachable at
 * ipc://... (is obsyncd running?)", "line 12: unterminated quoted field").
 *
 * Behaviour: the library never prints, exits or aborts; out of memory is
 * OBSYNC_ENOMEM. It installs no signal handlers. A client is used by one
 * thread at a time.
 *
 * Ownership: strings passed in are borrowed for the call. Observations handed
 * to callbacks are borrowed and valid only during the callback. Objects the
 * library allocates for the caller (obsync_obs_t from obsync_get,
 * obsync_status_t) are released with their _free function, which takes the
 * address of the pointer and sets it to NULL.
 */
#ifndef OBSYNC_OBSYNC_H
#define OBSYNC_OBSYNC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(OBSYNC_BUILDING_DSO) && defined(__GNUC__)
#define OBSYNC_EXPORT __attribute__((visibility("default")))
#else
#define OBSYNC_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ errors */

/** Error codes; same numbers as OBS_E* in proto/obs_err.h. */
enum obsync_err {
    OBSYNC_OK = 0,
    OBSYNC_ENOMEM = -1,     /* out of memory */
    OBSYNC_EINVAL = -2,     /* invalid argument */
    OBSYNC_EPROTO = -3,     /* malformed or unexpected message */
    OBSYNC_EVERSION = -4,   /* unsupported protocol version */
    OBSYNC_EAUTH = -5,      /* not authorised for this data */
    OBSYNC_ENOENT = -6,     /* not found */
    OBSYNC_ESTOREFULL = -7, /* store map is full */
    OBSYNC_ESTORE = -8,     /* store failure */
    OBSYNC_ESYS = -9,       /* system call failed (or interrupted) */
    OBSYNC_EUNREACH = -10,  /* daemon unreachable */
    OBSYNC_ETIMEOUT = -11,  /* timed out */
    OBSYNC_ETOOBIG = -12,   /* input exceeds a configured limit */
    OBSYNC_EREJECTED = -13, /* some rows were rejected */
    OBSYNC_ECONFIG = -14,   /* invalid configuration */
    OBSYNC_EEXIST = -15,    /* already exists */
    OBSYNC_EBUSY = -16,     /* resource busy */
    OBSYNC_ESTRUCT = -17,   /* invalid structure definition */
    OBSYNC_EFORMAT = -18,   /* malformed input file */
    OBSYNC_ECLOCK = -19,    /* the node's clock is too far from the hub's */
};

/** Sentence for an OBSYNC_E* code; never NULL ("unknown error"). */
OBSYNC_EXPORT const char *obsync_strerror(int rc);

/* ------------------------------------------------------------ types */

typedef enum {
    OBSYNC_MERGE = 0,   /* upsert the given values, keep other attributes */
    OBSYNC_REPLACE = 1, /* replace the whole observation */
    OBSYNC_DELETE = 2,  /* tombstone */
} obsync_action_t;

typedef struct {
    const char *id;
    const char *value;
} obsync_attr_t;

/**
 * One observation with its version. As input (obsync_put) only dataflow,
 * series_key or dims, time_period, value and attrs are read; the version
 * fields are assigned by the daemon. As output every pointer is non-NULL
 * except dim_ids (NULL when the daemon sent no columns for the dataflow).
 */
typedef struct {
    const char *dataflow;    /* AGENCY:ID(VERSION) */
    const char *series_key;  /* dims joined with '.'; input: used if no dims */
    size_t n_dims;           /* input: 0 = split series_key at '.' */
    const char *const *dims; /* codes in DSD order */
    const char *const *dim_ids; /* output: n_dims ids in DSD order, or NULL */
    const char *time_period;    /* SDMX TIME_PERIOD as stored */
    const char *value; /* OBS_VALUE text exactly as stored; "" = none */
    size_t n_attrs;
    const obsync_attr_t *attrs; /* sorted by id */
    /* version (output only) */
    uint64_t hlc;     /* hybrid logical clock: ms << 16 | logical */
    uint64_t time_ms; /* hlc >> 16: ms since the epoch, UTC */
    const char *origin;
    uint64_t origin_seq;
    const char *provider;
    obsync_action_t action;
    bool tombstone;
    const char *batch_id;
    uint64_t hub_seq; /* 0: not yet logged by the hub */
} obsync_obs_t;

/** A row issue reported by the daemon (or by the CSV reader: rule R0-csv). */
typedef struct {
    uint64_t line;       /* 1-based line in the file; 0 = not from a file */
    const char *column;  /* "" for the whole row */
    const char *rule;    /* stable rule id, e.g. "R3-time-grammar" */
    const char *message; /* sentence naming the value */
    bool warning;        /* true: row accepted with a warning */
} obsync_issue_t;

/** Counts of a write (put, delete, import). */
typedef struct {
    uint64_t accepted;  /* rows that changed (or would change) the store */
    uint64_t unchanged; /* rows identical to what is stored */
    uint64_t rejected;
    uint64_t deleted; /* observations tombstoned (part of accepted) */
    uint64_t warnings;
    uint64_t issues_omitted; /* issues the daemon did not send (reply cap) */
    bool committed;
    char batch_id[64];
} obsync_summary_t;

/** Columns of one dataflow (as an ObsReply lists them). Borrowed strings. */
typedef struct {
    const char *dataflow;
    size_t n_dim_ids;
    const char *const *dim_ids; /* DSD order */
    size_t n_attr_ids;
    const char *const *attr_ids; /* DSD order */
} obsync_columns_t;

/** Issue callback; the issue is borrowed for the call. */
typedef void (*obsync_issue_cb)(void *arg, const obsync_issue_t *issue);
/** Observation callback; obs is borrowed for the call. Return 0 to go on;
 * any other value stops the operation, which then returns that value. */
typedef int (*obsync_obs_cb)(void *arg, const obsync_obs_t *obs);

/* ------------------------------------------------------------ client */

typedef struct obsync_client obsync_client_t;

#define OBSYNC_DEFAULT_TIMEOUT_MS 30000
#define OBSYNC_MAX_FRAME          (64u * 1024u * 1024u)

/**
 * Makes a client for endpoint: "ipc://PATH", a plain PATH (taken as ipc),
 * or any other ZeroMQ endpoint. Nothing is connected yet: the first request
 * connects, and fails at once with OBSYNC_EUNREACH when the ipc socket file
 * does not exist. Caller owns *out (obsync_client_destroy).
 * Errors: OBSYNC_EINVAL (NULL or empty endpoint), OBSYNC_ENOMEM, OBSYNC_ESYS
 * (ZeroMQ context). On error *out is NULL.
 */
OBSYNC_EXPORT int obsync_client_new(const char *endpoint,
                                    obsync_client_t **out);
/** Closes and frees the client; NULL-safe; sets *c to NULL. */
OBSYNC_EXPORT void obsync_client_destroy(obsync_client_t **c);
/** Detail of the last error on c (never NULL; "" when none). Valid until the
 * next call on c. */
OBSYNC_EXPORT const char *obsync_client_errmsg(const obsync_client_t *c);
/** The endpoint in ipc:// form; valid for the life of c. */
OBSYNC_EXPORT const char *obsync_client_endpoint(const obsync_client_t *c);
/** Time to wait for each reply (default 30 s); ms <= 0 restores it. */
OBSYNC_EXPORT void obsync_client_set_timeout(obsync_client_t *c, int ms);
/** Optional cancel flag (e.g. set by a SIGINT handler): when it becomes
 * non-zero, a running import is aborted at the daemon and the call returns
 * OBSYNC_ESYS with errmsg "interrupted". Borrowed; NULL = none. */
OBSYNC_EXPORT void obsync_client_set_cancel(obsync_client_t *c,
                                            volatile sig_atomic_t *flag);

/*
 * Every request below may also fail with: OBSYNC_EUNREACH (no socket file,
 * or no reply ever came), OBSYNC_ETIMEOUT (no reply within the timeout),
 * OBSYNC_EPROTO (undecodable or unexpected reply, frame over 64 MiB),
 * OBSYNC_EVERSION, OBSYNC_ENOMEM, OBSYNC_ESYS, and any code the daemon
 * answers with in an ErrorReply (its message is in errmsg).
 */

/* ------------------------------------------------------------ status */

/** A count of refusals for one reason (StatusReply.refused_reasons and
 * refused_counts, which travel as parallel arrays, paired here). Reasons are
 * the hub's names, e.g. "unknown_key" (docs/cli.md, `obsync status`). */
typedef struct {
    char *reason;   /* owned, never NULL */
    uint64_t count; /* since the hub started; may be 0 */
} obsync_refusal_t;

/** One node as a hub sees it (StatusReply.peers). */
typedef struct {
    char *node_id, *address, *state; /* owned, never NULL; may be "" */
    bool up;                         /* a session is open */
    uint64_t last_seen_ms;           /* ms since the epoch; 0 = never */
    uint64_t cursor;                 /* last hub_seq the node applied */
    uint64_t lag_changes, lag_ms;    /* hub log entries it has not applied */
    uint64_t accepted, rejected;     /* its published changes */
    uint64_t conflicts;              /* its changes that lost to a newer one */
    uint64_t duplicates;             /* its changes the hub already held */
    uint64_t bytes_in, bytes_out;
    uint64_t last_origin_seq; /* highest origin_seq of it the hub holds */
    /* fields added later go here, after every older one (ABI) */
    uint64_t clock_refused; /* changes refused for a clock far ahead (kept
                               by the node, re-stamped, sent again) */
    char *link;             /* owned, never NULL: "ok", "slow link",
                               "no progress" ("" from an older hub) */
    uint64_t rate_out_bps;  /* the stream to it, confirmed by its credits */
    uint64_t rate_in_bps;   /* what arrives from it */
    uint64_t reconnects;    /* its sessions after the first */
    /* security (a hub with security = curve) */
    /* owned, never NULL: the fingerprint (first 8 Z85 characters) of the
     * key of its last Hello; "" when none or plaintext */
    char *key;
    size_t n_refused; /* refusals of it at the replication port */
    /* owned array of n_refused (every reason the hub counts, zeros
     * included); NULL when 0 */
    obsync_refusal_t *refused;
} obsync_peer_status_t;

typedef struct {
    char *node_id, *role, *epoch, *provider; /* owned, never NULL */
    uint64_t observations, tombstones, history_versions, outbox_depth;
    uint64_t last_origin_seq, hlc, map_size, map_used, uptime_s;
    uint64_t commits, writes_grouped, hub_cursor;
    size_t n_dataflows;
    char **dataflows; /* owned */
    /* replication; a node with no hub has hub_endpoint "" and repl_state "" */
    char *hub_endpoint;    /* owned, never NULL; node: its hub, hub: its bind */
    char *repl_state;      /* owned, never NULL; node: idle|hello|snapshot|
                              streaming; "" on a hub or standalone node */
    uint64_t lag_changes;  /* node: hub log entries not yet applied */
    uint64_t lag_ms;       /* node: age of the oldest unapplied entry */
    uint64_t log_first;    /* hub: oldest hub_seq kept */
    uint64_t log_last;     /* hub: newest hub_seq; node: newest it knows */
    uint64_t outbox_acked; /* node: highest origin_seq the hub acked */
    uint64_t snapshots;    /* node: snapshots taken; hub: snapshots sent */
    size_t n_peers;        /* hub: one row per known node; node: 0 */
    obsync_peer_status_t *peers; /* owned array of n_peers; NULL when 0 */
    /* fields added later go here, after every older one (ABI) */
    uint64_t state_applied;  /* hub: its state holds the log up to here */
    uint64_t batches_shared; /* hub: LogBatches sent as packed for another
                                node at the same position (fan-out) */
    /* node: its clock against the hub's (clock_known false: no sample yet
     * this run; local writes are then accepted) */
    bool clock_known;
    int64_t clock_skew_ms;    /* this node's clock minus the hub's */
    uint64_t restamped;       /* local changes re-stamped this run */
    uint64_t renumbered;      /* local changes renumbered this run (the
                                 store was an older copy of itself) */
    uint64_t pending_rejects; /* outbox changes the hub refused for their
                                 clock, waiting to be re-stamped */
    /* node: its link to the hub (PROTOCOL.md §5.4 "Slow links") */
    char *link;            /* owned, never NULL: "ok", "slow link",
                              "no progress"; "" on a hub or standalone */
    uint64_t rate_in_bps;  /* the hub's stream, as it arrives */
    uint64_t rate_out_bps; /* its Publishes, as acks confirm them */
    uint64_t reconnects;   /* sessions after the first, this run */
    uint64_t apply_rate;   /* hub log entries applied per second, lately */
    uint64_t eta_s;        /* lag_changes at apply_rate (0: none/unknown) */
    /* security of the replication link (README "Keys and deployment");
     * strings owned, never NULL, "" from an older daemon */
    char *security; /* "curve" or "plaintext" */
    /* this daemon's CURVE public key (40 Z85 characters; "" with plaintext
     * or without replication) */
    char *public_key;
    char *hub_key;         /* node: the hub's public key it pins; "" on hub */
    uint64_t allowed_keys; /* hub: node keys in its allow-list */
    size_t n_refused;      /* hub: refusals at its replication port */
    /* owned array of n_refused, one per reason the hub counts (zeros
     * included); NULL when 0 */
    obsync_refusal_t *refused;
    uint64_t connections;        /* hub: TCP connections to its port now */
    uint64_t pending_hello;      /* hub: of them, not spoken yet */
    uint64_t handshake_failures; /* hub: security handshakes that failed */
    uint64_t backoffs;           /* hub: peers refused a while for abuse */
    /* the answer to a reload request (obsync_reload), one line, e.g.
     * "3 node key(s) allowed (were 2)"; "" from obsync_status */
    char *reload;
} obsync_status_t;

/** Asks the daemon for its status; caller owns *out (obsync_status_free,
 * which also frees the peer rows and their strings). Fields a daemon does
 * not send (an older one, or one without replication) are 0 / "". */
OBSYNC_EXPORT int obsync_status(obsync_client_t *c, obsync_status_t **out);
OBSYNC_EXPORT void obsync_status_free(obsync_status_t **st);

/**
 * Asks the daemon to re-read its allow-list (a hub with security = curve:
 * the public certificates in curve_allow_dir, as SIGHUP does), then for its
 * status. On OBSYNC_OK (*out)->reload is the daemon's one-line answer: on a
 * curve hub "N node key(s) allowed (were M)"; on a node or a plaintext hub
 * a line saying there is nothing to reload. Caller owns *out
 * (obsync_status_free). Errors: the daemon's ErrorReply when the new list is
 * refused (a bad certificate file: the old list stays; errmsg names the file
 * and what is wrong with it), OBSYNC_EPROTO when the daemon ignored the
 * request (an older obsyncd: empty reload line), the common ones.
 */
OBSYNC_EXPORT int obsync_reload(obsync_client_t *c, obsync_status_t **out);

/* ------------------------------------------------------------ writes */

typedef struct {
    obsync_action_t action;   /* MERGE (default) or REPLACE */
    bool strict;              /* any rejected row rejects the whole put */
    bool dry_run;             /* validate and count, store nothing */
    obsync_issue_cb on_issue; /* may be NULL */
    void *arg;
} obsync_put_opts_t;

/**
 * Writes n observations in one transaction. opts NULL = merge, not strict.
 * sum (may be NULL) receives the counts; issues go to opts->on_issue.
 * Returns OBSYNC_OK when the daemon answered with a summary, even with
 * rejected rows (check sum->rejected and sum->committed).
 * Errors: OBSYNC_EINVAL (n == 0, missing dataflow/key/period, an attribute
 * with no id), OBSYNC_ETOOBIG (an observation over the protocol's limits:
 * more than 32 dimensions or 64 attributes, a code over 64 bytes, a value
 * over 64, a period over 40, a text over 4096; nothing is sent, the error
 * names the observation), the common ones.
 */
OBSYNC_EXPORT int obsync_put(obsync_client_t *c, const obsync_obs_t *obs,
                             size_t n, const obsync_put_opts_t *opts,
                             obsync_summary_t *sum);

/** Tombstones one observation. sum may be NULL. OBSYNC_ENOENT if the daemon
 * says there is no such observation. */
OBSYNC_EXPORT int obsync_delete(obsync_client_t *c, const char *dataflow,
                                const char *series_key, const char *time_period,
                                bool dry_run, obsync_summary_t *sum);

/* ------------------------------------------------------------ reads */

/**
 * Fetches one observation; caller owns *out (obsync_obs_free).
 * OBSYNC_ENOENT when there is none (errmsg names the key).
 */
OBSYNC_EXPORT int obsync_get(obsync_client_t *c, const char *dataflow,
                             const char *series_key, const char *time_period,
                             obsync_obs_t **out);
OBSYNC_EXPORT void obsync_obs_free(obsync_obs_t **obs);

/** Calls cb for every stored version of one observation, newest first.
 * OBSYNC_ENOENT when the key has no history. */
OBSYNC_EXPORT int obsync_history(obsync_client_t *c, const char *dataflow,
                                 const char *series_key,
                                 const char *time_period, obsync_obs_cb cb,
                                 void *arg);

/** Query filters; zero-initialise, then set what you need. */
typedef struct {
    const char *dataflow;      /* NULL/"" = every dataflow */
    const char *key_pattern;   /* "A.COL.." empty positions = wildcards */
    const char *start_period;  /* inclusive; NULL = open */
    const char *end_period;    /* inclusive; NULL = open */
    uint64_t updated_after_ms; /* 0 = off; includes tombstones */
    uint64_t as_of_ms;         /* 0 = current state */
    bool include_deleted;      /* also return tombstones */
    uint64_t max_obs;          /* stop after this many; 0 = all */
    uint32_t page_size;        /* 0 = daemon default */
} obsync_query_t;

/** Calls cb for each matching observation, fetching pages until the daemon
 * says there are no more (or max_obs is reached). */
OBSYNC_EXPORT int obsync_query(obsync_client_t *c, const obsync_query_t *q,
                               obsync_obs_cb cb, void *arg);

/* ------------------------------------------------------------ export */

typedef enum {
    OBSYNC_FORMAT_CSV = 0,  /* SDMX-CSV 2.x */
    OBSYNC_FORMAT_JSONL = 1 /* one JSON object per observation */
} obsync_format_t;

/** Runs the query and writes every observation to out in fmt. *n_written
 * (may be NULL) gets the number of observations written. OBSYNC_ESYS on a
 * write error, OBSYNC_EPROTO when an observation names a column the reply's
 * column lists do not have. */
OBSYNC_EXPORT int obsync_export(obsync_client_t *c, const obsync_query_t *q,
                                obsync_format_t fmt, FILE *out,
                                uint64_t *n_written);

/* Pure formatting (no daemon): what obsync_export is made of. */

typedef struct obsync_csv_writer obsync_csv_writer_t;

/** Starts SDMX-CSV 2.x output: writes the header made of the union of the
 * dimension columns (first dataflow's order, then new ones) and of the
 * attribute columns of cols[0..n). Caller owns *out.
 * OBSYNC_ENOMEM, OBSYNC_ESYS (write failed), OBSYNC_EINVAL. */
OBSYNC_EXPORT int obsync_csv_writer_new(FILE *f, const obsync_columns_t *cols,
                                        size_t n, obsync_csv_writer_t **out);
/** Writes one row; cells of columns not in obs's dataflow stay empty.
 * obs->dim_ids must be set. OBSYNC_EPROTO when obs has a dimension or
 * attribute the header lacks, OBSYNC_ESYS when the write fails. */
OBSYNC_EXPORT int obsync_csv_write_obs(obsync_csv_writer_t *w,
                                       const obsync_obs_t *obs);
OBSYNC_EXPORT void obsync_csv_writer_free(obsync_csv_writer_t **w);

/** Writes obs as one JSON line (see docs/cli.md). OBSYNC_ESYS on failure. */
OBSYNC_EXPORT int obsync_jsonl_write_obs(FILE *f, const obsync_obs_t *obs);
/** Writes s as a JSON string literal with quotes; NULL writes "". */
OBSYNC_EXPORT int obsync_json_write_string(FILE *f, const char *s);
/** Formats ms since the epoch as "2024-06-26T10:00:00.123Z" into buf
 * (at least 32 bytes). */
OBSYNC_EXPORT void obsync_format_time_ms(uint64_t ms, char *buf, size_t len);

/* ------------------------------------------------------------ import */

typedef struct {
    bool strict;        /* any rejected row aborts the whole import */
    bool dry_run;       /* validate and count, store nothing */
    bool decimal_comma; /* OBS_VALUE may use ',' as decimal mark */
    /** 0: the file is one transaction. N: the daemon commits every N rows
     * as they arrive, so replication starts before the file ends; a failure
     * leaves the parts already committed (a rerun of the file completes
     * it). Not with strict. */
    uint64_t commit_rows;
    size_t n_ignore_columns;
    const char *const *ignore_columns;
    obsync_issue_cb on_issue; /* every issue, local and daemon; may be NULL */
    /** Called after each chunk: rows sent so far, bytes read of file size. */
    void (*on_progress)(void *arg, uint64_t rows, uint64_t bytes_read,
                        uint64_t bytes_total);
    void *arg;
} obsync_import_opts_t;

/**
 * Imports one SDMX-CSV file (v1 or v2.x) as one transaction (or in parts
 * of opts->commit_rows rows). The library
 * reads and lexes the file in a bounded buffer and streams chunks of rows;
 * the daemon maps and validates them. A record the CSV reader cannot read is
 * reported as a rejected row (rule "R0-csv") and skipped; under strict it
 * aborts the import.
 * Returns OBSYNC_OK when the import ran to its end (committed or not: see
 * sum->committed and sum->rejected). Errors: OBSYNC_EFORMAT when the file
 * cannot be opened or read, is a directory, empty, binary, or its header is
 * unusable (errmsg says which; daemon issues about the header go to
 * on_issue); OBSYNC_ESYS "interrupted" after the cancel flag was set; the
 * common ones. Any failure after ImportBegin sends ImportFinish{abort}.
 */
OBSYNC_EXPORT int obsync_import_file(obsync_client_t *c, const char *path,
                                     const obsync_import_opts_t *opts,
                                     obsync_summary_t *sum);

/* ------------------------------------------------------------ structure */

typedef struct {
    const char *kind; /* codelist | dsd | dataflow | agreement */
    const char *urn;
    const char *name;
    uint32_t items;
    const char *text; /* definition; may be "" in lists */
} obsync_artefact_t;

typedef int (*obsync_artefact_cb)(void *arg, const obsync_artefact_t *a);

/** Lists artefacts, filtered by kind and/or urn (NULL = any). With a urn
 * that matches nothing: OBSYNC_ENOENT. */
OBSYNC_EXPORT int obsync_structure_list(obsync_client_t *c, const char *kind,
                                        const char *urn, obsync_artefact_cb cb,
                                        void *arg);
/** Loads a structure file's text. *loaded (may be NULL) gets the number of
 * artefacts loaded; issues go to on_issue. */
OBSYNC_EXPORT int obsync_structure_load(obsync_client_t *c, const char *text,
                                        const char *source_name, bool dry_run,
                                        obsync_issue_cb on_issue, void *arg,
                                        uint32_t *loaded);

#ifdef __cplusplus
}
#endif
#endif

/*
 * hub_prep.h - the hub checks the changes of queued Publishes ahead, on a
 * worker thread.
 *
 * Accepting a change at the hub is two kinds of work: the checks that need
 * only the change and the structure (decoding it, making its key,
 * validating it, encoding it again with its texts normalised), and the
 * ones that need the session and the store (its origin_seq against the
 * last one accepted, the hub's clock, the log append). The first kind is
 * most of the CPU and runs here, on one worker thread, while the hub's loop
 * thread commits and syncs the transaction before; the loop then appends
 * each change it finds prepared without decoding it again. Anything the
 * worker could not settle (a change that does not decode, fails a rule or
 * is not its session's own) is marked PREP_SLOW: the loop checks it the
 * usual way, which also writes the reject's message.
 *
 * A job is one Publish: the caller fills the inputs, submits it, and before
 * using the outputs waits for it (which prepares it on the calling thread
 * if the worker has not started it: the loop never idles behind the
 * worker). The worker prepares jobs in submission order, at most `ahead`
 * changes beyond what the loop has waited for (the loop holds the outputs
 * of one group commit, the worker those of the next), so the outputs stay
 * bounded.
 *
 * The structure is read by the worker without a lock: whoever changes it
 * pauses the checker first (hub_prep_pause), throws the outputs prepared
 * under the old structure away (hub_prep_redo), and resumes it after.
 *
 * Ownership: the checker owns its thread; a job's inputs are the caller's
 * and must stay valid until hub_prep_forget, which also frees the outputs
 * (required before the inputs go). Every function but the worker's own
 * runs on one thread, the hub's loop. Errors: hub_prep_new OBS_ENOMEM,
 * OBS_ESYS (no thread); a job whose outputs cannot be allocated is all
 * PREP_SLOW, never an error. No I/O, no LMDB. Tested on its own
 * (test_hub_prep).
 */
#ifndef HUB_PREP_H
#define HUB_PREP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "obs.h"
#include "structure.h"

typedef enum {
    PREP_SLOW = 0, /* check it on the loop thread, the usual way */
    PREP_OK = 1    /* decodes, is the session's own, passes every rule */
} prep_verdict_t;

/* One change, prepared. key and body point into buf. */
typedef struct {
    prep_verdict_t verdict;
    uint8_t *buf; /* owned: key then body */
    size_t key_len, body_len;
    obs_version_t ver; /* as sent (hub_seq as sent, normally 0) */
} prep_change_t;

typedef struct prep_job {
    /* inputs, set before hub_prep_submit and kept until hub_prep_forget */
    const msg_bytes_t *changes; /* encoded Observations */
    size_t n;
    uint64_t first_seq;            /* the Publish's: changes[i] is first + i */
    char node_id[OBS_ID_MAX + 1];  /* the session's: a change must be */
    char provider[OBS_ID_MAX + 1]; /* ... from it and assert this one */
    /* outputs: after hub_prep_wait, until hub_prep_forget; NULL when they
     * could not be allocated (then treat every change as PREP_SLOW) */
    prep_change_t *out;
    /* private */
    int state;
    bool counted; /* its changes count against the checker's ahead */
    struct prep_job *prev, *next;
} prep_job_t;

typedef struct hub_prep hub_prep_t;

/** A checker reading st (borrowed; see the top about changing it), whose
 * worker prepares at most ahead changes not yet waited for. With
 * threads false there is no worker: hub_prep_wait prepares every job
 * itself (for tests that compare the two). OBS_ENOMEM, OBS_ESYS. */
int hub_prep_new(const structure_t *st, size_t ahead, bool threads,
                 hub_prep_t **out);
/** Stops and joins the worker, then frees the checker. Jobs still
 * submitted must be forgotten first. NULL-safe. */
void hub_prep_destroy(hub_prep_t **selfp);

/** Queues job (inputs set; outputs and private fields are initialised
 * here) for the worker. */
void hub_prep_submit(hub_prep_t *self, prep_job_t *job);
/** Returns once job's outputs are ready: prepares it here if the worker
 * has not taken it, else waits for the worker to finish it. */
void hub_prep_wait(hub_prep_t *self, prep_job_t *job);
/** Withdraws job (waiting if the worker is on it) and frees its outputs;
 * afterwards the caller may free its inputs. NULL-safe, and a no-op for a
 * job never submitted or already forgotten. */
void hub_prep_forget(hub_prep_t *self, prep_job_t *job);

/** Stops the worker between two jobs (returns once it is idle); jobs may
 * still be waited for, and are then prepared on the calling thread. */
void hub_prep_pause(hub_prep_t *self);
/** Throws job's outputs away and queues it again (the structure changed
 * under them). Only while paused. */
void hub_prep_redo(hub_prep_t *self, prep_job_t *job);
/** Lets the worker go on. */
void hub_prep_resume(hub_prep_t *self);

/** Jobs prepared by the worker, and by the waiting thread, since new. */
void hub_prep_counts(hub_prep_t *self, uint64_t *by_worker,
                     uint64_t *by_caller);

#endif

/*
 * hub_prep.c - checks queued Publishes ahead on a worker thread (see
 * hub_prep.h).
 *
 * Threading: the daemon's only thread besides libzmq's, so it lives here
 * and not in daemon/core (which has no locks). One mutex guards the queue,
 * every job's state and the counters; the preparing itself runs unlocked,
 * by the worker on a job it took off the queue, or by the loop thread on
 * one it took off the queue in hub_prep_wait. A job is on the queue only
 * while QUEUED, so the two never prepare the same job. Besides its jobs the
 * worker reads only the structure, which the loop leaves unchanged while
 * the worker runs (hub_prep_pause), and the pure core functions (codec,
 * obs_key, validate), which keep no state of their own.
 */
/* glibc's feature-test macro (ours to define), for pthread_setname_np */
#define _GNU_SOURCE /* NOLINT(bugprone-reserved-identifier): feature test */
#include "hub_prep.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "hub_rules.h"
#include "issue.h"
#include "obs_err.h"
#include "obs_key.h"
#include "obsdb.h"
#include "validate.h"

enum { JOB_IDLE, JOB_QUEUED, JOB_WORKING, JOB_READY };

/* What one preparing thread reuses from change to change. */
typedef struct {
    validate_memo_t memo;
    validate_texts_t texts;
} prep_ctx_t;

struct hub_prep {
    const structure_t *st;
    size_t ahead;
    pthread_mutex_t mu;
    pthread_cond_t work;     /* the worker waits here: a job, room, or stop */
    pthread_cond_t done;     /* a job left JOB_WORKING, or the worker paused */
    prep_job_t *head, *tail; /* JOB_QUEUED jobs, oldest first */
    /* changes prepared or being prepared and not yet waited for: the work
     * the worker is ahead by (a job waited for is the loop's to commit and
     * forget, bounded by its group commit, and no longer counts) */
    size_t held;
    bool paused, stop, busy, has_thread;
    uint64_t by_worker, by_caller;
    pthread_t thread;
    prep_ctx_t *worker_ctx, *caller_ctx;
};

static void
prep_change(const hub_prep_t *self, prep_ctx_t *ctx, const prep_job_t *job,
            size_t i, prep_change_t *pc)
{
    const msg_bytes_t *bin = &job->changes[i];
    codec_obs_ro_t ro;
    obs_t *o = &ro.obs;
    char why[8];
    pc->verdict = PREP_SLOW;
    if (codec_obs_decode_ro(bin->ptr, bin->len, &ro) != OBS_OK ||
        hub_rules_wire(bin->ptr, bin->len, o, job->first_seq + i, why,
                       sizeof(why)) != OBS_OK)
        goto out; /* the loop words the Goodbye */
    /* padding too: the hub's debug builds compare versions bytewise */
    memcpy(&pc->ver, &o->ver, sizeof(pc->ver));
    validate_ctx_t vc = {.st = self->st,
                         .memo = &ctx->memo,
                         .provider = job->provider,
                         .texts = &ctx->texts};
    uint8_t key[OBS_KEY_MAX];
    size_t klen = 0, len = 0;
    /* the rejects are worded by the loop, which checks them again */
    if (hub_rules_check(&vc, o, job->node_id, job->provider, key, &klen,
                        NULL) != OBS_OK ||
        codec_obs_encode_body(o, klen, &pc->buf, &len) != OBS_OK)
        goto out;
    memcpy(pc->buf, key, klen);
    pc->key_len = klen;
    pc->body_len = len - klen;
    pc->verdict = PREP_OK;
out:
    codec_obs_ro_release(&ro);
}

/* Unlocked: job is off the queue and only this thread touches it. */
static void
prep_job(const hub_prep_t *self, prep_ctx_t *ctx, prep_job_t *job)
{
    ctx->memo.df = NULL; /* nothing remembered across a structure change */
    job->out = calloc(job->n ? job->n : 1, sizeof(*job->out));
    for (size_t i = 0; job->out && i < job->n; i++)
        prep_change(self, ctx, job, i, &job->out[i]);
}

static void
free_outputs(prep_job_t *job)
{
    for (size_t i = 0; job->out && i < job->n; i++)
        free(job->out[i].buf);
    free(job->out);
    job->out = NULL;
}

static void
unqueue(hub_prep_t *self, prep_job_t *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        self->head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        self->tail = job->prev;
    job->prev = job->next = NULL;
}

/* Locked: job's changes no longer count against ahead. */
static void
release(hub_prep_t *self, prep_job_t *job)
{
    if (!job->counted)
        return;
    job->counted = false;
    self->held -= job->n;
    pthread_cond_signal(&self->work); /* room for the worker */
}

static void
enqueue(hub_prep_t *self, prep_job_t *job)
{
    job->state = JOB_QUEUED;
    job->next = NULL;
    job->prev = self->tail;
    if (self->tail)
        self->tail->next = job;
    else
        self->head = job;
    self->tail = job;
}

static void *
worker(void *arg)
{
    hub_prep_t *self = arg;
    pthread_mutex_lock(&self->mu);
    for (;;) {
        while (!self->stop && (self->paused || self->head == NULL ||
                               self->held >= self->ahead))
            pthread_cond_wait(&self->work, &self->mu);
        if (self->stop)
            break;
        prep_job_t *job = self->head;
        unqueue(self, job);
        job->state = JOB_WORKING;
        job->counted = true;
        self->held += job->n;
        self->busy = true;
        pthread_mutex_unlock(&self->mu);
        prep_job(self, self->worker_ctx, job);
        pthread_mutex_lock(&self->mu);
        job->state = JOB_READY;
        self->busy = false;
        self->by_worker++;
        pthread_cond_broadcast(&self->done);
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

int
hub_prep_new(const structure_t *st, size_t ahead, bool threads,
             hub_prep_t **out)
{
    hub_prep_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return OBS_ENOMEM;
    self->st = st;
    self->ahead = ahead;
    self->worker_ctx = calloc(1, sizeof(*self->worker_ctx));
    self->caller_ctx = calloc(1, sizeof(*self->caller_ctx));
    if (self->worker_ctx == NULL || self->caller_ctx == NULL) {
        free(self->worker_ctx);
        free(self->caller_ctx);
        free(self);
        return OBS_ENOMEM;
    }
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->work, NULL);
    pthread_cond_init(&self->done, NULL);
    if (threads) {
        /* signals are the loop thread's: the worker blocks them all */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        self->has_thread =
            pthread_create(&self->thread, NULL, worker, self) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (self->has_thread) /* its name in top -H and perf */
            pthread_setname_np(self->thread, "obsyncd-check");
        if (!self->has_thread) {
            hub_prep_destroy(&self);
            return OBS_ESYS;
        }
    }
    *out = self;
    return OBS_OK;
}

void
hub_prep_destroy(hub_prep_t **selfp)
{
    hub_prep_t *self = selfp ? *selfp : NULL;
    if (self == NULL)
        return;
    if (self->has_thread) {
        pthread_mutex_lock(&self->mu);
        self->stop = true;
        pthread_cond_broadcast(&self->work);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->thread, NULL);
    }
    pthread_cond_destroy(&self->done);
    pthread_cond_destroy(&self->work);
    pthread_mutex_destroy(&self->mu);
    free(self->worker_ctx);
    free(self->caller_ctx);
    free(self);
    *selfp = NULL;
}

void
hub_prep_submit(hub_prep_t *self, prep_job_t *job)
{
    job->out = NULL;
    job->counted = false;
    pthread_mutex_lock(&self->mu);
    enqueue(self, job);
    pthread_cond_signal(&self->work);
    pthread_mutex_unlock(&self->mu);
}

void
hub_prep_wait(hub_prep_t *self, prep_job_t *job)
{
    pthread_mutex_lock(&self->mu);
    if (job->state == JOB_QUEUED) {
        unqueue(self, job);
        job->state = JOB_WORKING;
        pthread_mutex_unlock(&self->mu);
        prep_job(self, self->caller_ctx, job); /* only this thread is on it */
        pthread_mutex_lock(&self->mu);
        job->state = JOB_READY;
        self->by_caller++;
    }
    while (job->state == JOB_WORKING)
        pthread_cond_wait(&self->done, &self->mu);
    release(self, job); /* the loop's now: the worker may go on ahead */
    pthread_mutex_unlock(&self->mu);
}

void
hub_prep_forget(hub_prep_t *self, prep_job_t *job)
{
    if (self == NULL || job == NULL)
        return;
    pthread_mutex_lock(&self->mu);
    if (job->state == JOB_QUEUED)
        unqueue(self, job);
    while (job->state == JOB_WORKING)
        pthread_cond_wait(&self->done, &self->mu);
    release(self, job);
    job->state = JOB_IDLE;
    pthread_mutex_unlock(&self->mu);
    free_outputs(job); /* no thread can reach it now */
}

void
hub_prep_pause(hub_prep_t *self)
{
    pthread_mutex_lock(&self->mu);
    self->paused = true;
    while (self->busy)
        pthread_cond_wait(&self->done, &self->mu);
    pthread_mutex_unlock(&self->mu);
}

void
hub_prep_redo(hub_prep_t *self, prep_job_t *job)
{
    pthread_mutex_lock(&self->mu);
    if (job->state == JOB_READY) {
        release(self, job);
        free_outputs(job); /* paused: the worker holds no job */
        enqueue(self, job);
    }
    pthread_mutex_unlock(&self->mu);
}

void
hub_prep_resume(hub_prep_t *self)
{
    pthread_mutex_lock(&self->mu);
    self->paused = false;
    pthread_cond_signal(&self->work);
    pthread_mutex_unlock(&self->mu);
}

void
hub_prep_counts(hub_prep_t *self, uint64_t *by_worker, uint64_t *by_caller)
{
    pthread_mutex_lock(&self->mu);
    *by_worker = self->by_worker;
    *by_caller = self->by_caller;
    pthread_mutex_unlock(&self->mu);
}

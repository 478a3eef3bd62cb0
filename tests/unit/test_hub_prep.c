/*
 * test_hub_prep.c - the hub's checks ahead (hub_prep): what a prepared
 * change holds is what the loop thread would log for it; whatever the
 * worker cannot settle is PREP_SLOW; the worker, the waiting caller, a
 * forgotten job, the bound on work ahead and a structure change all give
 * the same outputs.
 */
#include <time.h>

#include "codec.h"
#include "hub_prep.h"
#include "issue.h"
#include "obs_key.h"
#include "test_support.h"
#include "validate.h"

static structure_t *st;

static int
setup(void **state)
{
    (void)state;
    return test_load_fixture(&st) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    structure_destroy(&st);
    return 0;
}

/* A change of node N1 (provider OID) with origin_seq seq: valid unless
 * area names a code the structure lacks; value as given. */
static msg_bytes_t
change(uint64_t seq, const char *origin, const char *area, const char *value)
{
    obs_t o;
    obs_init(&o);
    const char *dims[] = {"A", area, "VC_IHR_PSRC", "F"};
    char year[8];
    snprintf(year, sizeof(year), "%d", 1950 + (int)(seq % 70));
    assert_ok(obs_set_identity(&o, VIOL, dims, 4, year));
    assert_ok(obs_set_value(&o, value));
    assert_ok(obs_set_attr(&o, "UNIT_MEASURE", "PER_100000_POP"));
    o.ver.hlc = (uint64_t)1700000000000 << 16;
    o.ver.origin_seq = seq;
    o.ver.action = OBS_ACTION_MERGE;
    snprintf(o.ver.origin, sizeof(o.ver.origin), "%s", origin);
    snprintf(o.ver.provider, sizeof(o.ver.provider), "OID");
    obs_content_hash(&o, o.ver.content_hash);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(codec_obs_encode(&o, &buf, &len));
    obs_fini(&o);
    return (msg_bytes_t){buf, len};
}

/* c with the last byte of its content_hash flipped. */
static msg_bytes_t
bad_hash(msg_bytes_t c)
{
    codec_obs_ro_t ro;
    assert_ok(codec_obs_decode_ro(c.ptr, c.len, &ro));
    uint8_t *p = (uint8_t *)(uintptr_t)c.ptr;
    size_t at = SIZE_MAX;
    for (size_t i = 0; at == SIZE_MAX && i + OBS_HASH_LEN <= c.len; i++)
        if (memcmp(p + i, ro.obs.ver.content_hash, OBS_HASH_LEN) == 0)
            at = i;
    assert_true(at != SIZE_MAX);
    p[at + OBS_HASH_LEN - 1] ^= 1;
    codec_obs_ro_release(&ro);
    return c;
}

/* c with its Version field written twice (as protobuf-c would merge it). */
static msg_bytes_t
version_twice(msg_bytes_t c)
{
    codec_obs_ro_t ro;
    assert_ok(codec_obs_decode_ro(c.ptr, c.len, &ro));
    uint8_t *body = NULL;
    size_t blen = 0;
    assert_ok(codec_obs_encode_body(&ro.obs, 0, &body, &blen));
    free(body);
    codec_obs_ro_release(&ro);
    size_t vlen = c.len - blen; /* the Version is the last field */
    uint8_t *out = malloc(c.len + vlen);
    assert_non_null(out);
    memcpy(out, c.ptr, c.len);
    memcpy(out + c.len, c.ptr + blen, vlen);
    free((void *)(uintptr_t)c.ptr);
    return (msg_bytes_t){out, c.len + vlen};
}

/* What the loop thread logs for bin: key, then the Observation, checked
 * the slow way. */
static void
expect_logged(const msg_bytes_t *bin, const prep_change_t *pc)
{
    codec_obs_ro_t ro;
    assert_ok(codec_obs_decode_ro(bin->ptr, bin->len, &ro));
    validate_texts_t *texts = calloc(1, sizeof(*texts));
    assert_non_null(texts);
    validate_ctx_t vc = {.st = st, .provider = "OID", .texts = texts};
    issue_list_t issues;
    issue_list_init(&issues, 4);
    assert_ok(validate_obs(&vc, structure_find_dataflow(st, ro.obs.dataflow),
                           &ro.obs, 1, &issues));
    issue_list_fini(&issues);
    uint8_t key[OBS_KEY_MAX];
    int klen = obs_key_encode(&ro.obs, key, sizeof(key));
    assert_true(klen > 0);
    assert_int_equal(pc->verdict, PREP_OK);
    assert_int_equal(pc->key_len, (size_t)klen);
    assert_memory_equal(pc->buf, key, (size_t)klen);
    ro.obs.ver.hub_seq = 42; /* as the log append sets it */
    obs_version_t ver = pc->ver;
    ver.hub_seq = 42;
    uint8_t *want = NULL, *got = NULL;
    size_t wlen = 0, glen = 0;
    assert_ok(codec_obs_encode(&ro.obs, &want, &wlen));
    assert_ok(codec_obs_encode_with_body(pc->buf + pc->key_len, pc->body_len,
                                         &ver, 0, &got, &glen));
    assert_int_equal(glen, wlen);
    assert_memory_equal(got, want, wlen);
    free(want);
    free(got);
    free(texts);
    codec_obs_ro_release(&ro);
}

static void
job_init(prep_job_t *job, msg_bytes_t *changes, size_t n)
{
    memset(job, 0, sizeof(*job));
    job->changes = changes;
    job->n = n;
    obs_version_t v;
    job->first_seq = n > 0 && codec_obs_decode_version(
                                  changes[0].ptr, changes[0].len, &v) == OBS_OK
                         ? v.origin_seq
                         : 1;
    snprintf(job->node_id, sizeof(job->node_id), "N1");
    snprintf(job->provider, sizeof(job->provider), "OID");
}

static void
free_changes(msg_bytes_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((void *)(uintptr_t)c[i].ptr);
}

/* Good changes are PREP_OK with the loop's key and bytes; the rest is
 * PREP_SLOW (the loop words why): also a change whose decimal is not in
 * normal form, whose content_hash is wrong, which is not canonical, or
 * whose origin_seq is not its place in the Publish. */
static void
test_hub_prep_verdicts(void **state)
{
    (void)state;
    enum { N = 10 };
    msg_bytes_t c[N];
    c[0] = change(1, "N1", "COL", "12.5");
    c[1] = change(2, "N1", "MEX", "7.5");
    c[2] = change(3, "N1", "XXX", "1"); /* not in the code list */
    c[3] = change(4, "N2", "COL", "1"); /* not the session's node */
    c[4] = (msg_bytes_t){.ptr = (const uint8_t *)strdup("\x0a\xff"),
                         .len = 2};         /* does not decode */
    c[5] = change(6, "N1", "COL", "abc");   /* not a number */
    c[6] = change(7, "N1", "MEX", "+7.50"); /* not normalised: hash differs */
    c[7] = bad_hash(change(8, "N1", "COL", "3"));
    c[8] = version_twice(change(9, "N1", "COL", "3"));
    c[9] = change(99, "N1", "COL", "3"); /* its place says 10 */
    hub_prep_t *hp = NULL;
    assert_ok(hub_prep_new(st, 1000, false, &hp));
    prep_job_t job;
    job_init(&job, c, N);
    hub_prep_submit(hp, &job);
    hub_prep_wait(hp, &job);
    assert_non_null(job.out);
    expect_logged(&c[0], &job.out[0]);
    expect_logged(&c[1], &job.out[1]);
    assert_int_equal(job.out[1].ver.origin_seq, 2);
    for (size_t i = 2; i < N; i++)
        assert_int_equal(job.out[i].verdict, PREP_SLOW);
    /* a provider other than the changes' is the slow path too */
    prep_job_t other;
    job_init(&other, c, 1);
    snprintf(other.provider, sizeof(other.provider), "COL");
    hub_prep_submit(hp, &other);
    hub_prep_wait(hp, &other);
    assert_int_equal(other.out[0].verdict, PREP_SLOW);
    uint64_t by_worker = 9, by_caller = 9;
    hub_prep_counts(hp, &by_worker, &by_caller);
    assert_int_equal(by_worker, 0); /* no thread: the caller did both */
    assert_int_equal(by_caller, 2);
    hub_prep_forget(hp, &job);
    hub_prep_forget(hp, &other);
    assert_null(job.out);
    hub_prep_forget(hp, &job); /* twice: a no-op */
    hub_prep_destroy(&hp);
    assert_null(hp);
    free_changes(c, N);
}

#define JOBS 40
#define PER  50

/* Polls (bounded) until the worker finished at least n jobs. */
static void
await_worker(hub_prep_t *hp, uint64_t n)
{
    uint64_t w = 0, c = 0;
    for (int i = 0; i < 5000; i++) {
        hub_prep_counts(hp, &w, &c);
        if (w >= n)
            return;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    fail_msg("the worker finished %llu jobs, not %llu", (unsigned long long)w,
             (unsigned long long)n);
}

/* With the worker: every job comes out as without it, whoever prepared
 * it; jobs forgotten queued, in work or ready leave nothing behind (the
 * sanitizer build checks the frees). */
static void
test_hub_prep_worker_agrees(void **state)
{
    (void)state;
    static msg_bytes_t c[JOBS][PER];
    for (size_t j = 0; j < JOBS; j++)
        for (size_t i = 0; i < PER; i++)
            c[j][i] = change(j * PER + i + 1, "N1",
                             (i % 7) == 3 ? "XXX" : "COL", "3.25");
    hub_prep_t *plain = NULL, *hp = NULL;
    assert_ok(hub_prep_new(st, 1000, false, &plain));
    assert_ok(hub_prep_new(st, 3 * PER, true, &hp));
    static prep_job_t want[JOBS], got[JOBS];
    for (size_t j = 0; j < JOBS; j++) {
        job_init(&want[j], c[j], PER);
        job_init(&got[j], c[j], PER);
        hub_prep_submit(plain, &want[j]);
        hub_prep_submit(hp, &got[j]);
    }
    for (size_t j = 0; j < JOBS; j++) {
        if (j % 10 == 9) { /* forgotten before anyone used it */
            hub_prep_forget(hp, &got[j]);
            continue;
        }
        hub_prep_wait(plain, &want[j]);
        hub_prep_wait(hp, &got[j]);
        for (size_t i = 0; i < PER; i++) {
            const prep_change_t *a = &want[j].out[i], *b = &got[j].out[i];
            assert_int_equal(a->verdict, b->verdict);
            assert_int_equal(a->ver.origin_seq, j * PER + i + 1);
            assert_memory_equal(&a->ver, &b->ver, sizeof(a->ver));
            if (a->verdict != PREP_OK)
                continue;
            assert_int_equal(a->key_len, b->key_len);
            assert_int_equal(a->body_len, b->body_len);
            assert_memory_equal(a->buf, b->buf, a->key_len + a->body_len);
        }
        hub_prep_forget(hp, &got[j]);
        hub_prep_forget(plain, &want[j]);
    }
    uint64_t w = 0, cl = 0;
    hub_prep_counts(hp, &w, &cl);
    assert_true(w + cl <= JOBS);
    assert_true(w + cl >= JOBS - JOBS / 10);
    hub_prep_destroy(&hp);
    hub_prep_destroy(&plain);
    for (size_t j = 0; j < JOBS; j++)
        free_changes(c[j], PER);
}

/* The worker stops at `ahead` changes held: with one job held, the next
 * is left for the caller. A structure change (pause, redo, resume) has a
 * ready job checked again. */
static void
test_hub_prep_ahead_and_redo(void **state)
{
    (void)state;
    msg_bytes_t a[PER], b[PER];
    for (size_t i = 0; i < PER; i++) {
        a[i] = change(i + 1, "N1", "COL", "1");
        b[i] = change(PER + i + 1, "N1", "MEX", "2");
    }
    hub_prep_t *hp = NULL;
    assert_ok(hub_prep_new(st, PER, true, &hp));
    prep_job_t ja, jb;
    job_init(&ja, a, PER);
    job_init(&jb, b, PER);
    hub_prep_submit(hp, &ja);
    hub_prep_submit(hp, &jb);
    await_worker(hp, 1); /* it took ja, the oldest; jb must wait */
    hub_prep_wait(hp, &jb);
    uint64_t w = 0, c = 0;
    hub_prep_counts(hp, &w, &c);
    assert_int_equal(w, 1);
    assert_int_equal(c, 1);
    hub_prep_wait(hp, &ja);
    assert_int_equal(ja.out[0].verdict, PREP_OK);

    /* redo: ja's outputs are thrown away and made again */
    hub_prep_pause(hp);
    hub_prep_redo(hp, &ja);
    assert_null(ja.out);
    hub_prep_forget(hp, &jb); /* room for the worker, which is paused */
    hub_prep_resume(hp);
    hub_prep_wait(hp, &ja);
    assert_non_null(ja.out);
    expect_logged(&a[7], &ja.out[7]);
    hub_prep_forget(hp, &ja);
    hub_prep_destroy(&hp);
    free_changes(a, PER);
    free_changes(b, PER);
}

/* What the worker has prepared stops counting against `ahead` once the
 * loop waited for it: with one job's worth ahead, it goes on to the next
 * job only after the first was waited for. */
static void
test_hub_prep_wait_makes_room(void **state)
{
    (void)state;
    msg_bytes_t c[3][PER];
    for (size_t j = 0; j < 3; j++)
        for (size_t i = 0; i < PER; i++)
            c[j][i] = change(j * PER + i + 1, "N1", "COL", "4");
    hub_prep_t *hp = NULL;
    assert_ok(hub_prep_new(st, PER, true, &hp));
    prep_job_t jobs[3];
    for (size_t j = 0; j < 3; j++) {
        job_init(&jobs[j], c[j], PER);
        hub_prep_submit(hp, &jobs[j]);
    }
    await_worker(hp, 1);
    hub_prep_wait(hp, &jobs[0]); /* the loop commits it: room */
    await_worker(hp, 2);
    hub_prep_wait(hp, &jobs[1]);
    await_worker(hp, 3);
    hub_prep_wait(hp, &jobs[2]);
    uint64_t w = 0, cl = 0;
    hub_prep_counts(hp, &w, &cl);
    assert_int_equal(w, 3);
    assert_int_equal(cl, 0);
    for (size_t j = 0; j < 3; j++) {
        assert_int_equal(jobs[j].out[PER - 1].verdict, PREP_OK);
        hub_prep_forget(hp, &jobs[j]);
        free_changes(c[j], PER);
    }
    hub_prep_destroy(&hp);
}

/* Once hub_prep_pause returns the worker holds no job: the job it was on
 * is prepared, one it had not taken is still queued (and waiting for it
 * prepares it here). The worker finishes a small job and goes straight on
 * to a big one, so the pause mostly lands in the middle of the big one. */
static void
test_hub_prep_pause_waits_for_worker(void **state)
{
    (void)state;
    enum { BIG = 4000 };
    msg_bytes_t *c = calloc(BIG, sizeof(*c));
    assert_non_null(c);
    for (size_t i = 0; i < BIG; i++)
        c[i] = change(i + 1, "N1", "MEX", "5.5");
    hub_prep_t *hp = NULL;
    assert_ok(hub_prep_new(st, 4 * BIG, true, &hp));
    for (int round = 0; round < 5; round++) {
        prep_job_t small, big;
        job_init(&small, c, 1);
        job_init(&big, c, BIG);
        uint64_t w0 = 0, c0 = 0, w1 = 0, c1 = 0, w2 = 0, c2 = 0;
        hub_prep_counts(hp, &w0, &c0);
        hub_prep_submit(hp, &small);
        hub_prep_submit(hp, &big);
        await_worker(hp, w0 + 1);
        hub_prep_pause(hp);
        hub_prep_counts(hp, &w1, &c1);
        hub_prep_wait(hp, &big);
        hub_prep_counts(hp, &w2, &c2);
        assert_int_equal(w2, w1); /* paused: the worker finished nothing */
        assert_int_equal((w2 - w0) + (c2 - c0), 2);
        assert_int_equal(big.out[BIG - 1].verdict, PREP_OK);
        hub_prep_resume(hp);
        hub_prep_forget(hp, &small);
        hub_prep_forget(hp, &big);
    }
    hub_prep_destroy(&hp);
    free_changes(c, BIG);
    free(c);
}

/* A real structure change between pause and resume: a change to a
 * dataflow the structure did not have is PREP_SLOW, and once the dataflow
 * is loaded and the job redone, PREP_OK. */
static void
test_hub_prep_redo_sees_new_structure(void **state)
{
    (void)state;
    structure_t *own = NULL;
    assert_ok(test_load_fixture(&own));
    obs_t o;
    obs_init(&o);
    const char *dims[] = {"A", "COL", "VC_IHR_PSRC", "F"};
    assert_ok(obs_set_identity(&o, "OID:DF_NEW(1.0)", dims, 4, "2020"));
    assert_ok(obs_set_value(&o, "9"));
    assert_ok(obs_set_attr(&o, "UNIT_MEASURE", "PER_100000_POP"));
    o.ver.hlc = (uint64_t)1700000000000 << 16;
    o.ver.origin_seq = 1;
    snprintf(o.ver.origin, sizeof(o.ver.origin), "N1");
    snprintf(o.ver.provider, sizeof(o.ver.provider), "OID");
    obs_content_hash(&o, o.ver.content_hash);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(codec_obs_encode(&o, &buf, &len));
    msg_bytes_t c = {buf, len};
    obs_fini(&o);
    hub_prep_t *hp = NULL;
    assert_ok(hub_prep_new(own, 100, true, &hp));
    prep_job_t job;
    job_init(&job, &c, 1);
    hub_prep_submit(hp, &job);
    hub_prep_wait(hp, &job);
    assert_int_equal(job.out[0].verdict, PREP_SLOW); /* no such dataflow */
    hub_prep_pause(hp);
    hub_prep_redo(hp, &job);
    const char *more = "dataflow OID:DF_NEW(1.0) dsd=OID:DSD_VIOLENCE(1.0) "
                       "semantic=reject \"New\"\n"
                       "agreement provider=OID dataflow=OID:DF_NEW(1.0) "
                       "areas=*\n";
    issue_list_t issues;
    issue_list_init(&issues, 4);
    size_t loaded = 0;
    assert_ok(
        structure_load_text(own, more, strlen(more), "more", &issues, &loaded));
    issue_list_fini(&issues);
    assert_int_equal(loaded, 2);
    hub_prep_resume(hp);
    hub_prep_wait(hp, &job);
    assert_int_equal(job.out[0].verdict, PREP_OK);
    hub_prep_forget(hp, &job);
    hub_prep_destroy(&hp);
    free(buf);
    structure_destroy(&own);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hub_prep_verdicts),
        cmocka_unit_test(test_hub_prep_worker_agrees),
        cmocka_unit_test(test_hub_prep_ahead_and_redo),
        cmocka_unit_test(test_hub_prep_wait_makes_room),
        cmocka_unit_test(test_hub_prep_pause_waits_for_worker),
        cmocka_unit_test(test_hub_prep_redo_sees_new_structure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

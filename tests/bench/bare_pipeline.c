/*
 * bare_pipeline: the reference for obsync's replication benchmark. It does the
 * least work that "acked means durable" allows: a sender thread encodes
 * protobuf batches of records shaped like observations (key, value,
 * attributes, about 150 bytes each) and sends them DEALER -> ROUTER over
 * tcp://127.0.0.1 with a window of unacked batches; the receiver stores each
 * batch in one LMDB transaction committed with the default (synced, durable)
 * flags, then acks it. Two variants: "append" stores the batch bytes as ONE
 * value under a big-endian sequence key (a log), "keyed" decodes the batch and
 * puts each record under its own key (the records' keys are random, so this
 * is the cost of keeping keyed state). It is not obsync and shares no code
 * with it; tests/bench/bench_replication.py builds it with gcc and runs it.
 *
 * The "-group" variants commit every batch already waiting (up to the window)
 * in one transaction and then ack them all: group commit, one fsync for
 * several batches.
 *
 *   bare_pipeline [-n RECORDS] [-b BATCH] [-w WINDOW] [-m VARIANT,...]
 *                 [-d DIR]        (default -m append,keyed,append-group)
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <zmq.h>

#include "bare.pb-c.h"

#define MAX_BATCH  10000
#define MAX_WINDOW 64

/* A failed call in a benchmark leaves nothing worth measuring: say which one
 * and why, then stop. */
#define CHECK(cond, what)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "bare_pipeline: %s failed: %s (%s:%d)\n", what, \
                    strerror(errno), __FILE__, __LINE__);                   \
            exit(1);                                                        \
        }                                                                   \
    } while (0)
#define MDB_CHECK(rc, what)                                  \
    do {                                                     \
        int rc_ = (rc);                                      \
        if (rc_ != 0) {                                      \
            fprintf(stderr, "bare_pipeline: %s: %s\n", what, \
                    mdb_strerror(rc_));                      \
            exit(1);                                         \
        }                                                    \
    } while (0)

static const char *const areas[] = {
    "ATG", "ARG", "BHS", "BRB", "BLZ", "BOL", "BRA", "CAN", "CHL",
    "COL", "CRI", "CUB", "DMA", "DOM", "ECU", "SLV", "GRD", "GTM",
    "GUY", "HTI", "HND", "JAM", "MEX", "NIC", "PAN", "PRY", "PER",
    "KNA", "LCA", "VCT", "SUR", "TTO", "USA", "URY", "VEN"};
static const char *const indicators[] = {
    "VC_IHR_PSRC",    "VC_IHR_PSRCN",  "PERS_ARREST_IH", "VIOL_DEATHS_ASR",
    "VIOL_DEATHS_CR", "VIOL_DEATHS_N", "FEMICIDE_N"};
static const char *const sexes[] = {"_T", "M", "F"};
static const char *const ages[] = {"_T",     "Y0T14",  "Y15T29",
                                   "Y30T44", "Y45T59", "Y_GE60"};
static const char *const breakdowns[] = {"_T",           "REL_IPFM",
                                         "REL_UNKNOWN",  "MECH_FIREARM",
                                         "CTX_ORGCRIME", "CIT_NATIONAL"};
static const char *const sources[] = {"CJ", "PH", "HARM", "MOD"};
static char attrs[][96] =
    {/* not const: BareRec.attrs is char * */
     "UNIT_MEASURE=PER_100000_POP;OBS_STATUS=A;SOURCE_DETAIL=UNODC/WHO "
     "harmonised estimate",
     "UNIT_MEASURE=NUMBER;OBS_STATUS=A;SOURCE_DETAIL=police and prosecutor "
     "records, 2025-10"};

#define PICK(arr, r) ((arr)[(r) % (sizeof(arr) / sizeof((arr)[0]))])

struct bench {
    const char *mode; /* "append", "keyed", "append-group", "keyed-group" */
    int keyed;        /* records under their own keys, not one value */
    int group;        /* one commit for every batch already waiting */
    size_t n;         /* records to send */
    size_t batch;     /* records per batch */
    size_t window;    /* unacked batches allowed in flight */
    const char *dir;  /* parent of the scratch LMDB directory */
    char endpoint[256];
    void *zctx;
    double seconds; /* sender: first send to last ack */
    size_t bytes;   /* encoded bytes sent */
    size_t commits; /* receiver: synced LMDB transactions */
};

/* One batch's records, reused for every batch the sender encodes. */
struct batch_buf {
    BareRec recs[MAX_BATCH];
    BareRec *ptrs[MAX_BATCH];
    char keys[MAX_BATCH][64];
    char values[MAX_BATCH][24];
};

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
xorshift64(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* Fills rec with a random observation: a random key, so the keyed variant
 * writes all over the B-tree the way a random-order import does. */
static void
make_record(struct batch_buf *b, size_t i, uint64_t *rng, uint64_t hlc)
{
    uint64_t r = xorshift64(rng);
    unsigned month = (unsigned)(xorshift64(rng) % 432);
    int counted = (r >> 40) % 2;

    snprintf(b->keys[i], sizeof(b->keys[i]), "M.%s.%s.%s.%s.%s.%s.%u-%02u",
             PICK(areas, r), PICK(indicators, r >> 8), PICK(sexes, r >> 16),
             PICK(ages, r >> 20), PICK(breakdowns, r >> 28),
             PICK(sources, r >> 36), 1990 + month / 12, 1 + month % 12);
    if (counted)
        snprintf(b->values[i], sizeof(b->values[i]), "%u",
                 (unsigned)(r >> 44) % 5000);
    else
        snprintf(b->values[i], sizeof(b->values[i]), "%u.%06u",
                 (unsigned)(r >> 44) % 100, (unsigned)(r >> 20) % 1000000);
    bare_rec__init(&b->recs[i]);
    b->recs[i].key = b->keys[i];
    b->recs[i].value = b->values[i];
    b->recs[i].attrs = attrs[counted];
    b->recs[i].hlc = hlc;
    b->ptrs[i] = &b->recs[i];
}

/* Encodes batch number seq (count records) and sends it; returns its size. */
static size_t
send_batch(void *sock, struct batch_buf *b, uint64_t seq, size_t count,
           uint64_t *rng)
{
    BareBatch msg = BARE_BATCH__INIT;
    size_t len;
    uint8_t *buf;

    for (size_t i = 0; i < count; i++)
        make_record(b, i, rng, (seq << 16) | i);
    msg.seq = seq;
    msg.n_recs = count;
    msg.recs = b->ptrs;
    len = bare_batch__get_packed_size(&msg);
    buf = malloc(len);
    CHECK(buf != NULL, "malloc");
    bare_batch__pack(&msg, buf);
    CHECK(zmq_send(sock, buf, len, 0) == (int)len, "zmq_send batch");
    free(buf);
    return len;
}

static void *
sender_main(void *arg)
{
    struct bench *bn = arg;
    struct batch_buf *b = malloc(sizeof(*b));
    void *sock = zmq_socket(bn->zctx, ZMQ_DEALER);
    size_t nbatches = (bn->n + bn->batch - 1) / bn->batch;
    size_t sent = 0, acked = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ULL, ack;
    double t0;

    CHECK(b != NULL && sock != NULL, "sender setup");
    CHECK(zmq_connect(sock, bn->endpoint) == 0, "zmq_connect");
    t0 = now_s();
    while (acked < nbatches) {
        while (sent < nbatches && sent - acked < bn->window) {
            size_t left = bn->n - sent * bn->batch;
            bn->bytes += send_batch(sock, b, sent,
                                    left < bn->batch ? left : bn->batch, &rng);
            sent++;
        }
        CHECK(zmq_recv(sock, &ack, sizeof(ack), 0) == sizeof(ack),
              "zmq_recv ack");
        CHECK(ack == acked, "ack in order");
        acked++;
    }
    bn->seconds = now_s() - t0;
    zmq_close(sock);
    free(b);
    return NULL;
}

/* The "append" store: the batch's bytes as one value under a big-endian
 * sequence key; MDB_APPEND because the keys only grow. */
static void
store_append(MDB_txn *txn, MDB_dbi dbi, uint64_t seq, zmq_msg_t *body)
{
    uint8_t be[8];
    MDB_val k = {sizeof(be), be};
    MDB_val v = {zmq_msg_size(body), zmq_msg_data(body)};

    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)(seq >> (56 - 8 * i));
    MDB_CHECK(mdb_put(txn, dbi, &k, &v, MDB_APPEND), "mdb_put append");
}

/* The "keyed" store: every record under its own key; the value is the hlc,
 * the value text and the attributes. */
static void
store_keyed(MDB_txn *txn, MDB_dbi dbi, zmq_msg_t *body)
{
    BareBatch *msg =
        bare_batch__unpack(NULL, zmq_msg_size(body), zmq_msg_data(body));
    char val[512];

    CHECK(msg != NULL, "bare_batch__unpack");
    for (size_t i = 0; i < msg->n_recs; i++) {
        const BareRec *r = msg->recs[i];
        int len = snprintf(val, sizeof(val), "%016" PRIx64 "%s;%s", r->hlc,
                           r->value, r->attrs);
        MDB_val k = {strlen(r->key), r->key};
        MDB_val v = {(size_t)len, val};

        CHECK(len > 0 && (size_t)len < sizeof(val), "value fits");
        MDB_CHECK(mdb_put(txn, dbi, &k, &v, 0), "mdb_put keyed");
    }
    bare_batch__free_unpacked(msg, NULL);
}

/* Receives one batch [id][body]; returns 0, or -1 if nonblocking and none is
 * waiting. */
static int
recv_batch(void *sock, zmq_msg_t *id, zmq_msg_t *body, int flags)
{
    zmq_msg_init(id);
    zmq_msg_init(body);
    if (zmq_msg_recv(id, sock, flags) < 0) {
        CHECK(errno == EAGAIN, "zmq_msg_recv id");
        zmq_msg_close(id);
        zmq_msg_close(body);
        return -1;
    }
    CHECK(zmq_msg_more(id), "batch frame follows id");
    CHECK(zmq_msg_recv(body, sock, 0) >= 0, "zmq_msg_recv body");
    return 0;
}

/* Receives, stores durably, acks, until nbatches are acked. Each turn takes
 * one batch, plus (group commit) whatever else of the window is already
 * waiting, stores them in ONE synced transaction, then acks them all. */
static void
receive_loop(struct bench *bn, void *sock, MDB_env *env, size_t nbatches)
{
    zmq_msg_t ids[MAX_WINDOW], bodies[MAX_WINDOW];
    MDB_dbi dbi;
    MDB_txn *txn;
    uint64_t seq = 0;

    MDB_CHECK(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
    MDB_CHECK(mdb_dbi_open(txn, NULL, 0, &dbi), "mdb_dbi_open");
    MDB_CHECK(mdb_txn_commit(txn), "mdb_txn_commit");
    while (seq < nbatches) {
        size_t k = 0;

        recv_batch(sock, &ids[k++], &bodies[0], 0);
        while (bn->group && k < bn->window && seq + k < nbatches &&
               recv_batch(sock, &ids[k], &bodies[k], ZMQ_DONTWAIT) == 0)
            k++;
        MDB_CHECK(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
        for (size_t j = 0; j < k; j++) {
            if (bn->keyed)
                store_keyed(txn, dbi, &bodies[j]);
            else
                store_append(txn, dbi, seq + j, &bodies[j]);
        }
        MDB_CHECK(mdb_txn_commit(txn), "mdb_txn_commit"); /* synced */
        bn->commits++;
        for (size_t j = 0; j < k; j++, seq++) {
            CHECK(zmq_msg_send(&ids[j], sock, ZMQ_SNDMORE) >= 0, "send id");
            CHECK(zmq_send(sock, &seq, sizeof(seq), 0) == sizeof(seq),
                  "send ack");
            zmq_msg_close(&bodies[j]);
        }
    }
}

static void
remove_store(const char *dir)
{
    char path[4200];

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

/* One measured run: fresh LMDB store, ROUTER on a kernel-chosen port, the
 * sender thread, the receive loop; fills bn->seconds and bn->bytes. */
static void
run(struct bench *bn)
{
    char dir[4096];
    MDB_env *env;
    void *sock;
    size_t len = sizeof(bn->endpoint);
    pthread_t tid;

    snprintf(dir, sizeof(dir), "%s/bare-%s-XXXXXX", bn->dir, bn->mode);
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    MDB_CHECK(mdb_env_create(&env), "mdb_env_create");
    MDB_CHECK(mdb_env_set_mapsize(env, (size_t)16 << 30), "mdb_set_mapsize");
    MDB_CHECK(mdb_env_open(env, dir, 0, 0600), "mdb_env_open"); /* durable */
    sock = zmq_socket(bn->zctx, ZMQ_ROUTER);
    CHECK(sock != NULL, "zmq_socket");
    CHECK(zmq_bind(sock, "tcp://127.0.0.1:*") == 0, "zmq_bind");
    CHECK(zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bn->endpoint, &len) == 0,
          "ZMQ_LAST_ENDPOINT");
    CHECK(pthread_create(&tid, NULL, sender_main, bn) == 0, "pthread_create");
    receive_loop(bn, sock, env, (bn->n + bn->batch - 1) / bn->batch);
    pthread_join(tid, NULL);
    zmq_close(sock);
    mdb_env_close(env);
    remove_store(dir);
}

static void
usage(void)
{
    fprintf(stderr, "usage: bare_pipeline [-n RECORDS] [-b BATCH] [-w WINDOW] "
                    "[-m VARIANT,...] [-d DIR]\n"
                    "variants: append keyed append-group keyed-group\n");
    exit(2);
}

static size_t
parse_size(const char *s)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0)
        usage();
    return (size_t)v;
}

/* Runs one variant named "append", "keyed", "append-group" or "keyed-group"
 * and prints its row. */
static void
run_variant(struct bench *bn, const char *name)
{
    size_t nbatches = (bn->n + bn->batch - 1) / bn->batch;

    if (strcmp(name, "append") != 0 && strcmp(name, "keyed") != 0 &&
        strcmp(name, "append-group") != 0 && strcmp(name, "keyed-group") != 0)
        usage();
    bn->mode = name;
    bn->keyed = strncmp(name, "keyed", 5) == 0;
    bn->group = strstr(name, "-group") != NULL;
    bn->bytes = 0;
    bn->commits = 0;
    run(bn);
    printf("%-13s %9zu %8zu %8zu %9.3f %9.0f %7.1f\n", name, bn->n, nbatches,
           bn->commits, bn->seconds, (double)bn->n / bn->seconds,
           (double)bn->bytes / bn->seconds / 1e6);
    printf("RESULT bare_%s %zu %.3f\n", name, bn->n, bn->seconds);
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    struct bench bn = {.n = 1000000, .batch = 1000, .window = 8, .dir = "/tmp"};
    char modes[256] = "append,keyed,append-group";
    int opt;

    /* A batch is ~150 KiB, just over glibc's initial 128 KiB mmap threshold,
     * so every batch buffer (ours, libzmq's receive buffer) would be a fresh
     * mmap + page faults + munmap until glibc's dynamic threshold catches up.
     * Pin the threshold well above a batch so they come from the heap and are
     * reused, and keep up to 64 MiB of freed heap instead of trimming it back
     * to the kernel after every batch (the working set is window x batch). */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    while ((opt = getopt(argc, argv, "n:b:w:m:d:")) != -1) {
        switch (opt) {
        case 'n':
            bn.n = parse_size(optarg);
            break;
        case 'b':
            bn.batch = parse_size(optarg);
            break;
        case 'w':
            bn.window = parse_size(optarg);
            break;
        case 'm':
            snprintf(modes, sizeof(modes), "%s", optarg);
            break;
        case 'd':
            bn.dir = optarg;
            break;
        default:
            usage();
        }
    }
    if (bn.batch > MAX_BATCH || bn.window > MAX_WINDOW)
        usage();
    bn.zctx = zmq_ctx_new();
    CHECK(bn.zctx != NULL, "zmq_ctx_new");
    printf("%-13s %9s %8s %8s %9s %9s %7s\n", "variant", "records", "batches",
           "commits", "seconds", "rec/s", "MB/s");
    for (char *m = modes, *comma; m != NULL; m = comma) {
        comma = strchr(m, ',');
        if (comma != NULL)
            *comma++ = '\0';
        run_variant(&bn, m);
    }
    zmq_ctx_term(bn.zctx);
    return 0;
}

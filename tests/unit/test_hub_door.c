/*
 * test_hub_door.c - unit tests for repl/hub/hub_door.c: ZAP requests
 * parsed (RFC 27) and malformed ones refused; the abuse table: strikes
 * within a window start a back-off of the configured length, only for
 * protocol-breaking reasons, per peer; refusal logs once a minute per
 * (key, address); and the ZAP handler answering a real CURVE handshake
 * through libzmq: a known key in, an unknown key out and counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <string.h>

#include <cmocka.h>
#include <zmq.h>

#include "hub_door.h"
#include "obs_err.h"

static bool
allow_only(void *arg, const zap_request_t *req, door_reason_t *why)
{
    if (strcmp(req->key, (const char *)arg) == 0)
        return true;
    *why = DOOR_UNKNOWN_KEY;
    return false;
}

static void
test_zap_parse(void **state)
{
    (void)state;
    uint8_t key[32];
    memset(key, 7, sizeof(key));
    const uint8_t *f[7] = {(const uint8_t *)"1.0",
                           (const uint8_t *)"42",
                           (const uint8_t *)"",
                           (const uint8_t *)"10.0.0.9",
                           (const uint8_t *)"",
                           (const uint8_t *)"CURVE",
                           key};
    size_t l[7] = {3, 2, 0, 8, 0, 5, 32};
    zap_request_t r;
    assert_int_equal(hub_door_zap_parse(f, l, 7, &r), OBS_OK);
    assert_string_equal(r.request_id, "42");
    assert_string_equal(r.address, "10.0.0.9");
    assert_string_equal(r.mechanism, "CURVE");
    assert_int_equal(strlen(r.key), 40);
    l[6] = 31; /* a short key */
    assert_int_equal(hub_door_zap_parse(f, l, 7, &r), OBS_EPROTO);
    l[6] = 32;
    assert_int_equal(hub_door_zap_parse(f, l, 6, &r), OBS_EPROTO);
    f[0] = (const uint8_t *)"2.0";
    assert_int_equal(hub_door_zap_parse(f, l, 7, &r), OBS_EPROTO);
    f[0] = (const uint8_t *)"1.0";
    f[5] = (const uint8_t *)"NULL";
    l[5] = 4;
    assert_int_equal(hub_door_zap_parse(f, l, 6, &r), OBS_OK);
    assert_string_equal(r.key, "");
    l[3] = 500; /* an address longer than any */
    assert_int_equal(hub_door_zap_parse(f, l, 6, &r), OBS_EPROTO);
}

static void
test_abuse(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    door_opts_t o = {.curve = true,
                     .max_pending = 10,
                     .handshake_ms = 1000,
                     .abuse_threshold = 3,
                     .abuse_backoff_ms = 5000};
    hub_door_t *d = NULL;
    char err[200];
    assert_int_equal(
        hub_door_open(ctx, &o, allow_only, (void *)"", &d, err, sizeof(err)),
        OBS_OK);
    uint64_t t = 1000000;
    /* not strikes: a clock-free reason, an unknown key */
    for (int i = 0; i < 10; i++)
        assert_false(hub_door_refused(d, "K1", DOOR_UNKNOWN_KEY, t));
    assert_int_equal(hub_door_backoff_left(d, "K1", t), 0);
    assert_false(hub_door_refused(d, "K1", DOOR_MALFORMED, t));
    assert_false(hub_door_refused(d, "K1", DOOR_VERSION, t + 1));
    assert_int_equal(hub_door_backoff_left(d, "K2", t), 0);
    assert_true(hub_door_refused(d, "K1", DOOR_TOO_BIG, t + 2));
    assert_int_equal(hub_door_backoff_left(d, "K1", t + 2), 5000);
    assert_int_equal(hub_door_backoff_left(d, "K2", t + 2), 0);
    assert_int_equal(hub_door_backoff_left(d, "K1", t + 5002), 0);
    /* strikes a minute apart do not add up */
    assert_false(hub_door_refused(d, "K2", DOOR_MALFORMED, t));
    assert_false(hub_door_refused(d, "K2", DOOR_MALFORMED, t + 30000));
    assert_false(hub_door_refused(d, "K2", DOOR_MALFORMED, t + 100000));
    assert_false(hub_door_refused(d, "K2", DOOR_MALFORMED, t + 100001));
    assert_true(hub_door_refused(d, "K2", DOOR_MALFORMED, t + 100002));
    door_counts_t c;
    hub_door_counts(d, &c);
    assert_int_equal(c.refused[DOOR_UNKNOWN_KEY], 10);
    assert_int_equal(c.refused[DOOR_MALFORMED], 6);
    assert_int_equal(c.backoffs, 2);
    /* logs: once a minute per (key, address) */
    assert_true(hub_door_log_due(d, "K1", "1.2.3.4", t));
    assert_false(hub_door_log_due(d, "K1", "1.2.3.4", t + 1000));
    assert_true(hub_door_log_due(d, "K1", "1.2.3.5", t + 1000));
    assert_true(hub_door_log_due(d, "K1", "1.2.3.4", t + 61000));
    /* many peers: the table forgets the least recent, never a back-off */
    char who[32];
    for (int i = 0; i < 5000; i++) {
        (void)snprintf(who, sizeof(who), "P%d", i);
        (void)hub_door_refused(d, who, DOOR_MALFORMED, t + 100003);
    }
    assert_int_not_equal(hub_door_backoff_left(d, "K2", t + 100003), 0);
    hub_door_close(&d);
    assert_null(d);
    zmq_ctx_term(ctx);
}

/* A CURVE client with key pair (pub, sec) tries the server; true when a
 * message goes through. */
static bool
client_gets_in(void *ctx, const char *endpoint, const char *server_pub,
               const char *pub, const char *sec, void *server, hub_door_t *d)
{
    void *c = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(c, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(c, ZMQ_CURVE_SERVERKEY, server_pub, 40);
    zmq_setsockopt(c, ZMQ_CURVE_PUBLICKEY, pub, 40);
    zmq_setsockopt(c, ZMQ_CURVE_SECRETKEY, sec, 40);
    assert_int_equal(zmq_connect(c, endpoint), 0);
    zmq_send(c, "hi", 2, ZMQ_DONTWAIT);
    bool got = false;
    for (int i = 0; i < 100 && !got; i++) { /* up to 2 s */
        zmq_pollitem_t it[2] = {{hub_door_zap_socket(d), 0, ZMQ_POLLIN, 0},
                                {server, 0, ZMQ_POLLIN, 0}};
        zmq_poll(it, 2, 20);
        if (it[0].revents)
            hub_door_on_zap(d, 1);
        if (it[1].revents) {
            char buf[64];
            zmq_recv(server, buf, sizeof(buf), 0); /* routing id */
            int n = zmq_recv(server, buf, sizeof(buf), 0);
            got = n == 2 && memcmp(buf, "hi", 2) == 0;
        }
    }
    zmq_close(c);
    return got;
}

static void
test_zap_handshake(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    char spub[41], ssec[41], apub[41], asec[41], bpub[41], bsec[41];
    zmq_curve_keypair(spub, ssec);
    zmq_curve_keypair(apub, asec);
    zmq_curve_keypair(bpub, bsec);
    door_opts_t o = {.curve = true,
                     .max_pending = 10,
                     .handshake_ms = 1000,
                     .abuse_threshold = 3,
                     .abuse_backoff_ms = 5000};
    hub_door_t *d = NULL;
    char err[200];
    assert_int_equal(
        hub_door_open(ctx, &o, allow_only, apub, &d, err, sizeof(err)), OBS_OK);
    void *server = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1, linger = 0;
    zmq_setsockopt(server, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(server, ZMQ_CURVE_SERVER, &one, sizeof(one));
    zmq_setsockopt(server, ZMQ_CURVE_SECRETKEY, ssec, 40);
    assert_int_equal(hub_door_watch(d, ctx, server), OBS_OK);
    assert_int_equal(zmq_bind(server, "tcp://127.0.0.1:*"), 0);
    char ep[128];
    size_t len = sizeof(ep);
    zmq_getsockopt(server, ZMQ_LAST_ENDPOINT, ep, &len);
    assert_false(client_gets_in(ctx, ep, spub, bpub, bsec, server, d));
    assert_true(client_gets_in(ctx, ep, spub, apub, asec, server, d));
    door_counts_t c;
    hub_door_counts(d, &c);
    assert_true(c.refused[DOOR_UNKNOWN_KEY] >= 1);
    zmq_close(server);
    hub_door_close(&d);
    zmq_ctx_term(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zap_parse),
        cmocka_unit_test(test_abuse),
        cmocka_unit_test(test_zap_handshake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

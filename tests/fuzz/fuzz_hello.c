/*
 * fuzz_hello.c - what a stranger controls before it is a session at the
 * hub: the ZAP request libzmq hands the door (hub_door_zap_parse; frames
 * cut from the input at each 0xFF 0x00 pair), then its first message
 * (msg_decode under the replication port's limit) and, for a Hello, the
 * ids the hub checks. Never crashes; a parsed request has a NUL-terminated
 * mechanism and address, and a CURVE key of 40 Z85 characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "curve_cert.h"
#include "hub_door.h"
#include "msg.h"
#include "obs.h"
#include "obs_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FRAMES 9

static void
zap(const uint8_t *data, size_t size)
{
    const uint8_t *f[FRAMES];
    size_t l[FRAMES], n = 0, start = 0;
    for (size_t i = 0; i + 1 < size && n < FRAMES - 1; i++)
        if (data[i] == 0xFF && data[i + 1] == 0x00) {
            f[n] = data + start;
            l[n++] = i - start;
            start = i + 2;
            i++;
        }
    f[n] = data + start;
    l[n++] = size - start;
    zap_request_t r;
    if (hub_door_zap_parse(f, l, n, &r) != OBS_OK)
        return;
    if (strlen(r.mechanism) >= sizeof(r.mechanism) ||
        strlen(r.address) >= sizeof(r.address) ||
        (strcmp(r.mechanism, "CURVE") == 0 && !curve_key_txt_valid(r.key)))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zap(data, size);
    msg_t *m = NULL;
    if (msg_decode(data, size, 4u << 20, &m) != OBS_OK)
        return 0;
    if (m->type == MSG_HELLO) {
        const msg_hello_t *h = &m->u.hello;
        (void)obs_id_valid(h->node_id);
        (void)obs_id_valid(h->provider);
        (void)obs_hex_valid(h->node_epoch, 32);
        (void)obs_hex_valid(h->structure_hash, 64);
        for (size_t i = 0; i < h->subscription.areas.n; i++)
            if (h->subscription.areas.items[i] == NULL)
                abort();
    }
    msg_destroy(&m);
    return 0;
}

/*
 * fuzz_allowlist.c - the certificate reader the hub's allow-list and both
 * daemons' key files go through (curve_cert_parse, on CZMQ's zconfig) on
 * arbitrary text: never crashes; what it accepts has a valid Z85 public
 * key, a secret key that is valid or empty, ids in the grammar, and parses
 * again to the same certificate when written back as zcert writes it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curve_cert.h"
#include "obs.h"
#include "obs_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    curve_cert_t c;
    char err[512];
    if (curve_cert_parse((const char *)data, size, "fuzz", &c, err,
                         sizeof(err)) != OBS_OK)
        return 0;
    if (!curve_key_txt_valid(c.public_txt) ||
        (c.secret_txt[0] && !curve_key_txt_valid(c.secret_txt)) ||
        (c.node_id[0] && !obs_id_valid(c.node_id)) ||
        (c.provider[0] && !obs_id_valid(c.provider)))
        abort();
    char text[1024];
    int n = snprintf(text, sizeof(text), "metadata\n");
    if (c.node_id[0])
        n += snprintf(text + n, sizeof(text) - (size_t)n,
                      "    node_id = \"%s\"\n", c.node_id);
    if (c.provider[0])
        n += snprintf(text + n, sizeof(text) - (size_t)n,
                      "    provider = \"%s\"\n", c.provider);
    n += snprintf(text + n, sizeof(text) - (size_t)n,
                  "curve\n    public-key = \"%s\"\n", c.public_txt);
    if (c.secret_txt[0])
        n += snprintf(text + n, sizeof(text) - (size_t)n,
                      "    secret-key = \"%s\"\n", c.secret_txt);
    curve_cert_t again;
    if (curve_cert_parse(text, (size_t)n, "again", &again, err, sizeof(err)) !=
            OBS_OK ||
        strcmp(again.public_txt, c.public_txt) != 0 ||
        strcmp(again.secret_txt, c.secret_txt) != 0 ||
        strcmp(again.node_id, c.node_id) != 0 ||
        strcmp(again.provider, c.provider) != 0)
        abort();
    return 0;
}

/*
 * test_cfg.c - the configuration parser: defaults, every kind of bad line
 * named by file:line:key, and the sample in deploy/conf/ kept in step with
 * the option table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfg.h"
#include "obs_err.h"

static int
parse(cfg_t *cfg, const char *text, char *err, size_t cap)
{
    cfg_init(cfg);
    return cfg_parse(cfg, text, strlen(text), "t.conf", err, cap);
}

static void
test_cfg_minimal_gets_defaults(void **state)
{
    (void)state;
    cfg_t c;
    char err[256] = "";
    int rc = parse(&c, "role = node\nnode_id = COL\n", err, sizeof(err));
    assert_int_equal(rc, OBS_OK);
    assert_string_equal(c.provider, "COL");
    assert_string_equal(c.data_dir, "/var/lib/obsync");
    assert_string_equal(c.api_socket, "/var/lib/obsync/api.sock");
    assert_int_equal(c.map_size, 1024ull * 1024 * 1024);
    assert_int_equal(c.api_mode, 0600);
    assert_false(c.no_sync);
    cfg_fini(&c);
}

static void
test_cfg_sizes_modes_comments(void **state)
{
    (void)state;
    cfg_t c;
    char err[256] = "";
    int rc = parse(&c,
                   "# comment\n  role = hub  # trailing\nnode_id = HUB-1\n"
                   "security = plaintext\n"
                   "map_size = 2048K\nmap_max = 2G\napi_mode = 0660\n"
                   "no_sync = yes\n",
                   err, sizeof(err));
    assert_int_equal(rc, OBS_OK);
    assert_int_equal(c.role, CFG_ROLE_HUB);
    assert_int_equal(c.map_size, 2048ull * 1024);
    assert_int_equal(c.map_max, 2ull * 1024 * 1024 * 1024);
    assert_int_equal(c.api_mode, 0660);
    assert_true(c.no_sync);
    cfg_fini(&c);
}

typedef struct {
    const char *text;
    const char *expect; /* substring of the error */
} bad_case_t;

static const bad_case_t BAD[] = {
    {"role = node\nnode_id = COL\nfoo = 1\n", "t.conf:3: foo: unknown key"},
    {"role = relay\nnode_id = COL\n", "t.conf:1: role: 'relay' must be"},
    {"role = node\n", "node_id: required key is missing"},
    {"role = node\nnode_id = C O L\n", "t.conf:2: node_id"},
    {"role = node\nnode_id = COL\nmap_size = 12X\n", "t.conf:3: map_size"},
    {"role = node\nnode_id = COL\nnode_id = MEX\n",
     "t.conf:3: node_id: set twice"},
    {"role = node\nnode_id = COL\njust words\n",
     "t.conf:3: expected 'key = value'"},
    {"role = node\nnode_id = COL\nmap_size = 2G\nmap_max = 1G\n", "map_max"},
    {"role = node\nnode_id = COL\napi_mode = 999\n", "t.conf:3: api_mode"},
    {"role = node\nnode_id = COL\nlog_level = loud\n", "t.conf:3: log_level"},
    {"role = node\nnode_id = COL\nmax_import_rows = 0\n", "out of range"},
    {"role = hub\nnode_id = HUB\n", "curve_secret_key: required with "
                                    "security = curve"},
    {"role = hub\nnode_id = HUB\ncurve_secret_key = /k\n",
     "curve_allow_dir: required on a hub"},
    {"role = node\nnode_id = COL\nhub_endpoint = tcp://h:1\n"
     "curve_secret_key = /k\n",
     "hub_public_key: required on a node"},
    {"role = node\nnode_id = COL\nhub_endpoint = tcp://h:1\n"
     "security = tls\n",
     "security: 'tls' is not a mode"},
    {"role = node\nnode_id = COL\nhub_endpoint = tcp://h:1\n"
     "security = plaintext\ncurve_secret_key = /k\n",
     "curve_secret_key: set, but security = plaintext"},
    {"role = hub\nnode_id = HUB\ncurve_secret_key = /k\n"
     "curve_allow_dir = /d\nhub_public_key = /h\n",
     "hub_public_key: a node's key"},
    {"role = node\nnode_id = COL\napi_mode = 0666\n",
     "api_mode: 0666 opens the API socket"},
    {"role = node\nnode_id = COL\nhub_endpoint = ipc:///x\n"
     "security = plaintext\n",
     "hub_endpoint: must be tcp://"},
    {"role = hub\nnode_id = HUB\nsecurity = plaintext\n"
     "hub_endpoint = tcp://h:1\n",
     "hub_endpoint: a hub has no hub"},
};

static void
test_cfg_bad_lines_are_named(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        cfg_t c;
        char err[256] = "";
        int rc = parse(&c, BAD[i].text, err, sizeof(err));
        if (rc != OBS_ECONFIG || strstr(err, BAD[i].expect) == NULL)
            fail_msg("case %zu: rc=%d err='%s', expected '%s'", i, rc, err,
                     BAD[i].expect);
        cfg_fini(&c);
    }
}

static void
test_cfg_binary_is_refused(void **state)
{
    (void)state;
    cfg_t c;
    char err[256] = "";
    const char bin[] = "role = node\nnode_id\0 = COL\n";
    cfg_init(&c);
    int rc = cfg_parse(&c, bin, sizeof(bin) - 1, "b.conf", err, sizeof(err));
    assert_int_equal(rc, OBS_ECONFIG);
    assert_non_null(strstr(err, "b.conf:2: binary"));
    cfg_fini(&c);
}

static void
test_cfg_missing_file(void **state)
{
    (void)state;
    cfg_t c;
    char err[256] = "";
    cfg_init(&c);
    assert_int_equal(cfg_load(&c, "/nonexistent/x.conf", err, sizeof(err)),
                     OBS_ECONFIG);
    assert_non_null(strstr(err, "/nonexistent/x.conf: cannot open"));
    cfg_fini(&c);
}

/* The sample must parse and mention every option of the table, so it cannot
 * go stale when an option is added. */
static void
test_cfg_sample_parses_and_covers_every_option(void **state)
{
    (void)state;
    const char *files[] = {"deploy/conf/obsync-node.conf",
                           "deploy/conf/obsync-hub.conf"};
    for (size_t f = 0; f < 2; f++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", OBSYNC_SOURCE_DIR, files[f]);
        FILE *fp = fopen(path, "rb");
        if (fp == NULL)
            continue; /* the hub sample lands with the hub role */
        static char text[65536];
        size_t n = fread(text, 1, sizeof(text) - 1, fp);
        fclose(fp);
        text[n] = '\0';
        cfg_t c;
        char err[256] = "";
        cfg_init(&c);
        int rc = cfg_load(&c, path, err, sizeof(err));
        if (rc != OBS_OK)
            fail_msg("%s: %s", path, err);
        char *dump = NULL;
        size_t dlen = 0;
        FILE *mem = open_memstream(&dump, &dlen);
        cfg_print(&c, mem);
        fclose(mem);
        char *save = NULL;
        for (char *l = strtok_r(dump, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save)) {
            char key[64];
            if (sscanf(l, "%63s", key) == 1 && strstr(text, key) == NULL)
                fail_msg("%s does not document '%s'", path, key);
        }
        free(dump);
        cfg_fini(&c);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cfg_minimal_gets_defaults),
        cmocka_unit_test(test_cfg_sizes_modes_comments),
        cmocka_unit_test(test_cfg_bad_lines_are_named),
        cmocka_unit_test(test_cfg_binary_is_refused),
        cmocka_unit_test(test_cfg_missing_file),
        cmocka_unit_test(test_cfg_sample_parses_and_covers_every_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

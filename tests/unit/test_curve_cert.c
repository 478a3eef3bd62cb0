/*
 * test_curve_cert.c - unit tests for repl/curve_cert.c and
 * repl/hub/hub_allow.c: certificate text parsed and refused with what and
 * where (no key, a key that is not Z85, an id out of grammar, a NUL, too
 * big); files: a secret key readable by others refused, a secret given
 * where a public one belongs refused; the allow-list directory read whole
 * or refused whole (a `_secret` file, a duplicated key, no node_id),
 * dotfiles and editor backups skipped, and its signature changing when a
 * file is added, edited or removed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "curve_cert.h"
#include "hub_allow.h"
#include "obs_err.h"

typedef struct {
    char pub[41], sec[41];
} pair_t;

static pair_t
keypair(void)
{
    pair_t p;
    assert_int_equal(zmq_curve_keypair(p.pub, p.sec), 0);
    return p;
}

/* Certificate text as zcert writes it (metadata NULL: none). */
static void
cert_text(char *buf, size_t cap, const pair_t *p, bool secret,
          const char *node_id, const char *provider)
{
    int n = snprintf(buf, cap,
                     "#   ZeroMQ CURVE Public Certificate\n"
                     "metadata\n");
    if (node_id)
        n += snprintf(buf + n, cap - (size_t)n, "    node_id = \"%s\"\n",
                      node_id);
    if (provider)
        n += snprintf(buf + n, cap - (size_t)n, "    provider = \"%s\"\n",
                      provider);
    n += snprintf(buf + n, cap - (size_t)n, "curve\n    public-key = \"%s\"\n",
                  p->pub);
    if (secret)
        (void)snprintf(buf + n, cap - (size_t)n, "    secret-key = \"%s\"\n",
                       p->sec);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void
test_parse_good(void **state)
{
    (void)state;
    pair_t p = keypair();
    char text[1024], err[256] = "";
    cert_text(text, sizeof(text), &p, true, "COL", "COL_DNE");
    curve_cert_t c;
    assert_int_equal(
        curve_cert_parse(text, strlen(text), "t", &c, err, sizeof(err)),
        OBS_OK);
    assert_string_equal(c.public_txt, p.pub);
    assert_string_equal(c.secret_txt, p.sec);
    assert_string_equal(c.node_id, "COL");
    assert_string_equal(c.provider, "COL_DNE");
    curve_cert_wipe(&c);
    assert_string_equal(c.secret_txt, "");
    char fp[CURVE_FINGERPRINT];
    curve_fingerprint(p.pub, fp);
    assert_int_equal(strlen(fp), 8);
    assert_memory_equal(fp, p.pub, 8);
}

static void
expect_bad(const char *text, size_t len, int want, const char *words)
{
    curve_cert_t c;
    char err[256] = "";
    assert_int_equal(curve_cert_parse(text, len, "f.key", &c, err, sizeof(err)),
                     want);
    if (strstr(err, words) == NULL || strncmp(err, "f.key: ", 7) != 0)
        fail_msg("error \"%s\" lacks \"%s\"", err, words);
}

static void
test_parse_bad(void **state)
{
    (void)state;
    pair_t p = keypair();
    char text[1024];
    expect_bad("", 0, OBS_EINVAL, "curve/public-key: missing");
    expect_bad("metadata\n    node_id = \"COL\"\n", 29, OBS_EINVAL,
               "curve/public-key: missing");
    const char *z = "curve\n    public-key = \"0123456789012345678901234567890"
                    "12345678~\"\n";
    expect_bad(z, strlen(z), OBS_EINVAL, "not a key");
    const char *shortk = "curve\n    public-key = \"abc\"\n";
    expect_bad(shortk, strlen(shortk), OBS_EINVAL, "not a key");
    cert_text(text, sizeof(text), &p, false, "C O L", NULL);
    expect_bad(text, strlen(text), OBS_EINVAL, "metadata/node_id");
    cert_text(text, sizeof(text), &p, false, "COL", "x/y");
    expect_bad(text, strlen(text), OBS_EINVAL, "metadata/provider");
    cert_text(text, sizeof(text), &p, false, "COL", NULL);
    size_t n = strlen(text);
    text[5] = '\0';
    expect_bad(text, n, OBS_EINVAL, "NUL");
    char *big = calloc(1, CURVE_CERT_MAX + 2);
    assert_non_null(big);
    memset(big, '#', CURVE_CERT_MAX + 1);
    expect_bad(big, CURVE_CERT_MAX + 1, OBS_ETOOBIG, "more than");
    free(big);
    /* a secret key that is not Z85 is refused without echoing it */
    (void)snprintf(text, sizeof(text),
                   "curve\n    public-key = \"%s\"\n    secret-key = "
                   "\"SECRET~not~z85~SECRET~not~z85~SECRET~no\"\n",
                   p.pub);
    curve_cert_t c;
    char err[256] = "";
    assert_int_equal(
        curve_cert_parse(text, strlen(text), "f", &c, err, sizeof(err)),
        OBS_EINVAL);
    assert_null(strstr(err, "SECRET"));
}

static char dir_[64];

static int
setup_dir(void **state)
{
    (void)state;
    (void)snprintf(dir_, sizeof(dir_), "/tmp/obcert-XXXXXX");
    return mkdtemp(dir_) ? 0 : -1;
}

static int
teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    (void)snprintf(cmd, sizeof(cmd), "rm -rf %s", dir_);
    return system(cmd) == 0 ? 0 : -1;
}

static void
test_load_files(void **state)
{
    (void)state;
    pair_t p = keypair();
    char text[1024], path[128], err[256] = "";
    curve_cert_t c;
    cert_text(text, sizeof(text), &p, true, "COL", NULL);
    (void)snprintf(path, sizeof(path), "%s/col.key_secret", dir_);
    write_file(path, text, 0640);
    assert_int_equal(curve_cert_load(path, true, &c, err, sizeof(err)),
                     OBS_EINVAL);
    assert_non_null(strstr(err, "mode 0640"));
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(curve_cert_load(path, true, &c, err, sizeof(err)), OBS_OK);
    assert_string_equal(c.secret_txt, p.sec);
    /* the secret where a public key belongs */
    assert_int_equal(curve_cert_load(path, false, &c, err, sizeof(err)),
                     OBS_EINVAL);
    assert_non_null(strstr(err, "only the public half"));
    assert_string_equal(c.secret_txt, "");
    /* a public file where the secret belongs */
    cert_text(text, sizeof(text), &p, false, "COL", NULL);
    (void)snprintf(path, sizeof(path), "%s/col.key", dir_);
    write_file(path, text, 0600);
    assert_int_equal(curve_cert_load(path, true, &c, err, sizeof(err)),
                     OBS_EINVAL);
    assert_non_null(strstr(err, "no curve/secret-key"));
    (void)snprintf(path, sizeof(path), "%s/none", dir_);
    assert_int_equal(curve_cert_load(path, false, &c, err, sizeof(err)),
                     OBS_ESYS);
    assert_non_null(strstr(err, path));
    assert_int_equal(curve_cert_load(dir_, false, &c, err, sizeof(err)),
                     OBS_ESYS);
    assert_non_null(strstr(err, "not a regular file"));
}

static void
put_cert(const char *dir, const char *name, const pair_t *p,
         const char *node_id, const char *provider)
{
    char text[1024], path[256];
    cert_text(text, sizeof(text), p, false, node_id, provider);
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    write_file(path, text, 0644);
}

static void
test_allow_dir(void **state)
{
    (void)state;
    char dir[128], err[256] = "", path[256];
    (void)snprintf(dir, sizeof(dir), "%s/allow", dir_);
    assert_int_equal(mkdir(dir, 0700), 0);
    pair_t col = keypair(), col2 = keypair(), mex = keypair();
    put_cert(dir, "COL.key", &col, "COL", NULL);
    put_cert(dir, "COL-new.key", &col2, "COL", NULL);
    put_cert(dir, "MEX.key", &mex, "MEX", "MEX_SESNSP");
    put_cert(dir, ".hidden", &mex, "X", NULL);
    put_cert(dir, "MEX.key~", &mex, "X", NULL);
    hub_allow_t *a = NULL;
    assert_int_equal(hub_allow_load(dir, &a, err, sizeof(err)), OBS_OK);
    assert_int_equal(a->n, 3);
    const allow_entry_t *e = hub_allow_find(a, mex.pub);
    assert_non_null(e);
    assert_string_equal(e->node_id, "MEX");
    assert_string_equal(e->provider, "MEX_SESNSP");
    assert_string_equal(e->file, "MEX.key");
    e = hub_allow_find(a, col2.pub); /* two keys for COL: a rotation */
    assert_non_null(e);
    assert_string_equal(e->provider, "COL");
    pair_t stranger = keypair();
    assert_null(hub_allow_find(a, stranger.pub));
    assert_null(hub_allow_find(a, ""));
    uint64_t sig = a->signature;
    assert_int_not_equal(sig, 0);
    assert_int_equal(hub_allow_dir_signature(dir), sig);
    hub_allow_free(&a);
    assert_null(a);

    /* the same key twice: refused, naming both files */
    put_cert(dir, "COL-copy.key", &col, "COL", NULL);
    assert_int_not_equal(hub_allow_dir_signature(dir), sig);
    assert_int_equal(hub_allow_load(dir, &a, err, sizeof(err)), OBS_EINVAL);
    assert_null(a);
    assert_non_null(strstr(err, "COL-copy.key"));
    assert_non_null(strstr(err, "same key"));
    (void)snprintf(path, sizeof(path), "%s/COL-copy.key", dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(hub_allow_dir_signature(dir), sig);

    /* a secret file, a certificate without node_id, garbage */
    (void)snprintf(path, sizeof(path), "%s/COL.key_secret", dir);
    write_file(path, "x\n", 0600);
    assert_int_equal(hub_allow_load(dir, &a, err, sizeof(err)), OBS_EINVAL);
    assert_non_null(strstr(err, "COL.key_secret"));
    assert_int_equal(unlink(path), 0);
    (void)snprintf(path, sizeof(path), "%s/HUB.key", dir);
    char text[1024];
    (void)snprintf(text, sizeof(text),
                   "metadata\n    node_id = \"HUB\"\n    role = \"hub\"\n"
                   "curve\n    public-key = \"%s\"\n",
                   stranger.pub);
    write_file(path, text, 0644);
    assert_int_equal(hub_allow_load(dir, &a, err, sizeof(err)), OBS_EINVAL);
    assert_non_null(strstr(err, "HUB.key: a hub's certificate"));
    assert_int_equal(unlink(path), 0);
    put_cert(dir, "anon.key", &stranger, NULL, NULL);
    assert_int_equal(hub_allow_load(dir, &a, err, sizeof(err)), OBS_EINVAL);
    assert_non_null(strstr(err, "anon.key: metadata/node_id: missing"));
    (void)snprintf(path, sizeof(path), "%s/anon.key", dir);
    write_file(path, "\x01\x02 not a certificate\n", 0644);
    assert_int_equal(hub_allow_load(dir, &a, err, sizeof(err)), OBS_EINVAL);
    assert_non_null(strstr(err, "anon.key"));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(hub_allow_load(dir, &a, err, sizeof(err)), OBS_OK);
    hub_allow_free(&a);
    (void)snprintf(path, sizeof(path), "%s/missing", dir_);
    assert_int_equal(hub_allow_load(path, &a, err, sizeof(err)), OBS_ESYS);
    assert_non_null(strstr(err, "curve_allow_dir"));
    assert_int_equal(hub_allow_dir_signature(path), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test_setup_teardown(test_load_files, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_allow_dir, setup_dir,
                                        teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

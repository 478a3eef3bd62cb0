/*
 * cmd_keygen.c - `obsync keygen NAME`: a CURVE key pair in ZeroMQ's
 * certificate format (ZPL), written with CZMQ's zcert. DIR/NAME.key is the
 * public half (mode 0644): a node's goes into the hub's curve_allow_dir, the
 * hub's (--hub) to every node as hub_public_key. DIR/NAME.key_secret is the
 * secret half (mode 0600): it stays where the daemon runs, as its
 * curve_secret_key. Metadata: node_id = NAME, provider (a node's), role = hub
 * (the hub's), created_by.
 *
 * Only zcert_* functions are called: nothing here starts CZMQ's zsys layer
 * (its signal handlers, its I/O thread). Both halves are written under
 * hidden temporary names made here (O_EXCL, 0600, umask 077), their modes
 * and contents checked, then renamed into place: a failure leaves no half
 * pair, and --force keeps the old pair until the new one is complete. Works
 * without a daemon.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "cli.h"
#include "obs.h"

/* zcert_save appends "_secret" to the name it is given, in a buffer of 256
 * bytes (czmq 4.2 src/zcert.c): a longer path would be cut silently. */
#define ZCERT_PATH_MAX 256
#define SECRET_SUFFIX  "_secret"
#define CERT_READ_MAX  4096 /* a certificate zcert writes is < 1 KiB */
#define KEY_TXT_LEN    40
/* What zcert_new returns when libzmq has no CURVE: 32 zero bytes in Z85 */
#define ZERO_KEY_TXT "0000000000000000000000000000000000000000"

typedef struct {
    const char *name, *provider, *dir;
    bool force, hub;
} keygen_opts_t;

typedef struct {
    char pub[PATH_MAX], sec[PATH_MAX];                     /* final names */
    char tmp_pub[ZCERT_PATH_MAX], tmp_sec[ZCERT_PATH_MAX]; /* hidden */
    bool made; /* temporaries exist */
} keygen_paths_t;

static void
keygen_help(void)
{
    puts("usage: obsync keygen NAME [--provider P] [--dir DIR] [--force]\n"
         "       obsync keygen NAME --hub [--dir DIR] [--force]\n"
         "Writes a CURVE key pair: DIR/NAME.key (public, mode 0644) and\n"
         "DIR/NAME.key_secret (secret, mode 0600). NAME is the node_id of the\n"
         "daemon the key is for (letters, digits, '_' or '-', at most 63);\n"
         "--provider P (default NAME) is the provider that node writes as.\n"
         "A node's NAME.key goes into the hub's curve_allow_dir; its\n"
         "NAME.key_secret is its own curve_secret_key. --hub: the hub's key\n"
         "(role = hub, no provider): its NAME.key goes to every node as its\n"
         "hub_public_key. DIR (default .) must exist. An existing pair is\n"
         "kept unless --force. Prints the two paths and the public key.");
}

/* Options; EXIT_OK or the exit code of a usage error (printed). */
static int
keygen_args(int argc, char **argv, keygen_opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        bool bad = false;
        const char *a = argv[i];
        if (cli_opt_val(argc, argv, &i, "--provider", &o->provider, &bad) ||
            cli_opt_val(argc, argv, &i, "--dir", &o->dir, &bad)) {
            if (bad)
                return EXIT_USAGE;
        } else if (strcmp(a, "--force") == 0) {
            o->force = true;
        } else if (strcmp(a, "--hub") == 0) {
            o->hub = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage("keygen", "unknown option", a);
        } else if (o->name == NULL) {
            o->name = a;
        } else {
            return cli_usage("keygen", "unexpected argument", a);
        }
    }
    if (o->name == NULL)
        return cli_usage("keygen", "NAME is missing", NULL);
    if (o->hub && o->provider != NULL)
        return cli_usage("keygen",
                         "--provider is a node's; a hub's key has "
                         "none",
                         NULL);
    if (o->dir[0] == '\0')
        return cli_usage("keygen", "--dir is empty", NULL);
    return EXIT_OK;
}

static int
bad_id(const char *what, const char *id)
{
    (void)fprintf(stderr,
                  "obsync keygen: %s '%s' is not a valid id: letters, "
                  "digits, '_' or '-', 1 to %d characters (the daemon's "
                  "%s)\n",
                  what, id, OBS_ID_MAX,
                  strcmp(what, "NAME") == 0 ? "node_id" : "provider");
    return EXIT_USAGE;
}

/* The four paths; EXIT_OK or EXIT_USAGE when they do not fit. */
static int
keygen_paths(const keygen_opts_t *o, keygen_paths_t *p)
{
    size_t dl = strlen(o->dir);
    while (dl > 1 && o->dir[dl - 1] == '/')
        dl--; /* "keys/" -> "keys", but "/" stays */
    const char *sep = o->dir[dl - 1] == '/' ? "" : "/";
    int d = (int)(dl > 4096 ? 4096 : dl);
    int n1 = snprintf(p->pub, sizeof(p->pub), "%.*s%s%s.key", d, o->dir, sep,
                      o->name);
    int n2 = snprintf(p->sec, sizeof(p->sec), "%s" SECRET_SUFFIX, p->pub);
    int n3 = snprintf(p->tmp_pub, sizeof(p->tmp_pub), "%.*s%s.%s.key.%ld.tmp",
                      d, o->dir, sep, o->name, (long)getpid());
    int n4 = snprintf(p->tmp_sec, sizeof(p->tmp_sec), "%s" SECRET_SUFFIX,
                      p->tmp_pub);
    if (n1 < 0 || n2 < 0 || n3 < 0 || n4 < 0 || (size_t)n2 >= sizeof(p->sec) ||
        (size_t)n4 >= sizeof(p->tmp_sec)) {
        (void)fprintf(stderr,
                      "obsync keygen: %s/%s.key: path too long (zcert takes "
                      "at most %d characters with its temporary name)\n",
                      o->dir, o->name, ZCERT_PATH_MAX - 1);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int
cannot_write(const char *path, int err)
{
    (void)fprintf(stderr, "obsync: keygen: cannot write %s: %s\n", path,
                  strerror(err ? err : EIO));
    return EXIT_INPUT;
}

/* Without --force an existing half (or anything by its name) stops it. */
static int
keygen_no_clobber(const keygen_paths_t *p)
{
    const char *both[] = {p->pub, p->sec};
    for (size_t i = 0; i < 2; i++) {
        struct stat st;
        if (lstat(both[i], &st) == 0) {
            (void)fprintf(stderr,
                          "obsync keygen: %s already exists; not "
                          "overwritten (--force replaces the key pair)\n",
                          both[i]);
            return EXIT_USAGE;
        }
        if (errno != ENOENT)
            return cannot_write(both[i], errno);
    }
    return EXIT_OK;
}

/* Makes the two temporaries: new regular files of ours, mode 0600. */
static int
keygen_make_tmp(keygen_paths_t *p)
{
    const char *tmp[] = {p->tmp_pub, p->tmp_sec};
    for (size_t i = 0; i < 2; i++) {
        int fd = open(tmp[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
        if (fd < 0) {
            int e = errno;
            if (i == 1)
                (void)unlink(p->tmp_pub);
            return cannot_write(i == 0 ? p->pub : p->sec, e);
        }
        (void)close(fd);
    }
    p->made = true;
    return EXIT_OK;
}

static void
wipe(void *buf, size_t n)
{
    volatile unsigned char *b = buf;
    while (n-- > 0)
        *b++ = 0;
}

/* Reads path (at most cap - 1 bytes, NUL-terminated) and syncs it to disk.
 * 0 or an errno value. */
static int
read_synced(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0)
        return errno;
    size_t n = 0;
    ssize_t k = 0;
    while (n < cap - 1 && (k = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    int e = k < 0 ? errno : 0;
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    (void)close(fd);
    buf[n] = '\0';
    return e;
}

/* The halves as written: modes 0644 / 0600, regular files, each holding the
 * public key, and only the secret one a secret key. EXIT_OK or printed. */
static int
keygen_verify(const keygen_paths_t *p, const char *public_txt)
{
    struct stat sp, ss;
    if (lstat(p->tmp_pub, &sp) != 0)
        return cannot_write(p->pub, errno);
    if (lstat(p->tmp_sec, &ss) != 0)
        return cannot_write(p->sec, errno);
    if (!S_ISREG(ss.st_mode) || (ss.st_mode & 07777) != 0600 ||
        !S_ISREG(sp.st_mode) || (sp.st_mode & 07777) != 0644) {
        (void)fprintf(stderr,
                      "obsync: keygen: %s: mode %04o, %s: mode %04o; "
                      "want 0644 and 0600: nothing written\n",
                      p->pub, (unsigned)(sp.st_mode & 07777), p->sec,
                      (unsigned)(ss.st_mode & 07777));
        return EXIT_INPUT;
    }
    char buf[CERT_READ_MAX];
    char want[KEY_TXT_LEN + 20];
    (void)snprintf(want, sizeof(want), "public-key = \"%s\"", public_txt);
    int e = read_synced(p->tmp_pub, buf, sizeof(buf));
    bool ok = e == 0 && strstr(buf, want) && !strstr(buf, "secret-key");
    if (!ok)
        return cannot_write(p->pub, e);
    e = read_synced(p->tmp_sec, buf, sizeof(buf));
    ok = e == 0 && strstr(buf, want) && strstr(buf, "secret-key = \"");
    wipe(buf, sizeof(buf));
    return ok ? EXIT_OK : cannot_write(p->sec, e);
}

/* Writes the certificate to the temporaries. EXIT_OK or printed. */
static int
keygen_write(const keygen_opts_t *o, const keygen_paths_t *p,
             char public_txt[KEY_TXT_LEN + 1])
{
    zcert_t *cert = zcert_new();
    if (cert == NULL || strcmp(zcert_public_txt(cert), ZERO_KEY_TXT) == 0) {
        zcert_destroy(&cert);
        (void)fprintf(stderr, "obsync: keygen: cannot make a CURVE key pair "
                              "(libzmq built without CURVE?)\n");
        return EXIT_DAEMON;
    }
    (void)snprintf(public_txt, KEY_TXT_LEN + 1, "%s", zcert_public_txt(cert));
    zcert_set_meta(cert, "node_id", "%s", o->name);
    if (o->hub)
        zcert_set_meta(cert, "role", "%s", "hub");
    else
        zcert_set_meta(cert, "provider", "%s", o->provider);
    zcert_set_meta(cert, "created_by", "%s", "obsync keygen");
    errno = 0;
    int rc = zcert_save(cert, p->tmp_pub);
    int e = errno;
    zcert_destroy(&cert);
    if (rc != 0) /* errno of the fopen that failed (both files are ours) */
        return cannot_write(p->pub, e);
    if (chmod(p->tmp_pub, 0644) != 0)
        return cannot_write(p->pub, errno);
    return EXIT_OK;
}

/* Renames the checked temporaries into place, the secret half first (the
 * public half appearing means the pair is complete). */
static int
keygen_install(keygen_paths_t *p, const char *dir)
{
    if (rename(p->tmp_sec, p->sec) != 0)
        return cannot_write(p->sec, errno);
    if (rename(p->tmp_pub, p->pub) != 0) {
        int e = errno;
        (void)unlink(p->sec);
        return cannot_write(p->pub, e);
    }
    p->made = false;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd); /* the renames; best effort */
        (void)close(fd);
    }
    return EXIT_OK;
}

static void
keygen_print(const cli_t *cli, const keygen_opts_t *o, const keygen_paths_t *p,
             const char *public_txt)
{
    if (cli->json) {
        (void)fputs("{\"node_id\":", stdout);
        obsync_json_write_string(stdout, o->name);
        (void)fputs(",\"role\":", stdout);
        obsync_json_write_string(stdout, o->hub ? "hub" : "node");
        (void)fputs(",\"provider\":", stdout);
        obsync_json_write_string(stdout, o->hub ? "" : o->provider);
        (void)fputs(",\"public_file\":", stdout);
        obsync_json_write_string(stdout, p->pub);
        (void)fputs(",\"secret_file\":", stdout);
        obsync_json_write_string(stdout, p->sec);
        (void)fputs(",\"public_key\":", stdout);
        obsync_json_write_string(stdout, public_txt);
        puts("}");
        return;
    }
    printf("public key  %s\n", public_txt);
    if (o->hub)
        printf("public      %s (0644): give it to every node as its "
               "hub_public_key\n"
               "secret      %s (0600): the hub's curve_secret_key; never "
               "copy it elsewhere\n",
               p->pub, p->sec);
    else
        printf("public      %s (0644): copy it into the hub's "
               "curve_allow_dir\n"
               "secret      %s (0600): node %s's curve_secret_key; never "
               "copy it elsewhere\n",
               p->pub, p->sec, o->name);
}

int
cmd_keygen(cli_t *cli, int argc, char **argv)
{
    if (argc > 1 && cli_is_help(argv[1])) {
        keygen_help();
        return EXIT_OK;
    }
    keygen_opts_t o = {.dir = "."};
    int rc = keygen_args(argc, argv, &o);
    if (rc != EXIT_OK)
        return rc;
    if (o.provider == NULL && !o.hub)
        o.provider = o.name;
    if (!obs_id_valid(o.name))
        return bad_id("NAME", o.name);
    if (!o.hub && !obs_id_valid(o.provider))
        return bad_id("--provider", o.provider);
    keygen_paths_t p = {.made = false};
    char public_txt[KEY_TXT_LEN + 1] = "";
    mode_t old = umask(077);
    rc = keygen_paths(&o, &p);
    if (rc == EXIT_OK && !o.force)
        rc = keygen_no_clobber(&p);
    if (rc == EXIT_OK)
        rc = keygen_make_tmp(&p);
    if (rc == EXIT_OK)
        rc = keygen_write(&o, &p, public_txt);
    if (rc == EXIT_OK)
        rc = keygen_verify(&p, public_txt);
    if (rc == EXIT_OK)
        rc = keygen_install(&p, o.dir);
    if (p.made) {
        (void)unlink(p.tmp_pub);
        (void)unlink(p.tmp_sec);
    }
    (void)umask(old);
    if (rc == EXIT_OK)
        keygen_print(cli, &o, &p, public_txt);
    return rc;
}

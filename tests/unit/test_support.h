/*
 * test_support.h - shared, header-only helpers for the cmocka unit tests:
 * the rc checks (assert_ok, assert_rc), scratch directories made with
 * mkdtemp and removed after each test, and (from
 * tests/support/fixture_structure.h, which the fuzz targets share) the
 * small self-contained SDMX structure fixture that test_validate.c,
 * test_sdmx_rows.c and test_hub_prep.c map against.
 * Not a test itself (only tests/unit/test_*.c become executables) and not
 * for production code. Everything is static so each test file gets its own
 * copy; include it after cmocka.h's prerequisites, as below.
 */
#ifndef OBSYNC_TEST_SUPPORT_H
#define OBSYNC_TEST_SUPPORT_H

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
/* clang-format off */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
/* clang-format on */

#include "fixture_structure.h"
#include "obs_err.h"
#include "structure.h"

/* A function, not an if in a macro, so each check shows its codes and
 * test bodies stay flat. Fails the current test when rc != want. */
static inline void
check_rc(int rc, int want, const char *expr, const char *file, int line)
{
    if (rc != want) {
        print_error("%s: got %s (%s), want %s\n", expr, obs_errname(rc),
                    obs_strerror(rc), obs_errname(want));
        _fail(file, line);
    }
}

#define assert_ok(expr) check_rc((expr), OBS_OK, #expr, __FILE__, __LINE__)
#define assert_rc(expr, want) \
    check_rc((expr), (want), #expr, __FILE__, __LINE__)

/* Makes a fresh directory from tmpl ("/tmp/obsync-x-XXXXXX") into dir
 * (cap bytes, caller-owned). Returns 0, or -1 if it does not fit or
 * mkdtemp fails. */
static inline int
test_mkdtemp(char *dir, size_t cap, const char *tmpl)
{
    int n = snprintf(dir, cap, "%s", tmpl);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

/* Removes dir and the plain files in it (LMDB files; no subdirectories).
 * Errors are ignored: a leftover scratch directory fails no test. */
static inline void
test_rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX];

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        (void)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
}

#endif /* OBSYNC_TEST_SUPPORT_H */

/*
 * test_replay_main.c - the fuzz corpus replayer (tests/fuzz/replay_main.c)
 * compiled in with its main() renamed and a counting fuzz target, so its
 * exits can be checked without a fuzz binary: a missing corpus directory,
 * an empty one (or one with only dot files), an unreadable input inside one
 * and a call without paths each fail with a message naming the path; a
 * corpus with inputs runs each of them once plus the empty input.
 */
#include <sys/stat.h>

#include "test_support.h"

int replay_main(int argc, char **argv);
#define main replay_main
#include "../fuzz/replay_main.c"
#undef main

static int g_calls;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)data;
    (void)size;
    g_calls++;
    return 0;
}

typedef struct {
    char dir[PATH_MAX];
} fixture_t;

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    if (fx == NULL ||
        test_mkdtemp(fx->dir, sizeof(fx->dir), "/tmp/obsync-replay-XXXXXX"))
        return -1;
    g_calls = 0;
    *state = fx;
    return 0;
}

/* Removes the corpus subdirectories the tests make, then the scratch. */
static int
teardown(void **state)
{
    fixture_t *fx = *state;
    static const char *const subdirs[] = {"corpus/sub", "corpus", "empty",
                                          "dots"};
    char path[PATH_MAX + 32];
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        (void)snprintf(path, sizeof(path), "%s/%s", fx->dir, subdirs[i]);
        test_rm_tree(path);
    }
    test_rm_tree(fx->dir);
    free(fx);
    return 0;
}

static void
write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX + 64];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Runs replay_main on one path with stderr sent to a file; returns its
 * exit and copies what it wrote to stderr into err (cap bytes). */
static int
replay(const char *path, char *err, size_t cap)
{
    char tmpl[] = "/tmp/obsync-replay-err-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);

    char arg0[] = "replay";
    char *argv[] = {arg0, (char *)(uintptr_t)path, NULL};
    int rc = replay_main(path != NULL ? 2 : 1, argv);

    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    ssize_t n = pread(fd, err, cap - 1, 0);
    err[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(tmpl);
    fprintf(stderr, "%s", err); /* visible under --output-on-failure */
    return rc;
}

static void
test_replay_fails_on_missing_corpus_dir(void **state)
{
    fixture_t *fx = *state;
    char path[PATH_MAX + 32], err[4096];
    (void)snprintf(path, sizeof(path), "%s/no-such-corpus", fx->dir);
    assert_int_equal(replay(path, err, sizeof(err)), 1);
    assert_non_null(strstr(err, path));
}

static void
test_replay_fails_on_empty_corpus_dir(void **state)
{
    fixture_t *fx = *state;
    char path[PATH_MAX + 32], err[4096];
    (void)snprintf(path, sizeof(path), "%s/empty", fx->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(replay(path, err, sizeof(err)), 1);
    assert_non_null(strstr(err, path));
}

static void
test_replay_fails_on_corpus_dir_with_only_dot_files(void **state)
{
    fixture_t *fx = *state;
    char path[PATH_MAX + 32], err[4096];
    (void)snprintf(path, sizeof(path), "%s/dots", fx->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file(path, ".gitkeep", "");
    assert_int_equal(replay(path, err, sizeof(err)), 1);
    assert_non_null(strstr(err, path));
}

static void
test_replay_fails_on_unreadable_input(void **state)
{
    fixture_t *fx = *state;
    char path[PATH_MAX + 32], sub[PATH_MAX + 64], err[4096];
    (void)snprintf(path, sizeof(path), "%s/corpus", fx->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file(path, "a", "x");
    (void)snprintf(sub, sizeof(sub), "%s/sub", path); /* not a file */
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(replay(path, err, sizeof(err)), 1);
    assert_non_null(strstr(err, sub));
}

static void
test_replay_fails_without_paths(void **state)
{
    (void)state;
    char err[4096];
    assert_int_equal(replay(NULL, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "usage"));
    assert_int_equal(g_calls, 0);
}

static void
test_replay_runs_every_input_and_the_empty_one(void **state)
{
    fixture_t *fx = *state;
    char path[PATH_MAX + 32], err[4096];
    (void)snprintf(path, sizeof(path), "%s/corpus", fx->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file(path, "a", "one");
    write_file(path, "b", "two");
    write_file(path, ".hidden", "not an input");
    assert_int_equal(replay(path, err, sizeof(err)), 0);
    assert_int_equal(g_calls, 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_fails_on_missing_corpus_dir,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_fails_on_empty_corpus_dir,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_replay_fails_on_corpus_dir_with_only_dot_files, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_replay_fails_on_unreadable_input,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_fails_without_paths, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_replay_runs_every_input_and_the_empty_one, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

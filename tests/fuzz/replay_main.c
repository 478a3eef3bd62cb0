/*
 * replay_main.c - runs a libFuzzer target over every file of the corpus
 * directories (or files) given on the command line, so fuzz corpora are
 * ordinary ctest tests in builds without -fsanitize=fuzzer.
 *
 * A replay that runs nothing must not pass: a corpus path that does not
 * exist or cannot be read, a corpus directory with no inputs in it (files
 * whose names start with '.' are not inputs), an input that cannot be read,
 * and a call without any path each exit 1 with a message on stderr naming
 * the path. unit.replay_main checks these exits.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs the target on the file's bytes. Returns 0, or 1 (reported on
 * stderr) if the file cannot be read. */
static int
run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open input %s: %s\n", path,
                strerror(errno));
        return 1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *n = realloc(buf, cap);
            if (n == NULL) {
                fprintf(stderr, "replay: out of memory reading %s\n", path);
                free(buf);
                fclose(f);
                return 1;
            }
            buf = n;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        if (got == 0)
            break;
        len += got;
    }
    if (ferror(f)) { /* a directory inside the corpus, an I/O error */
        fprintf(stderr, "replay: cannot read input %s: %s\n", path,
                strerror(errno));
        free(buf);
        fclose(f);
        return 1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

/* Runs every input of the corpus directory dir; adds to *runs and *failed.
 * Returns 0, or 1 (reported) if dir cannot be listed or holds no input. */
static int
run_dir(const char *dir, int *runs, int *failed)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: cannot open corpus directory %s: %s\n", dir,
                strerror(errno));
        return 1;
    }
    int inputs = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            fprintf(stderr, "replay: path too long: %s/%s\n", dir, e->d_name);
            (*failed)++;
            continue;
        }
        *failed += run_file(path);
        (*runs)++;
        inputs++;
    }
    closedir(d);
    if (inputs == 0) {
        fprintf(stderr, "replay: corpus directory %s holds no inputs\n", dir);
        return 1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    int runs = 0, failed = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s corpus-dir-or-file...\n",
                argc > 0 ? argv[0] : "replay");
        return 1;
    }
    /* The empty input is always a case. */
    LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: corpus %s: %s\n", argv[i],
                    strerror(errno));
            failed++;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            int rc = run_dir(argv[i], &runs, &failed);
            failed += rc;
            continue;
        }
        failed += run_file(argv[i]);
        runs++;
    }
    printf("replayed %d inputs, %d failures\n", runs + 1, failed);
    return failed ? 1 : 0;
}

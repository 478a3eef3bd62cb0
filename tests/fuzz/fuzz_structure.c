/*
 * fuzz_structure.c - libFuzzer target for the structure text parser: loads
 * the input bytes into an empty structure and, when that succeeds, checks
 * that the canonical text loads again and serialises to the same bytes.
 * Seeds: tests/fuzz/corpus/structure/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "issue.h"
#include "structure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_round_trip(const structure_t *s)
{
    char *t1 = NULL, *t2 = NULL;
    size_t l1 = 0, l2 = 0;
    if (structure_to_text(s, &t1, &l1) != 0)
        return;
    structure_t *s2 = structure_new();
    if (s2 != NULL &&
        structure_load_text(s2, t1, l1, "canon", NULL, NULL) == 0 &&
        structure_to_text(s2, &t2, &l2) == 0) {
        if (l1 != l2 || memcmp(t1, t2, l1) != 0)
            abort(); /* to_text is not canonical */
    } else if (s2 != NULL) {
        abort(); /* canonical text of a valid structure must load */
    }
    free(t1);
    free(t2);
    structure_destroy(&s2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    structure_t *s = structure_new();
    if (s == NULL)
        return 0;
    issue_list_t issues;
    issue_list_init(&issues, 50);
    int rc =
        structure_load_text(s, (const char *)data, size, "fuzz", &issues, NULL);
    if (rc == 0) {
        check_round_trip(s);
        /* loading the same bytes again is a no-op */
        size_t loaded = 1;
        if (structure_load_text(s, (const char *)data, size, "fuzz", NULL,
                                &loaded) != 0 ||
            loaded != 0)
            abort();
    }
    issue_list_fini(&issues);
    structure_destroy(&s);
    return 0;
}

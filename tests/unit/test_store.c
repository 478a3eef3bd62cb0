/*
 * test_store.c - unit tests for store.c, the LMDB wrapper: commit and abort,
 * the sticky txn error, cursors, map full and growth. Real LMDB files in a
 * mkdtemp directory removed after each test; LMDB is never mocked.
 */
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

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "obs_err.h"
#include "store.h"
#include "test_support.h"

#define KIB 1024ull

typedef struct {
    char dir[64];
    store_t *st;
} fixture_t;

static int
open_store(fixture_t *f, uint64_t map_size, uint64_t map_max)
{
    char err[256] = "";
    store_opts_t o = {.dir = f->dir,
                      .map_size = map_size,
                      .map_max = map_max,
                      .no_sync = true};
    int rc = store_open(&o, &f->st, err, sizeof(err));
    if (rc != 0)
        print_error("store_open: %s: %s\n", obs_strerror(rc), err);
    return rc;
}

static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (test_mkdtemp(f->dir, sizeof(f->dir), "/tmp/obsync-store-XXXXXX") != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return open_store(f, 0, 0);
}

static int
teardown(void **state)
{
    fixture_t *f = *state;
    store_close(&f->st);
    test_rm_tree(f->dir);
    free(f);
    return 0;
}

static void
put_str(store_txn_t *txn, store_table_t t, const char *k, const char *v)
{
    assert_ok(store_put(txn, t, k, strlen(k), v, strlen(v)));
}

static void
assert_value(store_t *st, store_table_t t, const char *k, const char *want)
{
    store_txn_t txn;
    store_val_t v;
    assert_ok(store_begin(st, &txn, false));
    assert_ok(store_get(&txn, t, k, strlen(k), &v));
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.ptr, want, v.len);
    store_abort(&txn);
}

static void
assert_absent(store_t *st, store_table_t t, const char *k)
{
    store_txn_t txn;
    store_val_t v;
    assert_ok(store_begin(st, &txn, false));
    assert_rc(store_get(&txn, t, k, strlen(k), &v), OBS_ENOENT);
    store_abort(&txn);
}

static void
test_store_commit_makes_writes_visible(void **state)
{
    fixture_t *f = *state;
    store_txn_t txn;
    assert_ok(store_begin(f->st, &txn, true));
    put_str(&txn, STORE_T_META, "a", "1");
    put_str(&txn, STORE_T_OBS, "a", "other table");
    assert_ok(store_commit(&txn));
    assert_value(f->st, STORE_T_META, "a", "1");
    assert_value(f->st, STORE_T_OBS, "a", "other table");
}

/* A lazy commit is a commit like any other for readers and later writers;
 * what it leaves out (the meta page's sync) only shows after a system
 * crash. A process that reopens the store sees it. */
static void
test_store_lazy_commit_is_a_commit(void **state)
{
    fixture_t *f = *state;
    store_txn_t txn;
    assert_ok(store_begin_lazy(f->st, &txn));
    assert_true(txn.write && txn.lazy);
    put_str(&txn, STORE_T_META, "lazy", "1");
    assert_true(store_syncs_meta(f->st));
    assert_ok(store_commit(&txn));
    assert_true(store_syncs_meta(f->st)); /* only that commit was lazy */
    assert_value(f->st, STORE_T_META, "lazy", "1");
    /* a lazy txn that fails (sticky error) leaves commits synced too */
    assert_ok(store_begin_lazy(f->st, &txn));
    assert_rc(store_put(&txn, STORE_T_META, "", 0, "x", 1), OBS_EINVAL);
    assert_rc(store_commit(&txn), OBS_EINVAL);
    assert_true(store_syncs_meta(f->st));
    assert_ok(store_begin(f->st, &txn, true));
    assert_false(txn.lazy);
    put_str(&txn, STORE_T_META, "synced", "2");
    assert_ok(store_commit(&txn));
    store_close(&f->st);
    assert_ok(open_store(f, 0, 0));
    assert_value(f->st, STORE_T_META, "lazy", "1");
    assert_value(f->st, STORE_T_META, "synced", "2");
}

static void
test_store_abort_discards_writes(void **state)
{
    fixture_t *f = *state;
    store_txn_t txn;
    assert_ok(store_begin(f->st, &txn, true));
    put_str(&txn, STORE_T_META, "a", "1");
    store_abort(&txn);
    store_abort(&txn); /* ended txn: harmless */
    assert_absent(f->st, STORE_T_META, "a");
}

static void
test_store_commit_fails_after_failed_put(void **state)
{
    fixture_t *f = *state;
    store_txn_t txn;
    assert_ok(store_begin(f->st, &txn, true));
    put_str(&txn, STORE_T_META, "a", "1");
    assert_rc(store_put(&txn, STORE_T_META, "", 0, "x", 1), OBS_EINVAL);
    /* Sticky: a good put is now a no-op that reports the first error. */
    assert_rc(store_put(&txn, STORE_T_META, "b", 1, "2", 1), OBS_EINVAL);
    assert_rc(store_commit(&txn), OBS_EINVAL);
    assert_absent(f->st, STORE_T_META, "a");
    assert_absent(f->st, STORE_T_META, "b");
}

static void
test_store_put_in_read_txn_is_refused(void **state)
{
    fixture_t *f = *state;
    store_txn_t txn;
    assert_ok(store_begin(f->st, &txn, false));
    assert_rc(store_put(&txn, STORE_T_META, "a", 1, "1", 1), OBS_EINVAL);
    assert_rc(store_commit(&txn), OBS_EINVAL);
}

static void
test_store_get_missing_is_not_sticky(void **state)
{
    fixture_t *f = *state;
    store_txn_t txn;
    store_val_t v;
    assert_ok(store_begin(f->st, &txn, true));
    assert_rc(store_get(&txn, STORE_T_META, "nope", 4, &v), OBS_ENOENT);
    assert_rc(store_del(&txn, STORE_T_META, "nope", 4), OBS_ENOENT);
    put_str(&txn, STORE_T_META, "a", "1");
    assert_ok(store_commit(&txn));
    assert_value(f->st, STORE_T_META, "a", "1");
}

static void
test_store_oversized_lookup_is_refused_not_sticky(void **state)
{
    fixture_t *f = *state;
    static const uint8_t big[600];
    store_txn_t txn;
    store_cursor_t c;
    store_val_t v;
    assert_ok(store_begin(f->st, &txn, true));
    assert_rc(store_get(&txn, STORE_T_OBS, big, sizeof(big), &v), OBS_EINVAL);
    assert_ok(store_cursor_open(&txn, STORE_T_OBS, &c));
    assert_rc(store_cursor_seek(&c, big, sizeof(big), &v, NULL), OBS_EINVAL);
    store_cursor_close(&c);
    put_str(&txn, STORE_T_META, "a", "1");
    assert_ok(store_commit(&txn));
    /* An oversized put is a failed write, so it is sticky. */
    assert_ok(store_begin(f->st, &txn, true));
    assert_rc(store_put(&txn, STORE_T_OBS, big, sizeof(big), "x", 1),
              OBS_EINVAL);
    assert_rc(store_commit(&txn), OBS_EINVAL);
    assert_value(f->st, STORE_T_META, "a", "1");
}

static void
test_store_del_removes_key(void **state)
{
    fixture_t *f = *state;
    store_txn_t txn;
    assert_ok(store_begin(f->st, &txn, true));
    put_str(&txn, STORE_T_META, "a", "1");
    assert_ok(store_commit(&txn));
    assert_ok(store_begin(f->st, &txn, true));
    assert_ok(store_del(&txn, STORE_T_META, "a", 1));
    assert_ok(store_commit(&txn));
    assert_absent(f->st, STORE_T_META, "a");
}

/* store_append writes only a key after every key of its table, and
 * refusing one (OBS_EEXIST: equal to or before the last) writes nothing
 * and leaves the txn usable. */
static void
test_store_append_only_after_the_last_key(void **state)
{
    fixture_t *f = *state;
    store_txn_t txn;
    assert_ok(store_begin(f->st, &txn, true));
    assert_ok(store_append(&txn, STORE_T_LOG, "b", 1, "1", 1)); /* empty */
    assert_ok(store_append(&txn, STORE_T_LOG, "c", 1, "2", 1));
    assert_rc(store_append(&txn, STORE_T_LOG, "a", 1, "x", 1), OBS_EEXIST);
    assert_rc(store_append(&txn, STORE_T_LOG, "c", 1, "x", 1), OBS_EEXIST);
    put_str(&txn, STORE_T_LOG, "a", "3"); /* the txn goes on */
    assert_ok(store_commit(&txn));
    assert_value(f->st, STORE_T_LOG, "a", "3");
    assert_value(f->st, STORE_T_LOG, "b", "1");
    assert_value(f->st, STORE_T_LOG, "c", "2");
    /* a later txn appends after the committed last key */
    assert_ok(store_begin(f->st, &txn, true));
    assert_rc(store_append(&txn, STORE_T_LOG, "bb", 2, "x", 1), OBS_EEXIST);
    assert_ok(store_append(&txn, STORE_T_LOG, "d", 1, "4", 1));
    assert_ok(store_commit(&txn));
    assert_absent(f->st, STORE_T_LOG, "bb");
    assert_value(f->st, STORE_T_LOG, "d", "4");
    /* a read txn is refused, stickily */
    assert_ok(store_begin(f->st, &txn, false));
    assert_rc(store_append(&txn, STORE_T_LOG, "e", 1, "5", 1), OBS_EINVAL);
    store_abort(&txn);
}

static void
assert_key(const store_val_t *k, const char *want)
{
    assert_int_equal(k->len, strlen(want));
    assert_memory_equal(k->ptr, want, k->len);
}

static void
test_store_cursor_seek_next_prev_last(void **state)
{
    fixture_t *f = *state;
    store_txn_t txn;
    store_cursor_t c;
    store_val_t k, v;
    assert_ok(store_begin(f->st, &txn, true));
    put_str(&txn, STORE_T_OBS, "b", "2");
    put_str(&txn, STORE_T_OBS, "d", "4");
    put_str(&txn, STORE_T_OBS, "f", "6");
    assert_ok(store_commit(&txn));

    assert_ok(store_begin(f->st, &txn, false));
    assert_ok(store_cursor_open(&txn, STORE_T_OBS, &c));
    assert_ok(store_cursor_seek(&c, "c", 1, &k, &v)); /* first >= "c" */
    assert_key(&k, "d");
    assert_key(&v, "4");
    assert_ok(store_cursor_next(&c, &k, NULL));
    assert_key(&k, "f");
    assert_rc(store_cursor_next(&c, &k, NULL), OBS_ENOENT);
    assert_ok(store_cursor_seek(&c, "d", 1, &k, NULL)); /* exact hit */
    assert_key(&k, "d");
    assert_ok(store_cursor_prev(&c, &k, NULL));
    assert_key(&k, "b");
    assert_rc(store_cursor_prev(&c, &k, NULL), OBS_ENOENT);
    assert_rc(store_cursor_seek(&c, "g", 1, &k, NULL), OBS_ENOENT);
    assert_ok(store_cursor_last(&c, &k, NULL));
    assert_key(&k, "f");
    assert_ok(store_cursor_first(&c, &k, NULL));
    assert_key(&k, "b");
    store_cursor_close(&c);
    assert_ok(store_commit(&txn));
}

static void
test_store_count_counts_entries(void **state)
{
    fixture_t *f = *state;
    store_txn_t txn;
    uint64_t n = 99;
    assert_ok(store_begin(f->st, &txn, true));
    assert_ok(store_count(&txn, STORE_T_OUTBOX, &n));
    assert_int_equal(n, 0);
    put_str(&txn, STORE_T_OUTBOX, "1", "x");
    put_str(&txn, STORE_T_OUTBOX, "2", "y");
    assert_ok(store_count(&txn, STORE_T_OUTBOX, &n));
    assert_int_equal(n, 2);
    store_abort(&txn);
}

/* Writes 4 KiB values, one per txn, until the map is full. Returns how many
 * were committed. */
static unsigned
fill_until_full(store_t *st, unsigned start)
{
    static uint8_t blob[4 * KIB];
    char key[32];
    unsigned i = start;
    for (;; i++) {
        store_txn_t txn;
        (void)snprintf(key, sizeof(key), "k%06u", i);
        assert_ok(store_begin(st, &txn, true));
        store_put(&txn, STORE_T_OBS, key, strlen(key), blob, sizeof(blob));
        int rc = store_commit(&txn);
        if (rc == OBS_ESTOREFULL)
            return i - start;
        assert_ok(rc);
        assert_true(i - start < 10000);
    }
}

static void
test_store_map_full_keeps_store_readable_and_grows(void **state)
{
    fixture_t *f = *state;
    store_close(&f->st);
    test_rm_tree(f->dir); /* a fresh env, so the small map_size applies */
    assert_ok(open_store(f, 256 * KIB, 256 * KIB));
    unsigned n = fill_until_full(f->st, 0);
    assert_true(n > 0);
    assert_true(strstr(store_errmsg(f->st), "MDB_MAP_FULL") != NULL);
    assert_rc(store_grow(f->st), OBS_ESTOREFULL); /* already at map_max */

    store_txn_t txn;
    store_val_t v;
    assert_ok(store_begin(f->st, &txn, false));
    assert_ok(store_get(&txn, STORE_T_OBS, "k000000", 7, &v));
    assert_int_equal(v.len, 4 * KIB);
    store_abort(&txn);

    /* A larger map_max lets it grow, and the write goes through. */
    store_close(&f->st);
    assert_ok(open_store(f, 256 * KIB, 1024 * KIB));
    store_info_t before, after;
    assert_ok(store_info(f->st, &before));
    assert_rc(fill_until_full(f->st, n), 0);
    assert_ok(store_grow(f->st));
    assert_ok(store_info(f->st, &after));
    assert_true(after.map_size > before.map_size);
    assert_true(after.map_size <= 1024 * KIB);
    assert_true(fill_until_full(f->st, n) > 0);
}

static void
test_store_grow_refused_while_txn_open(void **state)
{
    fixture_t *f = *state;
    store_txn_t txn;
    assert_ok(store_begin(f->st, &txn, false));
    assert_rc(store_grow(f->st), OBS_EBUSY);
    store_abort(&txn);
    assert_ok(store_grow(f->st));
}

static void
test_store_info_reports_map_use(void **state)
{
    fixture_t *f = *state;
    store_info_t a, b;
    store_txn_t txn;
    static uint8_t blob[64 * KIB];
    assert_ok(store_info(f->st, &a));
    assert_int_equal(a.map_size, 64 * KIB * KIB);
    assert_true(a.page_size >= 512);
    assert_ok(store_begin(f->st, &txn, true));
    assert_ok(store_put(&txn, STORE_T_OBS, "big", 3, blob, sizeof(blob)));
    assert_ok(store_commit(&txn));
    assert_ok(store_info(f->st, &b));
    assert_true(b.map_used >= a.map_used + sizeof(blob));
}

static void
test_store_data_survives_reopen(void **state)
{
    fixture_t *f = *state;
    store_txn_t txn;
    assert_ok(store_begin(f->st, &txn, true));
    put_str(&txn, STORE_T_CONFLICTS, "x", "kept");
    assert_ok(store_commit(&txn));
    store_close(&f->st);
    assert_null(f->st);
    assert_ok(open_store(f, 0, 0));
    assert_value(f->st, STORE_T_CONFLICTS, "x", "kept");
}

static void
test_store_table_names_are_fixed(void **state)
{
    (void)state;
    assert_string_equal(store_table_name(STORE_T_OBS), "obs");
    assert_string_equal(store_table_name(STORE_T_HISTORY), "history");
    assert_string_equal(store_table_name(STORE_T_OUTBOX), "outbox");
    assert_string_equal(store_table_name(STORE_T_META), "meta");
    assert_string_equal(store_table_name(STORE_T_COUNT), "?");
}

static void
test_store_be64_sorts_numerically(void **state)
{
    (void)state;
    uint8_t a[8], b[8];
    store_be64_put(a, 255);
    store_be64_put(b, 256);
    assert_true(memcmp(a, b, 8) < 0);
    assert_int_equal(store_be64_get(b), 256);
    store_be64_put(a, UINT64_MAX - 1);
    assert_true(store_be64_get(a) == UINT64_MAX - 1);
}

static void
test_store_open_rejects_missing_dir_option(void **state)
{
    (void)state;
    store_opts_t o = {.dir = NULL};
    store_t *st = NULL;
    assert_rc(store_open(&o, &st, NULL, 0), OBS_EINVAL);
    assert_null(st);
}

static void
test_store_open_reports_unusable_dir(void **state)
{
    (void)state;
    char err[256] = "";
    store_opts_t o = {.dir = "/proc/obsync-no-such/dir"};
    store_t *st = NULL;
    assert_rc(store_open(&o, &st, err, sizeof(err)), OBS_ESTORE);
    assert_non_null(strstr(err, "/proc/obsync-no-such/dir"));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_commit_makes_writes_visible),
        T(test_store_lazy_commit_is_a_commit),
        T(test_store_abort_discards_writes),
        T(test_store_commit_fails_after_failed_put),
        T(test_store_put_in_read_txn_is_refused),
        T(test_store_get_missing_is_not_sticky),
        T(test_store_oversized_lookup_is_refused_not_sticky),
        T(test_store_del_removes_key),
        T(test_store_append_only_after_the_last_key),
        T(test_store_cursor_seek_next_prev_last),
        T(test_store_count_counts_entries),
        T(test_store_map_full_keeps_store_readable_and_grows),
        T(test_store_grow_refused_while_txn_open),
        T(test_store_info_reports_map_use),
        T(test_store_data_survives_reopen),
        cmocka_unit_test(test_store_table_names_are_fixed),
        cmocka_unit_test(test_store_be64_sorts_numerically),
        cmocka_unit_test(test_store_open_rejects_missing_dir_option),
        cmocka_unit_test(test_store_open_reports_unusable_dir),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}

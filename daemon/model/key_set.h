/*
 * key_set.h - the keys of one import file, each with the line it came on,
 * to find a key given twice (DOMAIN.md rule 6) without a copy per key in a
 * general-purpose map. Used by the SDMX-CSV mapper (sdmx_rows.c).
 *
 * A zeroed key_set_t is empty; key_set_fini frees it. Keys are opaque bytes
 * (a canonical observation key, at most 65,535 bytes) in one of two classes
 * (0 merge/replace, 1 delete): the same key in each class is two keys.
 * Ownership: the set copies every key. Plain data, no I/O.
 */
#ifndef KEY_SET_H
#define KEY_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One remembered key: its bytes in a key block (after its record). */
typedef struct {
    uint64_t hash;
    uint64_t line; /* 0 = free slot */
    const uint8_t *key;
    uint16_t len;
    uint8_t cls; /* 0 = merge/replace, 1 = delete */
} key_slot_t;

typedef struct {
    size_t n_slots, n_used;
    key_slot_t *slots; /* owned, open addressing, n_slots a power of 2 */
    /* owned: every key as a record and its bytes, in blocks that never
     * move (a million keys are ~70 MB: no realloc copies) */
    struct key_block *first_block, *cur_block;
    /* While every key sorted after the one before, none can repeat: keys
     * are only appended to the blocks, and slots are built at the first
     * key out of order. */
    bool unsorted;
    const uint8_t *last_key; /* the previous key's bytes, NULL at first */
    size_t last_len;
} key_set_t;

/** Remembers key (len bytes, class cls) given at line (> 0). *first gets
 * the line it was given on before (0: the first time; it is then kept).
 * OBS_ENOMEM. */
int key_set_add(key_set_t *m, const uint8_t *key, size_t len, uint8_t cls,
                uint64_t line, uint64_t *first);
/** Frees everything and leaves the set empty. */
void key_set_fini(key_set_t *m);

#endif

/*
 * seq_ranges.h - a set of sequence numbers kept as ascending ranges: added
 * in increasing order, forgotten from the front. The hub records in one per
 * session the hub_seqs of the changes it accepted from that node, so none
 * is streamed back to it (no echo, PROTOCOL.md §5.4).
 *
 * Ownership: a seq_ranges_t owns its array; zero-initialised is empty.
 * Errors: none reported. Out of memory, an add is dropped: the set is then
 * smaller than what was added (for no-echo, a change echoed back, an equal
 * version: no effect). No I/O, no clock: tested on its own
 * (test_seq_ranges).
 */
#ifndef SEQ_RANGES_H
#define SEQ_RANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t first, last;
} seq_range_t;

typedef struct {
    seq_range_t *r; /* owned; r[head..n) ascending, disjoint */
    size_t head, n, cap;
} seq_ranges_t;

/** What seq_ranges_rewind goes back to. */
typedef struct {
    size_t n;
    uint64_t last; /* of range n - 1 */
} seq_ranges_mark_t;

/** Frees the array; the set is empty again. NULL-safe. */
void seq_ranges_fini(seq_ranges_t *s);
/** Adds seq, which must be above every seq added before (a seq right after
 * the last range extends it). */
void seq_ranges_add(seq_ranges_t *s, uint64_t seq);
/** Forgets every range that ends at or before upto (a node's cursor: it
 * holds those already). Ranges that straddle upto are kept whole. */
void seq_ranges_drop_upto(seq_ranges_t *s, uint64_t upto);
/** Whether seq is in the set. */
bool seq_ranges_has(const seq_ranges_t *s, uint64_t seq);
/** Whether any seq in (after, to] is in the set. */
bool seq_ranges_overlaps(const seq_ranges_t *s, uint64_t after, uint64_t to);
/** The end (at most last) of the run of seqs in the set that starts at
 * after + 1, or after when after + 1 is not in the set. */
uint64_t seq_ranges_run_end(const seq_ranges_t *s, uint64_t after,
                            uint64_t last);
/** The set as it is now, for seq_ranges_rewind. */
seq_ranges_mark_t seq_ranges_mark(const seq_ranges_t *s);
/** Undoes every add since m was taken (a transaction that failed). Only
 * adds may come between the two. */
void seq_ranges_rewind(seq_ranges_t *s, seq_ranges_mark_t m);

#endif

/*
 * seq_ranges.c - see seq_ranges.h. Queries binary-search the live ranges;
 * the forgotten front is compacted away once it is most of the array.
 */
#include "seq_ranges.h"

#include <stdlib.h>
#include <string.h>

void
seq_ranges_fini(seq_ranges_t *s)
{
    if (s == NULL)
        return;
    free(s->r);
    memset(s, 0, sizeof(*s));
}

void
seq_ranges_add(seq_ranges_t *s, uint64_t seq)
{
    if (s->n > s->head && s->r[s->n - 1].last + 1 == seq) {
        s->r[s->n - 1].last = seq;
        return;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        seq_range_t *r = realloc(s->r, cap * sizeof(*r));
        if (r == NULL)
            return;
        s->r = r;
        s->cap = cap;
    }
    s->r[s->n++] = (seq_range_t){seq, seq};
}

void
seq_ranges_drop_upto(seq_ranges_t *s, uint64_t upto)
{
    while (s->head < s->n && s->r[s->head].last <= upto)
        s->head++;
    if (s->head > 64 && s->head * 2 > s->n) {
        memmove(s->r, s->r + s->head, (s->n - s->head) * sizeof(*s->r));
        s->n -= s->head;
        s->head = 0;
    }
}

/* Index of the first live range ending at or after seq (n if none). */
static size_t
first_ending_from(const seq_ranges_t *s, uint64_t seq)
{
    size_t lo = s->head, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].last < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool
seq_ranges_has(const seq_ranges_t *s, uint64_t seq)
{
    size_t i = first_ending_from(s, seq);
    return i < s->n && s->r[i].first <= seq;
}

bool
seq_ranges_overlaps(const seq_ranges_t *s, uint64_t after, uint64_t to)
{
    if (to <= after)
        return false;
    size_t i = first_ending_from(s, after + 1);
    return i < s->n && s->r[i].first <= to;
}

uint64_t
seq_ranges_run_end(const seq_ranges_t *s, uint64_t after, uint64_t last)
{
    size_t i = first_ending_from(s, after + 1);
    if (i == s->n || s->r[i].first > after + 1)
        return after;
    return s->r[i].last < last ? s->r[i].last : last;
}

seq_ranges_mark_t
seq_ranges_mark(const seq_ranges_t *s)
{
    return (seq_ranges_mark_t){s->n, s->n ? s->r[s->n - 1].last : 0};
}

void
seq_ranges_rewind(seq_ranges_t *s, seq_ranges_mark_t m)
{
    if (m.n < s->n)
        s->n = m.n < s->head ? s->head : m.n;
    if (s->n > s->head && s->n == m.n)
        s->r[s->n - 1].last = m.last;
}

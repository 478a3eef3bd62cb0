/*
 * mem.c - see mem.h.
 *
 * A big import stages hundreds of MiB in the heap, and with 4 KiB pages each
 * page costs a fault on first touch (under virtualisation the largest single
 * cost of an import). glibc can ask for huge pages itself
 * (GLIBC_TUNABLES=glibc.malloc.hugetlb=1) but only from the environment at
 * start; with THP in "madvise" mode (Debian's default) the same effect is an
 * madvise(MADV_HUGEPAGE) over the heap, renewed as brk grows it, because a
 * grown brk area does not inherit the flag.
 */
#include "mem.h"

#include <sys/mman.h>

#include <malloc.h>
#include <stdint.h>
#include <unistd.h>

#define HUGE_PAGE ((uintptr_t)2 * 1024 * 1024)

static uintptr_t g_advised_end; /* heap advised up to here */

void
mem_tune(void)
{
    /* glibc serves blocks above 128 KiB (a replication batch, a ZeroMQ
     * message) with mmap and unmaps them when freed, so every batch faults
     * its buffer in again; and it trims the heap whenever 128 KiB is free
     * at its top. Both stay in the heap: a few MiB retained for not paying
     * a fault per 4 KiB of every message. */
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TOP_PAD, 16 * 1024 * 1024);
    g_advised_end = (uintptr_t)sbrk(0);
}

void
mem_advise_heap(void)
{
    uintptr_t end = (uintptr_t)sbrk(0);
    if (end <= g_advised_end + HUGE_PAGE)
        return;
    /* from the page holding the old end (madvise wants it page-aligned; the
     * part advised before is advised again, harmlessly) */
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = g_advised_end & ~(page - 1);
    /* NOLINTNEXTLINE(performance-no-int-to-ptr): an address rounded down */
    (void)madvise((void *)from, end - from, MADV_HUGEPAGE);
    g_advised_end = end;
}

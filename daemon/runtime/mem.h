/*
 * mem.h - how the daemon's process uses memory: glibc malloc settings and
 * transparent huge pages for its heap. Process-wide; call from the loop
 * thread. Neither function fails: a setting the system refuses is skipped.
 */
#ifndef OBSYNC_MEM_H
#define OBSYNC_MEM_H

/** Once, before anything is allocated: keeps ~128 KiB messages and large
 * batches in the heap instead of mmap'ing (and page-faulting) each one. */
void mem_tune(void);

/** Asks for transparent huge pages on the part of the heap grown since the
 * last call (a no-op when it did not grow, or where THP is "never"). Cheap;
 * call every loop turn, and every so often inside work that allocates
 * hundreds of MiB in one turn (a whole import's transaction): memory
 * touched before it is advised stays in 4 KiB pages. */
void mem_advise_heap(void);

#endif

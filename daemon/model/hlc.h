/*
 * hlc.h - hybrid logical clock (Kulkarni et al.): 48 bits of wall-clock
 * milliseconds, 16 bits of logical counter. Stamps are unique and monotonic
 * per node even when the wall clock steps back, and merge with remote stamps
 * so causality is kept. Pure: the caller passes the wall clock in.
 */
#ifndef HLC_H
#define HLC_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t last; /* last stamp issued or observed */
} hlc_t;

#define HLC_MS(stamp)      ((stamp) >> 16)
#define HLC_LOGICAL(stamp) ((stamp)&0xffffu)
#define HLC_MAKE(ms, l)    (((uint64_t)(ms) << 16) | ((uint64_t)(l)&0xffffu))

/** Starts from a persisted stamp (0 for a new store). */
void hlc_init(hlc_t *h, uint64_t persisted);
/** A new local stamp, strictly greater than every earlier one. */
uint64_t hlc_now(hlc_t *h, uint64_t wall_ms);
/** Observes a remote stamp; returns a stamp greater than both. */
uint64_t hlc_observe(hlc_t *h, uint64_t remote, uint64_t wall_ms);
/* A reference clock (a node's hub) known from samples of its wall clock:
 * between samples it is carried forward on the monotonic clock, so a step
 * of the local wall clock (a fix, or a jump) shows in the skew at once. */
typedef struct {
    bool known;       /* a sample was taken */
    uint64_t ref_ms;  /* the reference's wall clock at the sample */
    uint64_t mono_ms; /* our monotonic clock then */
} hlc_ref_t;

/** Records that the reference's wall clock read ref_ms at monotonic mono_ms
 * (ref_ms 0: not a sample, ignored). */
void hlc_ref_sample(hlc_ref_t *r, uint64_t ref_ms, uint64_t mono_ms);
/** The reference's wall clock now, estimated (0 when unknown). */
uint64_t hlc_ref_now(const hlc_ref_t *r, uint64_t mono_ms);
/** Our wall clock minus the reference's, in ms (0 when unknown). */
int64_t hlc_ref_skew(const hlc_ref_t *r, uint64_t wall_ms, uint64_t mono_ms);

/** Wall clock in ms since the epoch (CLOCK_REALTIME). */
uint64_t hlc_wall_ms(void);
/** Monotonic ms (CLOCK_MONOTONIC), for timers: unaffected by clock steps. */
uint64_t hlc_mono_ms(void);
/** The same in microseconds (link rates: a LAN round trip is well under a
 * millisecond). */
uint64_t hlc_mono_us(void);

#endif

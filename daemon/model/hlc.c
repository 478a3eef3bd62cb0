/*
 * hlc.c - hybrid logical clock (see hlc.h): 48 bits of wall-clock ms and a
 * 16-bit logical counter in one uint64_t, so stamps compare as integers.
 * Pure except hlc_wall_ms(); no locks (the daemon's loop thread owns it).
 * It does not guard against a peer whose clock runs far ahead: observing
 * such a stamp pulls this clock forward, so the caller (the replication
 * code) should reject remote stamps beyond its allowed skew first. Called by
 * the node and hub engines when they make or apply a change.
 */
#include "hlc.h"

#include <time.h>

#define HLC_WALL_MASK ((UINT64_C(1) << 48) - 1)

void
hlc_init(hlc_t *h, uint64_t persisted)
{
    h->last = persisted;
}

/* The next stamp after floor given the wall clock. Because the logical
 * counter is the low 16 bits, floor + 1 carries a full counter (0xffff)
 * into ms + 1 with logical 0, which is the overflow rule. */
static uint64_t
advance(hlc_t *h, uint64_t floor, uint64_t wall_ms)
{
    uint64_t wall = wall_ms & HLC_WALL_MASK;
    uint64_t next;
    if (wall > HLC_MS(floor))
        next = HLC_MAKE(wall, 0);
    else if (floor == UINT64_MAX)
        next = floor; /* cannot go higher; never wrap to 0 */
    else
        next = floor + 1;
    h->last = next;
    return next;
}

uint64_t
hlc_now(hlc_t *h, uint64_t wall_ms)
{
    return advance(h, h->last, wall_ms);
}

uint64_t
hlc_observe(hlc_t *h, uint64_t remote, uint64_t wall_ms)
{
    return advance(h, remote > h->last ? remote : h->last, wall_ms);
}

void
hlc_ref_sample(hlc_ref_t *r, uint64_t ref_ms, uint64_t mono_ms)
{
    if (ref_ms == 0)
        return;
    r->known = true;
    r->ref_ms = ref_ms;
    r->mono_ms = mono_ms;
}

uint64_t
hlc_ref_now(const hlc_ref_t *r, uint64_t mono_ms)
{
    if (!r->known)
        return 0;
    return r->ref_ms + (mono_ms > r->mono_ms ? mono_ms - r->mono_ms : 0);
}

int64_t
hlc_ref_skew(const hlc_ref_t *r, uint64_t wall_ms, uint64_t mono_ms)
{
    if (!r->known)
        return 0;
    return (int64_t)wall_ms - (int64_t)hlc_ref_now(r, mono_ms);
}

uint64_t
hlc_wall_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0; /* cannot happen with CLOCK_REALTIME; hlc stays monotonic */
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
hlc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
hlc_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

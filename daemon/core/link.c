/*
 * link.c - the rate a session's direction carries, and the message sizes
 * it allows (see link.h). A rate sample runs while something is in flight
 * and closes at a confirmation at least LINK_SAMPLE_MS after it began; the
 * rate is the mean of the last rate and the new sample. Because up to
 * about three seconds of the measured rate may be in flight, and a round
 * trip is shorter than that, a rate measured low (the sender had little to
 * send) grows with each sample until the link itself is the limit.
 */
#include "link.h"

#include <string.h>

void
link_reset(link_t *l)
{
    l->head = 0;
    l->n = 0;
    l->inflight = 0;
    l->sample_bytes = 0;
    l->sample_start = 0;
}

bool
link_sent(link_t *l, uint64_t bytes, uint64_t mark, uint64_t now_ms)
{
    if (l->n == LINK_INFLIGHT_MAX)
        return false;
    l->q[(l->head + l->n++) % LINK_INFLIGHT_MAX] = (link_msg_t){bytes, mark};
    l->inflight += bytes;
    if (l->sample_start == 0)
        l->sample_start = now_ms ? now_ms : 1;
    return true;
}

/* bytes were confirmed now: closes the rate sample when it ran long
 * enough, and stops it when nothing is in flight any more (idle time is
 * not the link's). */
static void
sampled(link_t *l, uint64_t bytes, uint64_t now_ms)
{
    l->confirmed += bytes;
    l->sample_bytes += bytes;
    uint64_t dt = l->sample_start && now_ms > l->sample_start
                      ? now_ms - l->sample_start
                      : 0;
    if (dt >= LINK_SAMPLE_MS) {
        uint64_t sample = l->sample_bytes * 1000 / dt;
        l->rate_bps = l->rate_bps ? (l->rate_bps + sample) / 2 : sample;
        l->sample_bytes = 0;
        l->sample_start = now_ms;
    }
    if (l->n == 0) {
        l->sample_bytes = 0;
        l->sample_start = 0;
    }
}

static uint64_t
pop(link_t *l, uint64_t *mark)
{
    link_msg_t m = l->q[l->head];
    l->head = (l->head + 1) % LINK_INFLIGHT_MAX;
    l->n--;
    l->inflight -= m.bytes;
    if (mark != NULL)
        *mark = m.mark;
    return m.bytes;
}

uint64_t
link_confirm_n(link_t *l, unsigned n, uint64_t now_ms, uint64_t *mark)
{
    uint64_t bytes = 0;
    while (n-- > 0 && l->n > 0)
        bytes += pop(l, mark);
    if (bytes > 0)
        sampled(l, bytes, now_ms);
    return bytes;
}

uint64_t
link_confirm_upto(link_t *l, uint64_t upto, uint64_t now_ms)
{
    uint64_t bytes = 0;
    while (l->n > 0 && l->q[l->head].mark <= upto)
        bytes += pop(l, NULL);
    if (bytes > 0)
        sampled(l, bytes, now_ms);
    return bytes;
}

size_t
link_batch_bytes(const link_t *l)
{
    if (l->rate_bps == 0)
        return LINK_START_BATCH;
    uint64_t b = l->rate_bps * LINK_BATCH_MS / 1000;
    if (b < LINK_MIN_BATCH)
        b = LINK_MIN_BATCH;
    if (b > LINK_MAX_BATCH)
        b = LINK_MAX_BATCH;
    return (size_t)b;
}

bool
link_may_send(const link_t *l)
{
    if (l->n == 0)
        return true;
    if (l->n >= LINK_INFLIGHT_MAX)
        return false;
    uint64_t window = l->rate_bps * LINK_WINDOW_MS / 1000;
    uint64_t floor = 2 * (uint64_t)link_batch_bytes(l);
    if (window < floor)
        window = floor;
    if (window > 16 * (uint64_t)LINK_MAX_BATCH)
        window = 16 * (uint64_t)LINK_MAX_BATCH;
    return l->inflight < window;
}

bool
link_is_slow(const link_t *l)
{
    return l->rate_bps != 0 && l->rate_bps < LINK_SLOW_BPS;
}

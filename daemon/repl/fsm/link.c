/*
 * link.c - the rate a session's direction carries, and the message sizes
 * it allows (see link.h). A rate sample counts the bytes confirmed and the
 * time something was in flight (idle time is the sender's, not the
 * line's: a stream that empties its window between bursts, or an ack that
 * covers everything in flight, still gets measured), and closes at a
 * confirmation once LINK_SAMPLE_US of such time passed; the rate is the
 * mean of the last rate and the new sample. Because up to
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
    l->sample_busy = 0;
    l->busy_since = 0;
}

bool
link_sent(link_t *l, uint64_t bytes, uint64_t mark, uint64_t now_us)
{
    if (l->n == LINK_INFLIGHT_MAX)
        return false;
    if (l->n == 0)
        l->busy_since = now_us ? now_us : 1;
    l->q[(l->head + l->n++) % LINK_INFLIGHT_MAX] = (link_msg_t){bytes, mark};
    l->inflight += bytes;
    return true;
}

/* bytes were confirmed now (the messages already popped): adds them and
 * the busy time to the sample, and closes it when it is long enough. */
static void
sampled(link_t *l, uint64_t bytes, uint64_t now_us)
{
    l->confirmed += bytes;
    l->sample_bytes += bytes;
    if (l->busy_since != 0 && now_us > l->busy_since)
        l->sample_busy += now_us - l->busy_since;
    l->busy_since = l->n > 0 ? now_us : 0;
    if (l->sample_busy >=
        (l->rate_bps ? LINK_SAMPLE_US : LINK_FIRST_SAMPLE_US)) {
        uint64_t sample = l->sample_bytes * 1000000 / l->sample_busy;
        l->rate_bps = l->rate_bps ? (l->rate_bps + sample) / 2 : sample;
        l->sample_bytes = 0;
        l->sample_busy = 0;
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
link_confirm_n(link_t *l, unsigned n, uint64_t now_us, uint64_t *mark)
{
    uint64_t bytes = 0;
    while (n-- > 0 && l->n > 0)
        bytes += pop(l, mark);
    if (bytes > 0)
        sampled(l, bytes, now_us);
    return bytes;
}

uint64_t
link_confirm_upto(link_t *l, uint64_t upto, uint64_t now_us)
{
    uint64_t bytes = 0;
    while (l->n > 0 && l->q[l->head].mark <= upto)
        bytes += pop(l, NULL);
    if (bytes > 0)
        sampled(l, bytes, now_us);
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

/*
 * link.h - what one direction of a replication session can carry: the rate
 * at which its messages are confirmed (a Credit for a LogBatch or snapshot
 * chunk, a PublishAck for a Publish), and from it the size of the next
 * message and the bytes the sender may have in flight (PROTOCOL.md §5.4
 * "Slow links").
 *
 * ZeroMQ delivers whole messages only, so a heartbeat waits behind every
 * byte queued before it. Sized so that a message takes about a second at the
 * measured rate and what is in flight about three, the queue ahead of a
 * heartbeat stays a few seconds long on a 2 kB/s line as on a LAN, and a
 * session is never dropped for a big message in transit. Before the first
 * measurement a sender starts small (LINK_START_BATCH, two in flight); on a
 * fast link the rate is measured within LINK_SAMPLE_US and the sizes grow to
 * the usual maximum (LINK_MAX_BATCH, 16 of them).
 *
 * Pure: plain data, times come in as arguments (monotonic microseconds),
 * no allocation. The FIFO of
 * messages in flight is bounded (LINK_INFLIGHT_MAX): a sender that has that
 * many unconfirmed waits too.
 */
#ifndef LINK_H
#define LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LINK_MIN_BATCH    ((size_t)4 * 1024)   /* bytes: ~16 observations */
#define LINK_START_BATCH  ((size_t)8 * 1024)   /* until a rate is measured */
#define LINK_MAX_BATCH    ((size_t)512 * 1024) /* with 16 in flight: 8 MiB */
#define LINK_BATCH_MS     1000   /* a message crosses in about this */
#define LINK_WINDOW_MS    3000   /* what is in flight, in link time */
#define LINK_INFLIGHT_MAX 64     /* messages in flight at most */
#define LINK_SAMPLE_US    250000 /* shortest rate sample, in busy time */
/* the first sample of a link may be shorter: a fast link leaves the start
 * sizes after 20 ms of busy time (a slow one's first confirmation takes
 * longer than that anyway) */
#define LINK_FIRST_SAMPLE_US 20000
/* a link whose measured rate is below this is a slow link (status) */
#define LINK_SLOW_BPS ((uint64_t)64 * 1024)

typedef struct {
    uint64_t bytes; /* of the message */
    uint64_t mark;  /* the caller's: last hub_seq or origin_seq it covers */
} link_msg_t;

typedef struct {
    link_msg_t q[LINK_INFLIGHT_MAX]; /* sent, not confirmed, oldest first */
    unsigned head, n;
    uint64_t inflight;     /* sum of their bytes */
    uint64_t rate_bps;     /* smoothed confirmed bytes/s; 0 = not measured */
    uint64_t sample_bytes; /* confirmed in the running sample */
    uint64_t sample_busy;  /* us of it with something in flight, closed */
    uint64_t busy_since;   /* us the current busy span began; 0 = idle */
    uint64_t confirmed;    /* bytes confirmed in all, this session and before */
} link_t;

/** Forgets what is in flight (a new session, a resend); keeps the rate,
 * which the next session starts from. */
void link_reset(link_t *l);
/** A message of bytes was sent; mark is the caller's (its last seq). False
 * (nothing recorded) when LINK_INFLIGHT_MAX are in flight. */
bool link_sent(link_t *l, uint64_t bytes, uint64_t mark, uint64_t now_us);
/** The oldest n messages in flight were confirmed (a Credit of n): returns
 * their bytes; *mark (may be NULL) gets the last one's mark (unchanged when
 * none was in flight). */
uint64_t link_confirm_n(link_t *l, unsigned n, uint64_t now_us, uint64_t *mark);
/** Every message in flight whose mark is <= upto was confirmed (a
 * cumulative PublishAck): returns their bytes. */
uint64_t link_confirm_upto(link_t *l, uint64_t upto, uint64_t now_us);
/** Bytes for the next message: about LINK_BATCH_MS at the measured rate,
 * within [LINK_MIN_BATCH, LINK_MAX_BATCH]; LINK_START_BATCH unmeasured. */
size_t link_batch_bytes(const link_t *l);
/** Whether another message may be sent now: what is in flight is below
 * about LINK_WINDOW_MS at the measured rate (at least two messages' worth,
 * and below LINK_INFLIGHT_MAX messages). */
bool link_may_send(const link_t *l);
/** Whether the measured rate makes this a slow link (for status). */
bool link_is_slow(const link_t *l);

#endif

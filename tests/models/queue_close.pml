/* queue_bounded.pml (see there and tests/models/README) with a closer:
 * src/queue_bounded.c's bounded_close (TAIL_CLOSED on aq's tail, the
 * closed hint, queue_wake_all of the poppers, then of the pushers) against
 * a pop_wait and two push_waits on an empty queue of capacity 1 (plain
 * waits): the popper may sleep on the empty queue, the second pusher on
 * the full one, and close may come at any moment.
 * Checked, besides queue_bounded.pml's: after close returned, no thread
 * sleeps at quiescence (every sleeper of both sides came back); a pop_wait
 * that returns EPIPE finds aq closed and empty (every item queued before
 * the close has come out or is out by then, none is left behind); a
 * push_wait returns 0 or EPIPE, EPIPE only once close began, always EPIPE
 * if it began after close returned; no enqueue succeeds once TAIL_CLOSED
 * is set (exact counts: items popped + queued == pushes that returned 0).
 *
 * The C until this model found it (src/queue_bounded.c of 512cd89):
 * pop_in_section looked at ring_closed twice, once in dequeue_item (to
 * decide on the exhaustive dequeue) and once for its result; a push and
 * the close between the two looks made it return EPIPE with the pushed
 * item queued (mutant CLOSED_LOOKED_TWICE). The C and the model now
 * answer EPIPE on the first look, the one the exhaustive dequeue followed. */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m200000 */
/* MUTANT: CLOSED_LOOKED_TWICE the C before its fix: pop_in_section returns EPIPE on a second look at ring_closed after dequeue_item saw it open and skipped the exhaustive dequeue: a push and the close in between leave the pushed item queued behind an EPIPE */
/* MUTANT: NO_EXHAUSTIVE dequeue_item without the exhaustive dequeue after the close: a non-exhaustive dequeue that gives up on a negative threshold (between a push's cell CAS and its threshold store) makes pop say EPIPE with an item queued */
/* MUTANT: CLOSE_WAKE_BEFORE_SEAL close bumps seq and wakes before it sets TAIL_CLOSED and closed: a sleeper that reads the bumped seq and then looks before the seal sleeps for ever */

#define CAP 1
#define INIT 0
#define NPOP 1
#define NPUSH 2
#define POP_KINDS 1
#define PUSH_KINDS 1
#define CLOSER 1

#include "queue_bounded.pml"

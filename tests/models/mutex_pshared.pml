/* Model of src/mutex.c, process-shared mutex (no hand-off): threads 0 and 1
 * of one process (token 1), thread 2 of another process (token 2) that may
 * be killed at any moment while it waits: as the single spinner (its claim
 * in m->spinner, its stamp in the state word's token field), or as a
 * sleeper. Checked as mutex.pml: mutual exclusion, and no lost wake-up
 * for the survivors (every thread but the killed one ends). The code is
 * mutex.pml's; see there and tests/models/README. */
/* PAN_CC: -DSAFETY -DCOLLAPSE */
/* PAN: -m200000 */
/* MUTANT: TRUST_FOREIGN_STAMP an unlock that finds a spinner's stamp of another process leaves the wake-up to it (the stamp is taken as a live spinner's): a spinner that was killed strands the sleepers on a free mutex (issue 10, 3a) */

#define PSHARED 1
#define TOKEN(t) (t == 2 -> 2 : 1)
#define KILLABLE 2
#define TIMED 255

#include "mutex.pml"

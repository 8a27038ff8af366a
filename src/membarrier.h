/* membarrier(2), the writer's half of the asymmetric fences of epoch.c (the
 * grace period) and rwlock_bias.c (the bias revocation): one full barrier
 * on every CPU that runs a thread of this process. */
#ifndef SYNC_SRC_MEMBARRIER_H
#define SYNC_SRC_MEMBARRIER_H

#include <linux/membarrier.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Through syscall(), which sets errno on failure: the entry points that
 * can get here save and restore it. */
static inline long membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

/* Registers this process for MEMBARRIER_CMD_PRIVATE_EXPEDITED (again, in a
 * fork child); false where the kernel lacks the command or refuses. */
static inline bool membarrier_register_expedited(void)
{
	long cmds = membarrier(MEMBARRIER_CMD_QUERY);
	return cmds >= 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
	       membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

/* Whether the environment variable `name` (SYNC_EPOCH_NO_MEMBARRIER,
 * SYNC_RWLOCK_NO_BIAS, SYNC_QUEUE_NO_MEMBARRIER) turns the membarrier
 * path off: set to exactly "1"; other values are ignored. */
static inline bool membarrier_turned_off(const char *name)
{
	const char *off = getenv(name);
	return off && strcmp(off, "1") == 0;
}

#endif /* SYNC_SRC_MEMBARRIER_H */

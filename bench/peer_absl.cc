// Abseil's absl::Mutex for the mutex rows (bench/peers.h). Debian builds
// libabsl without NDEBUG, and there absl::Mutex checks for deadlock cycles
// by default (its graph of held locks updated at every Lock: 52 ns per
// uncontended lock+unlock instead of 17 ns, measured on the 2-CPU
// development machine); off here, as in a release (NDEBUG) build of Abseil.
#include <new>

#include <absl/synchronization/mutex.h>

#include "peers.h"

static_assert(sizeof(absl::Mutex) <= BENCH_ABSL_MUTEX_SIZE, "BENCH_ABSL_MUTEX_SIZE");
static_assert(alignof(absl::Mutex) <= 128, "the harness aligns objects to 128 bytes");

extern "C" void bench_absl_mutex_init(void *m)
{
	absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
	new (m) absl::Mutex();
}

extern "C" void bench_absl_mutex_lock(void *m)
{
	static_cast<absl::Mutex *>(m)->Lock();
}

extern "C" void bench_absl_mutex_unlock(void *m)
{
	static_cast<absl::Mutex *>(m)->Unlock();
}

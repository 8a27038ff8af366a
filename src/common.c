/* Library-wide helpers: version string and deadline construction. */
#include <stdint.h>
#include <time.h>

#include <sync/common.h>

#define STR_(x) #x
#define STR(x) STR_(x)

const char *sync_version(void)
{
	return STR(SYNC_VERSION_MAJOR) "." STR(SYNC_VERSION_MINOR) "." STR(
		SYNC_VERSION_PATCH);
}

struct timespec sync_deadline(uint64_t ns)
{
	const time_t time_max = (time_t)(((uint64_t)1 << (sizeof(time_t) * 8 - 1)) - 1);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t add_sec = ns / 1000000000u;
	long nsec = now.tv_nsec + (long)(ns % 1000000000u);
	if (nsec >= 1000000000L) {
		nsec -= 1000000000L;
		add_sec++;
	}
	if (add_sec > (uint64_t)(time_max - now.tv_sec))
		return (struct timespec){ .tv_sec = time_max, .tv_nsec = 999999999L };
	return (struct timespec){ .tv_sec = now.tv_sec + (time_t)add_sec, .tv_nsec = nsec };
}

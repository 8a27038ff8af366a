// oneTBB's tbb::concurrent_hash_map and tbb::concurrent_queue for the map and
// queue rows (bench/peers.h says what each wrapper does).
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>

#include <tbb/concurrent_hash_map.h>
#include <tbb/concurrent_queue.h>

#include "peers.h"

namespace {

using map_t = tbb::concurrent_hash_map<uint64_t, void *>;
using queue_t = tbb::concurrent_queue<void *>;

bool key_of(const void *key, size_t len, uint64_t *out)
{
	if (len != sizeof *out)
		return false;
	std::memcpy(out, key, sizeof *out);
	return true;
}

map_t *map_of(void *m)
{
	return static_cast<map_t *>(m);
}

} // namespace

extern "C" void *bench_tbb_map_create(size_t hint)
{
	return new (std::nothrow) map_t(hint);
}

extern "C" int bench_tbb_map_get(void *m, const void *key, size_t len, void **value)
{
	uint64_t k;
	map_t::const_accessor a;
	if (!key_of(key, len, &k))
		return EINVAL;
	if (!map_of(m)->find(a, k))
		return ENOENT;
	*value = a->second;
	return 0;
}

extern "C" int bench_tbb_map_insert(void *m, const void *key, size_t len, void *value)
{
	uint64_t k;
	if (!key_of(key, len, &k))
		return EINVAL;
	try {
		return map_of(m)->insert(map_t::value_type(k, value)) ? 0 : EEXIST;
	} catch (const std::bad_alloc &) {
		return ENOMEM;
	}
}

extern "C" int bench_tbb_map_remove(void *m, const void *key, size_t len, void **old)
{
	uint64_t k;
	map_t::accessor a;
	if (!key_of(key, len, &k))
		return EINVAL;
	if (!map_of(m)->find(a, k))
		return ENOENT;
	*old = a->second;
	map_of(m)->erase(a);
	return 0;
}

extern "C" int bench_tbb_map_get_or_insert(void *m, const void *key, size_t len, void *value,
					   void **actual)
{
	uint64_t k;
	map_t::const_accessor a;
	if (!key_of(key, len, &k))
		return EINVAL;
	try {
		bool inserted = map_of(m)->insert(a, map_t::value_type(k, value));
		*actual = a->second;
		return inserted ? 0 : EEXIST;
	} catch (const std::bad_alloc &) {
		return ENOMEM;
	}
}

extern "C" size_t bench_tbb_map_size(void *m)
{
	return map_of(m)->size();
}

extern "C" void *bench_tbb_queue_create(void)
{
	return new (std::nothrow) queue_t();
}

extern "C" int bench_tbb_queue_push(void *q, void *item)
{
	try {
		static_cast<queue_t *>(q)->push(item);
		return 0;
	} catch (const std::bad_alloc &) {
		return ENOMEM;
	}
}

extern "C" int bench_tbb_queue_pop(void *q, void **item)
{
	return static_cast<queue_t *>(q)->try_pop(*item) ? 0 : EAGAIN;
}

// moodycamel::ConcurrentQueue (Cameron Desrochers, 2013: a sub-queue per
// producer) for the queue rows, used as most of its users do: enqueue and
// try_dequeue without tokens (bench/peers.h).
#include <cerrno>
#include <new>

#include <concurrentqueue/concurrentqueue.h>

#include "peers.h"

namespace {

using queue_t = moodycamel::ConcurrentQueue<void *>;

queue_t *queue_of(void *q)
{
	return static_cast<queue_t *>(q);
}

} // namespace

extern "C" void *bench_moodycamel_create(void)
{
	return new (std::nothrow) queue_t();
}

extern "C" int bench_moodycamel_push(void *q, void *item)
{
	return queue_of(q)->enqueue(item) ? 0 : ENOMEM; // false: no memory for a block
}

extern "C" int bench_moodycamel_pop(void *q, void **item)
{
	return queue_of(q)->try_dequeue(*item) ? 0 : EAGAIN;
}

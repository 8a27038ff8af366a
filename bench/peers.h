/* The C++ peers (oneTBB, moodycamel::ConcurrentQueue, Abseil) behind plain C
 * functions, one file per library (bench/peer_tbb.cc, peer_moodycamel.cc,
 * peer_absl.cc). Makefile.am compiles a file, and defines BENCH_HAVE_TBB,
 * BENCH_HAVE_MOODYCAMEL or BENCH_HAVE_ABSL, for each library configure
 * found; the rows of a missing one are left out. Errors as the harness's
 * other peers: 0, EAGAIN (pop: empty), EEXIST, ENOENT, ENOMEM or EINVAL. */
#ifndef SYNC_BENCH_PEERS_H
#define SYNC_BENCH_PEERS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* tbb::concurrent_hash_map<uint64_t, void *> with TBB's default hashing
 * (std::hash: the identity for integers); keys must be 8 bytes (EINVAL
 * otherwise). get takes a const_accessor (a reader lock on the element),
 * as its documentation's find does. */
void *bench_tbb_map_create(size_t hint);
int bench_tbb_map_get(void *m, const void *key, size_t len, void **value);
int bench_tbb_map_insert(void *m, const void *key, size_t len, void *value);
int bench_tbb_map_remove(void *m, const void *key, size_t len, void **old);
int bench_tbb_map_get_or_insert(void *m, const void *key, size_t len, void *value,
				void **actual);
size_t bench_tbb_map_size(void *m);

/* tbb::concurrent_queue<void *>: push, try_pop. */
void *bench_tbb_queue_create(void);
int bench_tbb_queue_push(void *q, void *item);
int bench_tbb_queue_pop(void *q, void **item);

/* moodycamel::ConcurrentQueue<void *>: enqueue, try_dequeue, without
 * tokens (each thread gets its implicit producer). */
void *bench_moodycamel_create(void);
int bench_moodycamel_push(void *q, void *item);
int bench_moodycamel_pop(void *q, void **item);

/* absl::Mutex, constructed in place in BENCH_ABSL_MUTEX_SIZE bytes (the
 * harness's object, on its own cache lines). */
#define BENCH_ABSL_MUTEX_SIZE 64
void bench_absl_mutex_init(void *m);
void bench_absl_mutex_lock(void *m);
void bench_absl_mutex_unlock(void *m);

#ifdef __cplusplus
}
#endif

#endif /* SYNC_BENCH_PEERS_H */

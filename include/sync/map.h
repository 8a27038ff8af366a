/* libsync concurrent hash map: byte-string keys (copied), pointer values;
 * lock-free get, per-bucket locked writers, incremental resizing, memory
 * reclaimed through sync_epoch. See sync_map_get(3). */
#ifndef SYNC_MAP_H
#define SYNC_MAP_H

#include <stddef.h>

#include <sync/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sync_map sync_map_t; /* opaque */

SYNC_API sync_map_t *sync_map_create(size_t capacity_hint);
SYNC_API void sync_map_destroy(sync_map_t *m, void (*free_value)(void *));
SYNC_API int sync_map_get(sync_map_t *m, const void *key, size_t keylen,
			  void **value);
SYNC_API int sync_map_put(sync_map_t *m, const void *key, size_t keylen,
			  void *value, void **old);
SYNC_API int sync_map_insert(sync_map_t *m, const void *key, size_t keylen,
			     void *value);
SYNC_API int sync_map_remove(sync_map_t *m, const void *key, size_t keylen,
			     void **old);
SYNC_API int sync_map_get_or_insert(sync_map_t *m, const void *key,
				    size_t keylen, void *value, void **actual);
SYNC_API int sync_map_replace(sync_map_t *m, const void *key, size_t keylen,
			      void *expected, void *desired);
SYNC_API int sync_map_remove_if(sync_map_t *m, const void *key, size_t keylen,
				void *expected);
SYNC_API size_t sync_map_size(sync_map_t *m);
SYNC_API int sync_map_foreach(sync_map_t *m,
			      int (*fn)(const void *key, size_t keylen,
					void *value, void *arg),
			      void *arg);

#ifdef __cplusplus
}
#endif

#endif /* SYNC_MAP_H */

/* Cache-line size used to pad hot words apart, shared by every primitive
 * that aligns its fields (64 bytes on x86-64 and most arm64 cores). */
#ifndef SYNC_SRC_CACHELINE_H
#define SYNC_SRC_CACHELINE_H

#define CACHE_LINE 64

#endif /* SYNC_SRC_CACHELINE_H */

/* libsync: synchronization primitives for Linux. Pulls in every header. */
#ifndef SYNC_H
#define SYNC_H

#include <sync/common.h>
#include <sync/mutex.h>
#include <sync/cond.h>
#include <sync/epoch.h>
#include <sync/sem.h>
#include <sync/spinlock.h>
#include <sync/queue.h>
#include <sync/map.h>
#include <sync/rwlock.h>
#include <sync/debug.h>

#endif /* SYNC_H */

/* Unit tests for <sync/map.h>: one behaviour of the contract per test
 * (../shared/API.md, "Concurrent hash map", and notes/map-design.md). */
#define _GNU_SOURCE /* pthreads under strict -std modes */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <sync.h>

#include "fault_alloc.h"
#include "tap_main.h"
#include "util.h"

/* ---- keys and values ---------------------------------------------------- */

/* Key i is "key-<i>", without a terminating NUL. */
struct key {
	size_t len;
	char bytes[24];
};

static struct key key_of(long i)
{
	struct key k;
	k.len = (size_t)snprintf(k.bytes, sizeof k.bytes, "key-%ld", i);
	return k;
}

/* Which i the bytes are key i of; -1 if they are no such key. */
static long index_of_key(const void *key, size_t len)
{
	char buf[sizeof ((struct key *)0)->bytes];
	if (len < 5 || len >= sizeof buf || memcmp(key, "key-", 4) != 0)
		return -1;
	memcpy(buf, key, len);
	buf[len] = '\0';
	char *end;
	long i = strtol(buf + 4, &end, 10);
	if (*end != '\0' || i < 0)
		return -1;
	struct key k = key_of(i); /* no sign, spaces or leading zeros */
	return k.len == len && memcmp(k.bytes, key, len) == 0 ? i : -1;
}

/* Long key i is "long-key-<i>": over 8 bytes, so it lives in a chain node
 * (an insert of it allocates one), never in a bucket's inline slot. */
static struct key long_key_of(long i)
{
	struct key k;
	k.len = (size_t)snprintf(k.bytes, sizeof k.bytes, "long-key-%ld", i);
	return k;
}

/* Short key i is "k<i>": at most 8 bytes for i < 10^7, so it fits a slot. */
static struct key short_key_of(long i)
{
	struct key k;
	k.len = (size_t)snprintf(k.bytes, sizeof k.bytes, "k%ld", i);
	return k;
}

/* Key i of a set of long and short keys, alternating. */
static struct key mixed_key_of(long i)
{
	return i % 2 ? long_key_of(i) : key_of(i);
}

typedef struct key (*key_fn)(long);

/* Value i (i >= 0) as a distinct non-NULL pointer, never dereferenced. */
static void *value_of(long i)
{
	return (void *)(uintptr_t)(i + 1);
}

/* Offset of the values that replace value_of(i) under key i. */
#define REPLACED (1L << 30)

/* What a call leaves in an out pointer it should not set. */
static int untouched_marker;
#define UNTOUCHED ((void *)&untouched_marker)

static int get_key(sync_map_t *m, long i, void **value)
{
	struct key k = key_of(i);
	return sync_map_get(m, k.bytes, k.len, value);
}

static int put_key(sync_map_t *m, long i, void *value, void **old)
{
	struct key k = key_of(i);
	return sync_map_put(m, k.bytes, k.len, value, old);
}

static int insert_key(sync_map_t *m, long i, void *value)
{
	struct key k = key_of(i);
	return sync_map_insert(m, k.bytes, k.len, value);
}

static int remove_key(sync_map_t *m, long i, void **old)
{
	struct key k = key_of(i);
	return sync_map_remove(m, k.bytes, k.len, old);
}

static int get_or_insert_key(sync_map_t *m, long i, void *value, void **actual)
{
	struct key k = key_of(i);
	return sync_map_get_or_insert(m, k.bytes, k.len, value, actual);
}

static int replace_key(sync_map_t *m, long i, void *expected, void *desired)
{
	struct key k = key_of(i);
	return sync_map_replace(m, k.bytes, k.len, expected, desired);
}

static int remove_if_key(sync_map_t *m, long i, void *expected)
{
	struct key k = key_of(i);
	return sync_map_remove_if(m, k.bytes, k.len, expected);
}

static sync_map_t *new_map(size_t hint)
{
	sync_map_t *m = sync_map_create(hint);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(sync_map_size(m), 0);
	return m;
}

/* Hot loops check with `if` and ck_abort_msg: each passing ck_assert costs
 * Check a message to the parent process. */

/* Inserts keys from .. to - 1 with their values. */
static void insert_keys(sync_map_t *m, long from, long to)
{
	for (long i = from; i < to; i++) {
		int r = insert_key(m, i, value_of(i));
		if (r != 0)
			ck_abort_msg("insert of key %ld returned %d", i, r);
	}
}

/* Removes keys from .. to - 1, each holding its value. */
static void remove_keys(sync_map_t *m, long from, long to)
{
	for (long i = from; i < to; i++) {
		void *old = UNTOUCHED;
		int r = remove_key(m, i, &old);
		if (r != 0 || old != value_of(i))
			ck_abort_msg("remove of key %ld returned %d, old %p", i, r, old);
	}
}

/* Keys from .. to - 1 are there with their values. */
static void check_found(sync_map_t *m, long from, long to)
{
	for (long i = from; i < to; i++) {
		void *value = UNTOUCHED;
		int r = get_key(m, i, &value);
		if (r != 0 || value != value_of(i))
			ck_abort_msg("get of key %ld returned %d, value %p, expected %p", i, r,
				     value, value_of(i));
	}
}

/* Keys from .. to - 1 are not there. */
static void check_absent(sync_map_t *m, long from, long to)
{
	for (long i = from; i < to; i++) {
		void *value = UNTOUCHED;
		int r = get_key(m, i, &value);
		if (r != ENOENT)
			ck_abort_msg("get of absent key %ld returned %d, value %p", i, r, value);
	}
}

/* The same checks for keys made by kf: keys from .. to - 1 are there with
 * their values (found), or are not there (!found). */
static void check_keys(sync_map_t *m, key_fn kf, long from, long to, bool found)
{
	for (long i = from; i < to; i++) {
		struct key k = kf(i);
		void *value = UNTOUCHED;
		int r = sync_map_get(m, k.bytes, k.len, &value);
		if (found && (r != 0 || value != value_of(i)))
			ck_abort_msg("get of key \"%.*s\" returned %d, value %p, expected %p",
				     (int)k.len, k.bytes, r, value, value_of(i));
		if (!found && r != ENOENT)
			ck_abort_msg("get of absent key \"%.*s\" returned %d, value %p",
				     (int)k.len, k.bytes, r, value);
	}
}

/* ---- foreach tallies ---------------------------------------------------- */

/* What foreach showed of keys from .. to - 1, and of any other key. */
struct tally {
	long from, to;
	int *seen;         /* visits per key */
	long visits;       /* all calls of fn */
	long strangers;    /* keys outside from .. to - 1 */
	long wrong_values; /* value not value_of(i) */
	long wrong_first;  /* the first such key */
};

static void tally_init(struct tally *t, long from, long to)
{
	*t = (struct tally){ from, to, calloc((size_t)(to - from + 1), sizeof(int)), 0, 0, 0, -1 };
	ck_assert_ptr_nonnull(t->seen);
}

static void tally_free(struct tally *t)
{
	free(t->seen);
}

/* Counts one visit; the key's index in the tally, or -1. */
static long tally_visit(struct tally *t, const void *key, size_t keylen, void *value,
			long value_offset)
{
	t->visits++;
	long i = index_of_key(key, keylen);
	if (i < t->from || i >= t->to) {
		t->strangers++;
		return -1;
	}
	t->seen[i - t->from]++;
	if (value != value_of(i + value_offset) && t->wrong_values++ == 0)
		t->wrong_first = i;
	return i;
}

static int tally_key(const void *key, size_t keylen, void *value, void *arg)
{
	tally_visit(arg, key, keylen, value, 0);
	return 0;
}

/* Every key from .. to - 1 was seen exactly once, nothing else at all. */
static void check_tally_exact(struct tally *t)
{
	for (long i = t->from; i < t->to; i++)
		if (t->seen[i - t->from] != 1)
			ck_abort_msg("foreach visited key %ld %d times", i, t->seen[i - t->from]);
	ck_assert_msg(t->strangers == 0, "foreach visited %ld unknown keys", t->strangers);
	ck_assert_msg(t->wrong_values == 0, "foreach showed %ld wrong values, first at key %ld",
		      t->wrong_values, t->wrong_first);
}

/* foreach visits keys from .. to - 1 once each with their values, and
 * nothing else. */
static void check_foreach_exact(sync_map_t *m, long from, long to)
{
	struct tally t;
	tally_init(&t, from, to);
	ck_assert_int_eq(sync_map_foreach(m, tally_key, &t), 0);
	check_tally_exact(&t);
	tally_free(&t);
}

/* The map holds exactly keys from .. to - 1, with their values. */
static void check_exactly(sync_map_t *m, long from, long to)
{
	ck_assert_uint_eq(sync_map_size(m), (size_t)(to - from));
	check_found(m, from, to);
	check_absent(m, to, to + 10);
	check_foreach_exact(m, from, to);
}

/* ---- create and destroy ------------------------------------------------- */

START_TEST(create_returns_empty_map)
{
	sync_map_t *m = new_map(0);
	ck_assert_uint_eq(sync_map_size(m), 0);
	check_absent(m, 0, 10);
	check_foreach_exact(m, 0, 0);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(create_with_hint_zero_holds_keys)
{
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, 100);
	check_exactly(m, 0, 100);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(create_with_small_hint_holds_more_keys_than_hinted)
{
	sync_map_t *m = new_map(1);
	insert_keys(m, 0, 1000);
	check_exactly(m, 0, 1000);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(create_with_large_hint_holds_keys)
{
	sync_map_t *m = new_map(1 << 20);
	insert_keys(m, 0, 1000);
	check_exactly(m, 0, 1000);
	remove_keys(m, 0, 1000);
	check_exactly(m, 0, 0);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(create_with_hint_too_large_to_allocate_returns_null_with_enomem)
{
	const size_t hints[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2 + 1, SIZE_MAX / 2,
				 (size_t)1 << 62, (size_t)1 << 60, (size_t)1 << 56 };
	for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++) {
		errno = 0;
		sync_map_t *m = sync_map_create(hints[i]);
		int e = errno;
		ck_assert_msg(m == NULL, "create(%#zx) returned a map", hints[i]);
		ck_assert_msg(e == ENOMEM, "create(%#zx): errno %d", hints[i], e);
	}
}
END_TEST

START_TEST(create_without_memory_returns_null_with_enomem)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_destroy(new_map(0), NULL); /* one-time set-up done */
	fail_allocations(0, 1, 0);
	errno = 0;
	sync_map_t *m = sync_map_create(0);
	int e = errno;
	long failed = allocations_failed();
	ck_assert_ptr_null(m);
	ck_assert_int_eq(e, ENOMEM);
	ck_assert_int_ge(failed, 1);
}
END_TEST

START_TEST(create_with_any_allocation_failing_returns_null_with_enomem_and_leaks_nothing)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_destroy(new_map(100), NULL);
	sync_epoch_barrier();
	long before = heap_in_use();
	bool created = false;
	for (long n = 1; !created; n++) {
		ck_assert_int_lt(n, 100);
		fail_allocations(n, 0, 0);
		errno = 0;
		sync_map_t *m = sync_map_create(100);
		int e = errno;
		long failed = allocations_failed();
		if (m) {
			created = true;
			ck_assert_int_eq(failed, 0); /* all of create's allocations are behind */
			insert_keys(m, 0, 200);
			check_exactly(m, 0, 200);
			sync_map_destroy(m, NULL);
		} else {
			ck_assert_int_eq(failed, 1);
			ck_assert_msg(e == ENOMEM, "allocation %ld failed: errno %d", n, e);
		}
		sync_epoch_barrier();
		long after = heap_in_use();
		ck_assert_msg(after <= before, "allocation %ld failed: heap grew from %ld to %ld",
			      n, before, after);
	}
}
END_TEST

START_TEST(destroy_of_null_map_does_nothing)
{
	sync_map_destroy(NULL, NULL);
	sync_map_destroy(NULL, free);
}
END_TEST

struct counted {
	int freed;
};

static void count_free(void *value)
{
	((struct counted *)value)->freed++;
}

START_TEST(destroy_of_empty_map_calls_free_value_never)
{
	static struct counted c[10];
	sync_map_t *m = new_map(0);
	for (long i = 0; i < 10; i++)
		ck_assert_int_eq(insert_key(m, i, &c[i]), 0);
	for (long i = 0; i < 10; i++)
		ck_assert_int_eq(remove_key(m, i, NULL), 0);
	sync_map_destroy(m, count_free);
	sync_epoch_barrier();
	for (long i = 0; i < 10; i++)
		ck_assert_int_eq(c[i].freed, 0);
	sync_map_destroy(new_map(0), count_free);
}
END_TEST

START_TEST(destroy_calls_free_value_once_per_value_still_in_map)
{
	enum { N = 1000 };
	static struct counted held[N], removed[N], replaced[N], replacement[N];
	sync_map_t *m = new_map(0);
	for (long i = 0; i < N; i++)
		ck_assert_int_eq(insert_key(m, i, i % 3 == 2 ? &replaced[i] : &held[i]), 0);
	for (long i = 0; i < N; i++) {
		void *old = UNTOUCHED;
		if (i % 3 == 1) {
			ck_assert_int_eq(remove_key(m, i, &old), 0);
			ck_assert_ptr_eq(old, &held[i]);
			ck_assert_int_eq(insert_key(m, i + N, &removed[i]), 0);
			ck_assert_int_eq(remove_key(m, i + N, NULL), 0);
		} else if (i % 3 == 2) {
			ck_assert_int_eq(put_key(m, i, &replacement[i], &old), 0);
			ck_assert_ptr_eq(old, &replaced[i]);
		}
	}
	sync_map_destroy(m, count_free);
	sync_epoch_barrier(); /* anything destroy left retired has run */
	for (long i = 0; i < N; i++) {
		ck_assert_int_eq(held[i].freed, i % 3 == 0);
		ck_assert_int_eq(removed[i].freed, 0);
		ck_assert_int_eq(replaced[i].freed, 0);
		ck_assert_int_eq(replacement[i].freed, i % 3 == 2);
	}
}
END_TEST

START_TEST(destroy_in_any_state_of_growth_calls_free_value_once_per_value)
{
	/* every number of keys from 1 to 1200: destroy meets each step of
	 * every resize on the way to 2048 buckets, tables half migrated included */
	enum { N = 1200 };
	static struct counted c[N];
	for (long n = 1; n <= N; n++) {
		sync_map_t *m = new_map(0);
		for (long i = 0; i < n; i++)
			if (insert_key(m, i, &c[i]) != 0)
				ck_abort_msg("n %ld: insert of key %ld failed", n, i);
		sync_map_destroy(m, count_free);
		for (long i = 0; i < n; i++) {
			if (c[i].freed != 1)
				ck_abort_msg("%ld keys: value of key %ld freed %d times", n, i,
					     c[i].freed);
			c[i].freed = 0;
		}
	}
	sync_epoch_barrier();
	for (long i = 0; i < N; i++)
		ck_assert_int_eq(c[i].freed, 0);
}
END_TEST

START_TEST(destroy_in_any_state_of_shrinking_calls_free_value_once_per_value)
{
	enum { N = 1200 };
	static struct counted c[N];
	for (long left = 0; left < N; left += 7) {
		sync_map_t *m = new_map(0);
		for (long i = 0; i < N; i++)
			if (insert_key(m, i, &c[i]) != 0)
				ck_abort_msg("insert of key %ld failed", i);
		for (long i = left; i < N; i++)
			if (remove_key(m, i, NULL) != 0)
				ck_abort_msg("remove of key %ld failed", i);
		sync_map_destroy(m, count_free);
		for (long i = 0; i < N; i++) {
			if (c[i].freed != (i < left))
				ck_abort_msg("%ld keys left: value of key %ld freed %d times", left, i,
					     c[i].freed);
			c[i].freed = 0;
		}
	}
}
END_TEST

START_TEST(destroy_with_null_free_value_leaves_values_alone)
{
	static struct counted c[100];
	sync_map_t *m = new_map(0);
	for (long i = 0; i < 100; i++)
		ck_assert_int_eq(insert_key(m, i, &c[i]), 0);
	sync_map_destroy(m, NULL); /* freeing a static value would abort */
	sync_epoch_barrier();
	for (long i = 0; i < 100; i++)
		ck_assert_int_eq(c[i].freed, 0);
}
END_TEST

START_TEST(destroy_with_free_passes_each_value_to_free)
{
	sync_map_t *m = new_map(0);
	for (long i = 0; i < 1000; i++) {
		int *v = malloc(sizeof *v);
		ck_assert_ptr_nonnull(v);
		ck_assert_int_eq(insert_key(m, i, v), 0);
	}
	sync_map_destroy(m, free); /* a double or wrong free aborts in glibc */
	sync_epoch_barrier();
}
END_TEST

START_TEST(destroy_returns_the_maps_memory)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_t *warm = new_map(0); /* one-time set-up of the epoch domain */
	insert_keys(warm, 0, 1000);
	remove_keys(warm, 0, 1000);
	sync_map_destroy(warm, NULL);
	sync_epoch_barrier();
	long before = heap_in_use();
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, 20000);
	remove_keys(m, 0, 5000);
	sync_map_destroy(m, NULL);
	sync_epoch_barrier();
	long after = heap_in_use();
	ck_assert_msg(after <= before, "heap grew from %ld to %ld bytes", before, after);
}
END_TEST

START_TEST(maps_are_independent)
{
	sync_map_t *a = new_map(0), *b = new_map(0);
	insert_keys(a, 0, 100);
	for (long i = 50; i < 150; i++)
		ck_assert_int_eq(insert_key(b, i, value_of(i + REPLACED)), 0);
	ck_assert_uint_eq(sync_map_size(a), 100);
	ck_assert_uint_eq(sync_map_size(b), 100);
	void *v = UNTOUCHED;
	ck_assert_int_eq(get_key(a, 60, &v), 0);
	ck_assert_ptr_eq(v, value_of(60));
	ck_assert_int_eq(get_key(b, 60, &v), 0);
	ck_assert_ptr_eq(v, value_of(60 + REPLACED));
	ck_assert_int_eq(get_key(b, 10, &v), ENOENT);
	remove_keys(a, 0, 100);
	ck_assert_uint_eq(sync_map_size(b), 100);
	ck_assert_int_eq(get_key(b, 60, &v), 0);
	sync_map_destroy(a, NULL);
	sync_map_destroy(b, NULL);
}
END_TEST

/* ---- argument errors ---------------------------------------------------- */

/* The map every argument-error test starts from: keys 0 .. 9. */
static sync_map_t *sample_map(void)
{
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, 10);
	return m;
}

static void check_sample_and_destroy(sync_map_t *m)
{
	check_exactly(m, 0, 10);
	sync_map_destroy(m, NULL);
}

START_TEST(get_from_null_map_returns_einval)
{
	struct key k = key_of(1);
	void *v = UNTOUCHED;
	ck_assert_int_eq(sync_map_get(NULL, k.bytes, k.len, &v), EINVAL);
	ck_assert_int_eq(sync_map_get(NULL, NULL, 0, &v), EINVAL);
	ck_assert_int_eq(sync_map_get(NULL, k.bytes, k.len, NULL), EINVAL);
}
END_TEST

START_TEST(get_with_null_key_and_nonzero_length_returns_einval)
{
	sync_map_t *m = sample_map();
	void *v = UNTOUCHED;
	ck_assert_int_eq(sync_map_get(m, NULL, 1, &v), EINVAL);
	ck_assert_int_eq(sync_map_get(m, NULL, 5, &v), EINVAL);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(get_into_null_value_pointer_returns_einval)
{
	sync_map_t *m = sample_map();
	struct key present = key_of(3), absent = key_of(30);
	ck_assert_int_eq(sync_map_get(m, present.bytes, present.len, NULL), EINVAL);
	ck_assert_int_eq(sync_map_get(m, absent.bytes, absent.len, NULL), EINVAL);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(put_to_null_map_returns_einval)
{
	struct key k = key_of(1);
	void *old = UNTOUCHED;
	ck_assert_int_eq(sync_map_put(NULL, k.bytes, k.len, value_of(1), &old), EINVAL);
	ck_assert_int_eq(sync_map_put(NULL, k.bytes, k.len, value_of(1), NULL), EINVAL);
}
END_TEST

START_TEST(put_with_null_key_and_nonzero_length_returns_einval_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	void *old = UNTOUCHED;
	ck_assert_int_eq(sync_map_put(m, NULL, 4, value_of(99), &old), EINVAL);
	ck_assert_int_eq(sync_map_put(m, NULL, 1, value_of(99), NULL), EINVAL);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(put_of_null_value_returns_einval_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	struct key present = key_of(3), absent = key_of(30);
	void *old = UNTOUCHED;
	ck_assert_int_eq(sync_map_put(m, present.bytes, present.len, NULL, &old), EINVAL);
	ck_assert_int_eq(sync_map_put(m, absent.bytes, absent.len, NULL, &old), EINVAL);
	ck_assert_int_eq(sync_map_put(m, present.bytes, present.len, NULL, NULL), EINVAL);
	ck_assert_int_eq(sync_map_put(m, NULL, 0, NULL, NULL), EINVAL);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(insert_to_null_map_returns_einval)
{
	struct key k = key_of(1);
	ck_assert_int_eq(sync_map_insert(NULL, k.bytes, k.len, value_of(1)), EINVAL);
	ck_assert_int_eq(sync_map_insert(NULL, NULL, 0, value_of(1)), EINVAL);
}
END_TEST

START_TEST(insert_with_null_key_and_nonzero_length_returns_einval_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(sync_map_insert(m, NULL, 4, value_of(99)), EINVAL);
	ck_assert_int_eq(sync_map_insert(m, NULL, 1, value_of(99)), EINVAL);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(insert_of_null_value_returns_einval_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	struct key present = key_of(3), absent = key_of(30);
	ck_assert_int_eq(sync_map_insert(m, present.bytes, present.len, NULL), EINVAL);
	ck_assert_int_eq(sync_map_insert(m, absent.bytes, absent.len, NULL), EINVAL);
	ck_assert_int_eq(sync_map_insert(m, NULL, 0, NULL), EINVAL);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(remove_from_null_map_returns_einval)
{
	struct key k = key_of(1);
	void *old = UNTOUCHED;
	ck_assert_int_eq(sync_map_remove(NULL, k.bytes, k.len, &old), EINVAL);
	ck_assert_int_eq(sync_map_remove(NULL, k.bytes, k.len, NULL), EINVAL);
}
END_TEST

START_TEST(remove_with_null_key_and_nonzero_length_returns_einval_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	void *old = UNTOUCHED;
	ck_assert_int_eq(sync_map_remove(m, NULL, 4, &old), EINVAL);
	ck_assert_int_eq(sync_map_remove(m, NULL, 1, NULL), EINVAL);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(get_or_insert_to_null_map_returns_einval)
{
	struct key k = key_of(1);
	void *actual = UNTOUCHED;
	ck_assert_int_eq(sync_map_get_or_insert(NULL, k.bytes, k.len, value_of(1), &actual),
			 EINVAL);
	ck_assert_int_eq(sync_map_get_or_insert(NULL, NULL, 0, value_of(1), NULL), EINVAL);
	ck_assert_ptr_eq(actual, UNTOUCHED);
}
END_TEST

START_TEST(get_or_insert_with_null_key_and_nonzero_length_returns_einval_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	void *actual = UNTOUCHED;
	ck_assert_int_eq(sync_map_get_or_insert(m, NULL, 4, value_of(99), &actual), EINVAL);
	ck_assert_int_eq(sync_map_get_or_insert(m, NULL, 1, value_of(99), NULL), EINVAL);
	ck_assert_ptr_eq(actual, UNTOUCHED);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(get_or_insert_of_null_value_returns_einval_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	struct key present = key_of(3), absent = key_of(30);
	void *actual = UNTOUCHED;
	ck_assert_int_eq(sync_map_get_or_insert(m, present.bytes, present.len, NULL, &actual),
			 EINVAL);
	ck_assert_int_eq(sync_map_get_or_insert(m, absent.bytes, absent.len, NULL, &actual),
			 EINVAL);
	ck_assert_int_eq(sync_map_get_or_insert(m, NULL, 0, NULL, NULL), EINVAL);
	ck_assert_ptr_eq(actual, UNTOUCHED);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(replace_in_null_map_returns_einval)
{
	struct key k = key_of(1);
	ck_assert_int_eq(sync_map_replace(NULL, k.bytes, k.len, value_of(1), value_of(2)), EINVAL);
	ck_assert_int_eq(sync_map_replace(NULL, NULL, 0, value_of(1), value_of(2)), EINVAL);
}
END_TEST

START_TEST(replace_with_null_key_and_nonzero_length_returns_einval_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(sync_map_replace(m, NULL, 4, value_of(3), value_of(99)), EINVAL);
	ck_assert_int_eq(sync_map_replace(m, NULL, 1, value_of(3), value_of(99)), EINVAL);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(replace_with_null_expected_or_desired_returns_einval_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	struct key present = key_of(3), absent = key_of(30);
	ck_assert_int_eq(sync_map_replace(m, present.bytes, present.len, value_of(3), NULL),
			 EINVAL);
	ck_assert_int_eq(sync_map_replace(m, present.bytes, present.len, NULL, value_of(99)),
			 EINVAL);
	ck_assert_int_eq(sync_map_replace(m, present.bytes, present.len, NULL, NULL), EINVAL);
	ck_assert_int_eq(sync_map_replace(m, absent.bytes, absent.len, value_of(3), NULL),
			 EINVAL);
	ck_assert_int_eq(sync_map_replace(m, absent.bytes, absent.len, NULL, value_of(99)),
			 EINVAL);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(remove_if_from_null_map_returns_einval)
{
	struct key k = key_of(1);
	ck_assert_int_eq(sync_map_remove_if(NULL, k.bytes, k.len, value_of(1)), EINVAL);
	ck_assert_int_eq(sync_map_remove_if(NULL, NULL, 0, value_of(1)), EINVAL);
}
END_TEST

START_TEST(remove_if_with_null_key_and_nonzero_length_returns_einval_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(sync_map_remove_if(m, NULL, 4, value_of(3)), EINVAL);
	ck_assert_int_eq(sync_map_remove_if(m, NULL, 1, value_of(3)), EINVAL);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(remove_if_with_null_expected_returns_einval_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	struct key present = key_of(3), absent = key_of(30);
	ck_assert_int_eq(sync_map_remove_if(m, present.bytes, present.len, NULL), EINVAL);
	ck_assert_int_eq(sync_map_remove_if(m, absent.bytes, absent.len, NULL), EINVAL);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(size_of_null_map_is_zero)
{
	ck_assert_uint_eq(sync_map_size(NULL), 0);
}
END_TEST

static int never_called(const void *key, size_t keylen, void *value, void *arg)
{
	(void)key, (void)keylen, (void)value;
	(*(int *)arg)++;
	return 0;
}

START_TEST(foreach_of_null_map_returns_einval)
{
	int calls = 0;
	ck_assert_int_eq(sync_map_foreach(NULL, never_called, &calls), EINVAL);
	ck_assert_int_eq(sync_map_foreach(NULL, NULL, NULL), EINVAL);
	ck_assert_int_eq(calls, 0);
}
END_TEST

START_TEST(foreach_with_null_fn_returns_einval_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(sync_map_foreach(m, NULL, NULL), EINVAL);
	sync_map_t *empty = new_map(0);
	ck_assert_int_eq(sync_map_foreach(empty, NULL, NULL), EINVAL);
	sync_map_destroy(empty, NULL);
	check_sample_and_destroy(m);
}
END_TEST

/* ---- get, put, insert, remove ------------------------------------------- */

START_TEST(get_of_absent_key_returns_enoent)
{
	sync_map_t *m = sample_map();
	void *v = UNTOUCHED;
	ck_assert_int_eq(get_key(m, 10, &v), ENOENT);
	ck_assert_int_eq(get_key(m, 12345, &v), ENOENT);
	ck_assert_int_eq(sync_map_get(m, "key-", 4, &v), ENOENT);
	ck_assert_int_eq(sync_map_get(m, NULL, 0, &v), ENOENT);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(get_of_key_in_empty_map_returns_enoent)
{
	sync_map_t *m = new_map(0);
	void *v = UNTOUCHED;
	ck_assert_int_eq(get_key(m, 0, &v), ENOENT);
	ck_assert_int_eq(sync_map_get(m, NULL, 0, &v), ENOENT);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(get_returns_inserted_value)
{
	sync_map_t *m = new_map(0);
	int object;
	void *v = UNTOUCHED;
	ck_assert_int_eq(insert_key(m, 7, &object), 0);
	ck_assert_int_eq(get_key(m, 7, &v), 0);
	ck_assert_ptr_eq(v, &object);
	ck_assert_uint_eq(sync_map_size(m), 1);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(get_returns_value_put_for_new_key)
{
	sync_map_t *m = new_map(0);
	void *v = UNTOUCHED;
	ck_assert_int_eq(put_key(m, 7, value_of(7), NULL), 0);
	ck_assert_int_eq(get_key(m, 7, &v), 0);
	ck_assert_ptr_eq(v, value_of(7));
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(get_does_not_change_the_map)
{
	sync_map_t *m = sample_map();
	for (int round = 0; round < 3; round++)
		check_found(m, 0, 10);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(insert_of_present_key_returns_eexist_and_keeps_value)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(insert_key(m, 4, value_of(4 + REPLACED)), EEXIST);
	ck_assert_int_eq(insert_key(m, 4, value_of(4)), EEXIST);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(insert_of_absent_key_adds_it)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(insert_key(m, 10, value_of(10)), 0);
	check_exactly(m, 0, 11);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(put_of_absent_key_adds_it_and_sets_old_to_null)
{
	sync_map_t *m = sample_map();
	void *old = UNTOUCHED;
	ck_assert_int_eq(put_key(m, 10, value_of(10), &old), 0);
	ck_assert_ptr_null(old);
	check_exactly(m, 0, 11);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(put_of_present_key_replaces_value_and_returns_old_one)
{
	sync_map_t *m = sample_map();
	void *old = UNTOUCHED, *v = UNTOUCHED;
	ck_assert_int_eq(put_key(m, 4, value_of(4 + REPLACED), &old), 0);
	ck_assert_ptr_eq(old, value_of(4));
	ck_assert_int_eq(get_key(m, 4, &v), 0);
	ck_assert_ptr_eq(v, value_of(4 + REPLACED));
	ck_assert_uint_eq(sync_map_size(m), 10);
	old = UNTOUCHED;
	ck_assert_int_eq(put_key(m, 4, value_of(4), &old), 0);
	ck_assert_ptr_eq(old, value_of(4 + REPLACED));
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(put_of_same_value_again_returns_it_as_old)
{
	sync_map_t *m = sample_map();
	void *old = UNTOUCHED;
	ck_assert_int_eq(put_key(m, 4, value_of(4), &old), 0);
	ck_assert_ptr_eq(old, value_of(4));
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(put_with_null_old_pointer_adds_and_replaces)
{
	sync_map_t *m = new_map(0);
	void *v = UNTOUCHED;
	ck_assert_int_eq(put_key(m, 1, value_of(1), NULL), 0);
	ck_assert_int_eq(put_key(m, 1, value_of(2), NULL), 0);
	ck_assert_int_eq(get_key(m, 1, &v), 0);
	ck_assert_ptr_eq(v, value_of(2));
	ck_assert_uint_eq(sync_map_size(m), 1);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(remove_of_absent_key_returns_enoent_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	void *old = UNTOUCHED;
	ck_assert_int_eq(remove_key(m, 10, &old), ENOENT);
	ck_assert_int_eq(remove_key(m, 10, NULL), ENOENT);
	ck_assert_int_eq(sync_map_remove(m, NULL, 0, &old), ENOENT);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(remove_from_empty_map_returns_enoent)
{
	sync_map_t *m = new_map(0);
	ck_assert_int_eq(remove_key(m, 0, NULL), ENOENT);
	ck_assert_uint_eq(sync_map_size(m), 0);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(remove_returns_value_and_key_is_gone)
{
	sync_map_t *m = sample_map();
	void *old = UNTOUCHED, *v = UNTOUCHED;
	ck_assert_int_eq(remove_key(m, 9, &old), 0);
	ck_assert_ptr_eq(old, value_of(9));
	ck_assert_int_eq(get_key(m, 9, &v), ENOENT);
	check_exactly(m, 0, 9);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(remove_returns_latest_put_value)
{
	sync_map_t *m = sample_map();
	void *old = UNTOUCHED;
	ck_assert_int_eq(put_key(m, 9, value_of(9 + REPLACED), NULL), 0);
	ck_assert_int_eq(remove_key(m, 9, &old), 0);
	ck_assert_ptr_eq(old, value_of(9 + REPLACED));
	check_exactly(m, 0, 9);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(remove_with_null_old_pointer_removes)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(remove_key(m, 9, NULL), 0);
	check_exactly(m, 0, 9);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(second_remove_of_key_returns_enoent)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(remove_key(m, 9, NULL), 0);
	ck_assert_int_eq(remove_key(m, 9, NULL), ENOENT);
	check_exactly(m, 0, 9);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(removed_key_can_be_inserted_and_put_again)
{
	sync_map_t *m = sample_map();
	void *old = UNTOUCHED;
	ck_assert_int_eq(remove_key(m, 9, NULL), 0);
	ck_assert_int_eq(insert_key(m, 9, value_of(9)), 0);
	check_exactly(m, 0, 10);
	ck_assert_int_eq(remove_key(m, 9, NULL), 0);
	ck_assert_int_eq(put_key(m, 9, value_of(9), &old), 0);
	ck_assert_ptr_null(old);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(same_value_under_two_keys_is_kept_under_both)
{
	sync_map_t *m = new_map(0);
	int object;
	void *v = UNTOUCHED;
	ck_assert_int_eq(insert_key(m, 1, &object), 0);
	ck_assert_int_eq(insert_key(m, 2, &object), 0);
	ck_assert_uint_eq(sync_map_size(m), 2);
	ck_assert_int_eq(remove_key(m, 1, NULL), 0);
	ck_assert_int_eq(get_key(m, 2, &v), 0);
	ck_assert_ptr_eq(v, &object);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(operations_inside_callers_read_side_section_work)
{
	sync_map_t *m = new_map(0);
	void *v = UNTOUCHED;
	sync_epoch_enter();
	insert_keys(m, 0, 100);
	ck_assert_int_eq(put_key(m, 5, value_of(5 + REPLACED), NULL), 0);
	ck_assert_int_eq(get_key(m, 5, &v), 0);
	ck_assert_ptr_eq(v, value_of(5 + REPLACED));
	ck_assert_int_eq(remove_key(m, 5, NULL), 0);
	remove_keys(m, 50, 100);
	ck_assert_uint_eq(sync_map_size(m), 49);
	sync_epoch_exit();
	ck_assert_int_eq(insert_key(m, 5, value_of(5)), 0);
	check_exactly(m, 0, 50);
	sync_map_destroy(m, NULL);
}
END_TEST

/* ---- get_or_insert, replace, remove_if ---------------------------------- */

START_TEST(get_or_insert_of_absent_key_inserts_and_sets_actual_to_value)
{
	sync_map_t *m = sample_map();
	void *actual = UNTOUCHED;
	ck_assert_int_eq(get_or_insert_key(m, 10, value_of(10), &actual), 0);
	ck_assert_ptr_eq(actual, value_of(10));
	check_exactly(m, 0, 11);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(get_or_insert_of_present_key_returns_eexist_with_value_present_and_keeps_it)
{
	sync_map_t *m = sample_map();
	void *actual = UNTOUCHED;
	ck_assert_int_eq(get_or_insert_key(m, 4, value_of(4 + REPLACED), &actual), EEXIST);
	ck_assert_ptr_eq(actual, value_of(4));
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(get_or_insert_returns_latest_value_stored)
{
	sync_map_t *m = sample_map();
	void *actual = UNTOUCHED;
	ck_assert_int_eq(put_key(m, 4, value_of(4 + REPLACED), NULL), 0);
	ck_assert_int_eq(get_or_insert_key(m, 4, value_of(99), &actual), EEXIST);
	ck_assert_ptr_eq(actual, value_of(4 + REPLACED));
	ck_assert_int_eq(replace_key(m, 4, value_of(4 + REPLACED), value_of(4)), 0);
	ck_assert_int_eq(get_or_insert_key(m, 4, value_of(99), &actual), EEXIST);
	ck_assert_ptr_eq(actual, value_of(4));
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(get_or_insert_with_null_actual_inserts_once_then_returns_eexist)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(get_or_insert_key(m, 10, value_of(10), NULL), 0);
	ck_assert_int_eq(get_or_insert_key(m, 10, value_of(10 + REPLACED), NULL), EEXIST);
	ck_assert_int_eq(get_or_insert_key(m, 3, value_of(3 + REPLACED), NULL), EEXIST);
	check_exactly(m, 0, 11);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(get_or_insert_after_remove_inserts_again)
{
	sync_map_t *m = sample_map();
	void *actual = UNTOUCHED;
	ck_assert_int_eq(remove_key(m, 4, NULL), 0);
	ck_assert_int_eq(get_or_insert_key(m, 4, value_of(4), &actual), 0);
	ck_assert_ptr_eq(actual, value_of(4));
	ck_assert_int_eq(remove_if_key(m, 4, value_of(4)), 0);
	actual = UNTOUCHED;
	ck_assert_int_eq(get_or_insert_key(m, 4, value_of(4), &actual), 0);
	ck_assert_ptr_eq(actual, value_of(4));
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(replace_of_absent_key_returns_enoent_and_adds_nothing)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(replace_key(m, 10, value_of(10), value_of(10 + REPLACED)), ENOENT);
	ck_assert_int_eq(remove_key(m, 4, NULL), 0);
	ck_assert_int_eq(replace_key(m, 4, value_of(4), value_of(4 + REPLACED)), ENOENT);
	ck_assert_int_eq(insert_key(m, 4, value_of(4)), 0);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(replace_in_empty_map_returns_enoent)
{
	sync_map_t *m = new_map(0);
	ck_assert_int_eq(replace_key(m, 1, value_of(1), value_of(2)), ENOENT);
	ck_assert_int_eq(sync_map_replace(m, NULL, 0, value_of(1), value_of(2)), ENOENT);
	check_exactly(m, 0, 0);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(replace_when_value_is_not_expected_returns_eagain_and_keeps_value)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(replace_key(m, 4, value_of(5), value_of(4 + REPLACED)), EAGAIN);
	ck_assert_int_eq(replace_key(m, 4, value_of(4 + REPLACED), value_of(4 + REPLACED)),
			 EAGAIN);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(replace_when_value_is_expected_stores_desired)
{
	sync_map_t *m = sample_map();
	void *v = UNTOUCHED;
	ck_assert_int_eq(replace_key(m, 4, value_of(4), value_of(4 + REPLACED)), 0);
	ck_assert_int_eq(get_key(m, 4, &v), 0);
	ck_assert_ptr_eq(v, value_of(4 + REPLACED));
	ck_assert_uint_eq(sync_map_size(m), 10);
	/* the old value no longer matches; the new one does */
	ck_assert_int_eq(replace_key(m, 4, value_of(4), value_of(99)), EAGAIN);
	ck_assert_int_eq(replace_key(m, 4, value_of(4 + REPLACED), value_of(4)), 0);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(replace_with_desired_equal_to_expected_succeeds_and_keeps_value)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(replace_key(m, 4, value_of(4), value_of(4)), 0);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(replace_changes_only_its_key)
{
	sync_map_t *m = new_map(0);
	ck_assert_int_eq(insert_key(m, 1, value_of(7)), 0);
	ck_assert_int_eq(insert_key(m, 2, value_of(7)), 0);
	ck_assert_int_eq(replace_key(m, 1, value_of(7), value_of(8)), 0);
	void *v = UNTOUCHED;
	ck_assert_int_eq(get_key(m, 2, &v), 0);
	ck_assert_ptr_eq(v, value_of(7));
	ck_assert_int_eq(remove_if_key(m, 2, value_of(8)), EAGAIN);
	ck_assert_int_eq(remove_if_key(m, 1, value_of(8)), 0);
	ck_assert_int_eq(get_key(m, 2, &v), 0);
	ck_assert_ptr_eq(v, value_of(7));
	ck_assert_uint_eq(sync_map_size(m), 1);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(remove_if_of_absent_key_returns_enoent_and_changes_nothing)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(remove_if_key(m, 10, value_of(10)), ENOENT);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(remove_if_from_empty_map_returns_enoent)
{
	sync_map_t *m = new_map(0);
	ck_assert_int_eq(remove_if_key(m, 1, value_of(1)), ENOENT);
	ck_assert_int_eq(sync_map_remove_if(m, NULL, 0, value_of(1)), ENOENT);
	check_exactly(m, 0, 0);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(remove_if_when_value_is_not_expected_returns_eagain_and_keeps_key)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(remove_if_key(m, 4, value_of(5)), EAGAIN);
	ck_assert_int_eq(put_key(m, 4, value_of(4 + REPLACED), NULL), 0);
	ck_assert_int_eq(remove_if_key(m, 4, value_of(4)), EAGAIN);
	ck_assert_int_eq(put_key(m, 4, value_of(4), NULL), 0);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(remove_if_when_value_is_expected_removes_key)
{
	sync_map_t *m = sample_map();
	ck_assert_int_eq(remove_if_key(m, 9, value_of(9)), 0);
	check_exactly(m, 0, 9);
	ck_assert_int_eq(remove_if_key(m, 9, value_of(9)), ENOENT);
	ck_assert_int_eq(remove_key(m, 9, NULL), ENOENT);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(empty_key_works_with_get_or_insert_replace_and_remove_if)
{
	sync_map_t *m = sample_map();
	void *actual = UNTOUCHED, *v = UNTOUCHED;
	ck_assert_int_eq(sync_map_get_or_insert(m, NULL, 0, value_of(50), &actual), 0);
	ck_assert_ptr_eq(actual, value_of(50));
	ck_assert_int_eq(sync_map_get_or_insert(m, "", 0, value_of(51), &actual), EEXIST);
	ck_assert_ptr_eq(actual, value_of(50));
	ck_assert_int_eq(sync_map_replace(m, "", 0, value_of(51), value_of(52)), EAGAIN);
	ck_assert_int_eq(sync_map_replace(m, NULL, 0, value_of(50), value_of(52)), 0);
	ck_assert_int_eq(sync_map_get(m, NULL, 0, &v), 0);
	ck_assert_ptr_eq(v, value_of(52));
	ck_assert_int_eq(sync_map_remove_if(m, "", 0, value_of(50)), EAGAIN);
	ck_assert_int_eq(sync_map_remove_if(m, "", 0, value_of(52)), 0);
	ck_assert_int_eq(sync_map_get(m, NULL, 0, &v), ENOENT);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(key_too_long_returns_enomem_from_get_or_insert_enoent_from_replace_and_remove_if)
{
	/* the library must not read the key: 32 + keylen bytes overflow size_t */
	static const size_t lens[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 16 };
	sync_map_t *m = sample_map();
	char key[8] = "key-3";
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		void *actual = UNTOUCHED;
		ck_assert_int_eq(sync_map_get_or_insert(m, key, lens[i], value_of(99), &actual),
				 ENOMEM);
		ck_assert_ptr_eq(actual, UNTOUCHED);
		ck_assert_int_eq(sync_map_replace(m, key, lens[i], value_of(3), value_of(99)),
				 ENOENT);
		ck_assert_int_eq(sync_map_remove_if(m, key, lens[i], value_of(3)), ENOENT);
	}
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(get_or_insert_replace_and_remove_if_leave_errno_alone_in_every_result)
{
	sync_map_t *m = sample_map();
	void *actual;
	int r[12];
	errno = 4242;
	r[0] = get_or_insert_key(m, 10, value_of(10), &actual);
	r[1] = get_or_insert_key(m, 10, value_of(10), &actual);
	r[2] = get_or_insert_key(m, 10, NULL, &actual);
	r[3] = replace_key(m, 10, value_of(10), value_of(11));
	r[4] = replace_key(m, 10, value_of(10), value_of(11));
	r[5] = replace_key(m, 20, value_of(10), value_of(11));
	r[6] = replace_key(NULL, 10, value_of(10), value_of(11));
	r[7] = remove_if_key(m, 10, value_of(10));
	r[8] = remove_if_key(m, 10, value_of(11));
	r[9] = remove_if_key(m, 10, value_of(11));
	r[10] = remove_if_key(m, 10, NULL);
	r[11] = sync_map_get_or_insert(m, "k", SIZE_MAX, value_of(1), &actual);
	int e = errno;
	ck_assert_int_eq(e, 4242);
	static const int want[12] = { 0, EEXIST, EINVAL, 0, EAGAIN, ENOENT, EINVAL,
				      EAGAIN, 0, ENOENT, EINVAL, ENOMEM };
	for (int i = 0; i < 12; i++)
		ck_assert_msg(r[i] == want[i], "call %d returned %d, not %d", i, r[i], want[i]);
	check_sample_and_destroy(m);
}
END_TEST

/* ---- keys --------------------------------------------------------------- */

START_TEST(key_is_copied_so_caller_may_change_its_buffer)
{
	sync_map_t *m = new_map(0);
	char buf[] = "mutable";
	void *v = UNTOUCHED;
	ck_assert_int_eq(sync_map_insert(m, buf, 7, value_of(1)), 0);
	memcpy(buf, "changed", 7);
	ck_assert_int_eq(sync_map_get(m, "mutable", 7, &v), 0);
	ck_assert_ptr_eq(v, value_of(1));
	ck_assert_int_eq(sync_map_get(m, buf, 7, &v), ENOENT);
	ck_assert_int_eq(sync_map_put(m, buf, 7, value_of(2), NULL), 0);
	memcpy(buf, "altered", 7);
	ck_assert_int_eq(sync_map_get(m, "changed", 7, &v), 0);
	ck_assert_ptr_eq(v, value_of(2));
	ck_assert_uint_eq(sync_map_size(m), 2);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(key_is_copied_so_caller_may_free_its_buffer)
{
	sync_map_t *m = new_map(0);
	for (long i = 0; i < 100; i++) {
		struct key k = key_of(i);
		char *buf = malloc(k.len);
		ck_assert_ptr_nonnull(buf);
		memcpy(buf, k.bytes, k.len);
		ck_assert_int_eq(i % 2 ? sync_map_insert(m, buf, k.len, value_of(i))
				       : sync_map_put(m, buf, k.len, value_of(i), NULL),
				 0);
		memset(buf, 0xa5, k.len);
		free(buf);
	}
	check_exactly(m, 0, 100);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(key_bytes_are_compared_not_key_pointers)
{
	sync_map_t *m = new_map(0);
	char a[16] = "same bytes", b[16] = "same bytes";
	void *v = UNTOUCHED;
	ck_assert_int_eq(sync_map_insert(m, a, 10, value_of(1)), 0);
	ck_assert_int_eq(sync_map_insert(m, b, 10, value_of(2)), EEXIST);
	ck_assert_int_eq(sync_map_get(m, b, 10, &v), 0);
	ck_assert_ptr_eq(v, value_of(1));
	ck_assert_int_eq(sync_map_remove(m, b, 10, &v), 0);
	ck_assert_ptr_eq(v, value_of(1));
	ck_assert_uint_eq(sync_map_size(m), 0);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(key_found_from_buffers_at_every_alignment)
{
	sync_map_t *m = new_map(0);
	_Alignas(16) unsigned char buf[64 + 16];
	const char text[] = "an unaligned key of forty-one bytes long!";
	size_t len = sizeof text - 1;
	memcpy(buf, text, len);
	ck_assert_int_eq(sync_map_insert(m, buf, len, value_of(1)), 0);
	for (size_t off = 0; off < 16; off++) {
		void *v = UNTOUCHED;
		memset(buf, 0, sizeof buf);
		memcpy(buf + off, text, len);
		ck_assert_int_eq(sync_map_get(m, buf + off, len, &v), 0);
		ck_assert_ptr_eq(v, value_of(1));
	}
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(keys_with_nul_bytes_are_distinct)
{
	static const char *keys[] = { "a\0b", "a\0c", "a\0\0", "\0\0\0", "\0a\0", "a" };
	static const size_t lens[] = { 3, 3, 3, 3, 3, 1 };
	sync_map_t *m = new_map(0);
	for (long i = 0; i < 6; i++)
		ck_assert_int_eq(sync_map_insert(m, keys[i], lens[i], value_of(i)), 0);
	ck_assert_uint_eq(sync_map_size(m), 6);
	for (long i = 0; i < 6; i++) {
		void *v = UNTOUCHED;
		ck_assert_int_eq(sync_map_get(m, keys[i], lens[i], &v), 0);
		ck_assert_ptr_eq(v, value_of(i));
	}
	void *v = UNTOUCHED;
	ck_assert_int_eq(sync_map_get(m, "a\0d", 3, &v), ENOENT);
	ck_assert_int_eq(sync_map_get(m, "a\0", 2, &v), ENOENT);
	ck_assert_int_eq(sync_map_remove(m, "a\0b", 3, &v), 0);
	ck_assert_ptr_eq(v, value_of(0));
	ck_assert_int_eq(sync_map_get(m, "a\0c", 3, &v), 0);
	ck_assert_ptr_eq(v, value_of(1));
	ck_assert_uint_eq(sync_map_size(m), 5);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(keys_differing_only_in_length_are_distinct)
{
	/* "", "p", "pr", ... : each key a prefix of the next */
	const char text[] = "prefix keys of every length";
	size_t n = sizeof text; /* the terminating NUL too: lengths 0 .. n */
	sync_map_t *m = new_map(0);
	for (size_t len = 0; len <= n; len++)
		ck_assert_int_eq(sync_map_insert(m, text, len, value_of((long)len)), 0);
	ck_assert_uint_eq(sync_map_size(m), n + 1);
	for (size_t len = 0; len <= n; len++) {
		void *v = UNTOUCHED;
		ck_assert_int_eq(sync_map_get(m, text, len, &v), 0);
		ck_assert_ptr_eq(v, value_of((long)len));
	}
	for (size_t len = 1; len <= n; len += 2)
		ck_assert_int_eq(sync_map_remove(m, text, len, NULL), 0);
	for (size_t len = 0; len <= n; len++) {
		void *v = UNTOUCHED;
		ck_assert_int_eq(sync_map_get(m, text, len, &v), len % 2 ? ENOENT : 0);
	}
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(keys_of_every_length_0_to_16_sharing_a_prefix_are_distinct_after_growth_and_shrinking)
{
	/* lengths 0 .. 8 in slots, 9 .. 16 in chain nodes; each a prefix of
	 * the next; moved by a growth to thousands of keys and back */
	enum { MAX = 16, OTHERS = 5000 };
	const char text[] = "prefix-of-16-byt";
	sync_map_t *m = new_map(0);
	for (long len = 0; len <= MAX; len++)
		ck_assert_int_eq(sync_map_insert(m, text, (size_t)len, value_of(OTHERS + len)), 0);
	for (int phase = 0; phase < 3; phase++) {
		if (phase == 1)
			insert_keys(m, 0, OTHERS);
		if (phase == 2)
			remove_keys(m, 0, OTHERS);
		ck_assert_uint_eq(sync_map_size(m), (size_t)(MAX + 1 + (phase == 1 ? OTHERS : 0)));
		for (long len = 0; len <= MAX; len++) {
			void *v = UNTOUCHED;
			ck_assert_int_eq(sync_map_get(m, text, (size_t)len, &v), 0);
			ck_assert_ptr_eq(v, value_of(OTHERS + len));
		}
	}
	for (long len = 0; len <= MAX; len += 2)
		ck_assert_int_eq(sync_map_remove(m, text, (size_t)len, NULL), 0);
	for (long len = 0; len <= MAX; len++) {
		void *v = UNTOUCHED;
		ck_assert_int_eq(sync_map_get(m, text, (size_t)len, &v), len % 2 ? 0 : ENOENT);
	}
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(keys_differing_only_in_trailing_zero_bytes_are_distinct)
{
	/* a slot's key word is zero-padded: "ab" and "ab\0" pack alike, their
	 * lengths tell them apart; likewise "" and "\0"; 9 and 10 bytes in nodes */
	static const unsigned char zeros[16];
	static const unsigned char ab[16] = "ab";
	enum { MAX = 10 };
	sync_map_t *m = new_map(0);
	for (long len = 0; len <= MAX; len++) {
		ck_assert_int_eq(sync_map_insert(m, zeros, (size_t)len, value_of(len)), 0);
		if (len >= 2)
			ck_assert_int_eq(sync_map_insert(m, ab, (size_t)len, value_of(100 + len)), 0);
	}
	ck_assert_uint_eq(sync_map_size(m), 2 * (MAX + 1) - 2);
	for (long len = 0; len <= MAX; len++) {
		void *v = UNTOUCHED;
		ck_assert_int_eq(sync_map_get(m, zeros, (size_t)len, &v), 0);
		ck_assert_ptr_eq(v, value_of(len));
		if (len < 2)
			continue;
		ck_assert_int_eq(sync_map_get(m, ab, (size_t)len, &v), 0);
		ck_assert_ptr_eq(v, value_of(100 + len));
	}
	/* each removal takes only its own length */
	ck_assert_int_eq(sync_map_remove(m, ab, 3, NULL), 0);
	ck_assert_int_eq(sync_map_remove(m, zeros, 0, NULL), 0);
	for (long len = 0; len <= MAX; len++) {
		void *v = UNTOUCHED;
		ck_assert_int_eq(sync_map_get(m, zeros, (size_t)len, &v), len == 0 ? ENOENT : 0);
		if (len >= 2)
			ck_assert_int_eq(sync_map_get(m, ab, (size_t)len, &v), len == 3 ? ENOENT : 0);
	}
	ck_assert_uint_eq(sync_map_size(m), 2 * (MAX + 1) - 4);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(keys_of_every_length_up_to_300_are_distinct)
{
	/* covers every length class of the hash (0, 1-3, 4-8, 9-16, 17-128,
	 * 129-240, longer) with keys that differ in length only */
	enum { MAX = 300 };
	static unsigned char bytes[MAX];
	memset(bytes, 'x', sizeof bytes);
	sync_map_t *m = new_map(0);
	for (long len = 0; len <= MAX; len++)
		ck_assert_int_eq(sync_map_insert(m, bytes, (size_t)len, value_of(len)), 0);
	ck_assert_uint_eq(sync_map_size(m), MAX + 1);
	for (long len = MAX; len >= 0; len--) {
		void *v = UNTOUCHED;
		ck_assert_int_eq(sync_map_get(m, bytes, (size_t)len, &v), 0);
		ck_assert_ptr_eq(v, value_of(len));
	}
	/* the last byte changed: none of them */
	for (long len = 1; len <= MAX; len++) {
		void *v = UNTOUCHED;
		bytes[len - 1] = 'y';
		ck_assert_int_eq(sync_map_get(m, bytes, (size_t)len, &v), ENOENT);
		bytes[len - 1] = 'x';
	}
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(empty_key_is_a_valid_key)
{
	sync_map_t *m = new_map(0);
	void *v = UNTOUCHED, *old = UNTOUCHED;
	ck_assert_int_eq(sync_map_insert(m, "", 0, value_of(1)), 0);
	ck_assert_uint_eq(sync_map_size(m), 1);
	ck_assert_int_eq(sync_map_get(m, "", 0, &v), 0);
	ck_assert_ptr_eq(v, value_of(1));
	ck_assert_int_eq(sync_map_insert(m, "x", 0, value_of(2)), EEXIST);
	ck_assert_int_eq(sync_map_put(m, "", 0, value_of(3), &old), 0);
	ck_assert_ptr_eq(old, value_of(1));
	ck_assert_int_eq(sync_map_get(m, "\0", 1, &v), ENOENT);
	ck_assert_int_eq(sync_map_remove(m, "", 0, &old), 0);
	ck_assert_ptr_eq(old, value_of(3));
	ck_assert_uint_eq(sync_map_size(m), 0);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(null_key_of_length_zero_is_the_empty_key)
{
	sync_map_t *m = new_map(0);
	void *v = UNTOUCHED, *old = UNTOUCHED;
	ck_assert_int_eq(sync_map_insert(m, NULL, 0, value_of(1)), 0);
	ck_assert_int_eq(sync_map_get(m, "", 0, &v), 0);
	ck_assert_ptr_eq(v, value_of(1));
	ck_assert_int_eq(sync_map_insert(m, "", 0, value_of(2)), EEXIST);
	ck_assert_int_eq(sync_map_put(m, NULL, 0, value_of(3), &old), 0);
	ck_assert_ptr_eq(old, value_of(1));
	ck_assert_int_eq(sync_map_get(m, NULL, 0, &v), 0);
	ck_assert_ptr_eq(v, value_of(3));
	ck_assert_uint_eq(sync_map_size(m), 1);
	ck_assert_int_eq(sync_map_remove(m, NULL, 0, &old), 0);
	ck_assert_ptr_eq(old, value_of(3));
	ck_assert_int_eq(sync_map_get(m, NULL, 0, &v), ENOENT);
	ck_assert_uint_eq(sync_map_size(m), 0);
	sync_map_destroy(m, NULL);
}
END_TEST

static int count_empty_keys(const void *key, size_t keylen, void *value, void *arg)
{
	(void)key, (void)value;
	if (keylen == 0)
		(*(int *)arg)++;
	return 0;
}

START_TEST(foreach_shows_empty_key_with_length_zero)
{
	sync_map_t *m = sample_map();
	int empty = 0;
	ck_assert_int_eq(sync_map_insert(m, NULL, 0, value_of(99)), 0);
	ck_assert_int_eq(sync_map_foreach(m, count_empty_keys, &empty), 0);
	ck_assert_int_eq(empty, 1);
	ck_assert_int_eq(sync_map_remove(m, NULL, 0, NULL), 0);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(single_byte_keys_of_all_256_values_are_distinct)
{
	sync_map_t *m = new_map(0);
	for (long b = 0; b < 256; b++) {
		unsigned char byte = (unsigned char)b;
		ck_assert_int_eq(sync_map_insert(m, &byte, 1, value_of(b)), 0);
	}
	ck_assert_uint_eq(sync_map_size(m), 256);
	for (long b = 0; b < 256; b++) {
		unsigned char byte = (unsigned char)b;
		void *v = UNTOUCHED;
		ck_assert_int_eq(sync_map_get(m, &byte, 1, &v), 0);
		ck_assert_ptr_eq(v, value_of(b));
	}
	sync_map_destroy(m, NULL);
}
END_TEST

#define LONG_KEY 10240

START_TEST(long_keys_of_10_kib_are_stored_and_told_apart)
{
	static unsigned char a[LONG_KEY], probe[LONG_KEY];
	for (size_t i = 0; i < LONG_KEY; i++)
		a[i] = (unsigned char)(i * 7 + 3);
	sync_map_t *m = new_map(0);
	/* key j: a with byte spots[j] flipped (the first, middle ones, the last) */
	const size_t spots[] = { 0, 1, 4095, 4096, 5000, LONG_KEY - 2, LONG_KEY - 1 };
	enum { SPOTS = sizeof spots / sizeof spots[0] };
	ck_assert_int_eq(sync_map_insert(m, a, LONG_KEY, value_of(100)), 0);
	ck_assert_int_eq(sync_map_insert(m, a, LONG_KEY - 1, value_of(101)), 0);
	for (long j = 0; j < SPOTS; j++) {
		memcpy(probe, a, LONG_KEY);
		probe[spots[j]] ^= 0x40;
		ck_assert_int_eq(sync_map_insert(m, probe, LONG_KEY, value_of(j)), 0);
		memset(probe, 0, LONG_KEY); /* copied: the buffer is the caller's */
	}
	ck_assert_uint_eq(sync_map_size(m), SPOTS + 2);
	void *v = UNTOUCHED;
	ck_assert_int_eq(sync_map_get(m, a, LONG_KEY, &v), 0);
	ck_assert_ptr_eq(v, value_of(100));
	ck_assert_int_eq(sync_map_get(m, a, LONG_KEY - 1, &v), 0);
	ck_assert_ptr_eq(v, value_of(101));
	ck_assert_int_eq(sync_map_get(m, a, LONG_KEY - 2, &v), ENOENT);
	for (long j = 0; j < SPOTS; j++) {
		memcpy(probe, a, LONG_KEY);
		probe[spots[j]] ^= 0x40;
		ck_assert_int_eq(sync_map_get(m, probe, LONG_KEY, &v), 0);
		ck_assert_ptr_eq(v, value_of(j));
		probe[spots[j]] ^= 0x41;
		ck_assert_int_eq(sync_map_get(m, probe, LONG_KEY, &v), ENOENT);
	}
	ck_assert_int_eq(sync_map_remove(m, a, LONG_KEY, &v), 0);
	ck_assert_ptr_eq(v, value_of(100));
	ck_assert_int_eq(sync_map_get(m, a, LONG_KEY - 1, &v), 0);
	ck_assert_uint_eq(sync_map_size(m), SPOTS + 1);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(long_keys_survive_growth)
{
	enum { N = 300 };
	static unsigned char k[LONG_KEY];
	memset(k, 'z', sizeof k);
	sync_map_t *m = new_map(0);
	for (long i = 0; i < N; i++) {
		memcpy(k + LONG_KEY / 2, &i, sizeof i);
		ck_assert_int_eq(sync_map_insert(m, k, LONG_KEY, value_of(i)), 0);
	}
	for (long i = 0; i < N; i++) {
		void *v = UNTOUCHED;
		memcpy(k + LONG_KEY / 2, &i, sizeof i);
		ck_assert_int_eq(sync_map_get(m, k, LONG_KEY, &v), 0);
		ck_assert_ptr_eq(v, value_of(i));
	}
	ck_assert_uint_eq(sync_map_size(m), N);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(keys_sharing_a_long_prefix_are_distinct)
{
	enum { N = 2000 };
	char buf[200];
	memset(buf, 'p', 180);
	sync_map_t *m = new_map(0);
	for (long i = 0; i < N; i++) {
		int n = snprintf(buf + 180, 20, "%ld", i);
		ck_assert_int_eq(sync_map_insert(m, buf, 180 + (size_t)n, value_of(i)), 0);
	}
	ck_assert_uint_eq(sync_map_size(m), N);
	for (long i = 0; i < N; i++) {
		void *v = UNTOUCHED;
		int n = snprintf(buf + 180, 20, "%ld", i);
		if (sync_map_get(m, buf, 180 + (size_t)n, &v) != 0 || v != value_of(i))
			ck_abort_msg("key with suffix %ld not found", i);
	}
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(key_too_long_for_a_node_returns_enomem_and_changes_nothing)
{
	/* 32 + keylen bytes overflow size_t: the library must not read the key */
	static const size_t lens[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 16 };
	sync_map_t *m = sample_map();
	char key[8] = "key-3";
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		void *old = UNTOUCHED;
		ck_assert_int_eq(sync_map_put(m, key, lens[i], value_of(99), &old), ENOMEM);
		ck_assert_int_eq(sync_map_insert(m, key, lens[i], value_of(99)), ENOMEM);
	}
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(get_and_remove_of_key_too_long_to_store_return_enoent)
{
	/* no such key can be in the map: the library must not read it */
	static const size_t lens[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 16 };
	sync_map_t *m = sample_map();
	char key[8] = "key-3";
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		void *v = UNTOUCHED;
		ck_assert_int_eq(sync_map_get(m, key, lens[i], &v), ENOENT);
		ck_assert_int_eq(sync_map_remove(m, key, lens[i], &v), ENOENT);
		ck_assert_int_eq(sync_map_remove(m, key, lens[i], NULL), ENOENT);
	}
	check_sample_and_destroy(m);
}
END_TEST

/* Records the order in which foreach shows keys 0 .. 99. */
struct order {
	long key[100];
	int n;
};

static int record_order(const void *key, size_t keylen, void *value, void *arg)
{
	(void)value;
	struct order *o = arg;
	if (o->n < 100)
		o->key[o->n++] = index_of_key(key, keylen);
	return 0;
}

START_TEST(maps_with_same_keys_hash_them_differently)
{
	/* a per-map random seed: the bucket order foreach follows differs
	 * between two maps with the same keys (the same order by chance: about
	 * once in 100! tries) */
	sync_map_t *a = new_map(0), *b = new_map(0);
	insert_keys(a, 0, 100);
	insert_keys(b, 0, 100);
	static struct order oa, ob;
	ck_assert_int_eq(sync_map_foreach(a, record_order, &oa), 0);
	ck_assert_int_eq(sync_map_foreach(b, record_order, &ob), 0);
	ck_assert_int_eq(oa.n, 100);
	ck_assert_int_eq(ob.n, 100);
	ck_assert_msg(memcmp(oa.key, ob.key, sizeof oa.key) != 0,
		      "two maps keep 100 keys in the same order: the same hash seed?");
	sync_map_destroy(a, NULL);
	sync_map_destroy(b, NULL);
}
END_TEST

/* ---- size --------------------------------------------------------------- */

START_TEST(size_counts_every_insert_and_remove_and_nothing_else)
{
	sync_map_t *m = new_map(0);
	size_t want = 0;
	for (long i = 0; i < 50; i++) {
		ck_assert_int_eq(insert_key(m, i, value_of(i)), 0);
		ck_assert_uint_eq(sync_map_size(m), ++want);
		ck_assert_int_eq(insert_key(m, i, value_of(i)), EEXIST);
		ck_assert_uint_eq(sync_map_size(m), want);
		ck_assert_int_eq(put_key(m, i, value_of(i), NULL), 0);
		ck_assert_uint_eq(sync_map_size(m), want);
		ck_assert_int_eq(put_key(m, i + 1000, value_of(i + 1000), NULL), 0);
		ck_assert_uint_eq(sync_map_size(m), ++want);
		ck_assert_int_eq(remove_key(m, i + 2000, NULL), ENOENT);
		ck_assert_uint_eq(sync_map_size(m), want);
		if (i % 3 == 0) {
			ck_assert_int_eq(remove_key(m, i + 1000, NULL), 0);
			ck_assert_uint_eq(sync_map_size(m), --want);
		}
		void *v;
		get_key(m, i, &v);
		ck_assert_uint_eq(sync_map_size(m), want);
	}
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(size_is_exact_at_every_step_of_growth_and_shrinking)
{
	enum { N = 5000 };
	sync_map_t *m = new_map(0);
	for (long i = 0; i < N; i++) {
		insert_keys(m, i, i + 1);
		if (sync_map_size(m) != (size_t)i + 1)
			ck_abort_msg("size %zu after %ld inserts", sync_map_size(m), i + 1);
	}
	for (long i = 0; i < N; i++) {
		remove_keys(m, i, i + 1);
		if (sync_map_size(m) != (size_t)(N - i - 1))
			ck_abort_msg("size %zu after %ld removes of %d keys", sync_map_size(m), i + 1,
				     N);
	}
	sync_map_destroy(m, NULL);
}
END_TEST

/* ---- growth and shrinking ----------------------------------------------- */

START_TEST(map_from_hint_zero_grows_to_200000_keys_all_found)
{
	enum { N = 200000 };
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, N);
	ck_assert_uint_eq(sync_map_size(m), N);
	check_found(m, 0, N);
	check_absent(m, N, N + 1000);
	check_foreach_exact(m, 0, N);
	sync_map_destroy(m, NULL);
}
END_TEST

/* Every key of kf from .. to - 1 is there: all of them every 4096 steps,
 * else the newest, the oldest and two between (a resize moves 32 buckets
 * per write: each step sees a migration in another state). */
static void check_step(sync_map_t *m, long step, long from, long to)
{
	if (step % 4096 == 0) {
		check_keys(m, short_key_of, from, to, true);
		return;
	}
	long probe[4] = { from, to - 1, from + (to - from) / 2, from + (to - from) / 3 };
	for (int j = 0; j < 4 && from < to; j++)
		check_keys(m, short_key_of, probe[j], probe[j] + 1, true);
}

START_TEST(map_grown_from_hint_zero_to_100000_short_keys_then_shrunk_finds_every_key_at_every_step)
{
	/* chains hold the short keys that found no slot; growth promotes them
	 * into the free slots of the new buckets, shrinking copies slots back
	 * into chains */
	enum { N = 100000 };
	sync_map_t *m = new_map(0);
	for (long n = 1; n <= N; n++) {
		struct key k = short_key_of(n - 1);
		if (sync_map_insert(m, k.bytes, k.len, value_of(n - 1)) != 0)
			ck_abort_msg("insert of key %ld failed", n - 1);
		check_step(m, n, 0, n);
	}
	ck_assert_uint_eq(sync_map_size(m), N);
	check_keys(m, short_key_of, 0, N, true);
	for (long n = 1; n <= N; n++) {
		struct key k = short_key_of(n - 1);
		void *old = UNTOUCHED;
		if (sync_map_remove(m, k.bytes, k.len, &old) != 0 || old != value_of(n - 1))
			ck_abort_msg("remove of key %ld failed", n - 1);
		check_step(m, n, n, N);
		check_keys(m, short_key_of, n - 1, n, false);
	}
	ck_assert_uint_eq(sync_map_size(m), 0);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(every_key_is_found_after_each_insert_while_table_grows)
{
	enum { N = 1500 };
	sync_map_t *m = new_map(0);
	for (long n = 1; n <= N; n++) {
		insert_keys(m, n - 1, n);
		check_found(m, 0, n);
		check_absent(m, n, n + 3);
	}
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(every_key_left_is_found_after_each_remove_while_table_shrinks)
{
	enum { N = 1500 };
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, N);
	for (long n = N - 1; n >= 0; n--) {
		remove_keys(m, n, n + 1);
		check_found(m, 0, n);
		check_absent(m, n, n + 3);
	}
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(removing_100000_keys_leaves_empty_map_that_takes_them_again)
{
	enum { N = 100000 };
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, N);
	remove_keys(m, 0, N);
	ck_assert_uint_eq(sync_map_size(m), 0);
	check_absent(m, 0, N);
	check_foreach_exact(m, 0, 0);
	insert_keys(m, 0, N);
	ck_assert_uint_eq(sync_map_size(m), N);
	check_found(m, 0, N);
	check_foreach_exact(m, 0, N);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(removing_keys_in_reverse_and_interleaved_orders_keeps_the_rest)
{
	enum { N = 20000 };
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, N);
	for (long i = N - 1; i >= 0; i -= 2) /* odd keys, from the top */
		remove_keys(m, i, i + 1);
	ck_assert_uint_eq(sync_map_size(m), N / 2);
	for (long i = 0; i < N; i += 2)
		check_found(m, i, i + 1);
	for (long i = 1; i < N; i += 2)
		check_absent(m, i, i + 1);
	for (long i = 0; i < N; i += 2)
		remove_keys(m, i, i + 1);
	check_exactly(m, 0, 0);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(large_hint_map_shrunk_to_empty_takes_keys_again)
{
	sync_map_t *m = new_map(50000);
	insert_keys(m, 0, 60000);
	remove_keys(m, 0, 60000);
	ck_assert_uint_eq(sync_map_size(m), 0);
	insert_keys(m, 0, 100);
	check_exactly(m, 0, 100);
	sync_map_destroy(m, NULL);
}
END_TEST

/* Fails the test unless op returned want. */
#define EXPECT_AT(op, want, i)                                                          \
	do {                                                                              \
		int r_ = (op);                                                            \
		if (r_ != (want))                                                         \
			ck_abort_msg("key %ld: %s returned %d, not %d", (long)(i), #op, r_, \
				     (int)(want));                                       \
	} while (0)

START_TEST(get_or_insert_replace_and_remove_if_work_at_every_step_of_growth_and_shrinking)
{
	enum { N = 3000 };
	sync_map_t *m = new_map(0);
	for (long i = 0; i < N; i++) {
		void *actual = UNTOUCHED;
		EXPECT_AT(get_or_insert_key(m, i, value_of(i), &actual), 0, i);
		if (actual != value_of(i))
			ck_abort_msg("key %ld: inserted, actual %p", i, actual);
		EXPECT_AT(get_or_insert_key(m, i / 2, value_of(i), &actual), EEXIST, i / 2);
		if (actual != value_of(i / 2))
			ck_abort_msg("key %ld: present, actual %p", i / 2, actual);
		EXPECT_AT(replace_key(m, i / 3, value_of(i / 3), value_of(i / 3 + REPLACED)), 0,
			  i / 3);
		EXPECT_AT(replace_key(m, i / 3, value_of(i / 3), value_of(i / 3)), EAGAIN, i / 3);
		EXPECT_AT(replace_key(m, i / 3, value_of(i / 3 + REPLACED), value_of(i / 3)), 0,
			  i / 3);
		EXPECT_AT(replace_key(m, i + 1, value_of(i + 1), value_of(i)), ENOENT, i + 1);
		if (sync_map_size(m) != (size_t)i + 1)
			ck_abort_msg("size %zu after %ld get_or_inserts", sync_map_size(m), i + 1);
	}
	check_exactly(m, 0, N);
	for (long i = N - 1; i >= 0; i--) {
		EXPECT_AT(remove_if_key(m, i, value_of(i + REPLACED)), EAGAIN, i);
		EXPECT_AT(remove_if_key(m, i, value_of(i)), 0, i);
		EXPECT_AT(remove_if_key(m, i, value_of(i)), ENOENT, i);
		EXPECT_AT(replace_key(m, i, value_of(i), value_of(i)), ENOENT, i);
		if (i > 0) {
			EXPECT_AT(replace_key(m, i / 2, value_of(i / 2), value_of(i / 2 + REPLACED)),
				  0, i / 2);
			EXPECT_AT(replace_key(m, i / 2, value_of(i / 2 + REPLACED), value_of(i / 2)),
				  0, i / 2);
		}
		if (sync_map_size(m) != (size_t)i)
			ck_abort_msg("size %zu after %ld remove_ifs", sync_map_size(m), N - i);
	}
	check_exactly(m, 0, 0);
	sync_map_destroy(m, NULL);
}
END_TEST

/* ---- memory ------------------------------------------------------------- */

START_TEST(table_shrinks_after_removing_all_keys)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	enum { N = 100000 };
	sync_map_t *warm = new_map(0);
	insert_keys(warm, 0, 1000);
	remove_keys(warm, 0, 1000);
	sync_map_destroy(warm, NULL);
	sync_epoch_barrier();
	long before = heap_in_use();
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, N);
	long full = heap_in_use();
	remove_keys(m, 0, N);
	sync_epoch_barrier();
	long after = heap_in_use();
	/* 100000 keys: a table of 2^17 or more buckets (1 MiB or more) and 4.8
	 * MB of nodes; empty: a table of 16 or 32 buckets */
	ck_assert_msg(after < before + 16 * 1024,
		      "heap: %ld bytes before, %ld with %d keys, %ld with none", before, full, N,
		      after);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(table_never_shrinks_below_the_hinted_capacity)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	enum { N = 100000 };
	sync_map_t *warm = new_map(0);
	insert_keys(warm, 0, 100);
	remove_keys(warm, 0, 100);
	sync_map_destroy(warm, NULL);
	sync_epoch_barrier();
	long before = heap_in_use();
	sync_map_t *m = new_map(N);
	long created = heap_in_use(); /* a table for N keys: 1 MiB or more */
	insert_keys(m, 0, N);
	remove_keys(m, 0, N);
	insert_keys(m, 0, 1000); /* writers that would finish a shrink */
	remove_keys(m, 0, 1000);
	sync_epoch_barrier();
	long after = heap_in_use();
	ck_assert_msg(created - before >= 1 << 20, "a map for %d keys took %ld bytes", N,
		      created - before);
	ck_assert_msg(after - before >= (created - before) / 2,
		      "heap: %ld bytes before, %ld after create(%d), %ld once emptied", before,
		      created, N, after);
	check_exactly(m, 0, 0);
	sync_map_destroy(m, NULL);
}
END_TEST

#define CHURN_KEYS 1000L
#define CHURN_PAIRS 1000000L
#define CHURN_WARM_UP 100000L
#define HEAP_SLACK (64L * 1024)

/* pairs put+remove pairs on keys CHURN_KEYS .. 2 * CHURN_KEYS - 1. */
static void churn(sync_map_t *m, long from, long pairs)
{
	for (long p = from; p < from + pairs; p++) {
		long i = CHURN_KEYS + p % CHURN_KEYS;
		void *old = UNTOUCHED;
		if (put_key(m, i, value_of(p), &old) != 0 || old != NULL ||
		    remove_key(m, i, &old) != 0 || old != value_of(p))
			ck_abort_msg("pair %ld: put or remove of key %ld failed", p, i);
	}
}

START_TEST(heap_stays_flat_over_a_million_put_remove_pairs)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, CHURN_KEYS);
	churn(m, 0, CHURN_WARM_UP);
	sync_epoch_barrier();
	long before = heap_in_use();
	size_t rss_before = resident_bytes();
	churn(m, CHURN_WARM_UP, CHURN_PAIRS - CHURN_WARM_UP);
	sync_epoch_barrier();
	long after = heap_in_use();
	size_t rss_after = resident_bytes();
	ck_assert_msg(after < before + HEAP_SLACK, "heap grew from %ld to %ld bytes", before,
		      after);
	ck_assert_msg(rss_after < rss_before + 4 * 1024 * 1024, "RSS grew from %zu to %zu bytes",
		      rss_before, rss_after);
	check_exactly(m, 0, CHURN_KEYS);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(heap_stays_flat_over_repeated_growth_and_shrinking)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	enum { N = 10000, CYCLES = 20 };
	sync_map_t *m = new_map(0);
	long before = 0;
	for (int c = 0; c < CYCLES; c++) {
		insert_keys(m, 0, N);
		remove_keys(m, 0, N);
		sync_epoch_barrier();
		if (c == 1)
			before = heap_in_use();
	}
	long after = heap_in_use();
	ck_assert_msg(after < before + HEAP_SLACK, "heap grew from %ld to %ld bytes", before,
		      after);
	check_exactly(m, 0, 0);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(put_remove_churn_of_short_keys_with_free_slots_allocates_nothing)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	/* at most two keys at once: each finds a free slot, nothing to retire */
	enum { PAIRS = 100000 };
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, 1);
	check_found(m, 0, 1); /* this thread's epoch set-up done */
	sync_epoch_barrier();
	long before = heap_in_use();
	count_allocations();
	int bad = 0;
	for (long p = 0; p < PAIRS; p++) {
		long i = 1 + p % 1000;
		void *old = UNTOUCHED;
		if (put_key(m, i, value_of(i), &old) != 0 || old != NULL ||
		    remove_key(m, i, &old) != 0 || old != value_of(i))
			bad++;
	}
	long made = allocations_made();
	long after = heap_in_use();
	ck_assert_int_eq(bad, 0);
	ck_assert_int_eq(made, 0);
	ck_assert_int_eq(after, before);
	check_exactly(m, 0, 1);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(get_makes_no_allocation)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, 1000);
	check_found(m, 0, 1); /* this thread's epoch set-up done */
	count_allocations();
	for (long i = 0; i < 2000; i++) {
		void *v;
		get_key(m, i, &v);
	}
	long made = allocations_made();
	ck_assert_int_eq(made, 0);
	sync_map_destroy(m, NULL);
}
END_TEST

/* ---- out of memory ------------------------------------------------------ */

START_TEST(insert_of_long_key_without_memory_returns_enomem_and_changes_nothing)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_t *m = sample_map();
	struct key k = long_key_of(10);
	fail_allocations(0, 1, 0);
	int r = sync_map_insert(m, k.bytes, k.len, value_of(10));
	long failed = allocations_failed();
	ck_assert_int_eq(r, ENOMEM);
	ck_assert_int_ge(failed, 1);
	check_keys(m, long_key_of, 10, 11, false);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(put_of_new_long_key_without_memory_returns_enomem_and_changes_nothing)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_t *m = sample_map();
	struct key k10 = long_key_of(10), k11 = long_key_of(11);
	void *old = UNTOUCHED;
	fail_allocations(0, 1, 0);
	int r = sync_map_put(m, k10.bytes, k10.len, value_of(10), &old);
	int r2 = sync_map_put(m, k11.bytes, k11.len, value_of(11), NULL);
	long failed = allocations_failed();
	ck_assert_int_eq(r, ENOMEM);
	ck_assert_int_eq(r2, ENOMEM);
	ck_assert_int_ge(failed, 2);
	ck_assert_ptr_eq(old, UNTOUCHED);
	check_keys(m, long_key_of, 10, 12, false);
	check_sample_and_destroy(m);
}
END_TEST

/* With every allocation failing, tries to insert short keys 0 .. n - 1 of a
 * fresh map (made before arming) into its inline slots; result[i] is what
 * insert i returned. */
static void insert_short_keys_without_memory(sync_map_t *m, long n, int *result)
{
	check_absent(m, 0, 1); /* this thread's epoch set-up done */
	fail_allocations(0, 1, 0);
	for (long i = 0; i < n; i++)
		result[i] = insert_key(m, i, value_of(i));
	allocations_failed();
}

START_TEST(empty_key_without_memory_returns_enomem_when_its_bucket_is_full_and_changes_nothing)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	/* 2000 short keys fill every slot of the first table, which cannot
	 * grow: the empty key's bucket is full, and it needs a node */
	enum { N = 2000 };
	static int result[N];
	sync_map_t *m = new_map(0);
	insert_short_keys_without_memory(m, N, result);
	size_t inserted = 0;
	for (long i = 0; i < N; i++)
		inserted += result[i] == 0;
	fail_allocations(0, 1, 0);
	errno = 4242;
	int r = sync_map_insert(m, NULL, 0, value_of(N));
	int r2 = sync_map_put(m, "", 0, value_of(N), NULL);
	int r3 = sync_map_get_or_insert(m, "", 0, value_of(N), NULL);
	int e = errno;
	long failed = allocations_failed();
	ck_assert_int_eq(r, ENOMEM);
	ck_assert_int_eq(r2, ENOMEM);
	ck_assert_int_eq(r3, ENOMEM);
	ck_assert_int_ge(failed, 3);
	ck_assert_int_eq(e, 4242);
	void *v = UNTOUCHED;
	ck_assert_int_eq(sync_map_get(m, NULL, 0, &v), ENOENT);
	ck_assert_uint_eq(sync_map_size(m), inserted);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(short_keys_without_memory_go_into_free_slots_by_insert_put_and_get_or_insert)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	/* three keys: even in one bucket, each finds a free slot */
	sync_map_t *m = new_map(0);
	void *old = UNTOUCHED, *actual = UNTOUCHED, *v = UNTOUCHED;
	check_absent(m, 0, 1); /* this thread's epoch set-up done */
	fail_allocations(0, 1, 0);
	errno = 4242;
	int r = insert_key(m, 1, value_of(1));
	int r2 = put_key(m, 2, value_of(2), &old);
	int r3 = sync_map_get_or_insert(m, NULL, 0, value_of(0), &actual);
	int e = errno;
	long failed = allocations_failed();
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(r2, 0);
	ck_assert_ptr_null(old);
	ck_assert_int_eq(r3, 0);
	ck_assert_ptr_eq(actual, value_of(0));
	ck_assert_int_eq(failed, 0);
	ck_assert_int_eq(e, 4242);
	check_found(m, 1, 3);
	ck_assert_int_eq(sync_map_get(m, "", 0, &v), 0);
	ck_assert_ptr_eq(v, value_of(0));
	ck_assert_uint_eq(sync_map_size(m), 3);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(short_keys_without_memory_fill_the_free_slots_then_return_enomem_and_change_nothing)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	enum { N = 2000 };
	static int result[N];
	sync_map_t *m = new_map(0);
	insert_short_keys_without_memory(m, N, result);
	long inserted = 0, enomem = 0;
	for (long i = 0; i < N; i++) {
		if (result[i] != 0 && result[i] != ENOMEM)
			ck_abort_msg("insert of key %ld returned %d", i, result[i]);
		inserted += result[i] == 0;
		enomem += result[i] == ENOMEM;
	}
	ck_assert_int_gt(inserted, 0);
	ck_assert_int_gt(enomem, 0); /* a full bucket needs a node */
	ck_assert_uint_eq(sync_map_size(m), (size_t)inserted);
	for (long i = 0; i < N; i++) {
		void *v = UNTOUCHED;
		int r = get_key(m, i, &v);
		if (result[i] == 0 && (r != 0 || v != value_of(i)))
			ck_abort_msg("inserted key %ld: get returned %d, value %p", i, r, v);
		if (result[i] != 0 && r != ENOENT)
			ck_abort_msg("failed key %ld: get returned %d", i, r);
	}
	for (long i = 0; i < N; i++)
		if (result[i] != 0)
			insert_keys(m, i, i + 1);
	check_exactly(m, 0, N);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(put_replacing_without_memory_replaces_or_changes_nothing)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_t *m = sample_map();
	void *old = UNTOUCHED, *v = UNTOUCHED;
	fail_allocations(0, 1, 0);
	int r = put_key(m, 4, value_of(4 + REPLACED), &old);
	long failed = allocations_failed();
	ck_assert_int_eq(get_key(m, 4, &v), 0);
	if (r == 0) { /* the design replaces in place: no allocation needed */
		ck_assert_ptr_eq(old, value_of(4));
		ck_assert_ptr_eq(v, value_of(4 + REPLACED));
		ck_assert_int_eq(put_key(m, 4, value_of(4), NULL), 0);
	} else {
		ck_assert_int_eq(r, ENOMEM);
		ck_assert_int_ge(failed, 1);
	}
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(insert_of_present_key_without_memory_keeps_value)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_t *m = sample_map();
	fail_allocations(0, 1, 0);
	int r = insert_key(m, 4, value_of(4 + REPLACED));
	allocations_failed();
	ck_assert_msg(r == EEXIST || r == ENOMEM, "insert returned %d", r);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(get_and_remove_without_memory_still_work)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_t *m = sample_map();
	void *v[3] = { UNTOUCHED, UNTOUCHED, UNTOUCHED };
	int r[4];
	fail_allocations(0, 1, 0);
	r[0] = get_key(m, 3, &v[0]);
	r[1] = remove_key(m, 3, &v[1]);
	r[2] = remove_key(m, 3, &v[2]);
	r[3] = get_key(m, 3, &v[2]);
	allocations_failed();
	ck_assert_int_eq(r[0], 0);
	ck_assert_ptr_eq(v[0], value_of(3));
	ck_assert_int_eq(r[1], 0);
	ck_assert_ptr_eq(v[1], value_of(3));
	ck_assert_int_eq(r[2], ENOENT);
	ck_assert_int_eq(r[3], ENOENT);
	ck_assert_int_eq(insert_key(m, 3, value_of(3)), 0);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(get_or_insert_of_long_key_without_memory_returns_enomem_changes_nothing_and_keeps_errno)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_t *m = sample_map();
	struct key k10 = long_key_of(10), k11 = long_key_of(11);
	void *actual = UNTOUCHED, *present = UNTOUCHED;
	fail_allocations(0, 1, 0);
	errno = 4242;
	int r = sync_map_get_or_insert(m, k10.bytes, k10.len, value_of(10), &actual);
	int r2 = sync_map_get_or_insert(m, k11.bytes, k11.len, value_of(11), NULL);
	int r3 = get_or_insert_key(m, 4, value_of(4 + REPLACED), &present);
	int e = errno;
	long failed = allocations_failed();
	ck_assert_int_eq(r, ENOMEM);
	ck_assert_int_eq(r2, ENOMEM);
	ck_assert_ptr_eq(actual, UNTOUCHED);
	ck_assert_int_ge(failed, 2);
	ck_assert_int_eq(e, 4242);
	/* a present key is found as by get, which allocates nothing */
	ck_assert_int_eq(r3, EEXIST);
	ck_assert_ptr_eq(present, value_of(4));
	check_keys(m, long_key_of, 10, 12, false);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(replace_and_remove_if_without_memory_still_work)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_t *m = sample_map();
	int r[6];
	fail_allocations(0, 1, 0);
	errno = 4242;
	r[0] = replace_key(m, 3, value_of(3), value_of(3 + REPLACED));
	r[1] = replace_key(m, 3, value_of(3), value_of(3 + REPLACED));
	r[2] = remove_if_key(m, 3, value_of(3));
	r[3] = remove_if_key(m, 3, value_of(3 + REPLACED));
	r[4] = remove_if_key(m, 3, value_of(3 + REPLACED));
	r[5] = replace_key(m, 3, value_of(3), value_of(3 + REPLACED));
	int e = errno;
	allocations_failed();
	static const int want[6] = { 0, EAGAIN, EAGAIN, 0, ENOENT, ENOENT };
	for (int i = 0; i < 6; i++)
		ck_assert_msg(r[i] == want[i], "call %d returned %d, not %d", i, r[i], want[i]);
	ck_assert_int_eq(e, 4242);
	ck_assert_int_eq(insert_key(m, 3, value_of(3)), 0);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(removes_without_memory_all_succeed)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	/* 300 removes retire 300 nodes: epoch bookkeeping for them needs
	 * memory too (a chunk per 64), which the library must cope without */
	enum { N = 300 };
	static int r[N];
	static void *old[N];
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, N);
	fail_allocations(0, 1, 0);
	for (long i = 0; i < N; i++)
		r[i] = remove_key(m, i, &old[i]);
	allocations_failed();
	for (long i = 0; i < N; i++)
		if (r[i] != 0 || old[i] != value_of(i))
			ck_abort_msg("remove of key %ld returned %d, old %p", i, r[i], old[i]);
	check_exactly(m, 0, 0);
	insert_keys(m, 0, N);
	check_exactly(m, 0, N);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(map_works_again_once_memory_returns)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_t *m = sample_map();
	fail_allocations(0, 1, 0);
	int r[20];
	for (long i = 0; i < 20; i++) {
		struct key k = long_key_of(10 + i);
		r[i] = sync_map_insert(m, k.bytes, k.len, value_of(10 + i));
	}
	allocations_failed();
	for (long i = 0; i < 20; i++)
		ck_assert_int_eq(r[i], ENOMEM);
	check_exactly(m, 0, 10);
	check_keys(m, long_key_of, 10, 30, false);
	for (long i = 10; i < 30; i++) {
		struct key k = long_key_of(i);
		ck_assert_int_eq(sync_map_insert(m, k.bytes, k.len, value_of(i)), 0);
	}
	check_keys(m, long_key_of, 10, 30, true);
	insert_keys(m, 10, 5000);
	check_found(m, 0, 5000);
	check_keys(m, long_key_of, 10, 30, true);
	ck_assert_uint_eq(sync_map_size(m), 5000 + 20);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(failed_inserts_leak_nothing)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_t *m = sample_map();
	struct key k = long_key_of(10);
	ck_assert_int_eq(sync_map_insert(m, k.bytes, k.len, value_of(10)), 0);
	ck_assert_int_eq(sync_map_remove(m, k.bytes, k.len, NULL), 0);
	sync_epoch_barrier();
	long before = heap_in_use();
	fail_allocations(0, 1, 0);
	for (long i = 0; i < 40; i++) {
		k = long_key_of(10 + i);
		sync_map_insert(m, k.bytes, k.len, value_of(10 + i));
		sync_map_put(m, k.bytes, k.len, value_of(10 + i), NULL);
	}
	long failed = allocations_failed();
	ck_assert_int_eq(failed, 80);
	sync_epoch_barrier();
	long after = heap_in_use();
	ck_assert_msg(after == before, "heap went from %ld to %ld bytes", before, after);
	check_keys(m, long_key_of, 10, 50, false);
	check_sample_and_destroy(m);
}
END_TEST

/* Inserts keys 0 .. n - 1 made by kf (put, insert and get_or_insert in
 * turn) with the faults armed as given, then checks that exactly the inserts that
 * returned 0 took effect (get_or_insert setting *actual only then), each failure was
 * ENOMEM and came from a failed allocation, and that the failed keys go
 * in once memory is back. */
static void check_inserts_with_failing_allocations(key_fn kf, long n, long nth, long every,
						   size_t at_least)
{
	static int result[20000];
	static long failed_during[20000];
	ck_assert_int_le(n, 20000);
	sync_map_t *m = new_map(0);
	fail_allocations(nth, every, at_least);
	for (long i = 0; i < n; i++) {
		long failed_before = allocations_failed_so_far();
		struct key k = kf(i);
		void *actual = UNTOUCHED;
		if (i % 3 == 0)
			result[i] = sync_map_put(m, k.bytes, k.len, value_of(i), NULL);
		else if (i % 3 == 1)
			result[i] = sync_map_insert(m, k.bytes, k.len, value_of(i));
		else
			result[i] = sync_map_get_or_insert(m, k.bytes, k.len, value_of(i), &actual);
		failed_during[i] = allocations_failed_so_far() - failed_before;
		if (i % 3 == 2 && actual != (result[i] == 0 ? value_of(i) : UNTOUCHED))
			result[i] = -1; /* reported below, once disarmed */
	}
	long failed = allocations_failed();
	long inserted = 0;
	for (long i = 0; i < n; i++) {
		if (result[i] == 0) {
			inserted++;
			continue;
		}
		ck_assert_msg(result[i] == ENOMEM, "nth %ld every %ld: insert %ld returned %d", nth,
			      every, i, result[i]);
		ck_assert_msg(failed_during[i] > 0,
			      "nth %ld every %ld: insert %ld returned ENOMEM, no allocation failed",
			      nth, every, i);
	}
	ck_assert_msg(sync_map_size(m) == (size_t)inserted,
		      "nth %ld every %ld: size %zu, %ld inserts succeeded (%ld allocations failed)",
		      nth, every, sync_map_size(m), inserted, failed);
	for (long i = 0; i < n; i++) {
		struct key k = kf(i);
		void *v = UNTOUCHED;
		int r = sync_map_get(m, k.bytes, k.len, &v);
		if (result[i] == 0 && (r != 0 || v != value_of(i)))
			ck_abort_msg("nth %ld every %ld: inserted key %ld: get returned %d", nth,
				     every, i, r);
		if (result[i] != 0 && r != ENOENT)
			ck_abort_msg("nth %ld every %ld: failed key %ld: get returned %d", nth, every,
				     i, r);
	}
	for (long i = 0; i < n; i++) {
		struct key k = kf(i);
		if (result[i] != 0)
			ck_assert_int_eq(sync_map_insert(m, k.bytes, k.len, value_of(i)), 0);
	}
	ck_assert_uint_eq(sync_map_size(m), (size_t)n);
	check_keys(m, kf, 0, n, true);
	if (kf == key_of)
		check_foreach_exact(m, 0, n);
	sync_map_destroy(m, NULL);
}

START_TEST(inserts_with_one_failed_allocation_lose_nothing)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	/* the failed allocation at every place in the first 80, then further
	 * out: nodes, each table of the growth to 4096 buckets, the nodes a
	 * migration copies, and epoch bookkeeping */
	for (long nth = 1; nth <= 80; nth++)
		check_inserts_with_failing_allocations(key_of, 2000, nth, 0, 0);
	for (long nth = 100; nth <= 2200; nth += 37)
		check_inserts_with_failing_allocations(key_of, 2000, nth, 0, 0);
}
END_TEST

START_TEST(inserts_with_every_kth_allocation_failing_lose_nothing)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	static const long every[] = { 2, 3, 4, 5, 7, 11, 13, 31, 64, 65, 127 };
	for (size_t i = 0; i < sizeof every / sizeof every[0]; i++)
		check_inserts_with_failing_allocations(key_of, 5000, 0, every[i], 0);
}
END_TEST

START_TEST(inserts_of_long_and_short_keys_with_every_kth_allocation_failing_lose_nothing)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	/* growth to 4096 buckets with chains of long keys and short keys that
	 * found no slot: the copies a migration makes fail too */
	static const long every[] = { 2, 3, 5, 7, 13, 64, 127 };
	for (size_t i = 0; i < sizeof every / sizeof every[0]; i++)
		check_inserts_with_failing_allocations(mixed_key_of, 6000, 0, every[i], 0);
}
END_TEST

START_TEST(inserts_succeed_while_table_cannot_grow)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	/* allocations of 8 KiB or more fail: the table stays at 512 buckets
	 * or fewer (8 bytes each), nodes and epoch bookkeeping still fit */
	enum { N = 10000 };
	sync_map_t *m = new_map(0);
	fail_allocations(0, 0, 8192);
	int bad = 0;
	long bad_key = -1;
	for (long i = 0; i < N; i++)
		if (insert_key(m, i, value_of(i)) != 0 && bad++ == 0)
			bad_key = i;
	long failed = allocations_failed();
	ck_assert_msg(bad == 0, "%d inserts failed, the first of key %ld", bad, bad_key);
	ck_assert_int_ge(failed, 1); /* a bigger table was asked for */
	check_exactly(m, 0, N);
	insert_keys(m, N, 2 * N); /* the table grows now */
	check_exactly(m, 0, 2 * N);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(removes_succeed_while_table_cannot_shrink)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	enum { N = 20000 };
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, N);
	/* tables of 256 buckets or more; epoch bookkeeping (chunks of 1.5 KiB)
	 * still fits */
	fail_allocations(0, 0, 2048);
	int bad = 0;
	for (long i = 0; i < N - 100; i++)
		if (remove_key(m, i, NULL) != 0)
			bad++;
	allocations_failed();
	ck_assert_int_eq(bad, 0);
	check_exactly(m, N - 100, N);
	sync_map_destroy(m, NULL);
}
END_TEST

/* ---- foreach ------------------------------------------------------------ */

START_TEST(foreach_visits_every_key_once_with_its_value)
{
	enum { N = 10000 };
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, N);
	check_foreach_exact(m, 0, N);
	sync_map_destroy(m, NULL);
}
END_TEST

struct bytes_seen {
	const unsigned char *key[4];
	size_t len[4];
	int seen[4];
	int wrong;
};

static int match_bytes(const void *key, size_t keylen, void *value, void *arg)
{
	struct bytes_seen *b = arg;
	long i = (long)(uintptr_t)value - 1;
	if (i < 0 || i >= 4 || keylen != b->len[i] || memcmp(key, b->key[i], keylen) != 0)
		b->wrong++;
	else
		b->seen[i]++;
	return 0;
}

START_TEST(foreach_shows_exact_key_bytes_and_lengths)
{
	static unsigned char long_key[5000];
	for (size_t i = 0; i < sizeof long_key; i++)
		long_key[i] = (unsigned char)(i % 251);
	struct bytes_seen b = { { (const unsigned char *)"a\0b", (const unsigned char *)"a",
				  (const unsigned char *)"", long_key },
				{ 3, 1, 0, sizeof long_key },
				{ 0 },
				0 };
	sync_map_t *m = new_map(0);
	for (long i = 0; i < 4; i++)
		ck_assert_int_eq(sync_map_insert(m, b.key[i], b.len[i], value_of(i)), 0);
	ck_assert_int_eq(sync_map_foreach(m, match_bytes, &b), 0);
	ck_assert_int_eq(b.wrong, 0);
	for (long i = 0; i < 4; i++)
		ck_assert_int_eq(b.seen[i], 1);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(foreach_on_empty_map_returns_zero_without_calling_fn)
{
	sync_map_t *m = new_map(0);
	int calls = 0;
	ck_assert_int_eq(sync_map_foreach(m, never_called, &calls), 0);
	ck_assert_int_eq(calls, 0);
	insert_keys(m, 0, 100);
	remove_keys(m, 0, 100);
	ck_assert_int_eq(sync_map_foreach(m, never_called, &calls), 0);
	ck_assert_int_eq(calls, 0);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(foreach_passes_arg_to_every_call)
{
	sync_map_t *m = sample_map();
	int calls = 0;
	ck_assert_int_eq(sync_map_foreach(m, never_called, &calls), 0);
	ck_assert_int_eq(calls, 10);
	check_sample_and_destroy(m);
}
END_TEST

struct stopper {
	int calls;
	int stop_at; /* the call that returns result */
	int result;
};

static int stop_at_call(const void *key, size_t keylen, void *value, void *arg)
{
	(void)key, (void)keylen, (void)value;
	struct stopper *s = arg;
	return ++s->calls == s->stop_at ? s->result : 0;
}

START_TEST(foreach_stops_at_first_nonzero_result_and_returns_it)
{
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, 1000);
	struct stopper s = { 0, 5, 7 };
	ck_assert_int_eq(sync_map_foreach(m, stop_at_call, &s), 7);
	ck_assert_int_eq(s.calls, 5);
	check_exactly(m, 0, 1000);
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(foreach_returns_negative_result_of_fn)
{
	sync_map_t *m = sample_map();
	struct stopper s = { 0, 3, -3 };
	ck_assert_int_eq(sync_map_foreach(m, stop_at_call, &s), -3);
	ck_assert_int_eq(s.calls, 3);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(foreach_returns_result_of_fn_at_first_key)
{
	sync_map_t *m = sample_map();
	struct stopper s = { 0, 1, EINVAL };
	ck_assert_int_eq(sync_map_foreach(m, stop_at_call, &s), EINVAL);
	ck_assert_int_eq(s.calls, 1);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(foreach_returns_result_of_fn_at_last_key)
{
	sync_map_t *m = sample_map();
	struct stopper s = { 0, 10, 1 };
	ck_assert_int_eq(sync_map_foreach(m, stop_at_call, &s), 1);
	ck_assert_int_eq(s.calls, 10);
	check_sample_and_destroy(m);
}
END_TEST

START_TEST(foreach_visits_every_key_once_at_every_step_of_growth)
{
	/* tables half migrated: a key in an old chain and its copy in the new
	 * table is still one key */
	enum { N = 1200 };
	sync_map_t *m = new_map(0);
	struct tally t;
	for (long n = 1; n <= N; n++) {
		insert_keys(m, n - 1, n);
		tally_init(&t, 0, n);
		ck_assert_int_eq(sync_map_foreach(m, tally_key, &t), 0);
		check_tally_exact(&t);
		tally_free(&t);
	}
	sync_map_destroy(m, NULL);
}
END_TEST

START_TEST(foreach_visits_every_key_once_at_every_step_of_shrinking)
{
	enum { N = 1200 };
	sync_map_t *m = new_map(0);
	struct tally t;
	insert_keys(m, 0, N);
	for (long n = N - 1; n >= 0; n--) {
		remove_keys(m, n, n + 1);
		tally_init(&t, 0, n);
		ck_assert_int_eq(sync_map_foreach(m, tally_key, &t), 0);
		check_tally_exact(&t);
		tally_free(&t);
	}
	sync_map_destroy(m, NULL);
}
END_TEST

/* fn's view of the map it runs on. */
struct changer {
	struct tally t;
	sync_map_t *m;
	long next;   /* next key fn adds */
	long per;    /* keys fn adds or removes per visit */
	int errors;
};

static int remove_visited_key(const void *key, size_t keylen, void *value, void *arg)
{
	struct changer *c = arg;
	tally_visit(&c->t, key, keylen, value, 0);
	void *old = UNTOUCHED;
	if (sync_map_remove(c->m, key, keylen, &old) != 0 || old != value)
		c->errors++;
	return 0;
}

START_TEST(foreach_where_fn_removes_each_visited_key_visits_each_once)
{
	enum { N = 5000 }; /* the table shrinks while foreach runs */
	struct changer c = { .m = new_map(0) };
	insert_keys(c.m, 0, N);
	tally_init(&c.t, 0, N);
	ck_assert_int_eq(sync_map_foreach(c.m, remove_visited_key, &c), 0);
	ck_assert_int_eq(c.errors, 0);
	check_tally_exact(&c.t);
	check_exactly(c.m, 0, 0);
	tally_free(&c.t);
	sync_map_destroy(c.m, NULL);
}
END_TEST

static int replace_visited_value(const void *key, size_t keylen, void *value, void *arg)
{
	struct changer *c = arg;
	long i = tally_visit(&c->t, key, keylen, value, 0);
	void *old = UNTOUCHED;
	if (i < 0 || sync_map_put(c->m, key, keylen, value_of(i + REPLACED), &old) != 0 ||
	    old != value)
		c->errors++;
	return 0;
}

START_TEST(foreach_where_fn_replaces_each_visited_value_visits_each_once)
{
	enum { N = 3000 };
	struct changer c = { .m = new_map(0) };
	insert_keys(c.m, 0, N);
	tally_init(&c.t, 0, N);
	ck_assert_int_eq(sync_map_foreach(c.m, replace_visited_value, &c), 0);
	ck_assert_int_eq(c.errors, 0);
	check_tally_exact(&c.t);
	tally_free(&c.t);
	ck_assert_uint_eq(sync_map_size(c.m), N);
	for (long i = 0; i < N; i++) {
		void *v = UNTOUCHED;
		if (get_key(c.m, i, &v) != 0 || v != value_of(i + REPLACED))
			ck_abort_msg("key %ld: value not replaced", i);
	}
	sync_map_destroy(c.m, NULL);
}
END_TEST

/* Keys 0 .. ORIGINAL - 1 are there throughout; fn adds keys from ORIGINAL on. */
#define ORIGINAL 500L

static int add_keys_per_visit(const void *key, size_t keylen, void *value, void *arg)
{
	struct changer *c = arg;
	long i = index_of_key(key, keylen);
	if (i < 0 || i >= c->t.to) {
		c->errors++;
		return 0;
	}
	if (i >= ORIGINAL) { /* a key fn added: it may be visited, once */
		if (c->t.seen[i]++ != 0 || value != value_of(i))
			c->errors++;
		return 0;
	}
	tally_visit(&c->t, key, keylen, value, 0);
	for (long n = 0; n < c->per; n++, c->next++)
		if (insert_key(c->m, c->next, value_of(c->next)) != 0)
			c->errors++;
	return 0;
}

START_TEST(foreach_where_fn_adds_keys_visits_keys_present_throughout_once)
{
	/* 500 keys, fn adds 40 per visit: 20500 keys by the end, the table
	 * grows from 1024 to 32768 buckets while foreach walks it */
	struct changer c = { .m = new_map(0), .next = ORIGINAL, .per = 40 };
	long total = ORIGINAL * (1 + c.per);
	insert_keys(c.m, 0, ORIGINAL);
	tally_init(&c.t, 0, total);
	ck_assert_int_eq(sync_map_foreach(c.m, add_keys_per_visit, &c), 0);
	ck_assert_int_eq(c.errors, 0);
	for (long i = 0; i < ORIGINAL; i++)
		if (c.t.seen[i] != 1)
			ck_abort_msg("key %ld, present throughout, visited %d times", i, c.t.seen[i]);
	ck_assert_int_eq(c.t.wrong_values, 0);
	ck_assert_int_eq(c.next, total);
	check_exactly(c.m, 0, total);
	tally_free(&c.t);
	sync_map_destroy(c.m, NULL);
}
END_TEST

static int remove_most_keys_at_first_visit(const void *key, size_t keylen, void *value,
					   void *arg)
{
	struct changer *c = arg;
	tally_visit(&c->t, key, keylen, value, 0);
	if (c->t.visits == 1)
		for (long i = 0; i < c->t.to; i++)
			if (i % 10 != 0 && remove_key(c->m, i, NULL) != 0)
				c->errors++;
	return 0;
}

START_TEST(foreach_where_fn_removes_other_keys_visits_survivors_once)
{
	/* 4000 keys, fn removes 90% of them at its first call: the table
	 * shrinks while foreach walks it */
	enum { N = 4000 };
	struct changer c = { .m = new_map(0) };
	insert_keys(c.m, 0, N);
	tally_init(&c.t, 0, N);
	ck_assert_int_eq(sync_map_foreach(c.m, remove_most_keys_at_first_visit, &c), 0);
	ck_assert_int_eq(c.errors, 0);
	ck_assert_int_eq(c.t.strangers, 0);
	ck_assert_int_eq(c.t.wrong_values, 0);
	for (long i = 0; i < N; i++) {
		if (i % 10 == 0 && c.t.seen[i] != 1)
			ck_abort_msg("surviving key %ld visited %d times", i, c.t.seen[i]);
		if (c.t.seen[i] > 1)
			ck_abort_msg("removed key %ld visited %d times", i, c.t.seen[i]);
	}
	ck_assert_uint_eq(sync_map_size(c.m), N / 10);
	tally_free(&c.t);
	sync_map_destroy(c.m, NULL);
}
END_TEST

static int get_visited_key(const void *key, size_t keylen, void *value, void *arg)
{
	struct changer *c = arg;
	void *v = UNTOUCHED;
	tally_visit(&c->t, key, keylen, value, 0);
	if (sync_map_get(c->m, key, keylen, &v) != 0 || v != value || sync_map_size(c->m) != 100)
		c->errors++;
	return 0;
}

START_TEST(foreach_where_fn_gets_and_sizes_sees_the_same_map)
{
	struct changer c = { .m = new_map(0) };
	insert_keys(c.m, 0, 100);
	tally_init(&c.t, 0, 100);
	ck_assert_int_eq(sync_map_foreach(c.m, get_visited_key, &c), 0);
	ck_assert_int_eq(c.errors, 0);
	check_tally_exact(&c.t);
	tally_free(&c.t);
	sync_map_destroy(c.m, NULL);
}
END_TEST

static int nested_foreach(const void *key, size_t keylen, void *value, void *arg)
{
	(void)key, (void)keylen, (void)value;
	struct changer *c = arg;
	int calls = 0;
	if (sync_map_foreach(c->m, never_called, &calls) != 0 || calls != 10)
		c->errors++;
	c->t.visits++;
	return 0;
}

START_TEST(foreach_inside_foreach_visits_the_whole_map)
{
	struct changer c = { .m = sample_map() };
	ck_assert_int_eq(sync_map_foreach(c.m, nested_foreach, &c), 0);
	ck_assert_int_eq(c.errors, 0);
	ck_assert_int_eq(c.t.visits, 10);
	check_sample_and_destroy(c.m);
}
END_TEST

static int barrier_in_fn(const void *key, size_t keylen, void *value, void *arg)
{
	(void)key, (void)keylen, (void)value, (void)arg;
	sync_epoch_barrier(); /* aborts: fn runs inside a read-side section */
	return 0;
}

static int child_calls_barrier_in_foreach(void *arg)
{
	(void)arg;
	sync_map_t *m = sync_map_create(0);
	if (!m || sync_map_insert(m, "k", 1, value_of(1)) != 0)
		return 20;
	sync_map_foreach(m, barrier_in_fn, NULL);
	return 1; /* did not abort */
}

START_TEST(fn_of_foreach_runs_inside_read_side_section)
{
	char err[512];
	int status = run_child_capturing_stderr(child_calls_barrier_in_foreach, NULL, err,
						sizeof err);
	ck_assert_msg(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		      "child did not abort (wait status %#x); stderr: %s", (unsigned)status, err);
	ck_assert_msg(strstr(err, "inside a read-side section") != NULL, "stderr: %s", err);
}
END_TEST

/* ---- against a reference model ------------------------------------------ */

#define MODEL_KEYS 1000
#define MODEL_KEY_MAX 32

/* Model key i: empty for 0; else two bytes of i / 23 then the first i % 23
 * bytes of a pattern with NULs, so keys of one group are prefixes of each
 * other. */
static size_t model_key(long i, unsigned char *buf)
{
	static const unsigned char pattern[] = "\0ab\0cd\0\0ef\0gh\0ij\0\0kl\0mn\0op";
	if (i == 0)
		return 0;
	buf[0] = (unsigned char)(i / 23);
	buf[1] = (unsigned char)(i / 23 >> 8);
	memcpy(buf + 2, pattern, (size_t)(i % 23));
	return 2 + (size_t)(i % 23);
}

static long model_index(const void *key, size_t keylen)
{
	if (keylen == 0)
		return 0;
	if (keylen < 2 || keylen > 24)
		return -1;
	const unsigned char *k = key;
	long i = (k[0] | (long)k[1] << 8) * 23 + (long)keylen - 2;
	unsigned char buf[MODEL_KEY_MAX];
	if (i <= 0 || i >= MODEL_KEYS || model_key(i, buf) != keylen ||
	    memcmp(buf, key, keylen) != 0)
		return -1;
	return i;
}

struct model {
	sync_map_t *m;
	void *value[MODEL_KEYS];
	size_t size;
	int seen[MODEL_KEYS];
	long strangers, wrong;
};

static uint64_t next_random(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static int model_visit(const void *key, size_t keylen, void *value, void *arg)
{
	struct model *md = arg;
	long i = model_index(key, keylen);
	if (i < 0)
		md->strangers++;
	else if (md->seen[i]++ != 0 || md->value[i] != value)
		md->wrong++;
	return 0;
}

/* The map holds what the model does: size, every key, foreach. */
static void check_model(struct model *md, long op)
{
	ck_assert_msg(sync_map_size(md->m) == md->size, "op %ld: size %zu, model %zu", op,
		      sync_map_size(md->m), md->size);
	unsigned char buf[MODEL_KEY_MAX];
	for (long i = 0; i < MODEL_KEYS; i++) {
		void *v = UNTOUCHED;
		int r = sync_map_get(md->m, buf, model_key(i, buf), &v);
		if (md->value[i] ? r != 0 || v != md->value[i] : r != ENOENT)
			ck_abort_msg("op %ld: key %ld: get returned %d, %p; model %p", op, i, r, v,
				     md->value[i]);
	}
	memset(md->seen, 0, sizeof md->seen);
	md->strangers = md->wrong = 0;
	ck_assert_int_eq(sync_map_foreach(md->m, model_visit, md), 0);
	ck_assert_msg(md->strangers == 0 && md->wrong == 0,
		      "op %ld: foreach showed %ld unknown keys, %ld repeated or wrong", op,
		      md->strangers, md->wrong);
	for (long i = 0; i < MODEL_KEYS; i++)
		if (md->seen[i] != (md->value[i] != NULL))
			ck_abort_msg("op %ld: foreach visited key %ld %d times", op, i, md->seen[i]);
}

enum model_op { GET, PUT, PUT_NO_OLD, INSERT, REMOVE, REMOVE_NO_OLD, GET_OR_INSERT,
		REPLACE, REMOVE_IF };

/* ops random operations, their keys at random alignments; phases of 20000
 * ops alternate between mostly adding and mostly removing (about 940 and 60
 * keys held), so the table grows and shrinks again and again. With fail_one_in, a random allocation
 * of about one call in fail_one_in fails. */
static void run_model(long ops, uint64_t seed, int fail_one_in)
{
	static struct model md;
	memset(&md, 0, sizeof md);
	md.m = new_map(0);
	uint64_t rng = seed;
	_Alignas(16) unsigned char buf[MODEL_KEY_MAX + 16];
	for (long op = 0; op < ops; op++) {
		uint64_t r = next_random(&rng);
		long i = (long)(r % MODEL_KEYS);
		int pick = (int)((r >> 32) % 100);
		bool adding = (op / 20000) % 2 == 0;
		enum model_op kind;
		if (pick < 20)
			kind = GET;
		else if ((pick < 95) == adding) /* 75% of one kind, 5% of the other */
			kind = (enum model_op[]){ PUT, PUT_NO_OLD, INSERT, GET_OR_INSERT,
						  REPLACE }[pick % 5];
		else
			kind = (enum model_op[]){ REMOVE, REMOVE_NO_OLD, REMOVE_IF }[pick % 3];
		unsigned char *key = buf + (r >> 48) % 16;
		size_t len = model_key(i, key);
		void *value = value_of(op), *out = UNTOUCHED;
		void *had = md.value[i];
		/* replace and remove_if expect the value held half the time */
		void *expected = had && (r >> 60) % 2 ? had : value_of(ops + op);
		bool armed = fail_one_in && (r >> 40) % (uint64_t)fail_one_in == 0;
		if (armed)
			fail_allocations(1 + (long)((r >> 56) % 4), 0, 0);
		int got;
		switch (kind) {
		case GET:
			got = sync_map_get(md.m, key, len, &out);
			break;
		case PUT:
			got = sync_map_put(md.m, key, len, value, &out);
			break;
		case PUT_NO_OLD:
			got = sync_map_put(md.m, key, len, value, NULL);
			break;
		case INSERT:
			got = sync_map_insert(md.m, key, len, value);
			break;
		case REMOVE:
			got = sync_map_remove(md.m, key, len, &out);
			break;
		case REMOVE_NO_OLD:
			got = sync_map_remove(md.m, key, len, NULL);
			break;
		case GET_OR_INSERT:
			got = sync_map_get_or_insert(md.m, key, len, value, &out);
			break;
		case REPLACE:
			got = sync_map_replace(md.m, key, len, expected, value);
			break;
		default:
			got = sync_map_remove_if(md.m, key, len, expected);
			break;
		}
		bool failed = armed && allocations_failed() > 0;
		memset(key, 0xee, len); /* the key was copied, if kept */
		bool adds = kind == PUT || kind == PUT_NO_OLD || kind == INSERT || kind == GET_OR_INSERT;
		if (got == ENOMEM && failed && adds && out == UNTOUCHED) {
			void *v = UNTOUCHED;
			len = model_key(i, key);
			int now = sync_map_get(md.m, key, len, &v);
			if (had ? now != 0 || v != had : now != ENOENT)
				ck_abort_msg("seed %#llx op %ld: put/insert of key %ld: ENOMEM, "
					     "yet get returned %d, %p; before %p",
					     (unsigned long long)seed, op, i, now, v, had);
			continue;
		}
		bool ok;
		switch (kind) {
		case GET:
			ok = had ? got == 0 && out == had : got == ENOENT;
			break;
		case PUT:
			ok = got == 0 && out == had;
			break;
		case PUT_NO_OLD:
			ok = got == 0;
			break;
		case INSERT:
			ok = got == (had ? EEXIST : 0);
			break;
		case REMOVE:
			ok = had ? got == 0 && out == had : got == ENOENT;
			break;
		case REMOVE_NO_OLD:
			ok = got == (had ? 0 : ENOENT);
			break;
		case GET_OR_INSERT:
			ok = had ? got == EEXIST && out == had : got == 0 && out == value;
			break;
		default: /* REPLACE, REMOVE_IF */
			ok = got == (!had ? ENOENT : expected == had ? 0 : EAGAIN);
			break;
		}
		if (!ok)
			ck_abort_msg("seed %#llx op %ld: operation %d on key %ld returned %d, out %p;"
				     " model value %p",
				     (unsigned long long)seed, op, (int)kind, i, got, out, had);
		bool inserts = (kind == INSERT || kind == GET_OR_INSERT) && !had;
		bool replaces = kind == REPLACE && had && expected == had;
		bool removes = kind == REMOVE || kind == REMOVE_NO_OLD ||
			       (kind == REMOVE_IF && expected == had);
		if (kind == PUT || kind == PUT_NO_OLD || inserts || replaces) {
			md.value[i] = value;
			md.size += !had;
		} else if (removes && had) {
			md.value[i] = NULL;
			md.size--;
		}
		if (op % 5000 == 4999)
			check_model(&md, op);
	}
	check_model(&md, ops);
	sync_map_destroy(md.m, NULL);
}

START_TEST(model_keys_are_distinct_and_decode)
{
	unsigned char buf[MODEL_KEY_MAX];
	for (long i = 0; i < MODEL_KEYS; i++)
		ck_assert_int_eq(model_index(buf, model_key(i, buf)), i);
}
END_TEST

START_TEST(random_operations_match_reference_model)
{
	run_model(200000, 0x9e3779b97f4a7c15ULL, 0);
}
END_TEST

START_TEST(random_operations_with_failing_allocations_match_reference_model)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	run_model(100000, 0xd1b54a32d192ed03ULL, 10);
}
END_TEST

/* ---- other threads ------------------------------------------------------ */

#define THREADS 4
#define PER_THREAD 5000L

struct worker {
	sync_map_t *m;
	long first;
	atomic_int *errors;
};

static void *insert_range_remove_half(void *arg)
{
	struct worker *w = arg;
	for (long i = w->first; i < w->first + PER_THREAD; i++)
		if (insert_key(w->m, i, value_of(i)) != 0)
			atomic_fetch_add(w->errors, 1);
	for (long i = w->first; i < w->first + PER_THREAD; i += 2)
		if (remove_key(w->m, i, NULL) != 0)
			atomic_fetch_add(w->errors, 1);
	return NULL;
}

START_TEST(size_is_exact_after_inserts_and_removes_from_several_threads)
{
	sync_map_t *m = new_map(0);
	atomic_int errors = 0;
	struct worker w[THREADS];
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ m, i * PER_THREAD, &errors };
		ck_assert_int_eq(pthread_create(&t[i], NULL, insert_range_remove_half, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&errors), 0);
	ck_assert_uint_eq(sync_map_size(m), THREADS * PER_THREAD / 2);
	for (long i = 0; i < THREADS * PER_THREAD; i++) {
		void *v = UNTOUCHED;
		int r = get_key(m, i, &v);
		if (i % 2 ? r != 0 || v != value_of(i) : r != ENOENT)
			ck_abort_msg("key %ld: get returned %d", i, r);
	}
	sync_map_destroy(m, NULL);
}
END_TEST

struct resizer {
	sync_map_t *m;
	atomic_int done;
	atomic_int errors;
};

/* Grows the map by 20000 keys and shrinks it back, three times. */
static void *grow_and_shrink(void *arg)
{
	struct resizer *z = arg;
	for (int cycle = 0; cycle < 3; cycle++) {
		for (long i = 1000; i < 21000; i++)
			if (insert_key(z->m, i, value_of(i)) != 0)
				atomic_fetch_add(&z->errors, 1);
		for (long i = 1000; i < 21000; i++)
			if (remove_key(z->m, i, NULL) != 0)
				atomic_fetch_add(&z->errors, 1);
	}
	atomic_store(&z->done, 1);
	return NULL;
}

START_TEST(get_in_one_thread_finds_keys_present_throughout_while_another_resizes)
{
	static struct resizer z;
	z.m = new_map(0);
	insert_keys(z.m, 0, 1000);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, grow_and_shrink, &z), 0);
	long misses = 0, rounds = 0, first_miss = -1;
	while (!atomic_load(&z.done)) {
		for (long i = 0; i < 1000; i++) {
			void *v = UNTOUCHED;
			if ((get_key(z.m, i, &v) != 0 || v != value_of(i)) && misses++ == 0)
				first_miss = i;
		}
		rounds++;
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(misses == 0, "%ld of %ld gets missed a stable key, first key %ld", misses,
		      rounds * 1000, first_miss);
	ck_assert_int_eq(atomic_load(&z.errors), 0);
	check_exactly(z.m, 0, 1000);
	sync_map_destroy(z.m, NULL);
}
END_TEST

/* One round of the conditional operations on key i, which holds value_of(i)
 * before and after; the number of results that were not as expected. */
static long conditional_round(sync_map_t *m, long i)
{
	void *was = value_of(i), *now = value_of(i + REPLACED), *actual = UNTOUCHED;
	long bad = 0;
	bad += replace_key(m, i, was, now) != 0;
	bad += replace_key(m, i, was, now) != EAGAIN;
	bad += get_or_insert_key(m, i, was, &actual) != EEXIST || actual != now;
	bad += remove_if_key(m, i, was) != EAGAIN;
	bad += remove_if_key(m, i, now) != 0;
	bad += replace_key(m, i, now, was) != ENOENT;
	bad += remove_if_key(m, i, now) != ENOENT;
	actual = UNTOUCHED;
	bad += get_or_insert_key(m, i, was, &actual) != 0 || actual != was;
	return bad;
}

START_TEST(get_or_insert_replace_and_remove_if_are_exact_while_another_thread_resizes)
{
	static struct resizer z;
	z = (struct resizer){ .m = new_map(0) };
	insert_keys(z.m, 0, 1000);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, grow_and_shrink, &z), 0);
	long bad = 0, rounds = 0, first_bad = -1;
	do {
		for (long i = 0; i < 1000; i++)
			if (conditional_round(z.m, i) && bad++ == 0)
				first_bad = i;
		rounds++;
	} while (!atomic_load(&z.done));
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(bad == 0, "%ld of %ld rounds went wrong, first on key %ld", bad,
		      rounds * 1000, first_bad);
	ck_assert_int_eq(atomic_load(&z.errors), 0);
	check_exactly(z.m, 0, 1000);
	sync_map_destroy(z.m, NULL);
}
END_TEST

/* get_or_insert of the same keys from several threads: one insert per key
 * wins, and every thread is handed the winner's value. The threads meet at
 * a spinning barrier before each batch of keys (a sleeping one wakes them
 * too far apart), so that they race for each key. */
#define RACE_BATCH 4L
#define RACED_KEYS (RACE_BATCH * 3000L)

/* Waits until all THREADS have arrived `round` times. */
static void spin_barrier(atomic_long *arrived, long round)
{
	atomic_fetch_add(arrived, 1);
	while (atomic_load(arrived) < round * THREADS)
		sched_yield(); /* more threads than cores */
}

struct goi_race {
	sync_map_t *m;
	int index;
	atomic_long *arrived;
	atomic_int *wins;       /* per key */
	_Atomic(void *) *first; /* per key: the first value a thread was handed */
	atomic_int *errors;
};

static void *racer_value(long i, int index)
{
	return (void *)(uintptr_t)((i + 1) * 8 + index);
}

static void *get_or_insert_racer(void *arg)
{
	struct goi_race *g = arg;
	for (long i = 0; i < RACED_KEYS; i++) {
		if (i % RACE_BATCH == 0)
			spin_barrier(g->arrived, i / RACE_BATCH + 1);
		void *mine = racer_value(i, g->index), *actual = UNTOUCHED, *none = NULL;
		int r = get_or_insert_key(g->m, i, mine, &actual);
		if (r == 0)
			atomic_fetch_add(&g->wins[i], 1);
		if ((r == 0) != (actual == mine) || (r != 0 && r != EEXIST))
			atomic_fetch_add(g->errors, 1);
		if (!atomic_compare_exchange_strong(&g->first[i], &none, actual) &&
		    none != actual)
			atomic_fetch_add(g->errors, 1);
	}
	return NULL;
}

START_TEST(get_or_insert_from_several_threads_has_one_winner_per_key_seen_by_all)
{
	static atomic_int wins[RACED_KEYS];
	static _Atomic(void *) first[RACED_KEYS];
	atomic_int errors = 0;
	sync_map_t *m = new_map(0);
	for (long i = 0; i < RACED_KEYS; i++) {
		atomic_init(&wins[i], 0);
		atomic_init(&first[i], NULL);
	}
	struct goi_race g[THREADS];
	pthread_t t[THREADS];
	atomic_long arrived = 0;
	for (int i = 0; i < THREADS; i++) {
		g[i] = (struct goi_race){ m, i, &arrived, wins, first, &errors };
		ck_assert_int_eq(pthread_create(&t[i], NULL, get_or_insert_racer, &g[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	int bad = atomic_load(&errors);
	ck_assert_msg(bad == 0, "%d calls returned a wrong result or value", bad);
	ck_assert_uint_eq(sync_map_size(m), RACED_KEYS);
	for (long i = 0; i < RACED_KEYS; i++) {
		void *v = UNTOUCHED;
		int r = get_key(m, i, &v);
		if (atomic_load(&wins[i]) != 1 || r != 0 || v != atomic_load(&first[i]))
			ck_abort_msg("key %ld: %d wins, get returned %d, %p, threads saw %p", i,
				     atomic_load(&wins[i]), r, v, atomic_load(&first[i]));
	}
	sync_map_destroy(m, NULL);
}
END_TEST

/* A reader that waits inside its section for something the remover posts
 * after its removes: no remove may wait for that section to end, however
 * many removed entries are waiting for it (sync_epoch_retire waits for a
 * grace period from 65536 pending callbacks on). */
#define REMOVES_PAST_HIGH_WATER 70000L

struct waiting_reader {
	atomic_int inside;
	atomic_int posted;
	atomic_int saw_post;
};

static void *read_waiting_for_post(void *arg)
{
	struct waiting_reader *w = arg;
	sync_epoch_enter();
	atomic_store(&w->inside, 1);
	bool posted = false;
	for (int i = 0; i < 5 && !posted; i++) /* 10 s at most */
		posted = wait_until_equal(&w->posted, 1);
	atomic_store(&w->saw_post, posted);
	sync_epoch_exit();
	return NULL;
}

START_TEST(removes_never_wait_for_reader_that_waits_inside_its_section_for_remover)
{
	static struct waiting_reader w;
	pthread_t t;
	sync_map_t *m = new_map(0);
	ck_assert_int_eq(pthread_create(&t, NULL, read_waiting_for_post, &w), 0);
	ck_assert(wait_until_equal(&w.inside, 1));
	insert_keys(m, 0, REMOVES_PAST_HIGH_WATER);
	remove_keys(m, 0, REMOVES_PAST_HIGH_WATER);
	atomic_store(&w.posted, 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(atomic_load(&w.saw_post), "a remove waited for the reader's section");
	check_exactly(m, 0, 0);
	sync_map_destroy(m, NULL);
}
END_TEST

/* Short-lived threads that each put and remove one key: what they retire
 * is reclaimed soon after they exit, without a synchronize or barrier, so
 * the heap tracks the live entries, not the number of threads that ran. */
#define SHORT_LIVED_THREADS 3000L

struct short_lived {
	sync_map_t *m;
	long key;
};

static void *put_and_remove_one_key(void *arg)
{
	struct short_lived *s = arg;
	put_key(s->m, s->key, value_of(s->key), NULL);
	remove_key(s->m, s->key, NULL);
	return NULL;
}

static void run_short_lived_threads(sync_map_t *m, long from, long to)
{
	for (long i = from; i < to; i++) {
		struct short_lived s = { m, i };
		pthread_t t;
		ck_assert_int_eq(pthread_create(&t, NULL, put_and_remove_one_key, &s), 0);
		ck_assert_int_eq(pthread_join(t, NULL), 0);
	}
}

START_TEST(heap_stays_flat_over_many_short_lived_threads_that_put_and_remove)
{
	if (!FAULTS)
		return; /* see plain_malloc() in util.h */
	sync_map_t *m = new_map(0);
	insert_keys(m, 0, 100);
	run_short_lived_threads(m, 1000, 1100);
	sync_epoch_barrier();
	long before = heap_in_use();
	run_short_lived_threads(m, 1100, 1100 + SHORT_LIVED_THREADS);
	long after = heap_in_use(); /* no barrier: reclaimed on the way */
	ck_assert_msg(after < before + 4 * HEAP_SLACK,
		      "heap grew from %ld to %ld bytes over %ld threads", before, after,
		      SHORT_LIVED_THREADS);
	check_exactly(m, 0, 100);
	sync_map_destroy(m, NULL);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("map");

	TCase *tc = tcase_create("create_destroy");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, create_returns_empty_map);
	tcase_add_test(tc, create_with_hint_zero_holds_keys);
	tcase_add_test(tc, create_with_small_hint_holds_more_keys_than_hinted);
	tcase_add_test(tc, create_with_large_hint_holds_keys);
	tcase_add_test(tc, create_with_hint_too_large_to_allocate_returns_null_with_enomem);
	tcase_add_test(tc, create_without_memory_returns_null_with_enomem);
	tcase_add_test(tc,
		       create_with_any_allocation_failing_returns_null_with_enomem_and_leaks_nothing);
	tcase_add_test(tc, destroy_of_null_map_does_nothing);
	tcase_add_test(tc, destroy_of_empty_map_calls_free_value_never);
	tcase_add_test(tc, destroy_calls_free_value_once_per_value_still_in_map);
	tcase_add_test(tc, destroy_in_any_state_of_growth_calls_free_value_once_per_value);
	tcase_add_test(tc, destroy_in_any_state_of_shrinking_calls_free_value_once_per_value);
	tcase_add_test(tc, destroy_with_null_free_value_leaves_values_alone);
	tcase_add_test(tc, destroy_with_free_passes_each_value_to_free);
	tcase_add_test(tc, destroy_returns_the_maps_memory);
	tcase_add_test(tc, maps_are_independent);
	suite_add_tcase(s, tc);

	tc = tcase_create("arguments");
	tcase_add_test(tc, get_from_null_map_returns_einval);
	tcase_add_test(tc, get_with_null_key_and_nonzero_length_returns_einval);
	tcase_add_test(tc, get_into_null_value_pointer_returns_einval);
	tcase_add_test(tc, put_to_null_map_returns_einval);
	tcase_add_test(tc, put_with_null_key_and_nonzero_length_returns_einval_and_changes_nothing);
	tcase_add_test(tc, put_of_null_value_returns_einval_and_changes_nothing);
	tcase_add_test(tc, insert_to_null_map_returns_einval);
	tcase_add_test(tc,
		       insert_with_null_key_and_nonzero_length_returns_einval_and_changes_nothing);
	tcase_add_test(tc, insert_of_null_value_returns_einval_and_changes_nothing);
	tcase_add_test(tc, remove_from_null_map_returns_einval);
	tcase_add_test(tc,
		       remove_with_null_key_and_nonzero_length_returns_einval_and_changes_nothing);
	tcase_add_test(tc, get_or_insert_to_null_map_returns_einval);
	tcase_add_test(tc,
		       get_or_insert_with_null_key_and_nonzero_length_returns_einval_and_changes_nothing);
	tcase_add_test(tc, get_or_insert_of_null_value_returns_einval_and_changes_nothing);
	tcase_add_test(tc, replace_in_null_map_returns_einval);
	tcase_add_test(tc,
		       replace_with_null_key_and_nonzero_length_returns_einval_and_changes_nothing);
	tcase_add_test(tc, replace_with_null_expected_or_desired_returns_einval_and_changes_nothing);
	tcase_add_test(tc, remove_if_from_null_map_returns_einval);
	tcase_add_test(tc,
		       remove_if_with_null_key_and_nonzero_length_returns_einval_and_changes_nothing);
	tcase_add_test(tc, remove_if_with_null_expected_returns_einval_and_changes_nothing);
	tcase_add_test(tc, size_of_null_map_is_zero);
	tcase_add_test(tc, foreach_of_null_map_returns_einval);
	tcase_add_test(tc, foreach_with_null_fn_returns_einval_and_changes_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("operations");
	tcase_add_test(tc, get_of_absent_key_returns_enoent);
	tcase_add_test(tc, get_of_key_in_empty_map_returns_enoent);
	tcase_add_test(tc, get_returns_inserted_value);
	tcase_add_test(tc, get_returns_value_put_for_new_key);
	tcase_add_test(tc, get_does_not_change_the_map);
	tcase_add_test(tc, insert_of_present_key_returns_eexist_and_keeps_value);
	tcase_add_test(tc, insert_of_absent_key_adds_it);
	tcase_add_test(tc, put_of_absent_key_adds_it_and_sets_old_to_null);
	tcase_add_test(tc, put_of_present_key_replaces_value_and_returns_old_one);
	tcase_add_test(tc, put_of_same_value_again_returns_it_as_old);
	tcase_add_test(tc, put_with_null_old_pointer_adds_and_replaces);
	tcase_add_test(tc, remove_of_absent_key_returns_enoent_and_changes_nothing);
	tcase_add_test(tc, remove_from_empty_map_returns_enoent);
	tcase_add_test(tc, remove_returns_value_and_key_is_gone);
	tcase_add_test(tc, remove_returns_latest_put_value);
	tcase_add_test(tc, remove_with_null_old_pointer_removes);
	tcase_add_test(tc, second_remove_of_key_returns_enoent);
	tcase_add_test(tc, removed_key_can_be_inserted_and_put_again);
	tcase_add_test(tc, same_value_under_two_keys_is_kept_under_both);
	tcase_add_test(tc, operations_inside_callers_read_side_section_work);
	suite_add_tcase(s, tc);

	tc = tcase_create("conditional");
	tcase_add_test(tc, get_or_insert_of_absent_key_inserts_and_sets_actual_to_value);
	tcase_add_test(tc,
		       get_or_insert_of_present_key_returns_eexist_with_value_present_and_keeps_it);
	tcase_add_test(tc, get_or_insert_returns_latest_value_stored);
	tcase_add_test(tc, get_or_insert_with_null_actual_inserts_once_then_returns_eexist);
	tcase_add_test(tc, get_or_insert_after_remove_inserts_again);
	tcase_add_test(tc, replace_of_absent_key_returns_enoent_and_adds_nothing);
	tcase_add_test(tc, replace_in_empty_map_returns_enoent);
	tcase_add_test(tc, replace_when_value_is_not_expected_returns_eagain_and_keeps_value);
	tcase_add_test(tc, replace_when_value_is_expected_stores_desired);
	tcase_add_test(tc, replace_with_desired_equal_to_expected_succeeds_and_keeps_value);
	tcase_add_test(tc, replace_changes_only_its_key);
	tcase_add_test(tc, remove_if_of_absent_key_returns_enoent_and_changes_nothing);
	tcase_add_test(tc, remove_if_from_empty_map_returns_enoent);
	tcase_add_test(tc, remove_if_when_value_is_not_expected_returns_eagain_and_keeps_key);
	tcase_add_test(tc, remove_if_when_value_is_expected_removes_key);
	tcase_add_test(tc, empty_key_works_with_get_or_insert_replace_and_remove_if);
	tcase_add_test(tc,
		       key_too_long_returns_enomem_from_get_or_insert_enoent_from_replace_and_remove_if);
	tcase_add_test(tc, get_or_insert_replace_and_remove_if_leave_errno_alone_in_every_result);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_test(tc, key_is_copied_so_caller_may_change_its_buffer);
	tcase_add_test(tc, key_is_copied_so_caller_may_free_its_buffer);
	tcase_add_test(tc, key_bytes_are_compared_not_key_pointers);
	tcase_add_test(tc, key_found_from_buffers_at_every_alignment);
	tcase_add_test(tc, keys_with_nul_bytes_are_distinct);
	tcase_add_test(tc, keys_differing_only_in_length_are_distinct);
	tcase_add_test(tc, keys_of_every_length_up_to_300_are_distinct);
	tcase_add_test(
		tc, keys_of_every_length_0_to_16_sharing_a_prefix_are_distinct_after_growth_and_shrinking);
	tcase_add_test(tc, keys_differing_only_in_trailing_zero_bytes_are_distinct);
	tcase_add_test(tc, empty_key_is_a_valid_key);
	tcase_add_test(tc, null_key_of_length_zero_is_the_empty_key);
	tcase_add_test(tc, foreach_shows_empty_key_with_length_zero);
	tcase_add_test(tc, single_byte_keys_of_all_256_values_are_distinct);
	tcase_add_test(tc, long_keys_of_10_kib_are_stored_and_told_apart);
	tcase_add_test(tc, long_keys_survive_growth);
	tcase_add_test(tc, keys_sharing_a_long_prefix_are_distinct);
	tcase_add_test(tc, key_too_long_for_a_node_returns_enomem_and_changes_nothing);
	tcase_add_test(tc, get_and_remove_of_key_too_long_to_store_return_enoent);
	tcase_add_test(tc, maps_with_same_keys_hash_them_differently);
	suite_add_tcase(s, tc);

	tc = tcase_create("size");
	tcase_add_test(tc, size_counts_every_insert_and_remove_and_nothing_else);
	tcase_add_test(tc, size_is_exact_at_every_step_of_growth_and_shrinking);
	suite_add_tcase(s, tc);

	tc = tcase_create("resize");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, map_from_hint_zero_grows_to_200000_keys_all_found);
	tcase_add_test(tc, every_key_is_found_after_each_insert_while_table_grows);
	tcase_add_test(
		tc,
		map_grown_from_hint_zero_to_100000_short_keys_then_shrunk_finds_every_key_at_every_step);
	tcase_add_test(tc, every_key_left_is_found_after_each_remove_while_table_shrinks);
	tcase_add_test(tc, removing_100000_keys_leaves_empty_map_that_takes_them_again);
	tcase_add_test(tc, removing_keys_in_reverse_and_interleaved_orders_keeps_the_rest);
	tcase_add_test(tc, large_hint_map_shrunk_to_empty_takes_keys_again);
	tcase_add_test(tc,
		       get_or_insert_replace_and_remove_if_work_at_every_step_of_growth_and_shrinking);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, table_shrinks_after_removing_all_keys);
	tcase_add_test(tc, table_never_shrinks_below_the_hinted_capacity);
	tcase_add_test(tc, heap_stays_flat_over_a_million_put_remove_pairs);
	tcase_add_test(tc, heap_stays_flat_over_repeated_growth_and_shrinking);
	tcase_add_test(tc, put_remove_churn_of_short_keys_with_free_slots_allocates_nothing);
	tcase_add_test(tc, get_makes_no_allocation);
	suite_add_tcase(s, tc);

	tc = tcase_create("out_of_memory");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, insert_of_long_key_without_memory_returns_enomem_and_changes_nothing);
	tcase_add_test(tc, put_of_new_long_key_without_memory_returns_enomem_and_changes_nothing);
	tcase_add_test(tc,
		       empty_key_without_memory_returns_enomem_when_its_bucket_is_full_and_changes_nothing);
	tcase_add_test(tc,
		       short_keys_without_memory_go_into_free_slots_by_insert_put_and_get_or_insert);
	tcase_add_test(tc,
		       short_keys_without_memory_fill_the_free_slots_then_return_enomem_and_change_nothing);
	tcase_add_test(tc, put_replacing_without_memory_replaces_or_changes_nothing);
	tcase_add_test(tc, insert_of_present_key_without_memory_keeps_value);
	tcase_add_test(tc,
		       get_or_insert_of_long_key_without_memory_returns_enomem_changes_nothing_and_keeps_errno);
	tcase_add_test(tc, replace_and_remove_if_without_memory_still_work);
	tcase_add_test(tc, get_and_remove_without_memory_still_work);
	tcase_add_test(tc, removes_without_memory_all_succeed);
	tcase_add_test(tc, map_works_again_once_memory_returns);
	tcase_add_test(tc, failed_inserts_leak_nothing);
	tcase_add_test(tc, inserts_with_one_failed_allocation_lose_nothing);
	tcase_add_test(tc, inserts_with_every_kth_allocation_failing_lose_nothing);
	tcase_add_test(tc,
		       inserts_of_long_and_short_keys_with_every_kth_allocation_failing_lose_nothing);
	tcase_add_test(tc, inserts_succeed_while_table_cannot_grow);
	tcase_add_test(tc, removes_succeed_while_table_cannot_shrink);
	suite_add_tcase(s, tc);

	tc = tcase_create("foreach");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, foreach_visits_every_key_once_with_its_value);
	tcase_add_test(tc, foreach_shows_exact_key_bytes_and_lengths);
	tcase_add_test(tc, foreach_on_empty_map_returns_zero_without_calling_fn);
	tcase_add_test(tc, foreach_passes_arg_to_every_call);
	tcase_add_test(tc, foreach_stops_at_first_nonzero_result_and_returns_it);
	tcase_add_test(tc, foreach_returns_negative_result_of_fn);
	tcase_add_test(tc, foreach_returns_result_of_fn_at_first_key);
	tcase_add_test(tc, foreach_returns_result_of_fn_at_last_key);
	tcase_add_test(tc, foreach_visits_every_key_once_at_every_step_of_growth);
	tcase_add_test(tc, foreach_visits_every_key_once_at_every_step_of_shrinking);
	tcase_add_test(tc, foreach_where_fn_removes_each_visited_key_visits_each_once);
	tcase_add_test(tc, foreach_where_fn_replaces_each_visited_value_visits_each_once);
	tcase_add_test(tc, foreach_where_fn_adds_keys_visits_keys_present_throughout_once);
	tcase_add_test(tc, foreach_where_fn_removes_other_keys_visits_survivors_once);
	tcase_add_test(tc, foreach_where_fn_gets_and_sizes_sees_the_same_map);
	tcase_add_test(tc, foreach_inside_foreach_visits_the_whole_map);
	tcase_add_test(tc, fn_of_foreach_runs_inside_read_side_section);
	suite_add_tcase(s, tc);

	tc = tcase_create("model");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, model_keys_are_distinct_and_decode);
	tcase_add_test(tc, random_operations_match_reference_model);
	tcase_add_test(tc, random_operations_with_failing_allocations_match_reference_model);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, size_is_exact_after_inserts_and_removes_from_several_threads);
	tcase_add_test(tc, get_in_one_thread_finds_keys_present_throughout_while_another_resizes);
	tcase_add_test(tc, get_or_insert_replace_and_remove_if_are_exact_while_another_thread_resizes);
	tcase_add_test(tc, get_or_insert_from_several_threads_has_one_winner_per_key_seen_by_all);
	tcase_add_test(tc, removes_never_wait_for_reader_that_waits_inside_its_section_for_remover);
	tcase_add_test(tc, heap_stays_flat_over_many_short_lived_threads_that_put_and_remove);
	suite_add_tcase(s, tc);

	return s;
}

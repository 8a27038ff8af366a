/* Stress test for sync_map under ThreadSanitizer. Seven cases, each its own
 * map created with hint 0, so that every one of them runs across grows and
 * shrinks of the table:
 *   1. random operations on per-thread key ranges, each return code and
 *      value compared with the thread's own single-threaded model, then the
 *      whole map compared with the union of the models;
 *   2. a fixed script of insert/put/remove/get on disjoint ranges, then a
 *      full check of the contents (size, get of every key, foreach);
 *   3. threads racing sync_map_insert on the same keys: one winner per key,
 *      whose value is the one stored; then racing sync_map_remove: one
 *      success per key, returning that value (rounds: the map grows from
 *      empty and shrinks back while they race);
 *   4. put/insert/remove/get on a few shared keys with heap values: a get
 *      only returns a value stored for that key, never one older than what
 *      the same reader saw from the same writer, and never one reclaimed
 *      (writers retire what they unlink; the reclaim poisons, then frees);
 *      every value is freed exactly once in the end;
 *   5. resizing under load: a stable key set stays readable with its values
 *      while writers churn thousands of other keys in and out; the sizes
 *      reported follow, and a map that shrank gives its memory back;
 *   6. foreach while other threads insert and remove: every key present
 *      throughout is visited exactly once per pass, also while the
 *      iterating function itself puts, inserts and removes;
 *   7. case 4 with iterators and churners, 8 threads on 2 cores;
 *   8. counters: 4 threads add to shared counters held as boxed immutable
 *      integers, through get/replace retry loops, with get_or_insert when a
 *      counter is absent and remove_if taking a counter out (the taker adds
 *      its count back): every count comes out exact, no freed box is seen;
 *   9. get_or_insert racing on the same keys (the window between its lookup
 *      and its lock widened by a test hook): exactly one insert wins per
 *      key, and every thread is handed the winner's value;
 *  10. a slot reused under a get (regression): a get of K1, held by a test
 *      hook between its key match and its value load, while K1 is removed
 *      and K2 (same bucket, same length: K1's old slot) is inserted, returns
 *      K1's value or ENOENT, never K2's.
 * Keys are byte strings with NUL bytes, the empty key, pairs that differ
 * only by a trailing NUL, and a few long ones. The bookkeeping atomics are
 * relaxed, so every happens-before edge ThreadSanitizer sees between a
 * value's writer and its reader comes from the map (or sync_epoch). The map
 * reads through sync_epoch, whose read side has two modes fixed at the
 * first use in a process: the program runs every case in the default mode
 * (membarrier(2)), then re-executes itself with SYNC_EPOCH_NO_MEMBARRIER=1
 * and relays that run's results, so both make one TAP stream. STRESS_MS
 * (default 400) sets the timed cases' length and scales the fixed ones. */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sync/epoch.h>
#include <sync/map.h>

#include "harness.h"
#include "map_internal.h" /* map_hash, current_table: to pick keys that share a bucket */

#if defined(__SANITIZE_THREAD__)
#define HAVE_SANITIZER_STATS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HAVE_SANITIZER_STATS 1
#endif
#endif
#ifdef HAVE_SANITIZER_STATS
/* from <sanitizer/allocator_interface.h>, which gcc does not install */
size_t __sanitizer_get_current_allocated_bytes(void);
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define HAVE_MALLINFO2 1
#endif

static void count(atomic_ullong *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static unsigned long long got(atomic_ullong *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p) {
		perror("calloc");
		exit(EXIT_FAILURE);
	}
	return p;
}

static sync_map_t *new_map(void)
{
	sync_map_t *m = sync_map_create(0);
	if (!m) {
		perror("sync_map_create");
		exit(EXIT_FAILURE);
	}
	return m;
}

static uint64_t seed(int index, uint64_t salt)
{
	return ((uint64_t)index + 1) * 0x9e3779b97f4a7c15ull ^ salt;
}

/* Spins until every thread of the case has arrived, so that they race from
 * the start (the gate's seq_cst atomics order nothing the map does later). */
static void gate(atomic_int *arrived, int threads)
{
	atomic_fetch_add(arrived, 1);
	while (atomic_load(arrived) < threads)
		sched_yield(); /* more threads than cores */
}

/* The mode this process runs in, for the check names. */
static const char *mode_name;

/* The first failure a case's threads describe, read after they are joined. */
static atomic_bool first_taken;
static char first_text[256];

static void note_failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note_failure(const char *fmt, ...)
{
	bool no = false;
	if (!atomic_compare_exchange_strong_explicit(&first_taken, &no, true,
						     memory_order_relaxed,
						     memory_order_relaxed))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(first_text, sizeof first_text, fmt, ap);
	va_end(ap);
}

static void reset_failure(void)
{
	atomic_store(&first_taken, false);
	first_text[0] = '\0';
}

/* "" or "; first: ..." for a check's message. */
static const char *first_failure(void)
{
	static char buf[sizeof first_text + 16];
	if (!atomic_load(&first_taken))
		return "";
	snprintf(buf, sizeof buf, "; first: %s", first_text);
	return buf;
}

static unsigned long long ms_since(uint64_t start)
{
	return (unsigned long long)((stress_now_ns() - start) / 1000000u);
}

/* ---- keys and values ------------------------------------------------------- */

/* Key number id as bytes: id 0 is the empty key; otherwise j = id / 2 as 4
 * little-endian bytes (NULs in most), 0-28 pattern bytes (NULs among
 * them), 200 more for one j in 61, and for odd ids one more NUL, so that
 * the keys of 2j and 2j+1 differ only by their length. */
#define KEY_MAX 240
#define NO_ID UINT32_MAX

struct test_key {
	size_t len;
	unsigned char b[KEY_MAX];
};

static void key_of(uint32_t id, struct test_key *k)
{
	k->len = 0;
	if (id == 0)
		return;
	uint32_t j = id >> 1;
	for (int i = 0; i < 4; i++)
		k->b[k->len++] = (unsigned char)(j >> (8 * i));
	size_t pad = (size_t)(j * 7u % 29u) + (j % 61u == 7u ? 200u : 0u);
	for (size_t i = 0; i < pad; i++)
		k->b[k->len++] = (unsigned char)(j * 31u + i * 7u);
	if (id & 1)
		k->b[k->len++] = 0;
}

static const void *key_ptr(const struct test_key *k)
{
	return k->len ? k->b : NULL; /* the empty key as NULL, 0 */
}

/* The id whose key these bytes are, or NO_ID. */
static uint32_t id_of(const void *bytes, size_t len)
{
	if (len == 0)
		return 0;
	if (!bytes || len < 4)
		return NO_ID;
	const unsigned char *b = bytes;
	uint32_t j = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
		     (uint32_t)b[3] << 24;
	if (j >= NO_ID / 2)
		return NO_ID;
	for (uint32_t id = 2 * j; id <= 2 * j + 1; id++) {
		struct test_key k;
		key_of(id, &k);
		if (id != 0 && k.len == len && memcmp(k.b, bytes, len) == 0)
			return id;
	}
	return NO_ID;
}

static int map_get(sync_map_t *m, uint32_t id, void **value)
{
	struct test_key k;
	key_of(id, &k);
	return sync_map_get(m, key_ptr(&k), k.len, value);
}

static int map_put(sync_map_t *m, uint32_t id, void *value, void **old)
{
	struct test_key k;
	key_of(id, &k);
	return sync_map_put(m, key_ptr(&k), k.len, value, old);
}

static int map_insert(sync_map_t *m, uint32_t id, void *value)
{
	struct test_key k;
	key_of(id, &k);
	return sync_map_insert(m, key_ptr(&k), k.len, value);
}

static int map_remove(sync_map_t *m, uint32_t id, void **old)
{
	struct test_key k;
	key_of(id, &k);
	return sync_map_remove(m, key_ptr(&k), k.len, old);
}

/* A tagged value: key id and version in an odd integer, never NULL. */
static void *tag(uint32_t id, uint32_t version)
{
	return (void *)(uintptr_t)((uint64_t)id << 33 | (uint64_t)version << 1 | 1u);
}

static bool is_tag(const void *v)
{
	return ((uintptr_t)v & 1u) != 0;
}

static uint32_t tag_id(const void *v)
{
	return (uint32_t)((uint64_t)(uintptr_t)v >> 33);
}

static uint32_t tag_version(const void *v)
{
	return (uint32_t)((uint64_t)(uintptr_t)v >> 1);
}

/* A dummy the out pointers start at, to see that they were written. */
static char untouched;
#define UNTOUCHED ((void *)&untouched)

/* ---- the full check of a quiescent map -------------------------------------- */

struct visit_count {
	uint32_t ids;
	void *const *expected;
	uint8_t *visits;
	unsigned long long stray, wrong;
};

static int count_visit(const void *key, size_t keylen, void *value, void *arg)
{
	struct visit_count *vc = arg;
	uint32_t id = id_of(key, keylen);
	if (id >= vc->ids) {
		vc->stray++;
		return 0;
	}
	if (vc->visits[id] < UINT8_MAX)
		vc->visits[id]++;
	if (value != vc->expected[id])
		vc->wrong++;
	return 0;
}

/* The map holds exactly expected[id] for every id < ids (NULL: absent):
 * size(), get of every id, one foreach pass. */
static bool contents_match(sync_map_t *m, void *const *expected, uint32_t ids,
			   char *text, size_t text_size)
{
	size_t want = 0;
	unsigned long long bad_get = 0;
	for (uint32_t id = 0; id < ids; id++) {
		void *v = UNTOUCHED;
		int r = map_get(m, id, &v);
		if (expected[id]) {
			want++;
			bad_get += r != 0 || v != expected[id];
		} else {
			bad_get += r != ENOENT;
		}
	}
	struct visit_count vc = { ids, expected, xcalloc(ids, 1), 0, 0 };
	int fr = sync_map_foreach(m, count_visit, &vc);
	unsigned long long missed = 0, twice = 0, extra = 0;
	for (uint32_t id = 0; id < ids; id++) {
		if (expected[id]) {
			missed += vc.visits[id] == 0;
			twice += vc.visits[id] > 1;
		} else {
			extra += vc.visits[id] != 0;
		}
	}
	free(vc.visits);
	size_t size = sync_map_size(m);
	snprintf(text, text_size, "size() %zu == %zu, %llu wrong gets; foreach "
		 "returned %d, %llu keys missed, %llu twice, %llu absent ones "
		 "visited, %llu wrong values, %llu stray keys", size, want,
		 bad_get, fr, missed, twice, extra, vc.wrong, vc.stray);
	return size == want && bad_get == 0 && fr == 0 && missed == 0 &&
	       twice == 0 && extra == 0 && vc.wrong == 0 && vc.stray == 0;
}

/* ---- 1: random operations against per-thread models -------------------------- */

#define MODEL_THREADS 4

struct model_run {
	sync_map_t *m;
	uint32_t per_thread; /* thread t owns ids [t * per_thread, ...) */
	uint64_t ops;
	void **model;        /* per id; each thread writes only its own slice */
	atomic_ullong done, mismatches;
};

static const char *op_names[] = { "get", "put", "put(old NULL)", "insert",
				  "remove", "remove(old NULL)" };

static void model_worker(void *arg, int index)
{
	struct model_run *run = arg;
	uint64_t s = seed(index, 0x51);
	uint32_t base = (uint32_t)index * run->per_thread;
	uint32_t version = 0;
	unsigned long long bad = 0;
	uint64_t phase = run->ops / 6 + 1;
	for (uint64_t i = 0; i < run->ops; i++) {
		uint32_t id = base + (uint32_t)(stress_random(&s) % run->per_thread);
		void **slot = &run->model[id];
		void *had = *slot, *nv = tag(id, ++version), *v = UNTOUCHED;
		/* filling phases add more than they remove, draining ones the
		 * reverse: the map grows and shrinks */
		bool filling = (i / phase) % 2 == 0;
		unsigned pick = (unsigned)(stress_random(&s) % 100);
		int op, r, want;
		bool ok;
		if (pick < 30) {
			op = 0;
			r = map_get(run->m, id, &v);
			want = had ? 0 : ENOENT;
			ok = r == want && (r != 0 || v == had);
		} else if (pick < (filling ? 55u : 40u)) {
			op = pick % 4 ? 1 : 2;
			r = map_put(run->m, id, nv, op == 1 ? &v : NULL);
			want = 0;
			ok = r == 0 && (op == 2 || v == had);
			*slot = nv;
		} else if (pick < (filling ? 80u : 50u)) {
			op = 3;
			r = map_insert(run->m, id, nv);
			want = had ? EEXIST : 0;
			ok = r == want;
			if (!had)
				*slot = nv;
		} else {
			op = pick % 4 ? 4 : 5;
			r = map_remove(run->m, id, op == 4 ? &v : NULL);
			want = had ? 0 : ENOENT;
			ok = r == want && (op == 5 || r != 0 || v == had);
			*slot = NULL;
		}
		if (!ok) {
			bad++;
			note_failure("thread %d op %llu %s(key %u) returned %d (%p), "
				     "the model says %d (%p)", index,
				     (unsigned long long)i, op_names[op], id, r,
				     op == 3 ? NULL : v, want, had);
			/* resynchronize the model with the map */
			void *now = NULL;
			*slot = map_get(run->m, id, &now) == 0 ? now : NULL;
		}
	}
	atomic_fetch_add_explicit(&run->done, run->ops, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->mismatches, bad, memory_order_relaxed);
}

static void case_model(void)
{
	static struct model_run run;
	uint32_t per_thread = 1024;
	uint32_t ids = per_thread * MODEL_THREADS;
	run = (struct model_run){ .m = new_map(), .per_thread = per_thread,
				  .ops = 100u * (uint64_t)stress_ms() + 100,
				  .model = xcalloc(ids, sizeof(void *)) };
	reset_failure();
	uint64_t start = stress_now_ns();
	stress_run_threads_to_end(MODEL_THREADS, model_worker, &run);
	tap_check(got(&run.done) == run.ops * MODEL_THREADS && got(&run.mismatches) == 0,
		  "map[%s] model: %d threads x %llu random get/put/insert/remove "
		  "on own key ranges, each result equal to the thread's model "
		  "(%llu mismatches%s) in %llu ms", mode_name, MODEL_THREADS,
		  (unsigned long long)run.ops, got(&run.mismatches),
		  first_failure(), ms_since(start));
	char text[256];
	bool ok = contents_match(run.m, run.model, ids, text, sizeof text);
	tap_check(ok, "map[%s] model: afterwards the map equals the union of the "
		  "models: %s", mode_name, text);
	sync_map_destroy(run.m, NULL);
	free(run.model);
}

/* ---- 2: a fixed script on disjoint ranges, then the contents ------------------ */

#define SCRIPT_THREADS 4

struct script_run {
	sync_map_t *m;
	uint32_t per_thread;
	atomic_ullong ops, bad;
};

static void script_expect(bool ok, int index, const char *what, uint32_t id, int r)
{
	if (!ok)
		note_failure("thread %d: %s of key %u wrong (returned %d)", index,
			     what, id, r);
}

static void script_worker(void *arg, int index)
{
	struct script_run *run = arg;
	uint32_t n = run->per_thread, base = (uint32_t)index * n;
	unsigned long long ops = 0, bad = 0;
	/* odd threads walk their keys backwards */
#define SCRIPT_ID(i) (base + ((index & 1) ? n - 1 - (i) : (i)))
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = SCRIPT_ID(i);
		int r = map_insert(run->m, id, tag(id, 1));
		bad += r != 0;
		script_expect(r == 0, index, "first insert", id, r);
		ops++;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = SCRIPT_ID(i), k = id - base;
		void *old = UNTOUCHED;
		int r;
		bool ok;
		if (k % 3 == 0) {
			r = map_remove(run->m, id, &old);
			ok = r == 0 && old == tag(id, 1);
			script_expect(ok, index, "remove", id, r);
		} else if (k % 3 == 1) {
			r = map_put(run->m, id, tag(id, 2), &old);
			ok = r == 0 && old == tag(id, 1);
			script_expect(ok, index, "replacing put", id, r);
		} else {
			r = map_insert(run->m, id, tag(id, 9));
			ok = r == EEXIST;
			script_expect(ok, index, "insert of a present key", id, r);
		}
		bad += !ok;
		ops++;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = SCRIPT_ID(i), k = id - base;
		void *v = UNTOUCHED;
		int r = map_get(run->m, id, &v);
		bool ok = k % 3 == 0 ? r == ENOENT :
			  r == 0 && v == tag(id, k % 3 == 1 ? 2 : 1);
		script_expect(ok, index, "get", id, r);
		bad += !ok;
		v = UNTOUCHED;
		if (k % 6 == 0) {
			r = map_put(run->m, id, tag(id, 3), &v);
			ok = r == 0 && v == NULL;
			script_expect(ok, index, "put of an absent key", id, r);
		} else if (k % 6 == 3) {
			r = map_remove(run->m, id, &v);
			ok = r == ENOENT;
			script_expect(ok, index, "remove of an absent key", id, r);
		}
		bad += !ok;
		ops += 2;
	}
#undef SCRIPT_ID
	atomic_fetch_add_explicit(&run->ops, ops, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->bad, bad, memory_order_relaxed);
}

static void case_script(void)
{
	static struct script_run run;
	uint32_t n = 5u * stress_ms() + 60;
	uint32_t ids = n * SCRIPT_THREADS;
	run = (struct script_run){ .m = new_map(), .per_thread = n };
	reset_failure();
	uint64_t start = stress_now_ns();
	stress_run_threads_to_end(SCRIPT_THREADS, script_worker, &run);
	tap_check(got(&run.bad) == 0,
		  "map[%s] script: %d threads, %u keys each: insert all, then "
		  "remove/put/insert-existing by thirds, then get and re-put: "
		  "%llu operations, %llu wrong results%s, in %llu ms", mode_name,
		  SCRIPT_THREADS, n, got(&run.ops), got(&run.bad), first_failure(),
		  ms_since(start));
	void **expected = xcalloc(ids, sizeof(void *));
	for (uint32_t id = 0; id < ids; id++) {
		uint32_t k = id % n;
		expected[id] = k % 6 == 0 ? tag(id, 3) : k % 6 == 3 ? NULL :
			       tag(id, k % 3 == 1 ? 2 : 1);
	}
	char text[256];
	bool ok = contents_match(run.m, expected, ids, text, sizeof text);
	tap_check(ok, "map[%s] script: afterwards the contents are the script's: %s",
		  mode_name, text);
	sync_map_destroy(run.m, NULL);
	free(expected);
}

/* ---- 3: racing insert, then racing remove, on the same keys ------------------- */

#define RACE_THREADS 4

struct race_run {
	sync_map_t *m;
	uint32_t keys;
	bool backwards; /* the order all threads walk the keys in */
	atomic_int arrived;
	atomic_uchar *wins;   /* per key: successful inserts, then removes */
	atomic_uchar *winner; /* per key: the thread whose insert won */
	atomic_ullong lost, bad;
};

static void insert_racer(void *arg, int index)
{
	struct race_run *run = arg;
	gate(&run->arrived, RACE_THREADS);
	for (uint32_t i = 0; i < run->keys; i++) {
		uint32_t id = run->backwards ? run->keys - 1 - i : i;
		int r = map_insert(run->m, id, tag(id, (uint32_t)index));
		if (r == 0) {
			atomic_fetch_add_explicit(&run->wins[id], 1, memory_order_relaxed);
			atomic_store_explicit(&run->winner[id], (unsigned char)index,
					      memory_order_relaxed);
		} else if (r == EEXIST) {
			count(&run->lost);
		} else {
			count(&run->bad);
			note_failure("thread %d: insert of key %u returned %d", index, id, r);
			continue;
		}
		/* nothing removes: the key's value is the winner's from now on,
		 * ours if we won */
		void *v = UNTOUCHED;
		int g = map_get(run->m, id, &v);
		bool ok = g == 0 && is_tag(v) && tag_id(v) == id &&
			  tag_version(v) < RACE_THREADS &&
			  (r != 0 || v == tag(id, (uint32_t)index));
		if (!ok) {
			count(&run->bad);
			note_failure("thread %d: get of key %u after insert returned %d "
				     "(%s) -> %d, %p", index, id, r,
				     r ? "EEXIST" : "won", g, v);
		}
	}
}

static void remove_racer(void *arg, int index)
{
	struct race_run *run = arg;
	gate(&run->arrived, RACE_THREADS);
	for (uint32_t i = 0; i < run->keys; i++) {
		uint32_t id = run->backwards ? run->keys - 1 - i : i;
		void *old = UNTOUCHED;
		int r = map_remove(run->m, id, &old);
		if (r == 0) {
			atomic_fetch_add_explicit(&run->wins[id], 1, memory_order_relaxed);
			unsigned w = atomic_load_explicit(&run->winner[id],
							  memory_order_relaxed);
			if (old != tag(id, w)) {
				count(&run->bad);
				note_failure("thread %d: remove of key %u returned %p, "
					     "the insert winner's was %p", index, id,
					     old, tag(id, w));
			}
		} else if (r == ENOENT) {
			count(&run->lost);
		} else {
			count(&run->bad);
			note_failure("thread %d: remove of key %u returned %d", index, id, r);
			continue;
		}
		/* nothing inserts: the key is gone for good */
		void *v = UNTOUCHED;
		int g = map_get(run->m, id, &v);
		if (g != ENOENT) {
			count(&run->bad);
			note_failure("thread %d: get of key %u after its removal "
				     "returned %d, %p", index, id, g, v);
		}
	}
}

#define RACE_ROUNDS 4

/* Per-key counts of a race: how many keys had no success, several. */
static void tally(struct race_run *run, unsigned long long *none,
		  unsigned long long *several)
{
	for (uint32_t id = 0; id < run->keys; id++) {
		unsigned w = atomic_load(&run->wins[id]);
		*none += w == 0;
		*several += w > 1;
		atomic_store(&run->wins[id], 0);
	}
}

/* Each round races inserts of every key into the empty map (it grows from
 * 16 buckets), then removes of all of them (it shrinks back); odd rounds
 * walk the keys backwards. */
static void case_race(void)
{
	static struct race_run run;
	uint32_t keys = 10u * stress_ms() + 100;
	run = (struct race_run){ .m = new_map(), .keys = keys,
				 .wins = xcalloc(keys, 1), .winner = xcalloc(keys, 1) };
	void **expected = xcalloc(keys, sizeof(void *));
	unsigned long long ins_none = 0, ins_several = 0, ins_bad = 0, ins_lost = 0;
	unsigned long long rm_none = 0, rm_several = 0, rm_bad = 0;
	char ins_first[sizeof first_text + 16] = "", rm_first[sizeof ins_first] = "";
	char full_text[256] = "", empty_text[256] = "", text[256];
	bool full_ok = true, empty_ok = true;
	uint64_t ins_ns = 0, rm_ns = 0;
	for (int round = 0; round < RACE_ROUNDS; round++) {
		run.backwards = round % 2 == 1;
		atomic_store(&run.arrived, 0);
		atomic_store(&run.lost, 0);
		atomic_store(&run.bad, 0);
		reset_failure();
		uint64_t start = stress_now_ns();
		stress_run_threads_to_end(RACE_THREADS, insert_racer, &run);
		ins_ns += stress_now_ns() - start;
		tally(&run, &ins_none, &ins_several);
		ins_bad += got(&run.bad);
		ins_lost += got(&run.lost);
		if (!ins_first[0])
			snprintf(ins_first, sizeof ins_first, "%s", first_failure());
		for (uint32_t id = 0; id < keys; id++)
			expected[id] = tag(id, atomic_load(&run.winner[id]));
		bool ok = contents_match(run.m, expected, keys, text, sizeof text);
		if (full_ok)
			snprintf(full_text, sizeof full_text, "%s", text);
		full_ok = full_ok && ok;

		atomic_store(&run.arrived, 0);
		atomic_store(&run.bad, 0);
		reset_failure();
		start = stress_now_ns();
		stress_run_threads_to_end(RACE_THREADS, remove_racer, &run);
		rm_ns += stress_now_ns() - start;
		tally(&run, &rm_none, &rm_several);
		rm_bad += got(&run.bad);
		if (!rm_first[0])
			snprintf(rm_first, sizeof rm_first, "%s", first_failure());
		for (uint32_t id = 0; id < keys; id++)
			expected[id] = NULL;
		ok = contents_match(run.m, expected, keys, text, sizeof text);
		if (empty_ok)
			snprintf(empty_text, sizeof empty_text, "%s", text);
		empty_ok = empty_ok && ok;
	}
	tap_check(ins_none == 0 && ins_several == 0 && ins_bad == 0 &&
			  ins_lost == (uint64_t)RACE_ROUNDS * keys * (RACE_THREADS - 1),
		  "map[%s] race: %d rounds of %d threads inserting the same %u keys: "
		  "exactly one winner per key (%llu without, %llu with several, %llu "
		  "EEXIST), get after it returns the winner's value (%llu wrong%s) "
		  "in %llu ms", mode_name, RACE_ROUNDS, RACE_THREADS, keys, ins_none,
		  ins_several, ins_lost, ins_bad, ins_first,
		  (unsigned long long)(ins_ns / 1000000u));
	tap_check(full_ok, "map[%s] race: after each insert round every key holds "
		  "its winner's value: %s", mode_name, full_text);
	tap_check(empty_ok && rm_none == 0 && rm_several == 0 && rm_bad == 0,
		  "map[%s] race: then %d threads removing them: exactly one success "
		  "per key (%llu without, %llu with several), returning the stored "
		  "value, ENOENT after (%llu wrong%s) in %llu ms; the map left empty: %s",
		  mode_name, RACE_THREADS, rm_none, rm_several, rm_bad, rm_first,
		  (unsigned long long)(rm_ns / 1000000u), empty_text);
	sync_map_destroy(run.m, NULL);
	free(expected);
	free(run.wins);
	free(run.winner);
}

/* ---- 4 and 7: shared keys, heap values reclaimed through sync_epoch ---------- */

#define LIVE 0x4c4956454c495645ull
#define DEAD 0xdeaddeaddeaddeadull

/* Plain fields: written before the value is stored, read by readers
 * inside their sections, poisoned by the reclaim. */
struct val {
	uint64_t magic;
	uint32_t id;
	uint32_t writer;
	uint64_t seq; /* per writer, increasing */
	uint64_t check;
};

static uint64_t val_check(uint32_t id, uint32_t writer, uint64_t seq)
{
	return ((uint64_t)id << 40 ^ (uint64_t)writer << 32 ^ seq) *
		       0x9e3779b97f4a7c15ull + 1;
}

struct shared_case {
	const char *name;
	int writers, readers, iterators, churners; /* threads in this order */
	uint32_t keys;                             /* shared ids [0, keys) */
};

#define CHURN_KEYS 512

struct shared_run {
	const struct shared_case *c;
	sync_map_t *m;
	atomic_ullong allocated, freed, freed_dead, destroyed;
	atomic_ullong reads, found, bad_reads, backwards, held, held_dead;
	atomic_ullong puts, replaced, inserts, eexist, removes, bad_writes;
	atomic_ullong passes, visits, bad_visits, churn_cycles, bad_churn;
};

static struct shared_run sh;

static bool val_ok(const struct val *v, uint32_t id)
{
	if (!v || is_tag(v) || ((uintptr_t)v & (sizeof(uint64_t) - 1)))
		return false;
	return v->magic == LIVE && v->id == id &&
	       v->writer < (uint32_t)sh.c->writers &&
	       v->check == val_check(v->id, v->writer, v->seq);
}

static void val_reclaim(void *p)
{
	struct val *v = p;
	if (v->magic != LIVE) {
		count(&sh.freed_dead); /* twice, or garbage: do not free */
		return;
	}
	v->magic = DEAD;
	v->id = v->writer = UINT32_MAX;
	v->seq = v->check = DEAD;
	free(v);
	count(&sh.freed);
}

static void val_destroy(void *p)
{
	count(&sh.destroyed);
	val_reclaim(p);
}

static struct val *new_val(uint32_t id, uint32_t writer, uint64_t seq)
{
	struct val *v = malloc(sizeof *v);
	if (!v) {
		perror("malloc");
		exit(EXIT_FAILURE);
	}
	*v = (struct val){ LIVE, id, writer, seq, val_check(id, writer, seq) };
	count(&sh.allocated);
	return v;
}

/* An unlinked value this writer got back: it must be one stored for id. */
static void unlinked(struct val *old, uint32_t id, int writer, const char *how)
{
	if (!val_ok(old, id)) {
		count(&sh.bad_writes);
		note_failure("writer %d: %s of key %u gave back %p, not a live "
			     "value of that key", writer, how, id, (void *)old);
		return; /* not ours to free */
	}
	sync_epoch_retire(old, val_reclaim);
}

static void shared_writer(int w)
{
	uint64_t s = seed(w, 0x4a), seq = 0;
	while (stress_running()) {
		uint32_t id = (uint32_t)(stress_random(&s) % sh.c->keys);
		unsigned pick = (unsigned)(stress_random(&s) % 4);
		void *old = UNTOUCHED;
		int r;
		if (pick < 2) {
			struct val *v = new_val(id, (uint32_t)w, ++seq);
			r = map_put(sh.m, id, v, &old);
			count(&sh.puts);
			if (r != 0) {
				count(&sh.bad_writes);
				note_failure("writer %d: put of key %u returned %d", w, id, r);
				val_reclaim(v);
			} else if (old) {
				count(&sh.replaced);
				unlinked(old, id, w, "put");
			}
		} else if (pick == 2) {
			struct val *v = new_val(id, (uint32_t)w, ++seq);
			r = map_insert(sh.m, id, v);
			count(&sh.inserts);
			if (r == EEXIST) {
				count(&sh.eexist);
				val_reclaim(v); /* never published */
			} else if (r != 0) {
				count(&sh.bad_writes);
				note_failure("writer %d: insert of key %u returned %d", w, id, r);
				val_reclaim(v);
			}
		} else {
			r = map_remove(sh.m, id, &old);
			if (r == 0) {
				count(&sh.removes);
				unlinked(old, id, w, "remove");
			} else if (r != ENOENT) {
				count(&sh.bad_writes);
				note_failure("writer %d: remove of key %u returned %d", w, id, r);
			}
		}
	}
}

static void shared_reader(int index)
{
	uint32_t keys = sh.c->keys, writers = (uint32_t)sh.c->writers;
	/* the newest sequence number seen per key and writer */
	uint64_t *last = xcalloc((size_t)keys * writers, sizeof *last);
	uint64_t s = seed(index, 0x7e);
	unsigned long long reads = 0, found = 0, bad = 0, backwards = 0;
	unsigned long long held = 0, held_dead = 0;
	while (stress_running()) {
		uint32_t id = (uint32_t)(stress_random(&s) % keys);
		sync_epoch_enter();
		void *p = UNTOUCHED;
		int r = map_get(sh.m, id, &p);
		reads++;
		if (r == 0) {
			struct val *v = p;
			found++;
			if (!val_ok(v, id)) {
				bad++;
				note_failure("reader %d: get of key %u returned %p: %s",
					     index, id, p, !p || is_tag(p) ? "no value" :
					     v->magic == DEAD ? "reclaimed" :
					     "never stored for it");
			} else {
				uint64_t *l = &last[(size_t)id * writers + v->writer];
				if (v->seq < *l) {
					backwards++;
					note_failure("reader %d: key %u: writer %u's value "
						     "%llu after its %llu", index, id,
						     v->writer,
						     (unsigned long long)v->seq,
						     (unsigned long long)*l);
				}
				*l = v->seq;
				/* now and then hold it across the writers'
				 * grace periods */
				if (reads % 64 == 0) {
					stress_sleep_us(20);
					held++;
					if (!val_ok(v, id)) {
						held_dead++;
						note_failure("reader %d: key %u's value %p "
							     "reclaimed inside the section",
							     index, id, p);
					}
				}
			}
		} else if (r != ENOENT) {
			bad++;
			note_failure("reader %d: get of key %u returned %d", index, id, r);
		}
		sync_epoch_exit();
	}
	free(last);
	atomic_fetch_add_explicit(&sh.reads, reads, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh.found, found, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh.bad_reads, bad, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh.backwards, backwards, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh.held, held, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh.held_dead, held_dead, memory_order_relaxed);
}

/* Churner c owns ids [keys + c * CHURN_KEYS, ...), with tagged values. */
static uint32_t churn_base(int c)
{
	return sh.c->keys + (uint32_t)c * CHURN_KEYS;
}

static int shared_visit(const void *key, size_t keylen, void *value, void *arg)
{
	unsigned long long *bad = arg;
	uint32_t id = id_of(key, keylen);
	bool ok;
	if (id < sh.c->keys)
		ok = val_ok(value, id); /* fn runs inside a read-side section */
	else if (id != NO_ID && id < churn_base(sh.c->churners))
		ok = is_tag(value) && tag_id(value) == id;
	else
		ok = false;
	if (!ok) {
		++*bad;
		note_failure("foreach visited key %u (%zu bytes) with %p", id,
			     keylen, value);
	}
	count(&sh.visits);
	return 0;
}

static void shared_iterator(void)
{
	unsigned long long bad = 0;
	while (stress_running()) {
		int r = sync_map_foreach(sh.m, shared_visit, &bad);
		if (r != 0) {
			bad++;
			note_failure("foreach returned %d", r);
		}
		count(&sh.passes);
	}
	atomic_fetch_add_explicit(&sh.bad_visits, bad, memory_order_relaxed);
}

/* Inserts its keys, then removes them, until the end of the run. */
static void shared_churner(int c)
{
	uint32_t base = churn_base(c);
	do {
		for (uint32_t id = base; id < base + CHURN_KEYS; id++) {
			int r = map_insert(sh.m, id, tag(id, 1));
			if (r != 0) {
				count(&sh.bad_churn);
				note_failure("churner %d: insert of key %u returned %d",
					     c, id, r);
			}
		}
		for (uint32_t id = base; id < base + CHURN_KEYS; id++) {
			void *old = UNTOUCHED;
			int r = map_remove(sh.m, id, &old);
			if (r != 0 || old != tag(id, 1)) {
				count(&sh.bad_churn);
				note_failure("churner %d: remove of key %u returned %d, %p",
					     c, id, r, old);
			}
		}
		count(&sh.churn_cycles);
	} while (stress_running());
}

static void shared_worker(void *arg, int index)
{
	(void)arg;
	const struct shared_case *c = sh.c;
	if (index < c->writers)
		shared_writer(index);
	else if ((index -= c->writers) < c->readers)
		shared_reader(index);
	else if ((index -= c->readers) < c->iterators)
		shared_iterator();
	else
		shared_churner(index - c->iterators);
}

static void case_shared(const struct shared_case *c)
{
	memset(&sh, 0, sizeof sh);
	sh.c = c;
	sh.m = new_map();
	reset_failure();
	uint64_t start = stress_now_ns();
	stress_run_threads(c->writers + c->readers + c->iterators + c->churners,
			   shared_worker, NULL);
	unsigned long long ms = ms_since(start);

	char extra[160] = "";
	if (c->iterators)
		snprintf(extra, sizeof extra, "; %llu foreach passes visited %llu "
			 "keys, %llu wrong", got(&sh.passes), got(&sh.visits),
			 got(&sh.bad_visits));
	tap_check(got(&sh.found) > 0 && got(&sh.bad_reads) == 0 &&
			  got(&sh.backwards) == 0 && got(&sh.held_dead) == 0 &&
			  (!c->iterators || (got(&sh.passes) > 0 && got(&sh.bad_visits) == 0)),
		  "map[%s] %s: %llu gets (%llu found) only return live values stored "
		  "for their key (%llu wrong), none older than one seen before (%llu), "
		  "%llu held across sleeps (%llu reclaimed)%s%s in %llu ms",
		  mode_name, c->name, got(&sh.reads), got(&sh.found),
		  got(&sh.bad_reads), got(&sh.backwards), got(&sh.held),
		  got(&sh.held_dead), extra, first_failure(), ms);
	tap_check(got(&sh.replaced) > 0 && got(&sh.removes) > 0 &&
			  got(&sh.bad_writes) == 0 && got(&sh.bad_churn) == 0 &&
			  (!c->churners || got(&sh.churn_cycles) > 0),
		  "map[%s] %s: %llu puts (%llu replacing), %llu inserts (%llu EEXIST), "
		  "%llu removes gave back live values of their key (%llu wrong); "
		  "%llu churn cycles of %d keys (%llu wrong)", mode_name, c->name,
		  got(&sh.puts), got(&sh.replaced), got(&sh.inserts), got(&sh.eexist),
		  got(&sh.removes), got(&sh.bad_writes), got(&sh.churn_cycles),
		  CHURN_KEYS, got(&sh.bad_churn));

	/* quiescent: what get finds is what size() and foreach count, and
	 * destroy frees it; after the barrier, everything allocated has been
	 * freed exactly once */
	size_t present = 0;
	unsigned long long bad = 0;
	for (uint32_t id = 0; id < churn_base(c->churners); id++) {
		void *v = NULL;
		int r = map_get(sh.m, id, &v);
		if (r == 0 && id < c->keys && val_ok(v, id))
			present++;
		else if (r != ENOENT)
			bad++;
	}
	size_t size = sync_map_size(sh.m);
	unsigned long long before = got(&sh.visits), fbad = 0;
	int fr = sync_map_foreach(sh.m, shared_visit, &fbad);
	unsigned long long visited = got(&sh.visits) - before;
	sync_map_destroy(sh.m, val_destroy);
	sync_epoch_barrier();
	tap_check(bad == 0 && size == present && fr == 0 && fbad == 0 &&
			  visited == present && got(&sh.destroyed) == present &&
			  got(&sh.freed) == got(&sh.allocated) && got(&sh.freed_dead) == 0,
		  "map[%s] %s: afterwards %zu keys by get (%llu wrong), size() %zu, "
		  "foreach %llu (returned %d, %llu wrong); destroy freed %llu; after "
		  "sync_epoch_barrier %llu of %llu values freed, %llu twice",
		  mode_name, c->name, present, bad, size, visited, fr, fbad,
		  got(&sh.destroyed), got(&sh.freed), got(&sh.allocated),
		  got(&sh.freed_dead));
}

/* ---- 5: resizing under load ---------------------------------------------------- */

#define RESIZE_WRITERS 2
#define RESIZE_READERS 2
#define STABLE_KEYS 256u

struct resize_run {
	sync_map_t *m;
	uint32_t churn; /* keys per writer, ids after the stable ones */
	atomic_ullong reads, misses, churn_reads, bad_churn_reads;
	atomic_ullong cycles, writes, bad_writes;
	/* size() a writer saw with all its keys in, with all out; anyone saw */
	atomic_ullong max_size, min_size, max_any, min_any;
};

static void note_size(atomic_ullong *to, unsigned long long size, bool larger)
{
	unsigned long long seen = got(to);
	while ((larger ? size > seen : size < seen) &&
	       !atomic_compare_exchange_weak_explicit(to, &seen, size,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

static void resize_writer(struct resize_run *run, int w)
{
	uint32_t base = STABLE_KEYS + (uint32_t)w * run->churn;
	unsigned long long writes = 0, bad = 0;
	uint32_t cycle = 0;
	do {
		cycle++;
		for (uint32_t id = base; id < base + run->churn; id++) {
			int r = map_insert(run->m, id, tag(id, cycle));
			writes++;
			if (r != 0) {
				bad++;
				note_failure("writer %d: insert of key %u returned %d", w, id, r);
			}
		}
		/* all ours are in */
		size_t size = sync_map_size(run->m);
		note_size(&run->max_size, size, true);
		note_size(&run->max_any, size, true);
		for (uint32_t id = base; id < base + run->churn; id++) {
			void *v = UNTOUCHED;
			int r = map_get(run->m, id, &v);
			if (r != 0 || v != tag(id, cycle)) {
				bad++;
				note_failure("writer %d: get of its key %u returned %d, %p",
					     w, id, r, v);
			}
		}
		for (uint32_t id = base; id < base + run->churn; id++) {
			void *old = UNTOUCHED;
			int r = map_remove(run->m, id, &old);
			writes++;
			if (r != 0 || old != tag(id, cycle)) {
				bad++;
				note_failure("writer %d: remove of key %u returned %d, %p",
					     w, id, r, old);
			}
		}
		/* all ours are out */
		size = sync_map_size(run->m);
		note_size(&run->min_size, size, false);
		note_size(&run->min_any, size, false);
		count(&run->cycles);
	} while (cycle < 2 || stress_running());
	atomic_fetch_add_explicit(&run->writes, writes, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->bad_writes, bad, memory_order_relaxed);
}

static void resize_reader(struct resize_run *run, int index)
{
	uint64_t s = seed(index, 0x5e);
	unsigned long long reads = 0, misses = 0, churn_reads = 0, bad_churn = 0;
	uint32_t churn_ids = RESIZE_WRITERS * run->churn;
	while (stress_running()) {
		size_t size = sync_map_size(run->m);
		note_size(&run->max_any, size, true);
		note_size(&run->min_any, size, false);
		for (uint32_t id = 0; id < STABLE_KEYS; id++) {
			void *v = UNTOUCHED;
			int r = map_get(run->m, id, &v);
			reads++;
			if (r != 0 || v != tag(id, 0)) {
				misses++;
				note_failure("reader %d: stable key %u: get returned %d, %p",
					     index, id, r, v);
			}
			if (id % 4 == 0) {
				uint32_t cid = STABLE_KEYS + (uint32_t)(stress_random(&s) % churn_ids);
				r = map_get(run->m, cid, &v);
				churn_reads++;
				if (r == 0 ? !is_tag(v) || tag_id(v) != cid : r != ENOENT) {
					bad_churn++;
					note_failure("reader %d: churned key %u: get "
						     "returned %d, %p", index, cid, r, v);
				}
			}
		}
	}
	atomic_fetch_add_explicit(&run->reads, reads, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->misses, misses, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->churn_reads, churn_reads, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->bad_churn_reads, bad_churn, memory_order_relaxed);
}

static void resize_worker(void *arg, int index)
{
	if (index < RESIZE_WRITERS)
		resize_writer(arg, index);
	else
		resize_reader(arg, index - RESIZE_WRITERS);
}

/* Bytes the program has allocated now, or 0 if unknown. */
static size_t allocated_bytes(void)
{
#if defined(HAVE_SANITIZER_STATS)
	return __sanitizer_get_current_allocated_bytes();
#elif defined(HAVE_MALLINFO2)
	return mallinfo2().uordblks;
#else
	return 0;
#endif
}

static bool stable_intact(sync_map_t *m)
{
	for (uint32_t id = 0; id < STABLE_KEYS; id++) {
		void *v = NULL;
		if (map_get(m, id, &v) != 0 || v != tag(id, 0))
			return false;
	}
	return true;
}

/* One thread grows the map by n keys and removes them again: size() is
 * exact at each step, and once the table has shrunk (a few more writes
 * finish its migration) and sync_epoch_barrier has run the reclaims, the
 * memory the growth took is back, but for a small rest (a table that had
 * stayed at its largest would keep an eighth of it at the least). */
static void check_grow_shrink(sync_map_t *m, uint32_t first_id, uint32_t n)
{
	sync_epoch_barrier();
	size_t base = allocated_bytes(), bad = 0;
	size_t size0 = sync_map_size(m);
	for (uint32_t id = first_id; id < first_id + n; id++)
		bad += map_insert(m, id, tag(id, 7)) != 0;
	size_t grown = sync_map_size(m);
	size_t peak = allocated_bytes();
	for (uint32_t id = first_id; id < first_id + n; id++) {
		void *old = NULL;
		bad += map_remove(m, id, &old) != 0 || old != tag(id, 7);
	}
	for (int i = 0; i < 1024; i++) {
		bad += map_put(m, first_id, tag(first_id, 8), NULL) != 0;
		bad += map_remove(m, first_id, NULL) != 0;
	}
	size_t shrunk = sync_map_size(m);
	sync_epoch_barrier();
	size_t after = allocated_bytes();
	bool intact = stable_intact(m);
	bool measured = base != 0 && peak > base;
	size_t took = measured ? peak - base : 0;
	size_t kept = measured && after > base ? after - base : 0;
	bool memory_ok = !measured || kept < took / 8;
	tap_check(bad == 0 && size0 == STABLE_KEYS && grown == STABLE_KEYS + n &&
			  shrunk == STABLE_KEYS && intact && memory_ok,
		  "map[%s] resize: afterwards, alone: size() %zu, %zu after %u "
		  "inserts, %zu after removing them (%zu wrong results, stable keys "
		  "%s); the growth took %zu bytes, %zu kept after the shrink%s",
		  mode_name, size0, grown, n, shrunk, bad,
		  intact ? "intact" : "damaged", took, kept,
		  measured ? "" : " (allocator statistics unavailable: not checked)");
}

static void case_resize(void)
{
	static struct resize_run run;
	uint32_t churn = 10u * stress_ms() + 200;
	run = (struct resize_run){ .m = new_map(), .churn = churn,
				   .min_size = UINT64_MAX, .min_any = UINT64_MAX };
	size_t bad = 0;
	for (uint32_t id = 0; id < STABLE_KEYS; id++)
		bad += map_insert(run.m, id, tag(id, 0)) != 0;
	size_t size0 = sync_map_size(run.m);
	reset_failure();
	uint64_t start = stress_now_ns();
	stress_run_threads(RESIZE_WRITERS + RESIZE_READERS, resize_worker, &run);
	unsigned long long ms = ms_since(start);
	tap_check(bad == 0 && size0 == STABLE_KEYS && got(&run.reads) > 0 &&
			  got(&run.misses) == 0 && got(&run.bad_churn_reads) == 0,
		  "map[%s] resize: %d readers found each of %u stable keys with "
		  "its value every time (%llu gets, %llu misses; %llu gets of "
		  "churned keys, %llu wrong) while %d writers grew and shrank the "
		  "map%s in %llu ms", mode_name, RESIZE_READERS, STABLE_KEYS,
		  got(&run.reads), got(&run.misses), got(&run.churn_reads),
		  got(&run.bad_churn_reads), RESIZE_WRITERS, first_failure(), ms);
	/* a writer samples size() with all its keys in, then with all out:
	 * the stable keys and its own are there, or not, whatever the other
	 * writer does; every sample, by anyone, lies between the stable keys
	 * alone and all keys in (a little slack: size() need not be exact
	 * while writers run) */
	unsigned long long all_in = STABLE_KEYS + RESIZE_WRITERS * churn;
	unsigned long long mine_in = STABLE_KEYS + churn, slack = 64;
	size_t size1 = sync_map_size(run.m);
	tap_check(got(&run.bad_writes) == 0 && got(&run.cycles) >= 2 * RESIZE_WRITERS &&
			  got(&run.max_size) + slack >= mine_in &&
			  got(&run.min_size) <= mine_in + slack &&
			  got(&run.min_any) + slack >= STABLE_KEYS &&
			  got(&run.max_any) <= all_in + slack && size1 == STABLE_KEYS,
		  "map[%s] resize: %llu cycles of %u inserts, gets, removes per "
		  "writer, %llu writes (%llu wrong results); size() with a writer's "
		  "keys all in >= %llu (max %llu), all out <= %llu (min %llu), any "
		  "between %u and %llu (%llu..%llu); %zu at the end", mode_name,
		  got(&run.cycles), churn, got(&run.writes), got(&run.bad_writes),
		  mine_in, got(&run.max_size), mine_in, got(&run.min_size),
		  STABLE_KEYS, all_in, got(&run.min_any), got(&run.max_any), size1);
	check_grow_shrink(run.m, STABLE_KEYS + RESIZE_WRITERS * churn, 16384);
	sync_map_destroy(run.m, NULL);
}

/* ---- 6: foreach while the map changes ------------------------------------------- */

#define FOREACH_CHURNERS 2
#define FOREACH_CHURN_KEYS 1024u
#define PRIVATE_KEYS 4096u
#define PRIVATE_WINDOW 64u

enum { STABLE_BASE = 0, CHURN_BASE = STABLE_KEYS,
       PRIVATE_BASE = CHURN_BASE + FOREACH_CHURNERS * FOREACH_CHURN_KEYS,
       FOREACH_IDS = PRIVATE_BASE + PRIVATE_KEYS };

struct foreach_run {
	sync_map_t *m;
	/* the modifier's state, read by the main thread after the join */
	uint32_t version[STABLE_KEYS];
	void *private_model[PRIVATE_KEYS];
	atomic_ullong passes, stable_missed, stable_twice, other_twice;
	atomic_ullong bad_values, stray, modifications, bad_modifications;
	atomic_ullong stops, bad_stops, churn_cycles, bad_churn;
};

/* One foreach pass of one iterator. */
struct pass {
	struct foreach_run *run;
	uint8_t *visits;
	bool modify;
	uint64_t stop_after; /* 0: never */
	uint64_t visited;
	uint64_t inserted, removed; /* private keys, cumulated */
	unsigned long long bad_values, stray, bad_modifications, modifications;
};

/* From inside fn: give the stable key a new version (only this thread
 * changes stable values, so the old one is known), read it back, insert
 * the next private key and remove the oldest beyond the window. */
static void modify_inside(struct pass *p, uint32_t id)
{
	struct foreach_run *run = p->run;
	sync_map_t *m = run->m;
	void *old = UNTOUCHED, *now = UNTOUCHED;
	uint32_t v = run->version[id];
	int r = map_put(m, id, tag(id, v + 1), &old);
	int g = map_get(m, id, &now);
	bool ok = r == 0 && old == tag(id, v) && g == 0 && now == tag(id, v + 1);
	if (ok)
		run->version[id] = v + 1;
	else
		note_failure("inside foreach: put of key %u returned %d, %p (wanted "
			     "%p), get then %d, %p", id, r, old, tag(id, v), g, now);
	p->bad_modifications += !ok;

	uint32_t pid = PRIVATE_BASE + (uint32_t)(p->inserted % PRIVATE_KEYS);
	uint32_t ver = (uint32_t)(p->inserted / PRIVATE_KEYS) + 1;
	r = map_insert(m, pid, tag(pid, ver));
	ok = r == 0;
	if (ok)
		run->private_model[pid - PRIVATE_BASE] = tag(pid, ver);
	else
		note_failure("inside foreach: insert of absent key %u returned %d", pid, r);
	p->bad_modifications += !ok;
	p->inserted++;
	if (p->inserted - p->removed > PRIVATE_WINDOW) {
		uint32_t rid = PRIVATE_BASE + (uint32_t)(p->removed % PRIVATE_KEYS);
		void **slot = &run->private_model[rid - PRIVATE_BASE];
		old = UNTOUCHED;
		r = map_remove(m, rid, &old);
		ok = r == 0 && old == *slot;
		if (!ok)
			note_failure("inside foreach: remove of key %u returned %d, %p "
				     "(wanted %p)", rid, r, old, *slot);
		*slot = NULL;
		p->bad_modifications += !ok;
		p->removed++;
	}
	p->modifications += 3;
}

static int foreach_visit(const void *key, size_t keylen, void *value, void *arg)
{
	struct pass *p = arg;
	uint32_t id = id_of(key, keylen);
	if (id >= FOREACH_IDS) {
		p->stray++;
		note_failure("foreach visited a key of %zu bytes it never stored", keylen);
		return 0;
	}
	if (p->visits[id] < UINT8_MAX)
		p->visits[id]++;
	if (!is_tag(value) || tag_id(value) != id) {
		p->bad_values++;
		note_failure("foreach visited key %u with %p", id, value);
	}
	p->visited++;
	if (p->modify && id < STABLE_KEYS)
		modify_inside(p, id);
	if (p->stop_after && p->visited == p->stop_after)
		return 7;
	return 0;
}

static void foreach_iterator(struct foreach_run *run, int index)
{
	struct pass p = { .run = run, .visits = xcalloc(FOREACH_IDS, 1),
			  .modify = index == 0 };
	unsigned long long missed = 0, twice = 0, other_twice = 0, stops = 0;
	unsigned long long bad_stops = 0, passes = 0;
	for (uint64_t pass = 0; pass < 4 || stress_running(); pass++) {
		memset(p.visits, 0, FOREACH_IDS);
		p.visited = 0;
		/* the plain iterator stops early every fourth pass */
		p.stop_after = !p.modify && pass % 4 == 3 ? 1 + pass % STABLE_KEYS : 0;
		int r = sync_map_foreach(run->m, foreach_visit, &p);
		passes++;
		if (p.stop_after) {
			stops++;
			if (r != 7 || p.visited != p.stop_after) {
				bad_stops++;
				note_failure("foreach stopped by fn after %llu visits "
					     "returned %d after %llu visits",
					     (unsigned long long)p.stop_after, r,
					     (unsigned long long)p.visited);
			}
			continue;
		}
		if (r != 0) {
			bad_stops++;
			note_failure("foreach returned %d", r);
		}
		for (uint32_t id = 0; id < FOREACH_IDS; id++) {
			if (id < STABLE_KEYS) {
				missed += p.visits[id] == 0;
				twice += p.visits[id] > 1;
				if (p.visits[id] != 1)
					note_failure("iterator %d pass %llu visited stable "
						     "key %u %u times", index,
						     (unsigned long long)pass, id,
						     p.visits[id]);
			} else {
				other_twice += p.visits[id] > 1;
			}
		}
	}
	free(p.visits);
	atomic_fetch_add_explicit(&run->passes, passes, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->stable_missed, missed, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->stable_twice, twice, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->other_twice, other_twice, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->bad_values, p.bad_values, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->stray, p.stray, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->modifications, p.modifications, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->bad_modifications, p.bad_modifications,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&run->stops, stops, memory_order_relaxed);
	atomic_fetch_add_explicit(&run->bad_stops, bad_stops, memory_order_relaxed);
}

static void foreach_churner(struct foreach_run *run, int c)
{
	uint32_t base = CHURN_BASE + (uint32_t)c * FOREACH_CHURN_KEYS;
	unsigned long long bad = 0;
	do {
		for (uint32_t id = base; id < base + FOREACH_CHURN_KEYS; id++)
			bad += map_insert(run->m, id, tag(id, 1)) != 0;
		for (uint32_t id = base; id < base + FOREACH_CHURN_KEYS; id++) {
			void *old = NULL;
			bad += map_remove(run->m, id, &old) != 0 || old != tag(id, 1);
		}
		count(&run->churn_cycles);
	} while (stress_running());
	if (bad)
		note_failure("churner %d: %llu inserts or removes of its keys failed",
			     c, bad);
	atomic_fetch_add_explicit(&run->bad_churn, bad, memory_order_relaxed);
}

static void foreach_worker(void *arg, int index)
{
	if (index < 2)
		foreach_iterator(arg, index);
	else
		foreach_churner(arg, index - 2);
}

static void case_foreach(void)
{
	static struct foreach_run run;
	memset(&run, 0, sizeof run);
	run.m = new_map();
	size_t bad = 0;
	for (uint32_t id = 0; id < STABLE_KEYS; id++)
		bad += map_insert(run.m, id, tag(id, 0)) != 0;
	reset_failure();
	uint64_t start = stress_now_ns();
	stress_run_threads(2 + FOREACH_CHURNERS, foreach_worker, &run);
	unsigned long long ms = ms_since(start);
	tap_check(bad == 0 && got(&run.passes) >= 8 && got(&run.stable_missed) == 0 &&
			  got(&run.stable_twice) == 0 && got(&run.bad_values) == 0 &&
			  got(&run.stray) == 0 && got(&run.bad_churn) == 0 &&
			  got(&run.churn_cycles) >= FOREACH_CHURNERS,
		  "map[%s] foreach: %llu passes of 2 iterators visited each of %u "
		  "stable keys exactly once (%llu missed, %llu twice; %llu wrong "
		  "values, %llu stray keys) while %d threads inserted and removed "
		  "%u keys each (%llu cycles, %llu failed; churned keys seen twice "
		  "in a pass: %llu)%s in %llu ms", mode_name, got(&run.passes),
		  STABLE_KEYS, got(&run.stable_missed), got(&run.stable_twice),
		  got(&run.bad_values), got(&run.stray), FOREACH_CHURNERS,
		  FOREACH_CHURN_KEYS, got(&run.churn_cycles), got(&run.bad_churn),
		  got(&run.other_twice), first_failure(), ms);
	tap_check(got(&run.modifications) > 0 && got(&run.bad_modifications) == 0,
		  "map[%s] foreach: fn's own put, get, insert and remove on the map "
		  "it iterates all did what they should (%llu calls, %llu wrong)",
		  mode_name, got(&run.modifications), got(&run.bad_modifications));
	tap_check(got(&run.stops) > 0 && got(&run.bad_stops) == 0,
		  "map[%s] foreach: %llu passes stopped by fn returned its value "
		  "and called it no more (%llu wrong, or full passes not returning 0)",
		  mode_name, got(&run.stops), got(&run.bad_stops));

	void **expected = xcalloc(FOREACH_IDS, sizeof(void *));
	for (uint32_t id = 0; id < STABLE_KEYS; id++)
		expected[id] = tag(id, run.version[id]);
	for (uint32_t k = 0; k < PRIVATE_KEYS; k++)
		expected[PRIVATE_BASE + k] = run.private_model[k];
	char text[256];
	bool ok = contents_match(run.m, expected, FOREACH_IDS, text, sizeof text);
	tap_check(ok, "map[%s] foreach: afterwards the map holds the stable keys' "
		  "last versions and fn's private keys: %s", mode_name, text);
	sync_map_destroy(run.m, NULL);
	free(expected);
}

/* ---- 8: counters through get/replace, get_or_insert and remove_if ---------- */

#define COUNTER_THREADS 4
#define COUNTERS 4u
#define BOX_LIVE 0x424f584c495645ull

/* An immutable boxed count: written before it is published, never after;
 * poisoned when reclaimed. */
struct box {
	uint64_t magic;
	uint64_t n;
};

struct counter_run {
	sync_map_t *m;
	uint32_t adds; /* per thread */
	atomic_int arrived;
	atomic_ullong added[COUNTERS]; /* what the threads added, per counter */
	atomic_ullong retries, replaces, takes, inserts, bad;
	atomic_ullong freed;
};

static struct counter_run cr;

static struct box *box_new(uint64_t n)
{
	struct box *b = xcalloc(1, sizeof *b);
	b->magic = BOX_LIVE;
	b->n = n;
	return b;
}

static void box_reclaim(void *p)
{
	struct box *b = p;
	b->magic = DEAD; /* a reader that still saw it would notice */
	free(b);
	count(&cr.freed);
}

static void box_destroy(void *p)
{
	free(p);
}

static bool box_ok(const struct box *b)
{
	return b && b->magic == BOX_LIVE;
}

/* Adds c to counter id: absent is 0. The section spans get to replace, so
 * the box compared cannot be reclaimed and its address reused meanwhile
 * (ABA). */
static void counter_add(uint32_t id, uint64_t c, int index)
{
	for (;;) {
		sync_epoch_enter();
		void *v = NULL;
		int r = map_get(cr.m, id, &v);
		if (r == ENOENT) {
			struct box *fresh = box_new(c);
			void *actual = NULL;
			struct test_key k;
			key_of(id, &k);
			r = sync_map_get_or_insert(cr.m, key_ptr(&k), k.len, fresh, &actual);
			bool ok = r == 0 ? actual == fresh : r == EEXIST && box_ok(actual);
			sync_epoch_exit();
			if (!ok) {
				count(&cr.bad);
				note_failure("thread %d: get_or_insert of counter %u returned %d, %p",
					     index, id, r, actual);
			}
			if (r == 0) {
				count(&cr.inserts);
				return;
			}
			free(fresh); /* never published */
			count(&cr.retries);
			continue;
		}
		struct box *old = v;
		if (r != 0 || !box_ok(old)) {
			sync_epoch_exit();
			count(&cr.bad);
			note_failure("thread %d: get of counter %u returned %d, %p", index, id, r, v);
			return;
		}
		struct box *next = box_new(old->n + c);
		if (next->n % 16 == 0)
			sched_yield(); /* let others change the counter meanwhile */
		struct test_key k;
		key_of(id, &k);
		r = sync_map_replace(cr.m, key_ptr(&k), k.len, old, next);
		sync_epoch_exit();
		if (r == 0) {
			sync_epoch_retire(old, box_reclaim);
			count(&cr.replaces);
			return;
		}
		free(next);
		count(&cr.retries);
		if (r != EAGAIN && r != ENOENT) {
			count(&cr.bad);
			note_failure("thread %d: replace of counter %u returned %d", index, id, r);
			return;
		}
	}
}

/* Takes counter id out if it holds the box just read; its count, or 0. */
static uint64_t counter_take(uint32_t id, int index)
{
	sync_epoch_enter();
	void *v = NULL;
	uint64_t n = 0;
	int r = map_get(cr.m, id, &v);
	if (r == 0 && box_ok(v)) {
		struct test_key k;
		key_of(id, &k);
		int t = sync_map_remove_if(cr.m, key_ptr(&k), k.len, v);
		if (t == 0)
			n = ((struct box *)v)->n;
		else if (t != EAGAIN && t != ENOENT) {
			count(&cr.bad);
			note_failure("thread %d: remove_if of counter %u returned %d", index, id, t);
		}
		sync_epoch_exit();
		if (t == 0) {
			sync_epoch_retire(v, box_reclaim);
			count(&cr.takes);
		}
		return n;
	}
	sync_epoch_exit();
	if (r != ENOENT) {
		count(&cr.bad);
		note_failure("thread %d: get of counter %u returned %d, %p", index, id, r, v);
	}
	return 0;
}

static void counter_worker(void *arg, int index)
{
	(void)arg;
	uint64_t s = seed(index, 0xc0c0);
	gate(&cr.arrived, COUNTER_THREADS);
	for (uint32_t i = 0; i < cr.adds; i++) {
		uint64_t x = stress_random(&s);
		uint32_t id = (uint32_t)(x % COUNTERS);
		/* one add in 16 takes the counter out first and adds its count back */
		uint64_t c = 1 + ((x >> 32) % 16 == 0 ? counter_take(id, index) : 0);
		counter_add(id, c, index);
		atomic_fetch_add_explicit(&cr.added[id], 1, memory_order_relaxed);
	}
}

static void case_counters(void)
{
	cr = (struct counter_run){ .m = new_map(), .adds = 10u * stress_ms() + 100 };
	reset_failure();
	uint64_t start = stress_now_ns();
	stress_run_threads_to_end(COUNTER_THREADS, counter_worker, NULL);
	unsigned long long ms = ms_since(start);
	unsigned long long wrong = 0, total = 0, missing = 0;
	for (uint32_t id = 0; id < COUNTERS; id++) {
		void *v = NULL;
		unsigned long long want = atomic_load(&cr.added[id]);
		total += want;
		if (map_get(cr.m, id, &v) != 0 || !box_ok(v))
			missing++;
		else
			wrong += ((struct box *)v)->n != want;
	}
	tap_check(got(&cr.bad) == 0 && wrong == 0 && missing == 0 &&
			  total == (unsigned long long)COUNTER_THREADS * cr.adds &&
			  sync_map_size(cr.m) == COUNTERS,
		  "map[%s] counters: %d threads add %llu times to %u counters through "
		  "get/replace loops (%llu retries), get_or_insert (%llu inserts) and "
		  "remove_if (%llu taken out and added back): %llu counts wrong, %llu "
		  "missing, %llu calls wrong%s, in %llu ms", mode_name, COUNTER_THREADS,
		  total, COUNTERS, got(&cr.retries), got(&cr.inserts), got(&cr.takes),
		  wrong, missing, got(&cr.bad), first_failure(), ms);
	sync_epoch_barrier();
	unsigned long long replaced = got(&cr.freed);
	sync_map_destroy(cr.m, box_destroy);
	unsigned long long retired = got(&cr.replaces) + got(&cr.takes);
	tap_check(replaced == retired && got(&cr.inserts) - got(&cr.takes) == COUNTERS,
		  "map[%s] counters: the boxes replaced or taken out were each reclaimed "
		  "once after the barrier (%llu of %llu); inserted minus taken out is the "
		  "%u left (%llu - %llu)", mode_name, replaced, retired, COUNTERS,
		  got(&cr.inserts), got(&cr.takes));
}

/* ---- 9: get_or_insert racing on the same keys ------------------------------- */

#define GOI_THREADS 4
#define GOI_BATCH 8u

struct goi_run {
	sync_map_t *m;
	uint32_t keys;
	atomic_int arrived;
	atomic_uint batches_done; /* batches every thread has arrived at, times threads */
	atomic_uchar *wins;       /* per key */
	_Atomic(void *) *seen;    /* per key: the value the first thread was handed */
	atomic_ullong eexist, bad;
};

static _Thread_local unsigned hook_calls;

/* Holds one get_or_insert in 8 between its lookup and its lock. */
static void looked_up_hook(const char *point)
{
	if (strcmp(point, "map_store:looked_up") == 0 && hook_calls++ % 8 == 0)
		sched_yield();
}

static void goi_racer(void *arg, int index)
{
	struct goi_run *run = arg;
	gate(&run->arrived, GOI_THREADS);
	for (uint32_t id = 0; id < run->keys; id++) {
		if (id % GOI_BATCH == 0) { /* meet before each batch, to race for it */
			unsigned round = id / GOI_BATCH + 1;
			atomic_fetch_add(&run->batches_done, 1);
			while (atomic_load(&run->batches_done) < round * GOI_THREADS)
				sched_yield();
		}
		void *mine = tag(id, (uint32_t)index), *actual = UNTOUCHED, *none = NULL;
		struct test_key k;
		key_of(id, &k);
		int r = sync_map_get_or_insert(run->m, key_ptr(&k), k.len, mine, &actual);
		if (r == 0)
			atomic_fetch_add_explicit(&run->wins[id], 1, memory_order_relaxed);
		else
			count(&run->eexist);
		bool ok = r == 0 ? actual == mine
				 : r == EEXIST && is_tag(actual) && tag_id(actual) == id &&
					   actual != mine;
		/* relaxed: tags are plain integers, nothing is published with them */
		if (!atomic_compare_exchange_strong_explicit(&run->seen[id], &none, actual,
							     memory_order_relaxed,
							     memory_order_relaxed) &&
		    none != actual)
			ok = false;
		if (!ok) {
			count(&run->bad);
			note_failure("thread %d: get_or_insert of key %u returned %d, %p; "
				     "another thread was handed %p", index, id, r, actual, none);
		}
	}
}

static void case_get_or_insert_race(void)
{
	static struct goi_run run;
	uint32_t keys = 4u * stress_ms() + 64;
	run = (struct goi_run){ .m = new_map(), .keys = keys, .wins = xcalloc(keys, 1),
				.seen = xcalloc(keys, sizeof(void *)) };
	reset_failure();
	test_hook_set(looked_up_hook);
	uint64_t start = stress_now_ns();
	stress_run_threads_to_end(GOI_THREADS, goi_racer, &run);
	unsigned long long ms = ms_since(start);
	test_hook_set(NULL);
	unsigned long long none = 0, several = 0;
	void **expected = xcalloc(keys, sizeof(void *));
	for (uint32_t id = 0; id < keys; id++) {
		unsigned w = atomic_load(&run.wins[id]);
		none += w == 0;
		several += w > 1;
		expected[id] = atomic_load(&run.seen[id]);
	}
	char text[256];
	bool ok = contents_match(run.m, expected, keys, text, sizeof text);
	tap_check(none == 0 && several == 0 && got(&run.bad) == 0 && ok &&
			  got(&run.eexist) == (unsigned long long)keys * (GOI_THREADS - 1),
		  "map[%s] get_or_insert race: %d threads on the same %u keys: exactly one "
		  "insert per key (%llu without, %llu with several, %llu EEXIST), every "
		  "thread handed the winner's value (%llu wrong%s), the map holds it: %s; "
		  "in %llu ms", mode_name, GOI_THREADS, keys, none, several,
		  got(&run.eexist), got(&run.bad), first_failure(), text, ms);
	sync_map_destroy(run.m, NULL);
	free(expected);
	free(run.wins);
	free(run.seen);
}

/* ---- the cases ------------------------------------------------------------------- */

static const struct shared_case shared_cases[] = {
	{ .name = "shared keys, 2 writers, 2 readers", .writers = 2,
	  .readers = 2, .keys = 64 },
	/* more threads than cores */
	{ .name = "shared keys, 8 threads: 3 writers, 2 readers, 1 foreach, "
		  "2 churners", .writers = 3, .readers = 2, .iterators = 1,
	  .churners = 2, .keys = 256 },
};

/* ---- 10: a slot reused under a get ------------------------------------------- */

#define REUSE_ROUNDS 300

enum reuse_state { REUSE_IDLE, REUSE_ARMED, REUSE_HELD, REUSE_GO };

struct reuse_run {
	sync_map_t *m;
	char k1[8], k2[8]; /* two keys of 8 bytes in one bucket */
	void *v1, *v2;
	atomic_int state;
	atomic_bool reader_done;
	int r;   /* the reader's result; read after the join */
	void *v; /* the value it got */
};

static struct reuse_run reuse;
static _Thread_local bool reuse_reader;

/* Holds the reader's get of K1 between its key match and its value load,
 * once per round, until the writer has put K2 into K1's slot. */
static void slot_matched_hook(const char *point)
{
	if (!reuse_reader || strcmp(point, "map_get:slot_matched") != 0)
		return;
	int armed = REUSE_ARMED;
	if (!atomic_compare_exchange_strong(&reuse.state, &armed, REUSE_HELD))
		return;
	while (atomic_load(&reuse.state) != REUSE_GO)
		sched_yield();
}

/* Thread 0 gets K1; thread 1 waits until that get is held, removes K1 and
 * inserts K2. */
static void reuse_racer(void *arg, int index)
{
	struct reuse_run *run = arg;
	if (index == 0) {
		reuse_reader = true;
		run->v = UNTOUCHED;
		run->r = sync_map_get(run->m, run->k1, sizeof run->k1, &run->v);
		reuse_reader = false;
		atomic_store(&run->reader_done, true);
		return;
	}
	while (atomic_load(&run->state) != REUSE_HELD)
		if (atomic_load(&run->reader_done))
			return; /* the get never reached the hook: reported */
		else
			sched_yield();
	int r1 = sync_map_remove(run->m, run->k1, sizeof run->k1, NULL);
	int r2 = sync_map_insert(run->m, run->k2, sizeof run->k2, run->v2);
	if (r1 != 0 || r2 != 0)
		note_failure("remove of K1 returned %d, insert of K2 %d", r1, r2);
	atomic_store(&run->state, REUSE_GO);
}

/* Two 8-byte keys of round i that share a bucket of m's table. */
static void pick_reuse_keys(sync_map_t *m, unsigned i, char *k1, char *k2)
{
	char buf[16];
	struct table *t = current_table(m);
	snprintf(buf, sizeof buf, "a%07u", i % 10000000u);
	memcpy(k1, buf, 8);
	uint64_t want = map_hash(m, k1, 8) & t->mask;
	for (unsigned j = 0;; j++) {
		snprintf(buf, sizeof buf, "b%07u", j % 10000000u);
		memcpy(k2, buf, 8);
		if ((map_hash(m, k2, 8) & t->mask) == want)
			return;
	}
}

static void case_slot_reuse(void)
{
	unsigned long long old_value = 0, enoent = 0, bad = 0;
	reset_failure();
	test_hook_set(slot_matched_hook);
	uint64_t start = stress_now_ns();
	for (unsigned i = 0; i < REUSE_ROUNDS; i++) {
		reuse.m = new_map();
		pick_reuse_keys(reuse.m, i, reuse.k1, reuse.k2);
		reuse.v1 = tag(1, i);
		reuse.v2 = tag(2, i);
		/* the only key: slot 0, which K2 takes once K1 is gone */
		if (sync_map_insert(reuse.m, reuse.k1, sizeof reuse.k1, reuse.v1) != 0)
			note_failure("round %u: insert of K1 failed", i);
		atomic_store(&reuse.reader_done, false);
		atomic_store(&reuse.state, REUSE_ARMED);
		stress_run_threads_to_end(2, reuse_racer, &reuse);
		bool held = atomic_load(&reuse.state) == REUSE_GO;
		void *now = UNTOUCHED;
		int r = sync_map_get(reuse.m, reuse.k2, sizeof reuse.k2, &now);
		if (!held || r != 0 || now != reuse.v2)
			note_failure("round %u: the get was%s held; get of K2 after: %d", i,
				     held ? "" : " not", r);
		if (reuse.r == 0 && reuse.v == reuse.v1)
			old_value++;
		else if (reuse.r == ENOENT)
			enoent++;
		else if (bad++ == 0)
			note_failure("round %u: get of K1 returned %d, %p (K1's value %p, "
				     "K2's %p)", i, reuse.r, reuse.v, reuse.v1, reuse.v2);
		atomic_store(&reuse.state, REUSE_IDLE);
		sync_map_destroy(reuse.m, NULL);
	}
	test_hook_set(NULL);
	tap_check(bad == 0 && !atomic_load(&first_taken),
		  "map[%s] slot reuse under a get: %d rounds of a get of K1 held between its "
		  "key match and its value load while K1 is removed and K2 takes its slot: "
		  "K1's value %llu times, ENOENT %llu, anything else %llu%s; in %llu ms",
		  mode_name, REUSE_ROUNDS, old_value, enoent, bad, first_failure(),
		  ms_since(start));
}

#define CHECKS (2 + 2 + 3 + 3 + 3 + 4 + 3 + 2 + 1 + 1)

static void run_cases(const char *mode)
{
	mode_name = mode;
	case_model();
	case_script();
	case_race();
	case_shared(&shared_cases[0]);
	case_resize();
	case_foreach();
	case_shared(&shared_cases[1]);
	case_counters();
	case_get_or_insert_race();
	case_slot_reuse();
}

/* ---- the second mode, in a re-executed copy -------------------------------------- */

int main(int argc, char **argv)
{
	(void)argc;
	const char *off = getenv("SYNC_EPOCH_NO_MEMBARRIER");
	if (off && strcmp(off, "1") == 0) {
		/* the re-executed copy, or a run asked for this mode only */
		tap_plan(CHECKS);
		run_cases("fence");
		return tap_exit_status();
	}
	tap_plan(2 * CHECKS + 1);
	run_cases("membarrier");
	stress_rerun_in_fence_mode(argv, CHECKS, "map");
	return tap_exit_status();
}

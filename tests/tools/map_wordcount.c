/* Two programs on sync_map. A word count: threads count the words of their
 * share of a text; the first to meet a word inserts a counter with the
 * word's plain details, the others get it and read them; the total is
 * checked by foreach. A put->get hand-over: a writer replaces the value of
 * "config" by put, readers get it inside epoch sections and read its plain
 * fields; replaced and removed values are freed by epoch callbacks.
 * Correct: no report. */
#include <stdatomic.h>

#include "tools.h"

#define THREADS 3
#define VOCABULARY 200

struct counter {
	char word[16];
	size_t len;       /* plain: the inserter's, before the insert */
	atomic_long n;
};

static sync_map_t *words;
static long words_per_thread;

static void word_of(unsigned k, char *w, size_t *len)
{
	*len = (size_t)snprintf(w, 16, "w%uz%u", k % VOCABULARY, k % 7);
}

static void count(const char *w, size_t len)
{
	void *v;
	if (sync_map_get(words, w, len, &v) != 0) {
		struct counter *c = calloc(1, sizeof *c);
		CHECK(c);
		memcpy(c->word, w, len);
		c->len = len;
		int rc = sync_map_insert(words, w, len, c);
		if (rc == 0) {
			v = c;
		} else {
			CHECK(rc == EEXIST);
			free(c);
			CHECK(sync_map_get(words, w, len, &v) == 0);
		}
	}
	struct counter *c = v;
	CHECK(c->len == len && memcmp(c->word, w, len) == 0);
	atomic_fetch_add_explicit(&c->n, 1, memory_order_relaxed);
}

static void *counter_thread(void *arg)
{
	unsigned seed = 88172645u + (unsigned)(long)arg;
	for (long i = 0; i < words_per_thread; i++) {
		char w[16];
		size_t len;
		word_of(tools_rand(&seed) % (VOCABULARY * 7), w, &len);
		count(w, len);
	}
	return NULL;
}

static int add_count(const void *key, size_t keylen, void *value, void *arg)
{
	struct counter *c = value;
	CHECK(c->len == keylen && memcmp(c->word, key, keylen) == 0);
	*(long *)arg += atomic_load_explicit(&c->n, memory_order_relaxed);
	return 0;
}

struct version {
	long v;
	long payload[4]; /* plain: v * i, written before the put */
};

static sync_map_t *configs;

static void version_free(void *p)
{
	struct version *x = p;
	x->v = -1;
	free(x);
}

static int check_version(const void *key, size_t keylen, void *value, void *arg)
{
	(void)key, (void)keylen, (void)arg;
	struct version *x = value;
	for (int i = 0; i < 4; i++)
		CHECK(x->payload[i] == x->v * i);
	return 0;
}

static void *config_reader(void *arg)
{
	(void)arg;
	for (long n = 0; n < words_per_thread; n++) {
		sync_epoch_enter();
		void *p;
		if (n % 4 == 3)
			CHECK(sync_map_foreach(configs, check_version, NULL) == 0);
		else if (sync_map_get(configs, "config", 6, &p) == 0)
			check_version("config", 6, p, NULL);
		sync_epoch_exit();
	}
	return NULL;
}

static void *config_writer(void *arg)
{
	(void)arg;
	for (long v = 1; v <= words_per_thread / 4; v++) {
		struct version *x = malloc(sizeof *x), *old = NULL;
		CHECK(x);
		x->v = v;
		for (int i = 0; i < 4; i++)
			x->payload[i] = v * i;
		if (v % 8 == 0) {
			void *gone;
			if (sync_map_remove(configs, "config", 6, &gone) == 0)
				sync_epoch_retire(gone, version_free);
			CHECK(sync_map_insert(configs, "config", 6, x) == 0);
		} else {
			CHECK(sync_map_put(configs, "config", 6, x, (void **)&old) == 0);
			if (old)
				sync_epoch_retire(old, version_free);
		}
	}
	return NULL;
}

static void *either(void *arg)
{
	return (long)arg == THREADS ? config_writer(arg) : config_reader(arg);
}

int main(int argc, char **argv)
{
	words_per_thread = tools_scale(argc, argv, 20000);
	CHECK((words = sync_map_create(16)));
	tools_run(THREADS, counter_thread);
	long total = 0;
	CHECK(sync_map_foreach(words, add_count, &total) == 0);
	CHECK(total == THREADS * words_per_thread);
	sync_map_destroy(words, free);

	CHECK((configs = sync_map_create(0)));
	tools_run(THREADS + 1, either);
	sync_map_destroy(configs, version_free);
	sync_epoch_barrier();
	return 0;
}

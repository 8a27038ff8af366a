/* A concurrent word count: THREADS threads share the COPIES copies of a
 * text (a copy each in turn) and count its words in one sync_map_t, word -> counter. The counters are
 * atomics, so once a word's counter is in the map, counting it is one
 * atomic add, with no lock and no map update. A new word's counter goes in
 * with sync_map_get_or_insert: if two threads meet the same new word at once,
 * one inserts its counter, the other gets EEXIST and the counter already
 * there (and frees its own), so no count is lost. A plain get first spares
 * the allocation for words already counted, nearly all of them.
 * The program checks every count against a count done by one thread.
 * See sync_map_get_or_insert(3), sync_map_get(3).
 * cc word_count.c $(pkg-config --cflags --libs libsync) */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sync.h>

#define THREADS 4
#define COPIES 400

static const char *text[] = { /* Dickens, A Tale of Two Cities (1859) */
	"It was the best of times, it was the worst of times,",
	"it was the age of wisdom, it was the age of foolishness,",
	"it was the epoch of belief, it was the epoch of incredulity,",
	"it was the season of Light, it was the season of Darkness,",
	"it was the spring of hope, it was the winter of despair,",
	"we had everything before us, we had nothing before us,",
	"we were all going direct to Heaven,",
	"we were all going direct the other way",
};
#define LINES (int)(sizeof text / sizeof text[0])

static sync_map_t *counts; /* word -> atomic_long * */
static pthread_barrier_t start; /* all threads start together */

/* Copies the next word of *s, lowercased, into word; false at the end. */
static int next_word(const char **s, char word[32], size_t *len)
{
	while (**s && !isalpha((unsigned char)**s))
		++*s;
	for (*len = 0; isalpha((unsigned char)**s); ++*s)
		if (*len < 31)
			word[(*len)++] = (char)tolower((unsigned char)**s);
	return *len > 0;
}

static atomic_long *counter_of(const char *word, size_t len)
{
	void *found;
	if (sync_map_get(counts, word, len, &found) == 0)
		return found; /* the common case: one lookup, no lock */
	atomic_long *mine = malloc(sizeof *mine);
	if (mine == NULL)
		abort();
	atomic_init(mine, 0);
	if (sync_map_get_or_insert(counts, word, len, mine, &found) == EEXIST)
		free(mine); /* another thread's counter got there first */
	return found;
}

static void *counter_thread(void *arg)
{
	int id = (int)(long)arg;
	char word[32];
	size_t len;
	pthread_barrier_wait(&start);
	for (int copy = id; copy < COPIES; copy += THREADS)
		for (int line = 0; line < LINES; line++)
			for (const char *s = text[line]; next_word(&s, word, &len);)
				/* relaxed: a count orders nothing; pthread_join
				 * publishes the totals */
				atomic_fetch_add_explicit(counter_of(word, len), 1,
							  memory_order_relaxed);
	return NULL;
}

/* The same count by one thread, without the map: COPIES times the word's
 * occurrences in the text. */
static long count_alone(const void *key, size_t keylen)
{
	long n = 0;
	char word[32];
	size_t len;
	for (int line = 0; line < LINES; line++)
		for (const char *s = text[line]; next_word(&s, word, &len);)
			n += len == keylen && memcmp(word, key, len) == 0;
	return n * COPIES;
}

struct tally { long words, wrong; };

static int check(const void *key, size_t keylen, void *value, void *arg)
{
	struct tally *t = arg;
	long n = atomic_load((atomic_long *)value);
	if (keylen <= 6 && n >= 6 * COPIES) /* print the frequent short words */
		printf("%-6.*s %ld\n", (int)keylen, (const char *)key, n);
	t->words += n;
	t->wrong += n != count_alone(key, keylen);
	return 0;
}

int main(void)
{
	counts = sync_map_create(64);
	if (counts == NULL)
		return 1;
	pthread_t threads[THREADS];
	pthread_barrier_init(&start, NULL, THREADS);
	for (long i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, counter_thread, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);

	struct tally t = { 0, 0 };
	sync_map_foreach(counts, check, &t);
	long all = 0;
	for (int line = 0; line < LINES; line++) {
		char word[32];
		size_t len;
		for (const char *s = text[line]; next_word(&s, word, &len);)
			all += COPIES;
	}
	printf("%zu distinct words, %ld counted of %ld, %ld counts wrong\n",
	       sync_map_size(counts), t.words, all, t.wrong);
	sync_map_destroy(counts, free);
	return t.wrong == 0 && t.words == all ? 0 : 1;
}

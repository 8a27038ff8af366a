/* Statistics of the harness: medians and latency-histogram quantiles. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double median(const double *v, int n)
{
	double s[BENCH_MAX_ROUNDS];
	memcpy(s, v, (size_t)n * sizeof *v);
	qsort(s, (size_t)n, sizeof *s, cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* The largest value that falls into bucket b (of hist_bucket, internal.h). */
static uint64_t hist_upper(unsigned b)
{
	if (b < HIST_SUB)
		return b;
	unsigned e = b / HIST_SUB + 2, sub = b % HIST_SUB;
	return ((uint64_t)(HIST_SUB + sub + 1) << (e - 3)) - 1;
}

/* Nearest-rank quantile q of a histogram, in ticks. */
uint64_t hist_quantile(const uint64_t *hist, double q)
{
	uint64_t total = 0, seen = 0;
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		total += hist[b];
	uint64_t rank = (uint64_t)ceil(q * (double)total);
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += hist[b];
		if (total && seen >= rank)
			return hist_upper(b);
	}
	return 0;
}

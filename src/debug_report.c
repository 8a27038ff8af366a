/* The checker's reports: text gathered in memory and written to stderr in
 * one go, stack traces from backtrace(3) without the library's own frames,
 * and the abort that SYNC_CHECK=deadlock,abort asks for. */
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annotate.h"
#include "debug_internal.h"

#define REPORTS_MAX 100 /* then one line says the rest were left out */

static unsigned reports_made;

/* The library's own code: [lib_start, lib_end) of the object that holds
 * this function. In a program linked with the library's objects directly
 * (the stress tests), that is the program, and frames are kept. */
static uintptr_t lib_start, lib_end;
static pthread_once_t lib_range_once = PTHREAD_ONCE_INIT;

static int find_own_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	uintptr_t me = (uintptr_t)arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t start = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && me >= start && me < start + ph->p_memsz) {
			if (!info->dlpi_name || !*info->dlpi_name)
				return 1; /* the program itself: keep its frames */
			lib_start = start;
			lib_end = start + ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

static void find_lib_range(void)
{
	dl_iterate_phdr(find_own_object, (void *)(uintptr_t)find_lib_range);
}

static int in_library(void *pc)
{
	return (uintptr_t)pc >= lib_start && (uintptr_t)pc < lib_end;
}

void trace_capture(struct trace *t)
{
	void *pc[TRACE_MAX + 16];
	pthread_once(&lib_range_once, find_lib_range);
	int n = backtrace(pc, TRACE_MAX + 16);
	int first = 1; /* this function */
	while (first < n && in_library(pc[first]))
		first++;
	t->n = n - first < TRACE_MAX ? n - first : TRACE_MAX;
	memcpy(t->pc, pc + first, (size_t)(t->n > 0 ? t->n : 0) * sizeof *pc);
}

void report_printf(struct report *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int need = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (need < 0)
		return;
	if (r->len + (size_t)need + 1 > r->cap) {
		size_t cap = (r->len + (size_t)need + 1) * 2;
		char *text = realloc(r->text, cap);
		if (!text)
			return;
		r->text = text;
		r->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(r->text + r->len, r->cap - r->len, fmt, ap);
	va_end(ap);
	r->len += (size_t)need;
}

void report_trace(struct report *r, const struct trace *t)
{
	char **names = t->n > 0 ? backtrace_symbols(t->pc, t->n) : NULL;
	for (int i = 0; i < t->n; i++) {
		if (names)
			report_printf(r, "      #%d %s\n", i, names[i]);
		else
			report_printf(r, "      #%d %p\n", i, t->pc[i]);
	}
	if (t->n <= 0)
		report_printf(r, "      (no stack trace)\n");
	free(names);
}

const char *lock_kind(unsigned flags)
{
	if (flags & ANN_RWLOCK)
		return "rwlock";
	return (flags & ANN_SPIN) ? "spinlock" : "mutex";
}

const char *mode_words(unsigned flags)
{
	if (!(flags & ANN_RWLOCK))
		return "";
	return (flags & ANN_READ) ? " for reading" : " for writing";
}

static void write_all(const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(STDERR_FILENO, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		len -= (size_t)w;
	}
}

void report_finish(struct report *r)
{
	/* relaxed: a count, ordered with nothing */
	unsigned made = __atomic_fetch_add(&reports_made, 1, __ATOMIC_RELAXED);
	if (made < REPORTS_MAX && r->text)
		write_all(r->text, r->len);
	else if (made == REPORTS_MAX)
		write_all("libsync: SYNC_CHECK: more reports left out\n", 43);
	free(r->text);
	r->text = NULL;
	/* relaxed: a mode switch (see set_check) */
	if (__atomic_load_n(&dbg_abort_after_report, __ATOMIC_RELAXED)) {
		write_all("libsync: SYNC_CHECK=deadlock,abort: aborting\n", 45);
		abort();
	}
}

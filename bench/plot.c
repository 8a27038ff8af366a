/* The results folder: every printed row's medians (rows.tsv), and gnuplot
 * data and scripts for one plot per primitive (ns/op against threads, a
 * panel per workload, a line for ours and each peer) and one overview of
 * all ratios ours/peer; gnuplot then draws them as SVG and PNG. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

/* The workload column of the lock rows, as report.c prints it. */
#define LOCK_WORKLOAD "lock+unlock"

/* Colours of the overview: ours faster, ours slower. */
#define FASTER "0x2ca02c"
#define SLOWER "0xd62728"

struct plot_row {
	const char *primitive, *workload, *ours, *peer; /* static strings of the row */
	int threads;
	double ours_ns, peer_ns; /* 0: no median (capped or failed) */
	double ratio;
	bool exact;
};

static struct plot_row *rows;
static size_t nrows, rows_cap;

void plot_note_row(const struct bench_row *row, double ours_ns, double peer_ns,
		   double ratio, bool exact)
{
	if (nrows == rows_cap) {
		size_t cap = rows_cap ? 2 * rows_cap : 256;
		struct plot_row *r = realloc(rows, cap * sizeof *r);
		if (!r)
			return; /* the plots miss this row; the table has it */
		rows = r;
		rows_cap = cap;
	}
	rows[nrows++] = (struct plot_row){
		row->primitive, row->workload ? row->workload->name : LOCK_WORKLOAD,
		row->ours->name, row->peer->name, row->threads, ours_ns, peer_ns, ratio,
		exact && ours_ns > 0 && peer_ns > 0,
	};
}

/* ---- Small helpers ------------------------------------------------------ */

/* Distinct strings in order of first appearance. */
struct names {
	const char *v[64];
	int n;
};

static int name_index(struct names *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], name))
			return i;
	if (s->n == (int)(sizeof s->v / sizeof s->v[0]))
		return -1;
	s->v[s->n] = name;
	return s->n++;
}

/* A file name stem: letters and digits, everything else '_'. */
static void stem_of(const char *name, char *out, size_t len)
{
	size_t i = 0;
	for (; name[i] && i + 1 < len; i++) {
		char c = name[i];
		out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
				 ? c : '_';
	}
	out[i] = '\0';
}

/* A gnuplot single-quoted string (' doubled). */
static void put_quoted(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

static int mkdir_p(const char *dir)
{
	char path[4096];
	if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
		return ENAMETOOLONG;
	for (char *p = path + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(path, 0777) && errno != EEXIST)
			return errno;
		if (!c)
			return 0;
		*p = c;
	}
}

static FILE *open_in(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
	return f;
}

/* ---- rows.tsv ------------------------------------------------------------- */

static bool write_tsv(const char *dir)
{
	FILE *f = open_in(dir, "rows.tsv");
	if (!f)
		return false;
	fprintf(f, "primitive\tworkload\tthreads\tours\tpeer\tours_ns\tpeer_ns\tratio\n");
	for (size_t i = 0; i < nrows; i++) {
		const struct plot_row *r = &rows[i];
		fprintf(f, "%s\t%s\t%d\t%s\t%s\t", r->primitive, r->workload, r->threads, r->ours,
			r->peer);
		fprintf(f, r->ours_ns > 0 ? "%.2f\t" : "-\t", r->ours_ns);
		fprintf(f, r->peer_ns > 0 ? "%.2f\t" : "-\t", r->peer_ns);
		fprintf(f, r->exact ? "%.3f\n" : "-\n", r->ratio);
	}
	return !fclose(f);
}

/* ---- One plot per primitive ---------------------------------------------- */

/* The median of the nonzero ns of `name` (ours or peer side) at `threads`
 * in rows of primitive p and workload w; 0 if none. Ours is measured
 * again in each row against each peer: its line is the median of those. */
static double series_ns(const char *p, const char *w, const char *name, int threads)
{
	double v[BENCH_MAX_ROUNDS];
	int n = 0;
	for (size_t i = 0; i < nrows && n < BENCH_MAX_ROUNDS; i++) {
		const struct plot_row *r = &rows[i];
		if (strcmp(r->primitive, p) || strcmp(r->workload, w) || r->threads != threads)
			continue;
		if (!strcmp(r->ours, name) && r->ours_ns > 0)
			v[n++] = r->ours_ns;
		else if (!strcmp(r->peer, name) && r->peer_ns > 0)
			v[n++] = r->peer_ns;
	}
	return n ? median(v, n) : 0;
}

struct series {
	int panel;   /* index into the workloads */
	int name;    /* index into the names: the colour */
	bool ours;
	int block;   /* gnuplot's index in the data file */
};

struct primitive_plot {
	const char *primitive;
	char stem[64];
	struct names workloads, names;
	int threads[16]; /* thread counts, ascending */
	int nthreads;
	bool is_ours[64];
	double ymin[64], ymax[64]; /* per workload: its panel's y range */
	struct series series[256];
	int nseries;
};

/* Writes the data file: a block per series with points; fills pp->series. */
static bool write_primitive_data(const char *dir, struct primitive_plot *pp)
{
	char file[96];
	snprintf(file, sizeof file, "%s.dat", pp->stem);
	FILE *f = open_in(dir, file);
	if (!f)
		return false;
	int block = 0;
	for (int w = 0; w < pp->workloads.n; w++) {
		for (int k = 0; k < pp->names.n; k++) {
			bool any = false;
			for (int t = 0; t < pp->nthreads; t++) {
				int threads = pp->threads[t];
				double ns = series_ns(pp->primitive, pp->workloads.v[w], pp->names.v[k],
						      threads);
				if (ns <= 0)
					continue;
				if (!any)
					fprintf(f, "# %s, %s\n", pp->workloads.v[w], pp->names.v[k]);
				any = true;
				fprintf(f, "%d %.3f\n", threads, ns);
				if (!pp->ymax[w] || ns < pp->ymin[w])
					pp->ymin[w] = ns;
				pp->ymax[w] = ns > pp->ymax[w] ? ns : pp->ymax[w];
			}
			if (!any || pp->nseries == (int)(sizeof pp->series / sizeof pp->series[0]))
				continue;
			fprintf(f, "\n\n");
			pp->series[pp->nseries++] = (struct series){ w, k, pp->is_ours[k], block++ };
		}
	}
	return !fclose(f);
}

static void emit_primitive_body(FILE *f, const struct primitive_plot *pp, int cols, int nrow)
{
	int tmin = 1 << 30, tmax = 0;
	fprintf(f, "set multiplot layout %d,%d title ", nrow, cols);
	put_quoted(f, pp->primitive);
	fprintf(f, ".\": ns per operation against threads\\n(median of alternating rounds;"
		" lower is better; log scales)\"");
	fprintf(f, "\nset logscale x 2\nset logscale y\nset xtics (");
	for (int t = 0; t < pp->nthreads; t++) {
		int threads = pp->threads[t];
		tmin = threads < tmin ? threads : tmin;
		tmax = threads > tmax ? threads : tmax;
		fprintf(f, "%s%d", t ? ", " : "", threads);
	}
	fprintf(f, ")\nset xrange [%g:%g]\nset ylabel 'ns/op'\n"
		"set grid\nset key below horizontal font ',8'\n", tmin / 1.4, tmax * 1.4);
	for (int w = 0; w < pp->workloads.n; w++) {
		fprintf(f, "set title ");
		put_quoted(f, pp->workloads.v[w]);
		if (pp->ymax[w] > 0)
			fprintf(f, "\nset yrange [%g:%g]", pp->ymin[w] / 1.6, pp->ymax[w] * 1.6);
		fprintf(f, "\nplot ");
		bool first = true;
		for (int s = 0; s < pp->nseries; s++) {
			const struct series *se = &pp->series[s];
			if (se->panel != w)
				continue;
			fprintf(f, "%s'%s.dat' index %d using 1:2 with linespoints lw %s pt 7 lc %d"
				" title ", first ? "" : ", \\\n     ", pp->stem, se->block,
				se->ours ? "2.5" : "1.2", se->name + 1);
			char t[160];
			snprintf(t, sizeof t, "%s%s", pp->names.v[se->name], se->ours ? " (ours)" : "");
			put_quoted(f, t);
			first = false;
		}
		if (first) /* no side of this workload has a median */
			fprintf(f, "NaN notitle");
		fprintf(f, "\n");
	}
	fprintf(f, "unset multiplot\n");
}

/* Data and script of one primitive; returns the script's name in `script`. */
static bool write_primitive(const char *dir, const char *primitive, char *script, size_t len)
{
	struct primitive_plot *pp = calloc(1, sizeof *pp);
	bool ok = false;
	if (!pp)
		return false;
	pp->primitive = primitive;
	stem_of(primitive, pp->stem, sizeof pp->stem);
	for (size_t i = 0; i < nrows; i++) {
		if (strcmp(rows[i].primitive, primitive))
			continue;
		name_index(&pp->workloads, rows[i].workload);
		int o = name_index(&pp->names, rows[i].ours);
		if (o >= 0)
			pp->is_ours[o] = true;
		name_index(&pp->names, rows[i].peer);
	}
	for (int t = 1; t <= 1024 && pp->nthreads < 16; t++)
		for (size_t i = 0; i < nrows; i++)
			if (!strcmp(rows[i].primitive, primitive) && rows[i].threads == t) {
				pp->threads[pp->nthreads++] = t;
				break;
			}
	if (!write_primitive_data(dir, pp))
		goto out;
	snprintf(script, len, "%s.gp", pp->stem);
	FILE *f = open_in(dir, script);
	if (!f)
		goto out;
	int n = pp->workloads.n, cols = n <= 3 ? n : n == 4 ? 2 : 3, nrow = (n + cols - 1) / cols;
	int width = 440 * cols > 600 ? 440 * cols : 600, height = 390 * nrow + 60;
	fprintf(f, "# %s: ns/op against threads, written by bench/bench\n", primitive);
	fprintf(f, "set terminal svg size %d,%d dynamic noenhanced font 'sans,10' background"
		" '#ffffff'\nset output '%s.svg'\n", width, height, pp->stem);
	emit_primitive_body(f, pp, cols, nrow);
	fprintf(f, "set terminal pngcairo size %d,%d noenhanced font 'sans,9' background"
		" '#ffffff'\nset output '%s.png'\n", width, height, pp->stem);
	emit_primitive_body(f, pp, cols, nrow);
	fprintf(f, "unset output\nreset\n");
	ok = !fclose(f);
out:
	free(pp);
	return ok;
}

/* ---- The overview of all ratios ------------------------------------------ */

/* One column per primitive and peer, a point per row (its workload and
 * thread count), green below 1.0 (ours faster), red above; a point's type
 * says its thread count. */
static bool write_overview(const char *dir)
{
	struct names groups = { .n = 0 };
	static char labels[64][96];
	double lo = 0.8, hi = 1.25;
	int left_out = 0;
	FILE *d = open_in(dir, "overview.dat");
	if (!d)
		return false;
	fprintf(d, "# x ratio threads (column: primitive vs peer)\n");
	for (size_t i = 0; i < nrows; i++) {
		const struct plot_row *r = &rows[i];
		char label[96];
		if (!r->exact) {
			left_out++;
			continue;
		}
		snprintf(label, sizeof label, "%s vs %s", r->primitive, r->peer);
		int g = -1;
		for (int k = 0; k < groups.n; k++)
			if (!strcmp(labels[k], label))
				g = k;
		if (g < 0 && groups.n < 64) {
			g = groups.n++;
			snprintf(labels[g], sizeof labels[g], "%s", label);
			groups.v[g] = labels[g];
		}
		if (g < 0)
			continue;
		double x = g + 1 + 0.1 * (log2(r->threads) - 1.5);
		fprintf(d, "%.3f %.4f %d\n", x, r->ratio, r->threads);
		lo = r->ratio < lo ? r->ratio : lo;
		hi = r->ratio > hi ? r->ratio : hi;
	}
	if (fclose(d))
		return false;

	FILE *f = open_in(dir, "overview.gp");
	if (!f)
		return false;
	int width = 36 * groups.n + 320 > 900 ? 36 * groups.n + 320 : 900;
	size_t longest = 0;
	for (int g = 0; g < groups.n; g++)
		longest = strlen(groups.v[g]) > longest ? strlen(groups.v[g]) : longest;
	fprintf(f, "# every row's ratio ours/peer, written by bench/bench\n");
	fprintf(f, "set terminal svg size %d,640 dynamic noenhanced font 'sans,10' background"
		" '#ffffff'\nset output 'overview.svg'\n", width);
	fprintf(f, "set title 'libsync make bench: ours/peer of ns per operation, one point per"
		" row (below 1.0: libsync faster)%s'\n", left_out ? "; rows with a capped side"
		" left out" : "");
	fprintf(f, "set logscale y\nset yrange [%g:%g]\nset ylabel 'ratio ours/peer (log scale)'\n"
		"set grid ytics\nset xrange [0.4:%g]\nset bmargin %d\nset lmargin %d\n",
		lo / 1.3, hi * 1.3, groups.n + 0.6, (int)(longest * 0.3) + 3,
		(int)(longest * 0.55) > 12 ? (int)(longest * 0.55) : 12);
	fprintf(f, "set xtics rotate by 45 right font ',8' (");
	for (int g = 0; g < groups.n; g++) {
		fprintf(f, "%s", g ? ", " : "");
		put_quoted(f, groups.v[g]);
		fprintf(f, " %d", g + 1);
	}
	fprintf(f, ")\nset arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2"
		" lc rgb 'black' front\n");
	for (int g = 1; g < groups.n; g++)
		fprintf(f, "set arrow from %g, graph 0 to %g, graph 1 nohead lc rgb '#dddddd'\n",
			g + 0.5, g + 0.5);
	fprintf(f, "set key outside right top font ',8'\n");
	fprintf(f, "pt(t) = t == 1 ? 5 : t == 2 ? 7 : t == 4 ? 9 : 11\n");
	fprintf(f, "plot 'overview.dat' using 1:2:(pt($3)):($2 < 1 ? " FASTER " : " SLOWER ")"
		" with points pt variable ps 0.9 lc rgb variable notitle, \\\n"
		"     NaN with points pt 5 lc rgb 'gray40' title '1 thread', \\\n"
		"     NaN with points pt 7 lc rgb 'gray40' title '2 threads', \\\n"
		"     NaN with points pt 9 lc rgb 'gray40' title '4 threads', \\\n"
		"     NaN with points pt 11 lc rgb 'gray40' title '8 threads', \\\n"
		"     NaN with points pt 7 lc rgb " FASTER " title 'ours faster', \\\n"
		"     NaN with points pt 7 lc rgb " SLOWER " title 'ours slower'\n");
	fprintf(f, "set terminal pngcairo size %d,640 noenhanced font 'sans,9' background"
		" '#ffffff'\nset output 'overview.png'\nreplot\nunset output\nreset\n", width);
	return !fclose(f);
}

/* ---- Writing it all, and gnuplot ----------------------------------------- */

/* Runs `gnuplot plots.gp` in dir; 127: no gnuplot. */
static int run_gnuplot(const char *dir)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (chdir(dir))
			_exit(126);
		execlp("gnuplot", "gnuplot", "plots.gp", (char *)NULL);
		_exit(127);
	}
	int ws;
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

void bench_write_results(const struct bench_config *cfg)
{
	const char *dir = cfg->results;
	struct names prims = { .n = 0 };
	int err;

	if (!nrows)
		return;
	if ((err = mkdir_p(dir))) {
		fprintf(stderr, "bench: %s: %s; no results written\n", dir, strerror(err));
		return;
	}
	for (size_t i = 0; i < nrows; i++)
		name_index(&prims, rows[i].primitive);
	FILE *all = open_in(dir, "plots.gp");
	if (!all || !write_tsv(dir))
		goto failed;
	fprintf(all, "# all plots of the last run of bench/bench: gnuplot plots.gp\n");
	for (int p = 0; p < prims.n; p++) {
		char script[96];
		if (!write_primitive(dir, prims.v[p], script, sizeof script))
			goto failed;
		fprintf(all, "load '%s'\n", script);
	}
	if (!write_overview(dir))
		goto failed;
	fprintf(all, "load 'overview.gp'\n");
	if (fclose(all)) {
		all = NULL;
		goto failed;
	}
	switch (run_gnuplot(dir)) {
	case 0:
		fprintf(stderr, "bench: results in %s: rows.tsv, overview.svg/.png and per primitive"
			" <primitive>.svg/.png\n", dir);
		return;
	case 127:
		fprintf(stderr, "bench: gnuplot not found: plots skipped (data and scripts in %s;"
			" install gnuplot-nox, then run gnuplot plots.gp there)\n", dir);
		return;
	default:
		fprintf(stderr, "bench: gnuplot failed: plots incomplete (scripts in %s)\n", dir);
		return;
	}
failed:
	if (all)
		fclose(all);
	fprintf(stderr, "bench: writing the results under %s failed\n", dir);
}

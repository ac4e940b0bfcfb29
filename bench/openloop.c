// openloop: per-open latency of covered files, for bench/reload.sh and
// bench/memory.sh (issue 6).
//
//   openloop make DIRLIST FILES       create FILES empty files f0000.. in
//                                     every directory listed (one per line)
//   openloop loop DIRLIST FILES SECS  open+close those files round robin for
//                                     SECS seconds; print one line:
//     ops=N fails=F secs=S rate=R p50_us=.. p99_us=.. p999_us=.. max_us=.. max_at_s=..
//
// Each sample is the time of one open(O_RDONLY) and its close(), taken
// with CLOCK_MONOTONIC; a refused open counts as a failure and its time
// is kept too (a late answer is late whatever it says). max_at_s is when
// the slowest open started, in seconds after the loop began, so that it can
// be set beside the reload times.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
	perror(what);
	exit(1);
}

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char **read_dirs(const char *list, size_t *n) {
	FILE *f = fopen(list, "r");
	if (!f) die(list);
	size_t cap = 1024, len = 0;
	char **dirs = malloc(cap * sizeof *dirs);
	char *line = NULL;
	size_t lcap = 0;
	ssize_t r;
	while ((r = getline(&line, &lcap, f)) > 0) {
		if (line[r - 1] == '\n') line[--r] = 0;
		if (r == 0) continue;
		if (len == cap) dirs = realloc(dirs, (cap *= 2) * sizeof *dirs);
		dirs[len++] = strdup(line);
	}
	free(line);
	fclose(f);
	if (len == 0) { fprintf(stderr, "%s: no directories\n", list); exit(2); }
	*n = len;
	return dirs;
}

static int cmp_u64(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *s, size_t n, double p) {
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)s[i] / 1000.0;
}

int main(int argc, char **argv) {
	if (argc < 4) {
		fprintf(stderr, "usage: openloop make DIRLIST FILES | openloop loop DIRLIST FILES SECS\n");
		return 2;
	}
	size_t ndirs, nfiles = strtoul(argv[3], NULL, 10);
	char **dirs = read_dirs(argv[2], &ndirs);
	char path[4096];
	if (strcmp(argv[1], "make") == 0) {
		for (size_t d = 0; d < ndirs; d++) {
			if (mkdir(dirs[d], 0755) < 0 && errno != EEXIST) die(dirs[d]);
			for (size_t i = 0; i < nfiles; i++) {
				snprintf(path, sizeof path, "%s/f%04zu", dirs[d], i);
				int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
				if (fd < 0) die(path);
				close(fd);
			}
		}
		printf("made %zu files in %zu directories\n", ndirs * nfiles, ndirs);
		return 0;
	}
	if (strcmp(argv[1], "loop") != 0 || argc < 5) {
		fprintf(stderr, "unknown mode %s\n", argv[1]);
		return 2;
	}
	double secs = strtod(argv[4], NULL);
	size_t cap = 1 << 20, n = 0, fails = 0, d = 0, i = 0;
	uint64_t *s = malloc(cap * sizeof *s);
	uint64_t max = 0, max_at = 0;
	if (!s) die("malloc");
	uint64_t start = now_ns(), end = start + (uint64_t)(secs * 1e9), t0 = start;
	while (t0 < end) {
		snprintf(path, sizeof path, "%s/f%04zu", dirs[d], i);
		if (++d == ndirs) { d = 0; if (++i == nfiles) i = 0; }
		t0 = now_ns();
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) close(fd);
		else fails++;
		uint64_t t1 = now_ns(), dt = t1 - t0;
		if (n == cap) {
			s = realloc(s, (cap *= 2) * sizeof *s);
			if (!s) die("realloc");
		}
		s[n++] = dt;
		if (dt > max) { max = dt; max_at = t0 - start; }
		t0 = t1;
	}
	double el = (double)(t0 - start) / 1e9;
	qsort(s, n, sizeof *s, cmp_u64);
	printf("ops=%zu fails=%zu secs=%.2f rate=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f max_at_s=%.2f\n",
	       n, fails, el, (double)n / el, pct(s, n, 0.5), pct(s, n, 0.99), pct(s, n, 0.999),
	       (double)max / 1000.0, (double)max_at / 1e9);
	return 0;
}

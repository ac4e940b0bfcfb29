// workload: the load of bench/fanotify-compare.sh.
//
//   workload make DIR N                   create DIR/f000000 .. f(N-1), 1 KiB each
//   workload open DIR N PASSES [PROCS]    one untimed warm-up pass, then PASSES
//                                         timed passes of open+read+close over the
//                                         N files; PROCS processes (default 1) each
//                                         take a disjoint share of the files
//   workload exec PATH M                  fork and exec "PATH noop" M times
//   workload noop                         exit 0 (the exec target)
//
// "open" and "exec" print one line: "ops=X fails=Y seconds=S rate=R", where
// fails counts opens (or execs) the kernel refused, and rate is attempts
// per second, failed ones included. Built static so that its exec costs no
// dynamic loading.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
	perror(what);
	exit(2);
}

static char *name_of(const char *dir, long i) {
	char *p;
	if (asprintf(&p, "%s/f%06ld", dir, i) < 0)
		die("asprintf");
	return p;
}

// one pass over files [from, to); returns failed opens
static long pass(char **names, long from, long to) {
	char buf[4096];
	long fails = 0;
	for (long i = from; i < to; i++) {
		int fd = open(names[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno != EPERM && errno != EACCES)
				die(names[i]);
			fails++;
			continue;
		}
		if (read(fd, buf, sizeof buf) < 0)
			die("read");
		close(fd);
	}
	return fails;
}

static int cmd_make(const char *dir, long n) {
	char data[1024];
	memset(data, 'x', sizeof data);
	for (long i = 0; i < n; i++) {
		char *p = name_of(dir, i);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, data, sizeof data) != (ssize_t)sizeof data)
			die(p);
		close(fd);
		free(p);
	}
	return 0;
}

static int cmd_open(const char *dir, long n, long passes, long procs) {
	char **names = malloc(n * sizeof *names);
	if (!names)
		die("malloc");
	for (long i = 0; i < n; i++)
		names[i] = name_of(dir, i);
	pass(names, 0, n); // warm-up: page cache, dentries, a listener's caches

	long *fails = mmap(NULL, procs * sizeof(long), PROT_READ | PROT_WRITE,
	                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fails == MAP_FAILED)
		die("mmap");
	int go[2];
	if (pipe(go) < 0)
		die("pipe");
	double t0 = 0;
	if (procs == 1) {
		t0 = now();
		for (long p = 0; p < passes; p++)
			fails[0] += pass(names, 0, n);
	} else {
		for (long k = 0; k < procs; k++) {
			pid_t pid = fork();
			if (pid < 0)
				die("fork");
			if (pid == 0) {
				char c;
				close(go[1]);
				if (read(go[0], &c, 1) < 0) // returns 0 when the parent closes it
					_exit(2);
				long from = n * k / procs, to = n * (k + 1) / procs;
				long f = 0;
				for (long p = 0; p < passes; p++)
					f += pass(names, from, to);
				fails[k] = f;
				_exit(0);
			}
		}
		close(go[0]);
		usleep(20000); // let the children reach read()
		t0 = now();
		close(go[1]);
		int st;
		while (wait(&st) > 0)
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				fprintf(stderr, "workload: a child failed\n");
				return 2;
			}
	}
	double dt = now() - t0;
	long total = 0;
	for (long k = 0; k < procs; k++)
		total += fails[k];
	long ops = n * passes;
	printf("ops=%ld fails=%ld seconds=%.6f rate=%.1f\n", ops, total, dt, ops / dt);
	return 0;
}

static int cmd_exec(const char *path, long m) {
	long fails = 0;
	double t0 = now();
	for (long i = 0; i < m; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			execl(path, path, "noop", (char *)NULL);
			_exit(errno == EPERM || errno == EACCES ? 126 : 127);
		}
		int st;
		if (waitpid(pid, &st, 0) < 0)
			die("waitpid");
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
				fprintf(stderr, "workload: exec %s failed\n", path);
				return 2;
			}
			fails++;
		}
	}
	double dt = now() - t0;
	printf("ops=%ld fails=%ld seconds=%.6f rate=%.1f\n", m, fails, dt, m / dt);
	return 0;
}

int main(int argc, char **argv) {
	if (argc >= 2 && !strcmp(argv[1], "noop"))
		return 0;
	if (argc == 4 && !strcmp(argv[1], "make"))
		return cmd_make(argv[2], atol(argv[3]));
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "open")) {
		long procs = argc == 6 ? atol(argv[5]) : 1;
		if (procs < 1)
			procs = 1;
		return cmd_open(argv[2], atol(argv[3]), atol(argv[4]), procs);
	}
	if (argc == 4 && !strcmp(argv[1], "exec"))
		return cmd_exec(argv[2], atol(argv[3]));
	fprintf(stderr, "usage: workload make DIR N | open DIR N PASSES [PROCS] | exec PATH M | noop\n");
	return 2;
}

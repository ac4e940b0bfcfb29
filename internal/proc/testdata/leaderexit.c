// leaderexit: a process whose thread-group leader has exited while another
// thread runs on, the case of issue #17 (case 17). main starts a thread and
// calls pthread_exit(3); the thread waits until the leader is a zombie
// (State Z in /proc/self/stat, which names the thread group), then acts.
//
//   leaderexit [-u ID] [-w] [-h] open FILE   read FILE and copy it to stdout
//   leaderexit [-u ID] [-h] exec FILE        execute FILE
//
// -h     hold: before main exits, print "leader" and wait for a line on stdin
// -u ID  setgid(ID) and setuid(ID) first (glibc changes every live thread;
//        the zombie leader keeps the credentials it exited with)
// -w     after the read, print "ready" and wait for stdin to close
//
// A failure prints "open: <error>" or "exec: <error>" and exits 1. The
// tests compile it with gcc (internal/proc, internal/agent).
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int uid = -1, wait_stdin, hold;
static const char *mode, *file;

static char leader_state(void) {
	char buf[512];
	int fd = open("/proc/self/stat", O_RDONLY);
	if (fd < 0)
		return '?';
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

static void *run(void *arg) {
	(void)arg;
	struct timespec ms = {0, 1000000};
	while (leader_state() != 'Z')
		nanosleep(&ms, NULL);
	if (uid >= 0 && (setgid(uid) != 0 || setuid(uid) != 0)) {
		printf("setuid: %s\n", strerror(errno));
		exit(2);
	}
	if (strcmp(mode, "exec") == 0) {
		execl(file, file, (char *)NULL);
		printf("exec: %s\n", strerror(errno));
		exit(1);
	}
	int fd = open(file, O_RDONLY);
	if (fd < 0) {
		printf("open: %s\n", strerror(errno));
		exit(1);
	}
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		fwrite(buf, 1, n, stdout);
	close(fd);
	if (wait_stdin) {
		printf("ready\n");
		fflush(stdout);
		while (read(0, buf, sizeof buf) > 0)
			;
	}
	fflush(stdout);
	exit(0);
}

int main(int argc, char **argv) {
	int c;
	while ((c = getopt(argc, argv, "u:wh")) != -1) {
		switch (c) {
		case 'u':
			uid = atoi(optarg);
			break;
		case 'w':
			wait_stdin = 1;
			break;
		case 'h':
			hold = 1;
			break;
		default:
			return 2;
		}
	}
	if (argc - optind != 2 || (strcmp(argv[optind], "open") != 0 && strcmp(argv[optind], "exec") != 0)) {
		fprintf(stderr, "usage: leaderexit [-u ID] [-w] [-h] open|exec FILE\n");
		return 2;
	}
	mode = argv[optind];
	file = argv[optind + 1];
	if (hold) {
		char ch = 0;
		printf("leader\n");
		fflush(stdout);
		while (ch != '\n' && read(0, &ch, 1) == 1)
			;
	}
	pthread_t t;
	if (pthread_create(&t, NULL, run, NULL) != 0) {
		fprintf(stderr, "pthread_create failed\n");
		return 2;
	}
	pthread_exit(NULL);
}

/* execrace: one thread executes a file while a sibling thread keeps
 * opening it for reading. Used by TestExecGrantNotTakenBySibling: the open
 * the agent grants to an exec must not be taken by the sibling's open.
 *
 * usage: execrace FILE
 * The sibling prints what it read and exits 3 if an open succeeds; the
 * main thread execs FILE (a copy of true) once the sibling has started. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *file;
static volatile int started;

static void *opener(void *arg)
{
	(void)arg;
	char buf[256];
	for (;;) {
		started = 1;
		int fd = open(file, O_RDONLY);
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof buf);
			if (n > 0) {
				fwrite(buf, 1, (size_t)n, stdout);
			}
			printf("\nsibling opened the file\n");
			fflush(stdout);
			_exit(3);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: execrace FILE\n");
		return 2;
	}
	file = argv[1];
	pthread_t t;
	if (pthread_create(&t, NULL, opener, NULL) != 0) {
		perror("pthread_create");
		return 2;
	}
	while (!started) {
		sched_yield();
	}
	/* Let the sibling's opens fill the agent's queue ahead of the exec. */
	usleep(20000);
	char *args[] = {(char *)file, NULL};
	execv(file, args);
	perror("execv");
	return 4;
}

// noop-listener: the floor of bench/fanotify-compare.sh. A fanotify
// listener (FAN_CLASS_CONTENT) that marks the filesystem of MOUNT for
// FAN_OPEN_PERM and FAN_OPEN_EXEC_PERM and answers "allow" to every event,
// deciding nothing.
//
//   noop-listener MOUNT [SPIN_US]
//
// With SPIN_US > 0 it does not sleep in read() right after an event: it
// polls the (non-blocking) descriptor for up to SPIN_US microseconds, so a
// process opening files in a loop finds the listener awake. That shows what
// avoiding the wake-up is worth, and what CPU it costs.
//
// Prints "ready" once the mark is in place. Stop it with SIGTERM; the
// kernel allows whatever was pending when its descriptor closes.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/fanotify.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: noop-listener MOUNT [SPIN_US]\n");
		return 2;
	}
	long spin = argc == 3 ? atol(argv[2]) : 0;
	unsigned flags = FAN_CLASS_CONTENT | FAN_CLOEXEC | (spin > 0 ? FAN_NONBLOCK : 0);
	int fd = fanotify_init(flags, O_RDONLY | O_LARGEFILE);
	if (fd < 0) {
		perror("fanotify_init");
		return 1;
	}
	if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
	                  FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM, AT_FDCWD, argv[1]) < 0) {
		perror("fanotify_mark");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);

	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
	struct fanotify_response resp[4096];
	double last = 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				perror("read");
				return 1;
			}
			if (now_us() - last < spin)
				continue; // spinning: the next event is probably close
			struct pollfd p = {.fd = fd, .events = POLLIN};
			poll(&p, 1, -1);
			continue;
		}
		int k = 0;
		ssize_t left = n; // FAN_EVENT_NEXT consumes it
		struct fanotify_event_metadata *m = (void *)buf;
		for (; FAN_EVENT_OK(m, left); m = FAN_EVENT_NEXT(m, left)) {
			if (m->vers != FANOTIFY_METADATA_VERSION) {
				fprintf(stderr, "fanotify metadata version mismatch\n");
				return 1;
			}
			if (m->fd >= 0) {
				if (m->mask & (FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM)) {
					resp[k].fd = m->fd;
					resp[k].response = FAN_ALLOW;
					k++;
				}
			}
		}
		// one write per response (the kernel reads one response per write),
		// then close the descriptors
		for (int i = 0; i < k; i++)
			if (write(fd, &resp[i], sizeof resp[i]) != sizeof resp[i])
				perror("write");
		left = n;
		m = (void *)buf;
		for (; FAN_EVENT_OK(m, left); m = FAN_EVENT_NEXT(m, left))
			if (m->fd >= 0)
				close(m->fd);
		if (spin > 0)
			last = now_us();
	}
}

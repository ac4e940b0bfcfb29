/* mapper MODE FILE [LIB]: reads FILE after doing what MODE says, and
 * prints it (exit 0) or why it could not (exit 1).
 *   plain  nothing first
 *   lib    dlopen LIB (maps it executable)
 *   anon   map anonymous memory executable
 *   wait   print "ready", then wait for a line on stdin */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: mapper plain|lib|anon|wait FILE [LIB]\n");
		return 2;
	}
	const char *mode = argv[1];
	if (!strcmp(mode, "lib")) {
		if (argc < 4 || !dlopen(argv[3], RTLD_NOW)) {
			fprintf(stderr, "dlopen: %s\n", dlerror());
			return 2;
		}
	} else if (!strcmp(mode, "anon")) {
		if (mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED) {
			perror("mmap");
			return 2;
		}
	} else if (!strcmp(mode, "wait")) {
		char line[16];
		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 2;
	} else if (strcmp(mode, "plain")) {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	int fd = open(argv[2], O_RDONLY);
	if (fd < 0) {
		printf("denied: %s\n", strerror(errno));
		return 1;
	}
	char buf[256];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		printf("denied: %s\n", strerror(errno));
		return 1;
	}
	buf[n] = 0;
	printf("read: %s", buf);
	return 0;
}

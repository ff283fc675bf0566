/* SPDX-License-Identifier: MIT */
/*
 * An LD_PRELOAD library for test_alloc.py: counts every heap allocation the
 * process makes (malloc, calloc, realloc, the aligned ones), split into the
 * worker threads (named "dnsink-w*" by the server) and every other thread,
 * and on SIGUSR2 writes the counts to the file named by $DK_ALLOC_COUNT_FILE.
 * The real allocators are glibc's __libc_* entry points, so nothing here
 * needs dlsym (which itself allocates).
 *
 * For diagnosis, $DK_ALLOC_COUNT_BACKTRACE names a file that gets, for every
 * allocation on a worker thread, its number, size and call stack (glibc's
 * backtrace_symbols_fd: "object(+offset)" frames, which `addr2line -f -i -e
 * object offset` resolves), and a "snapshot" line each time SIGUSR2 writes
 * the counts, so the allocations between two snapshots can be picked out.
 * Off unless the variable is set.
 */
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t align, size_t size);

void *malloc(size_t size);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t size);
int posix_memalign(void **out, size_t align, size_t size);
void *aligned_alloc(size_t align, size_t size);
void *memalign(size_t align, size_t size);

static atomic_ulong in_workers, elsewhere;
static const char *out_path;

/* The backtrace file ($DK_ALLOC_COUNT_BACKTRACE), or -1. */
static int bt_fd = -1;
/* One record at a time in the file, whichever worker writes it. */
static atomic_flag bt_lock = ATOMIC_FLAG_INIT;
/*
 * Set while this thread writes a record: backtrace() may allocate (it loads
 * libgcc_s on first use), and that allocation must not recurse. Initial-exec
 * TLS is in the static block of a preloaded library, so using it never
 * allocates either.
 */
static __thread __attribute__((tls_model("initial-exec"))) int bt_busy;

/* Async-signal-safe: formats by hand and uses only open/write/close. */
static size_t put_num(char *b, unsigned long v)
{
	char t[24];
	size_t n = 0, i = 0;

	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		b[i++] = t[--n];
	return i;
}

static void put_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w <= 0)
			return;
		b += w;
		n -= (size_t)w;
	}
}

/* Writes "alloc N: FN SIZE in THREAD" and the call stack of this allocation. */
static void bt_record(unsigned long nth, const char *fn, size_t size, const char *thread)
{
	void *frames[32];
	char line[128];
	size_t n = 0;
	int depth;

	if (bt_busy)
		return;
	bt_busy = 1;
	depth = backtrace(frames, 32);
	while (atomic_flag_test_and_set_explicit(&bt_lock, memory_order_acquire))
		;
	memcpy(line, "alloc ", 6);
	n = 6;
	n += put_num(line + n, nth);
	line[n++] = ':';
	line[n++] = ' ';
	memcpy(line + n, fn, strlen(fn));
	n += strlen(fn);
	line[n++] = ' ';
	n += put_num(line + n, size);
	memcpy(line + n, " in ", 4);
	n += 4;
	memcpy(line + n, thread, strlen(thread));
	n += strlen(thread);
	line[n++] = '\n';
	put_all(bt_fd, line, n);
	/* Frame 0 is bt_record, frame 1 count(): skip them. */
	if (depth > 2)
		backtrace_symbols_fd(frames + 2, depth - 2, bt_fd);
	atomic_flag_clear_explicit(&bt_lock, memory_order_release);
	bt_busy = 0;
}

static void count(const char *fn, size_t size)
{
	char name[17] = {0};

	/* PR_GET_NAME is a plain syscall: no allocation, safe at any time. */
	if (prctl(PR_GET_NAME, name, 0, 0, 0) == 0 && strncmp(name, "dnsink-w", 8) == 0) {
		unsigned long nth =
		        atomic_fetch_add_explicit(&in_workers, 1, memory_order_relaxed) + 1;
		if (bt_fd >= 0)
			bt_record(nth, fn, size, name);
	} else {
		atomic_fetch_add_explicit(&elsewhere, 1, memory_order_relaxed);
	}
}

void *malloc(size_t size)
{
	count("malloc", size);
	return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	count("calloc", n * size);
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	count("realloc", size);
	return __libc_realloc(p, size);
}

void *memalign(size_t align, size_t size)
{
	count("memalign", size);
	return __libc_memalign(align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
	count("aligned_alloc", size);
	return __libc_memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
	count("posix_memalign", size);
	void *p = __libc_memalign(align, size);
	if (!p)
		return 12; /* ENOMEM */
	*out = p;
	return 0;
}

static void on_usr2(int sig)
{
	char buf[96];
	size_t n = 0;
	int fd;

	(void)sig;
	memcpy(buf + n, "workers ", 8);
	n += 8;
	n += put_num(buf + n, atomic_load(&in_workers));
	memcpy(buf + n, " other ", 7);
	n += 7;
	n += put_num(buf + n, atomic_load(&elsewhere));
	buf[n++] = '\n';
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, buf, n);
		(void)w;
		close(fd);
	}
	if (bt_fd >= 0) {
		/* No lock: a signal that lands inside a record only splits it. */
		put_all(bt_fd, "snapshot ", 9);
		put_all(bt_fd, buf, n);
	}
}

__attribute__((constructor)) static void init(void)
{
	struct sigaction sa;

	const char *bt_path = getenv("DK_ALLOC_COUNT_BACKTRACE");

	if (bt_path && *bt_path) {
		void *warm[2];

		bt_fd = open(bt_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
		/* The first backtrace() loads libgcc_s, which allocates: do it now. */
		bt_busy = 1;
		backtrace(warm, 2);
		bt_busy = 0;
	}
	out_path = getenv("DK_ALLOC_COUNT_FILE");
	if (!out_path)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR2, &sa, NULL);
}

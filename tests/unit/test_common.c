/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the shared vocabulary (src/core/common.c): error texts,
 * diagnostics and the internal-invariant assertion dk_fails_assert(). The
 * soft path is run in any build by clearing dk_assert_abort; the abort of a
 * debug build is run in a forked child, so the test survives it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dnsink/common.h"

static char last_msg[512];
static unsigned hook_calls;

static void capture(const char *msg)
{
	snprintf(last_msg, sizeof(last_msg), "%s", msg);
	hook_calls++;
}

static int fail_line; /* the line of the assertion in positive() */

/* A caller that recovers from a broken invariant, as core code would. */
static int positive(int x, unsigned *evaluated)
{
	fail_line = __LINE__ + 1;
	if (dk_fails_assert(++*evaluated && x > 0))
		return -1;
	return 0;
}

static void test_assert_soft(void **state)
{
	(void)state;
	bool saved = dk_assert_abort;
	unsigned evaluated = 0;
	char want[512];

	dk_assert_abort = false;
	dk_set_assert_hook(capture);
	hook_calls = 0;

	/* A holding invariant: no report, the condition evaluated once. */
	assert_int_equal(positive(1, &evaluated), 0);
	assert_int_equal(evaluated, 1);
	assert_int_equal(hook_calls, 0);

	/* A broken one: one report with file, line, function and the condition. */
	assert_int_equal(positive(0, &evaluated), -1);
	assert_int_equal(evaluated, 2);
	assert_int_equal(hook_calls, 1);
	snprintf(want, sizeof(want), "%s:%d: positive: assertion '++*evaluated && x > 0' failed",
	         __FILE__, fail_line);
	assert_string_equal(last_msg, want);

	dk_set_assert_hook(NULL);
	dk_assert_abort = saved;
}

/* The default matches the build: abort unless NDEBUG. */
static void test_assert_default(void **state)
{
	(void)state;
#ifdef NDEBUG
	assert_false(dk_assert_abort);
#else
	assert_true(dk_assert_abort);
#endif
}

/*
 * With dk_assert_abort set, a broken invariant aborts after the report, which
 * goes to stderr when no hook is set (a forked child runs it).
 */
static void test_assert_abort(void **state)
{
	(void)state;
	int fds[2], status;
	char buf[1024] = "";
	ssize_t n, got = 0;

	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		unsigned evaluated = 0;
		/* cmocka catches SIGABRT to fail a test; this child must really die. */
		signal(SIGABRT, SIG_DFL);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		dk_set_assert_hook(NULL);
		dk_assert_abort = true;
		positive(0, &evaluated);
		_exit(0); /* not reached when the assertion aborts */
	}
	close(fds[1]);
	while ((n = read(fds[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(buf, "dnsink: "));
	assert_non_null(strstr(buf, ": positive: assertion '++*evaluated && x > 0' failed\n"));
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(dk_strerror(0), "success");
	assert_string_equal(dk_strerror(DK_EFORMERR), "malformed DNS message");
	assert_string_equal(dk_strerror(-1999), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_assert_soft),
	        cmocka_unit_test(test_assert_default),
	        cmocka_unit_test(test_assert_abort),
	        cmocka_unit_test(test_strerror),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

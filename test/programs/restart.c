/*
 * restart: a process that waits with a timeout, over and over, in one of the
 * calls the kernel carries on through restart_syscall(2) after a stop.
 *
 *   restart WORKDIR MODE
 *
 * MODE (each waits 1 s per loop; counter = loops):
 *   nanosleep      glibc nanosleep() (clock_nanosleep, `mov $230,%eax` before the syscall)
 *   raw-clock      syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, &rem)
 *   raw-nanosleep  syscall(SYS_nanosleep, &ts, NULL, 0, 0, 0, 0)
 *   futex          syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0)
 *   poll           glibc poll() on the read end of an empty pipe of its own
 *
 * A stop (SIGSTOP then SIGCONT, a ptrace stop) in the middle of a wait leaves
 * the thread in restart_syscall; /proc/PID/syscall then shows 219.
 *
 * Check, on every loop: the call returned what it returns when its time is up
 * and nothing else happened (0; futex: -1 ETIMEDOUT; poll: 0 ready fds). An
 * EINTR or any other result is a FAIL. Also a small pseudo-random buffer and
 * getpid() (protocol.h). Report: "PASS counter=N mode=M".
 */
#include "protocol.h"
#include "pattern.h"

#include <linux/futex.h>
#include <poll.h>
#include <time.h>

#define BUFFER_PAGES 4
#define WAIT_MS 1000
enum { SALT_BUFFER = 11 };

static char buffer[BUFFER_PAGES * PAGE] __attribute__((aligned(4096)));
static const char *mode;
static int pipe_fds[2] = { -1, -1 };
static int futex_word;

static int check_all(char *msg, size_t size)
{
	long bad = first_bad_page(buffer, BUFFER_PAGES, SALT_BUFFER);
	if (bad >= 0) {
		snprintf(msg, size, "buffer page %ld differs", bad);
		return 0;
	}
	snprintf(msg, size, "mode=%s", mode);
	return 1;
}

static const struct timespec interval = { WAIT_MS / 1000, (WAIT_MS % 1000) * 1000000L };

/* One wait; 1 if it ended as a wait whose time is up ends. */
static int wait_once(long loop)
{
	struct timespec ts = interval, rem;
	long ret;
	if (strcmp(mode, "nanosleep") == 0) {
		ret = nanosleep(&ts, &rem);
		if (ret == 0)
			return 1;
	} else if (strcmp(mode, "raw-clock") == 0) {
		ret = syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, &rem);
		if (ret == 0)
			return 1;
	} else if (strcmp(mode, "raw-nanosleep") == 0) {
		ret = syscall(SYS_nanosleep, &ts, NULL, 0, 0, 0, 0);
		if (ret == 0)
			return 1;
	} else if (strcmp(mode, "futex") == 0) {
		ret = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
		if (ret == -1 && errno == ETIMEDOUT)
			return 1;
	} else {
		struct pollfd pfd = { .fd = pipe_fds[0], .events = POLLIN };
		ret = poll(&pfd, 1, WAIT_MS);
		if (ret == 0)
			return 1;
	}
	proto_fail("%s returned %ld (%s) on loop %ld", mode, ret, ret < 0 ? strerror(errno) : "-", loop);
	return 0;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	mode = argc > 2 ? argv[2] : "";
	if (strcmp(mode, "nanosleep") && strcmp(mode, "raw-clock") && strcmp(mode, "raw-nanosleep") &&
	    strcmp(mode, "futex") && strcmp(mode, "poll"))
		return 2;
	if (pipe2(pipe_fds, O_CLOEXEC) != 0)
		return 3;
	fill_pages(buffer, BUFFER_PAGES, SALT_BUFFER);
	char facts[64];
	snprintf(facts, sizeof facts, "mode=%s", mode);
	proto_ready(facts);
	for (long counter = 1;; counter++) {
		wait_once(counter);
		proto_tick(counter, check_all);
	}
}

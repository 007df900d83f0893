/*
 * blocked: a process that spends its life blocked in one syscall.
 *
 *   blocked WORKDIR nanosleep|pause|read
 *
 * nanosleep: loops nanosleep(200 ms); counter = loops. A nanosleep that does
 *            not return 0 (a restart turned into EINTR) is a FAIL.
 *            /proc/PID/syscall shows 230 (clock_nanosleep) while it sleeps.
 * pause:     SIGUSR1 handler (SA_RESTART) counts wake-ups; the main loop calls
 *            pause(). /proc/PID/syscall shows 34 while it waits.
 * read:      a pipe to itself; the SIGUSR1 handler writes one byte into it and
 *            the main loop blocks in read() on the other end, counting bytes.
 *            /proc/PID/syscall shows 0 while it waits.
 *
 * In pause and read modes the protocol runs only when the process wakes up, so
 * a test drives it like this: wait until /proc/PID/syscall shows the blocking
 * syscall, create W/check, send one SIGUSR1, wait for W/report. The count goes
 * up by exactly one per SIGUSR1; W/counter is rewritten on every wake-up only.
 *
 * Checks: the SIGUSR1 handler is still installed with SA_RESTART and SIGUSR1
 * is not blocked (pause, read); both pipe fds are the two ends of one pipe,
 * read end O_RDONLY, write end O_WRONLY, both FD_CLOEXEC, and nothing is left
 * in it (read); a small pseudo-random buffer (all modes); getpid() (protocol.h).
 * Report: "PASS counter=N mode=M" plus " wakeups=N" or " bytes=N".
 */
#include "protocol.h"
#include "pattern.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <time.h>

#define BUFFER_PAGES 16
enum { SALT_BUFFER = 7 };

static char buffer[BUFFER_PAGES * PAGE] __attribute__((aligned(4096)));
static const char *mode;
static volatile sig_atomic_t wakeups;
static int pipe_fds[2] = { -1, -1 };
static long bytes_read;

static void on_usr1_count(int sig)
{
	(void)sig;
	wakeups++;
}

static void on_usr1_feed_pipe(int sig)
{
	(void)sig;
	int saved = errno;
	if (write(pipe_fds[1], "x", 1) != 1)
		proto_fail("handler: write to pipe: %s", strerror(errno));
	errno = saved;
}

static void install_handler(void (*handler)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) != 0)
		exit(10);
}

static int check_handler(void (*handler)(int), char *msg, size_t size)
{
	struct sigaction sa;
	sigset_t blocked;
	sigaction(SIGUSR1, NULL, &sa);
	if (sa.sa_handler != handler || !(sa.sa_flags & SA_RESTART)) {
		snprintf(msg, size, "SIGUSR1 action is %p flags %#x, want %p with SA_RESTART",
			 (void *)sa.sa_handler, (unsigned)sa.sa_flags, (void *)handler);
		return 0;
	}
	sigprocmask(SIG_BLOCK, NULL, &blocked);
	if (sigismember(&blocked, SIGUSR1)) {
		snprintf(msg, size, "SIGUSR1 is blocked");
		return 0;
	}
	return 1;
}

static int check_pipe(char *msg, size_t size)
{
	struct stat r, w;
	if (fstat(pipe_fds[0], &r) != 0 || fstat(pipe_fds[1], &w) != 0) {
		snprintf(msg, size, "pipe fds %d,%d: %s", pipe_fds[0], pipe_fds[1], strerror(errno));
		return 0;
	}
	if (!S_ISFIFO(r.st_mode) || r.st_ino != w.st_ino || r.st_dev != w.st_dev) {
		snprintf(msg, size, "fds %d,%d are not the two ends of one pipe", pipe_fds[0], pipe_fds[1]);
		return 0;
	}
	int rflags = fcntl(pipe_fds[0], F_GETFL), wflags = fcntl(pipe_fds[1], F_GETFL);
	if ((rflags & O_ACCMODE) != O_RDONLY || (wflags & O_ACCMODE) != O_WRONLY) {
		snprintf(msg, size, "pipe access modes are %#x,%#x", rflags, wflags);
		return 0;
	}
	if (!(fcntl(pipe_fds[0], F_GETFD) & FD_CLOEXEC) || !(fcntl(pipe_fds[1], F_GETFD) & FD_CLOEXEC)) {
		snprintf(msg, size, "pipe fds lost FD_CLOEXEC");
		return 0;
	}
	int left = -1;
	if (ioctl(pipe_fds[0], FIONREAD, &left) != 0 || left != 0) {
		snprintf(msg, size, "pipe holds %d unread bytes", left);
		return 0;
	}
	return 1;
}

static int check_all(char *msg, size_t size)
{
	long bad = first_bad_page(buffer, BUFFER_PAGES, SALT_BUFFER);
	if (bad >= 0) {
		snprintf(msg, size, "buffer page %ld differs", bad);
		return 0;
	}
	if (strcmp(mode, "pause") == 0) {
		if (!check_handler(on_usr1_count, msg, size))
			return 0;
		snprintf(msg, size, "mode=pause wakeups=%d", (int)wakeups);
	} else if (strcmp(mode, "read") == 0) {
		if (!check_handler(on_usr1_feed_pipe, msg, size) || !check_pipe(msg, size))
			return 0;
		snprintf(msg, size, "mode=read bytes=%ld", bytes_read);
	} else {
		snprintf(msg, size, "mode=nanosleep");
	}
	return 1;
}

static void run_nanosleep(void)
{
	for (long counter = 1;; counter++) {
		struct timespec ts = { 0, 200 * 1000000L };
		int ret = nanosleep(&ts, NULL);
		if (ret != 0)
			proto_fail("nanosleep returned %d (%s) on loop %ld", ret, strerror(errno), counter);
		proto_tick(counter, check_all);
	}
}

static void run_pause(void)
{
	install_handler(on_usr1_count);
	proto_ready("mode=pause");
	for (;;) {
		pause();
		proto_tick(wakeups, check_all);
	}
}

static void run_read(void)
{
	if (pipe2(pipe_fds, O_CLOEXEC) != 0)
		exit(11);
	install_handler(on_usr1_feed_pipe);
	proto_ready("mode=read");
	for (;;) {
		char byte;
		ssize_t n = read(pipe_fds[0], &byte, 1);
		if (n == 1 && byte == 'x')
			bytes_read++;
		else
			proto_fail("read returned %zd (%s), byte %#x", n, n < 0 ? strerror(errno) : "-",
				   n == 1 ? (unsigned char)byte : 0);
		proto_tick(bytes_read, check_all);
	}
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	mode = argc > 2 ? argv[2] : "";
	fill_pages(buffer, BUFFER_PAGES, SALT_BUFFER);

	if (strcmp(mode, "nanosleep") == 0) {
		proto_ready("mode=nanosleep");
		run_nanosleep();
	} else if (strcmp(mode, "pause") == 0) {
		run_pause();
	} else if (strcmp(mode, "read") == 0) {
		run_read();
	}
	return 2;
}

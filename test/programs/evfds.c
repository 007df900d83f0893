/*
 * evfds: eventfds, timerfds and signalfds in their various modes, each at a
 * fixed fd number with its O_NONBLOCK and close-on-exec bits.
 *
 *   evfds WORKDIR
 *
 * Checks:
 *  - eventfd 10 (O_NONBLOCK, close-on-exec) holds 42: a read gives 42;
 *    eventfd 11 (semaphore, blocking) holds 3: a read gives 1; eventfd 12
 *    (O_NONBLOCK) holds 0: not readable, writable (each is put back);
 *  - timerfd 13: CLOCK_REALTIME, absolute, one expiry an hour after the
 *    start: 3000-3600 s remain, no interval;
 *  - timerfd 14: CLOCK_BOOTTIME, first expiry 500 s after the start, then
 *    every 2 s: 400-500 s remain, interval 2 s;
 *  - timerfd 15: created and never armed: disarmed;
 *  - timerfd 16 (O_NONBLOCK): every 50 ms, read only by the check: gives at least one
 *    tick, and is still armed with its 50 ms interval afterwards;
 *  - signalfd 17 (O_NONBLOCK, close-on-exec) for SIGUSR1, SIGUSR2 and
 *    SIGRTMIN+1 (all blocked), with SIGUSR1 and SIGRTMIN+1 twice pending: its
 *    fdinfo sigmask as set; reads give SIGUSR1, SIGRTMIN+1, SIGRTMIN+1, then
 *    nothing (raised again afterwards); signalfd 18 for SIGTERM: not readable.
 * Report: "PASS counter=N".
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>

#define FAIL(...) do { snprintf(msg, size, __VA_ARGS__); return 0; } while (0)

static const struct { int fd, nonblock, cloexec; } h[] = {
	{ 10, 1, 1 }, { 11, 0, 0 }, { 12, 1, 0 }, { 13, 0, 0 }, { 14, 0, 1 }, { 15, 0, 0 }, { 16, 1, 0 }, { 17, 1, 1 }, { 18, 0, 0 },
};
static unsigned long long sigmask17;

static int readable(int fd) { struct pollfd p = { fd, POLLIN, 0 }; return poll(&p, 1, 0) == 1 && (p.revents & POLLIN); }

static void raise_pending(void)
{
	raise(SIGUSR1);
	union sigval v = { 0 };
	sigqueue(getpid(), SIGRTMIN + 1, v);
	sigqueue(getpid(), SIGRTMIN + 1, v);
}

static int check_all(char *msg, size_t size)
{
	for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
		int fl = fcntl(h[i].fd, F_GETFL);
		if (fl < 0) FAIL("fd %d is not open", h[i].fd);
		if (!!(fl & O_NONBLOCK) != h[i].nonblock) FAIL("fd %d O_NONBLOCK is %d", h[i].fd, !!(fl & O_NONBLOCK));
		if (!!(fcntl(h[i].fd, F_GETFD) & FD_CLOEXEC) != h[i].cloexec) FAIL("fd %d close-on-exec", h[i].fd);
	}
	eventfd_t v = 0;
	if (eventfd_read(10, &v) || v != 42) FAIL("eventfd 10 gave %llu, not 42", (unsigned long long)v);
	eventfd_write(10, 42);
	if (eventfd_read(11, &v) || v != 1) FAIL("semaphore eventfd 11 gave %llu, not 1", (unsigned long long)v);
	eventfd_write(11, 1);
	struct pollfd p = { 12, POLLIN | POLLOUT, 0 };
	if (poll(&p, 1, 0) != 1 || p.revents != POLLOUT) FAIL("eventfd 12 (zero) polls 0x%x", p.revents);

	struct itimerspec it;
	timerfd_gettime(13, &it);
	if (it.it_value.tv_sec < 3000 || it.it_value.tv_sec >= 3600 || it.it_interval.tv_sec || it.it_interval.tv_nsec)
		FAIL("timerfd 13: %ld s remain, interval %ld s", (long)it.it_value.tv_sec, (long)it.it_interval.tv_sec);
	timerfd_gettime(14, &it);
	if (it.it_value.tv_sec < 400 || it.it_value.tv_sec >= 500 || it.it_interval.tv_sec != 2 || it.it_interval.tv_nsec)
		FAIL("timerfd 14: %ld s remain, interval %ld s", (long)it.it_value.tv_sec, (long)it.it_interval.tv_sec);
	timerfd_gettime(15, &it);
	if (it.it_value.tv_sec || it.it_value.tv_nsec || it.it_interval.tv_sec || it.it_interval.tv_nsec) FAIL("timerfd 15 is armed");
	uint64_t ticks = 0;
	for (int i = 0; i < 20 && !readable(16); i++) nanosleep(&(struct timespec){ 0, 10000000L }, NULL);
	if (read(16, &ticks, 8) != 8 || ticks < 1) FAIL("timerfd 16 gave no tick within 200 ms");
	timerfd_gettime(16, &it);
	if (it.it_interval.tv_nsec != 50000000L || (!it.it_value.tv_sec && !it.it_value.tv_nsec)) FAIL("timerfd 16 stopped (interval %ld ns)", it.it_interval.tv_nsec);
	nanosleep(&(struct timespec){ 0, 60000000L }, NULL);
	if (!readable(16)) FAIL("timerfd 16 did not tick again");

	char line[256], path[64];
	snprintf(path, sizeof path, "/proc/self/fdinfo/17");
	FILE *f = fopen(path, "r");
	unsigned long long mask = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "sigmask: %llx", &mask) == 1) break;
	if (f) fclose(f);
	if (mask != sigmask17) FAIL("signalfd 17 mask %llx, not %llx", mask, sigmask17);
	int want[] = { SIGUSR1, SIGRTMIN + 1, SIGRTMIN + 1 };
	for (int i = 0; i < 3; i++) {
		struct signalfd_siginfo si;
		if (read(17, &si, sizeof si) != sizeof si || (int)si.ssi_signo != want[i]) FAIL("signalfd 17: read %d is not signal %d", i, want[i]);
	}
	if (readable(17)) FAIL("signalfd 17 has more than three signals");
	raise_pending();
	if (readable(18)) FAIL("signalfd 18 (SIGTERM) is readable");
	return 1;
}

static int at(int fd, int want)
{
	if (fd < 0 || dup2(fd, want) != want) return 0;
	close(fd);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	if (!at(eventfd(42, EFD_NONBLOCK), 10) || !at(eventfd(3, EFD_SEMAPHORE), 11) || !at(eventfd(0, EFD_NONBLOCK), 12)) return 10;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct itimerspec it = { { 0, 0 }, { now.tv_sec + 3600, 0 } };
	if (!at(timerfd_create(CLOCK_REALTIME, 0), 13) || timerfd_settime(13, TFD_TIMER_ABSTIME, &it, NULL)) return 11;
	it = (struct itimerspec){ { 2, 0 }, { 500, 0 } };
	if (!at(timerfd_create(CLOCK_BOOTTIME, 0), 14) || timerfd_settime(14, 0, &it, NULL)) return 12;
	if (!at(timerfd_create(CLOCK_MONOTONIC, 0), 15)) return 13;
	it = (struct itimerspec){ { 0, 50000000L }, { 0, 50000000L } };
	if (!at(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), 16) || timerfd_settime(16, 0, &it, NULL)) return 14;

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGRTMIN + 1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (!at(signalfd(-1, &set, SFD_NONBLOCK), 17)) return 15;
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, NULL);
	if (!at(signalfd(-1, &term, 0), 18)) return 16;
	sigmask17 = (1ULL << (SIGUSR1 - 1)) | (1ULL << (SIGUSR2 - 1)) | (1ULL << (SIGRTMIN + 1 - 1));
	for (int fd = 10; fd <= 17; fd++)
		if (fd == 10 || fd == 14 || fd == 17) fcntl(fd, F_SETFD, FD_CLOEXEC);
	raise_pending();

	proto_ready("");
	proto_run(check_all);
}

/*
 * evloop: an event loop as servers write them, on one epoll that watches a
 * periodic timerfd (10 ms), an eventfd and a signalfd for SIGUSR1.
 *
 *   evloop WORKDIR
 *
 * Every timer expiry counts one tick (the counter is the tick count, so it
 * grows at 100 per second); every tenth tick posts 1 to the eventfd, which
 * the loop reads back; every SIGUSR1 arrives through the signalfd.
 * Checks: the eventfd delivered every post but the last; the timerfd keeps
 * its 10 ms interval. Report: "PASS counter=N ticks=N posts=N events=N sigs=N".
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#define FAIL(...) do { snprintf(msg, size, __VA_ARGS__); return 0; } while (0)

static int ep, tfd, efd, sfd;
static unsigned long long ticks, posts, events, sigs;

static int check(char *msg, size_t size)
{
	if (events + 1 < posts || events > posts) FAIL("the eventfd delivered %llu of %llu posts", events, posts);
	struct itimerspec it;
	if (timerfd_gettime(tfd, &it) || it.it_interval.tv_sec != 0 || it.it_interval.tv_nsec != 10000000L)
		FAIL("the timerfd's interval is %ld.%09ld", (long)it.it_interval.tv_sec, it.it_interval.tv_nsec);
	snprintf(msg, size, "ticks=%llu posts=%llu events=%llu sigs=%llu", ticks, posts, events, sigs);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	struct itimerspec it = { { 0, 10000000L }, { 0, 10000000L } };
	if (ep < 0 || tfd < 0 || efd < 0 || sfd < 0 || timerfd_settime(tfd, 0, &it, NULL)) return 10;
	int watched[] = { tfd, efd, sfd };
	for (int i = 0; i < 3; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.fd = watched[i] };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, watched[i], &e)) return 11;
	}
	proto_ready("");
	for (;;) {
		struct epoll_event ev[4];
		int n = epoll_wait(ep, ev, 4, 1000);
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;
			uint64_t v;
			if (fd == tfd && read(tfd, &v, 8) == 8) {
				ticks += v;
				while (posts < ticks / 10) {
					eventfd_write(efd, 1);
					posts++;
				}
			} else if (fd == efd && eventfd_read(efd, &v) == 0) {
				events += v;
			} else if (fd == sfd) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof si) == sizeof si)
					sigs++;
			}
		}
		proto_tick((long)ticks, check);
	}
}

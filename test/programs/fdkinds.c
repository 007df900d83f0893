/*
 * fdkinds: one process holding an fd of every kind ckpt makes anew, checking
 * after restore that each behaves as before.
 *
 *   fdkinds WORKDIR
 *
 * Checks:
 *  - eventfd: semaphore mode, counter 5 (a read takes 1; written back);
 *  - signalfd for SIGUSR2 (blocked, one pending): readable, gives SIGUSR2
 *    (raised again after each read);
 *  - timerfd A: interval 1 s, next expiry within 1000 s; timerfd B: one
 *    expiry not yet read (read gives 1; re-armed to expire again);
 *  - epoll E1 watching the eventfd (EPOLLIN, data 0xabc) and epoll E2 (nested)
 *    watching timerfd B (data 0xb): epoll_wait(E1) reports 0xabc, E2 0xb;
 *  - memfd "ckpt-memfd" holding "hello memfd", sealed against grow and shrink;
 *  - a file deleted while open: still open, unlinked, content "ghost data",
 *    offset 3;
 *  - one file opened once and dup'ed (one offset shared by both fds) and
 *    opened a second time (its own offset);
 *  - inotify watching WORKDIR/watched for IN_CREATE (wd 1): creating a file
 *    there gives one event with wd 1 and its name.
 * Report: "PASS counter=N".
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/inotify.h>
#include <time.h>

static int efd, sfd, tfa, tfb, ep1, ep2, mfd, gfd, shared1, shared2, own, ifd;
static int created;

#define FAIL(...) do { snprintf(msg, size, __VA_ARGS__); return 0; } while (0)

static void arm_b(void)
{
	struct itimerspec it = { { 0, 0 }, { 0, 1000 } };
	timerfd_settime(tfb, 0, &it, NULL);
	struct timespec ms = { 0, 5 * 1000000L };
	nanosleep(&ms, NULL);
}

static int check_all(char *msg, size_t size)
{
	eventfd_t v = 0;
	if (eventfd_read(efd, &v) != 0 || v != 1) FAIL("eventfd read gave %llu (semaphore mode lost?)", (unsigned long long)v);
	eventfd_write(efd, 1);

	struct epoll_event ev[4];
	int n = epoll_wait(ep1, ev, 4, 0);
	if (n != 1 || ev[0].data.u64 != 0xabc) FAIL("epoll 1 reports %d events, data %llx", n, n > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL);
	n = epoll_wait(ep2, ev, 4, 0);
	if (n != 1 || ev[0].data.u64 != 0xb) FAIL("epoll 2 (nested) reports %d events", n);

	struct pollfd p = { sfd, POLLIN, 0 };
	if (poll(&p, 1, 0) != 1) FAIL("signalfd is not readable");
	struct signalfd_siginfo si;
	if (read(sfd, &si, sizeof si) != sizeof si || si.ssi_signo != SIGUSR2) FAIL("signalfd gave signal %u", si.ssi_signo);
	raise(SIGUSR2);

	struct itimerspec it;
	timerfd_gettime(tfa, &it);
	if (it.it_interval.tv_sec != 1 || it.it_interval.tv_nsec != 0) FAIL("timerfd A interval %ld.%09ld", (long)it.it_interval.tv_sec, it.it_interval.tv_nsec);
	if (it.it_value.tv_sec > 1000 || (it.it_value.tv_sec == 0 && it.it_value.tv_nsec == 0)) FAIL("timerfd A disarmed or too far");
	uint64_t ticks = 0;
	if (read(tfb, &ticks, 8) != 8 || ticks != 1) FAIL("timerfd B gave %llu ticks", (unsigned long long)ticks);
	arm_b();

	char link[64], target[256], buf[64];
	snprintf(link, sizeof link, "/proc/self/fd/%d", mfd);
	ssize_t k = readlink(link, target, sizeof target - 1);
	target[k > 0 ? k : 0] = 0;
	if (strcmp(target, "/memfd:ckpt-memfd (deleted)") != 0) FAIL("memfd is '%s'", target);
	if (pread(mfd, buf, 11, 0) != 11 || memcmp(buf, "hello memfd", 11) != 0) FAIL("memfd content differs");
	if (fcntl(mfd, F_GET_SEALS) != (F_SEAL_GROW | F_SEAL_SHRINK)) FAIL("memfd seals %x", fcntl(mfd, F_GET_SEALS));

	struct stat st;
	if (fstat(gfd, &st) != 0 || st.st_nlink != 0) FAIL("deleted file has %lu links", (unsigned long)st.st_nlink);
	if (lseek(gfd, 0, SEEK_CUR) != 3) FAIL("deleted file offset %ld", (long)lseek(gfd, 0, SEEK_CUR));
	if (read(gfd, buf, 7) != 7 || memcmp(buf, "st data", 7) != 0) FAIL("deleted file content differs");
	lseek(gfd, 3, SEEK_SET);

	lseek(shared1, 7, SEEK_SET);
	if (lseek(shared2, 0, SEEK_CUR) != 7) FAIL("dup'ed fds no longer share an offset");
	if (lseek(own, 0, SEEK_CUR) != 2) FAIL("the separately opened fd's offset is %ld, not 2", (long)lseek(own, 0, SEEK_CUR));
	lseek(shared1, 4, SEEK_SET);

	char name[32], file[PATH_MAX], evbuf[4096];
	snprintf(name, sizeof name, "f%d", ++created);
	snprintf(file, sizeof file, "%s/watched/%s", proto_dir, name);
	close(open(file, O_CREAT | O_WRONLY, 0600));
	ssize_t got = -1;
	for (int i = 0; i < 100 && got < 0; i++) {
		got = read(ifd, evbuf, sizeof evbuf);
		if (got < 0) nanosleep(&(struct timespec){ 0, 1000000L }, NULL);
	}
	struct inotify_event *ie = (struct inotify_event *)evbuf;
	if (got <= 0 || ie->wd != 1 || !(ie->mask & IN_CREATE) || strcmp(ie->name, name) != 0)
		FAIL("inotify gave no IN_CREATE for %s on wd 1 (read %zd, wd %d)", name, got, got > 0 ? ie->wd : -1);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	char path[PATH_MAX];

	efd = eventfd(5, EFD_SEMAPHORE | EFD_CLOEXEC);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_NONBLOCK);
	raise(SIGUSR2);

	tfa = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	struct itimerspec ita = { { 1, 0 }, { 900, 0 } };
	timerfd_settime(tfa, 0, &ita, NULL);
	tfb = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	arm_b();

	ep2 = epoll_create1(0);
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = 0xb };
	epoll_ctl(ep2, EPOLL_CTL_ADD, tfb, &e);
	ep1 = epoll_create1(EPOLL_CLOEXEC);
	e.data.u64 = 0xabc;
	epoll_ctl(ep1, EPOLL_CTL_ADD, efd, &e);

	mfd = memfd_create("ckpt-memfd", MFD_ALLOW_SEALING);
	write(mfd, "hello memfd", 11);
	fcntl(mfd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK);

	proto_path(path, "gone");
	gfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	write(gfd, "ghost data", 10);
	lseek(gfd, 3, SEEK_SET);
	unlink(path);

	proto_path(path, "shared");
	int tmp = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	write(tmp, "0123456789", 10);
	close(tmp);
	shared1 = open(path, O_RDWR);
	shared2 = dup(shared1);
	lseek(shared1, 4, SEEK_SET);
	own = open(path, O_RDONLY);
	lseek(own, 2, SEEK_SET);

	proto_path(path, "watched");
	mkdir(path, 0700);
	ifd = inotify_init1(IN_NONBLOCK);
	if (ifd < 0 || inotify_add_watch(ifd, path, IN_CREATE) != 1)
		return 11;

	if (efd < 0 || sfd < 0 || tfa < 0 || tfb < 0 || ep1 < 0 || ep2 < 0 || mfd < 0 || gfd < 0 || shared2 < 0 || own < 0)
		return 10;
	proto_ready("");
	proto_run(check_all);
}

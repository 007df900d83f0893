/*
 * epollino: epolls with targets of several kinds, event masks and data,
 * nested, and inotify fds with several watches.
 *
 *   epollino WORKDIR
 *
 * Holds: eventfd 10 (holds 1), a pipe 11 (read) / 12 (write) holding one byte;
 *  - epoll 13 (close-on-exec): eventfd 10 EPOLLIN|EPOLLET data 0x1111,
 *    write end 12 EPOLLOUT data 0x2222, read end 11 EPOLLIN|EPOLLONESHOT
 *    data 0x3333, fired once already (so disabled);
 *  - epoll 14 watching epoll 13 (EPOLLIN, data 0x4444); epoll 15 watching nothing;
 *  - inotify 16 (O_NONBLOCK, close-on-exec): wd 1 WORKDIR/a IN_CREATE|IN_DELETE,
 *    wd 2 WORKDIR/b IN_MODIFY, wd 3 WORKDIR/c/file IN_ATTRIB;
 *  - inotify 17 (O_NONBLOCK) without watches.
 * Checks: every fd's flags and close-on-exec; the "tfd" lines of epoll 13's
 * fdinfo give the same target fd numbers, events and data as at the start
 * (EPOLLERR and EPOLLHUP aside: the one-shot that fired comes back armed for
 * them), and EPOLL_CTL_MOD of fd 12 by its number works; the "inotify wd"
 * lines of 16 give the same wd and mask; epoll 13 reports 0x2222 only
 * (the edge of the eventfd was taken, the one-shot is disabled), then
 * 0x1111 as well once the eventfd is written; epoll 14 reports 0x4444; 15
 * nothing; inotify 16 reports a creation in a/ on wd 1, a write to b/x on
 * wd 2, a chmod of c/file on wd 3; inotify 17 reads nothing.
 * Report: "PASS counter=N".
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>

#define FAIL(...) do { snprintf(msg, size, __VA_ARGS__); return 0; } while (0)

static const struct { int fd, nonblock, cloexec; } h[] = {
	{ 10, 0, 0 }, { 11, 0, 0 }, { 12, 0, 0 }, { 13, 0, 1 }, { 14, 0, 0 }, { 15, 0, 0 }, { 16, 1, 1 }, { 17, 1, 0 },
};
static char epoll_lines[512], inotify_lines[512];
static int created;

static int by_text(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* The lines of /proc/self/fdinfo/FD that start with `key`, each cut to the
 * fields that must survive (epoll: "tfd events data"; inotify: "wd mask"),
 * sorted (the kernel lists epoll targets in the order of their addresses). */
static void fdinfo_lines(int fd, const char *key, char *out, size_t size)
{
	char path[64], line[512], items[16][64];
	int n = 0;
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	while (f && n < 16 && fgets(line, sizeof line, f)) {
		unsigned a, b;
		unsigned long long c;
		if (!strcmp(key, "tfd:") && sscanf(line, "tfd: %u events: %x data: %llx", &a, &b, &c) == 3)
			snprintf(items[n++], 64, "%u %x %llx", a, b & ~(unsigned)(EPOLLERR | EPOLLHUP), c);
		char *m = strstr(line, " mask:");
		if (!strcmp(key, "inotify") && sscanf(line, "inotify wd:%u", &a) == 1 && m && sscanf(m, " mask:%x", &b) == 1)
			snprintf(items[n++], 64, "%u %x", a, b);
	}
	if (f) fclose(f);
	qsort(items, (size_t)n, sizeof items[0], by_text);
	out[0] = 0;
	for (int i = 0; i < n; i++) {
		strncat(out, items[i], size - strlen(out) - 2);
		strcat(out, ";");
	}
}

static int wait_data(int ep, unsigned long long *data, int max)
{
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, 8, 0);
	for (int i = 0; i < n && i < max; i++) data[i] = ev[i].data.u64;
	return n;
}

static int inotify_event(int fd, int wd, uint32_t mask, char *msg, size_t size, const char *what)
{
	char buf[4096];
	ssize_t got = -1;
	for (int i = 0; i < 100 && got < 0; i++) {
		got = read(fd, buf, sizeof buf);
		if (got < 0) nanosleep(&(struct timespec){ 0, 1000000L }, NULL);
	}
	struct inotify_event *e = (struct inotify_event *)buf;
	if (got <= 0 || e->wd != wd || !(e->mask & mask)) FAIL("inotify 16: %s gave no event on wd %d (read %zd, wd %d, mask %x)", what, wd, got, got > 0 ? e->wd : -1, got > 0 ? e->mask : 0);
	return 1;
}

static int check_all(char *msg, size_t size)
{
	for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
		int fl = fcntl(h[i].fd, F_GETFL);
		if (fl < 0) FAIL("fd %d is not open", h[i].fd);
		if (!!(fl & O_NONBLOCK) != h[i].nonblock) FAIL("fd %d O_NONBLOCK is %d", h[i].fd, !!(fl & O_NONBLOCK));
		if (!!(fcntl(h[i].fd, F_GETFD) & FD_CLOEXEC) != h[i].cloexec) FAIL("fd %d close-on-exec", h[i].fd);
	}
	char now[512];
	fdinfo_lines(13, "tfd:", now, sizeof now);
	if (strcmp(now, epoll_lines)) FAIL("epoll 13 targets '%s', were '%s'", now, epoll_lines);
	fdinfo_lines(16, "inotify", now, sizeof now);
	if (strcmp(now, inotify_lines)) FAIL("inotify 16 watches '%s', were '%s'", now, inotify_lines);

	struct epoll_event mod = { .events = EPOLLOUT, .data.u64 = 0x2222 };
	if (epoll_ctl(13, EPOLL_CTL_MOD, 12, &mod)) FAIL("EPOLL_CTL_MOD of fd 12 in epoll 13: %s", strerror(errno));
	unsigned long long d[8];
	int n = wait_data(13, d, 8);
	/* The eventfd's edge may come back once after a restore (a new registration). */
	if (n == 2 && (d[0] == 0x1111 || d[1] == 0x1111)) n = wait_data(13, d, 8);
	if (n != 1 || d[0] != 0x2222) FAIL("epoll 13 reports %d events (first %llx), not only 0x2222", n, n > 0 ? d[0] : 0);
	eventfd_write(10, 1);
	n = wait_data(13, d, 8);
	if (n != 2 || !((d[0] == 0x1111 && d[1] == 0x2222) || (d[0] == 0x2222 && d[1] == 0x1111))) FAIL("epoll 13 after an eventfd write reports %d events", n);
	eventfd_t v;
	eventfd_read(10, &v);
	eventfd_write(10, 1);
	wait_data(13, d, 8); /* take the new edge */
	if (wait_data(14, d, 8) != 1 || d[0] != 0x4444) FAIL("epoll 14 (nested) does not report epoll 13");
	if (wait_data(15, d, 8) != 0) FAIL("the empty epoll 15 reports events");

	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/a/n%d", proto_dir, ++created);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	if (!inotify_event(16, 1, IN_CREATE, msg, size, "a creation in a/")) return 0;
	snprintf(p, sizeof p, "%s/b/x", proto_dir);
	int w = open(p, O_WRONLY | O_APPEND);
	if (write(w, "x", 1) != 1) FAIL("write b/x");
	close(w);
	if (!inotify_event(16, 2, IN_MODIFY, msg, size, "a write to b/x")) return 0;
	snprintf(p, sizeof p, "%s/c/file", proto_dir);
	chmod(p, created & 1 ? 0600 : 0640);
	if (!inotify_event(16, 3, IN_ATTRIB, msg, size, "a chmod of c/file")) return 0;
	char buf[256];
	if (read(17, buf, sizeof buf) != -1 || errno != EAGAIN) FAIL("inotify 17 without watches reads something");
	return 1;
}

static int at(int fd, int want)
{
	if (fd < 0 || dup2(fd, want) != want) return 0;
	close(fd);
	return 1;
}

static int add(int ep, int fd, uint32_t events, unsigned long long data)
{
	struct epoll_event e = { .events = events, .data.u64 = data };
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) == 0;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	int fds[2];
	if (!at(eventfd(1, 0), 10) || pipe(fds) || !at(fds[0], 11) || !at(fds[1], 12) || write(12, "p", 1) != 1) return 10;
	if (!at(epoll_create1(0), 13) || !at(epoll_create1(0), 14) || !at(epoll_create1(0), 15)) return 11;
	fcntl(13, F_SETFD, FD_CLOEXEC);
	if (!add(13, 10, EPOLLIN | EPOLLET, 0x1111) || !add(13, 12, EPOLLOUT, 0x2222) || !add(13, 11, EPOLLIN | EPOLLONESHOT, 0x3333)) return 12;
	unsigned long long d[8];
	wait_data(13, d, 8); /* takes the eventfd's edge and fires the one-shot */
	if (!add(14, 13, EPOLLIN, 0x4444)) return 13;

	char p[PATH_MAX];
	const char *dirs[] = { "a", "b", "c" };
	for (int i = 0; i < 3; i++) {
		proto_path(p, dirs[i]);
		mkdir(p, 0700);
	}
	proto_path(p, "b/x");
	close(open(p, O_CREAT | O_WRONLY, 0600));
	proto_path(p, "c/file");
	close(open(p, O_CREAT | O_WRONLY, 0600));
	if (!at(inotify_init1(IN_NONBLOCK | IN_CLOEXEC), 16) || !at(inotify_init1(IN_NONBLOCK), 17)) return 14;
	fcntl(16, F_SETFD, FD_CLOEXEC);
	proto_path(p, "a");
	if (inotify_add_watch(16, p, IN_CREATE | IN_DELETE) != 1) return 15;
	proto_path(p, "b");
	if (inotify_add_watch(16, p, IN_MODIFY) != 2) return 16;
	proto_path(p, "c/file");
	if (inotify_add_watch(16, p, IN_ATTRIB) != 3) return 17;
	fdinfo_lines(13, "tfd:", epoll_lines, sizeof epoll_lines);
	fdinfo_lines(16, "inotify", inotify_lines, sizeof inotify_lines);

	proto_ready("");
	proto_run(check_all);
}

/*
 * fifos: pipes and named FIFOs inside one process, with bytes in flight.
 *
 *   fifos WORKDIR
 *
 * Checks (every fd: same number, F_GETFL access mode and O_NONBLOCK, FD_CLOEXEC):
 *  - pipe A (fds 10 read, O_NONBLOCK; 11 write, close-on-exec), capacity
 *    128 KiB, holding "pipe bytes in flight";
 *  - pipe B (fds 12, 13) holding 60000 patterned bytes;
 *  - FIFO WORKDIR/f1 opened twice, read end (14, O_NONBLOCK) and write end
 *    (15), capacity 16 KiB, holding "fifo bytes";
 *  - FIFO WORKDIR/f2 opened once O_RDWR (16), holding "rdwr";
 *  - FIFO WORKDIR/f3, a lone read end (17, O_NONBLOCK): empty, reads EOF (no
 *    writer); a writer opened by path then reaches it;
 *  - FIFO WORKDIR/f4, a lone write end (18, O_NONBLOCK): a write fails with
 *    EPIPE (no reader); a reader opened by path then gets what it writes.
 * Each check reads the bytes in flight, compares, and writes them back.
 * Report: "PASS counter=N".
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <signal.h>
#include <time.h>

#define FAIL(...) do { snprintf(msg, size, __VA_ARGS__); return 0; } while (0)

static const struct { int fd, flags, cloexec; } h[] = {
	{ 10, O_RDONLY | O_NONBLOCK, 0 }, { 11, O_WRONLY, 1 }, { 12, O_RDONLY | O_NONBLOCK, 0 }, { 13, O_WRONLY, 0 },
	{ 14, O_RDONLY | O_NONBLOCK, 1 }, { 15, O_WRONLY, 0 }, { 16, O_RDWR | O_NONBLOCK, 0 }, { 17, O_RDONLY | O_NONBLOCK, 0 },
	{ 18, O_WRONLY | O_NONBLOCK, 1 },
};
static char big[60000], got[65536];

/* Reads exactly len bytes (non-blocking fd), compares, writes them back through wfd. */
static int take_and_put_back(int rfd, int wfd, const char *want, size_t len, char *msg, size_t size, const char *what)
{
	size_t n = 0;
	while (n < len) {
		ssize_t k = read(rfd, got + n, len - n);
		if (k <= 0) FAIL("%s: read %zu of %zu bytes (%s)", what, n, len, k < 0 ? strerror(errno) : "EOF");
		n += (size_t)k;
	}
	if (read(rfd, got + n, 1) != -1 || errno != EAGAIN) FAIL("%s: more than %zu bytes", what, len);
	if (memcmp(got, want, len)) FAIL("%s: bytes differ", what);
	size_t w = 0;
	while (w < len) {
		ssize_t k = write(wfd, want + w, len - w);
		if (k <= 0) FAIL("%s: write back: %s", what, strerror(errno));
		w += (size_t)k;
	}
	return 1;
}

static int check_all(char *msg, size_t size)
{
	for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
		int fl = fcntl(h[i].fd, F_GETFL);
		if (fl < 0) FAIL("fd %d is not open", h[i].fd);
		if ((fl & (O_ACCMODE | O_NONBLOCK)) != h[i].flags) FAIL("fd %d flags 0%o, not 0%o", h[i].fd, fl & (O_ACCMODE | O_NONBLOCK), h[i].flags);
		if (!!(fcntl(h[i].fd, F_GETFD) & FD_CLOEXEC) != h[i].cloexec) FAIL("fd %d close-on-exec", h[i].fd);
	}
	if (fcntl(10, F_GETPIPE_SZ) != 128 * 1024) FAIL("pipe A capacity %d", fcntl(10, F_GETPIPE_SZ));
	if (!take_and_put_back(10, 11, "pipe bytes in flight", 20, msg, size, "pipe A")) return 0;
	if (!take_and_put_back(12, 13, big, sizeof big, msg, size, "pipe B")) return 0;
	if (fcntl(14, F_GETPIPE_SZ) != 16384) FAIL("FIFO f1 capacity %d", fcntl(14, F_GETPIPE_SZ));
	if (!take_and_put_back(14, 15, "fifo bytes", 10, msg, size, "FIFO f1")) return 0;
	if (!take_and_put_back(16, 16, "rdwr", 4, msg, size, "FIFO f2")) return 0;

	char p[PATH_MAX], c;
	if (read(17, &c, 1) != 0) FAIL("FIFO f3: a lone read end does not read EOF");
	proto_path(p, "f3");
	int w = open(p, O_WRONLY | O_NONBLOCK);
	if (w < 0) FAIL("FIFO f3: open a writer: %s", strerror(errno));
	if (write(w, "3", 1) != 1 || read(17, &c, 1) != 1 || c != '3') FAIL("FIFO f3: the lone read end does not get what a writer writes");
	close(w);

	if (write(18, "4", 1) != -1 || errno != EPIPE) FAIL("FIFO f4: a lone write end writes without a reader");
	proto_path(p, "f4");
	int r = open(p, O_RDONLY | O_NONBLOCK);
	if (r < 0) FAIL("FIFO f4: open a reader: %s", strerror(errno));
	if (write(18, "4", 1) != 1 || read(r, &c, 1) != 1 || c != '4') FAIL("FIFO f4: a reader does not get what the lone write end writes");
	close(r);
	return 1;
}

static int put(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len) == (ssize_t)len;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	char p[PATH_MAX];
	int fds[2];
	if (pipe2(fds, 0) || dup2(fds[0], 10) != 10 || dup2(fds[1], 11) != 11) return 10;
	close(fds[0]), close(fds[1]);
	fcntl(10, F_SETFL, O_NONBLOCK);
	fcntl(11, F_SETFD, FD_CLOEXEC);
	if (fcntl(10, F_SETPIPE_SZ, 128 * 1024) < 0 || !put(11, "pipe bytes in flight", 20)) return 11;
	if (pipe2(fds, 0) || dup2(fds[0], 12) != 12 || dup2(fds[1], 13) != 13) return 12;
	close(fds[0]), close(fds[1]);
	fcntl(12, F_SETFL, O_NONBLOCK);
	for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7 + i / 251);
	fcntl(12, F_SETPIPE_SZ, 64 * 1024);
	if (!put(13, big, sizeof big)) return 13;

	proto_path(p, "f1");
	mkfifo(p, 0600);
	if (dup2(open(p, O_RDONLY | O_NONBLOCK), 14) != 14 || dup2(open(p, O_WRONLY), 15) != 15) return 14;
	fcntl(14, F_SETFD, FD_CLOEXEC);
	if (fcntl(14, F_SETPIPE_SZ, 16384) < 0 || !put(15, "fifo bytes", 10)) return 15;
	proto_path(p, "f2");
	mkfifo(p, 0600);
	if (dup2(open(p, O_RDWR | O_NONBLOCK), 16) != 16 || !put(16, "rdwr", 4)) return 16;
	proto_path(p, "f3");
	mkfifo(p, 0600);
	if (dup2(open(p, O_RDONLY | O_NONBLOCK), 17) != 17) return 17;
	proto_path(p, "f4");
	mkfifo(p, 0600);
	int tmp = open(p, O_RDONLY | O_NONBLOCK);
	if (dup2(open(p, O_WRONLY | O_NONBLOCK), 18) != 18) return 18;
	fcntl(18, F_SETFD, FD_CLOEXEC);
	close(tmp);
	/* Close the originals dup2 left behind: only the fds above stay. */
	for (int fd = 3; fd < 10; fd++) close(fd);
	for (int fd = 19; fd < 30; fd++) close(fd);

	proto_ready("");
	proto_run(check_all);
}

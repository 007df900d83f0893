/*
 * pty: pseudo-terminals the process opened itself, as a terminal multiplexer
 * does, one of them its controlling terminal.
 *
 *   pty WORKDIR
 *
 * The program leads its session (the test starts it so). It holds:
 *  - pty A: master fd 10 (O_NONBLOCK), slave fd 11 (close-on-exec), its
 *    controlling terminal; raw (no ICANON, no ECHO), output speed 4800,
 *    VMIN 1, window 33x101; fd 12 is /dev/tty opened through it;
 *  - pty B: master fd 13 only, locked, in packet mode;
 *  - pty C: master fd 14, slave fd 15 (O_NONBLOCK), canonical with echo,
 *    window 24x80.
 * Checks: each fd's number, access mode, O_NONBLOCK and FD_CLOEXEC; each pty
 * has its index and /dev/pts/N path of the start; A's termios and window
 * size are as set; A is the controlling terminal (tcgetsid, tcgetpgrp,
 * /dev/tty opens and is A's slave) and fd 12 writes to A's master; A and C
 * carry bytes both ways (C echoes in canonical mode); B is still locked and
 * in packet mode.
 * Report: "PASS counter=N".
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>

#define FAIL(...) do { snprintf(msg, size, __VA_ARGS__); return 0; } while (0)

static const struct { int fd, flags, cloexec; } h[] = {
	{ 10, O_RDWR | O_NONBLOCK, 0 }, { 11, O_RDWR, 1 }, { 12, O_RDWR, 1 }, { 13, O_RDWR, 0 }, { 14, O_RDWR, 0 }, { 15, O_RDWR | O_NONBLOCK, 0 },
};
static int idx_a, idx_b, idx_c;
static struct termios tio_a;

static int index_of(int master) { int n = -1; ioctl(master, TIOCGPTN, &n); return n; }

/* Reads what is there within ~200 ms from a fd (non-blocking or not). */
static ssize_t read_some(int fd, char *buf, size_t len)
{
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	ssize_t n = -1;
	for (int i = 0; i < 200 && n < 0; i++) {
		n = read(fd, buf, len);
		if (n < 0) nanosleep(&(struct timespec){ 0, 1000000L }, NULL);
	}
	fcntl(fd, F_SETFL, fl);
	return n;
}

static int expect(int fd, const char *want, char *msg, size_t size, const char *what)
{
	char buf[128];
	ssize_t n = read_some(fd, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)n)) FAIL("%s: read %zd bytes '%s', not '%s'", what, n, buf, want);
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
	if (index_of(10) != idx_a || index_of(13) != idx_b || index_of(14) != idx_c)
		FAIL("pty indexes %d %d %d, not %d %d %d", index_of(10), index_of(13), index_of(14), idx_a, idx_b, idx_c);
	char name[64], p[64];
	struct stat st, st2;
	snprintf(p, sizeof p, "/dev/pts/%d", idx_a);
	if (ttyname_r(11, name, sizeof name) || strcmp(name, p)) FAIL("slave A is '%s', not %s", name, p);
	snprintf(p, sizeof p, "/dev/pts/%d", idx_c);
	if (ttyname_r(15, name, sizeof name) || strcmp(name, p)) FAIL("slave C is '%s', not %s", name, p);

	struct termios t;
	if (tcgetattr(11, &t)) FAIL("tcgetattr A: %s", strerror(errno));
	if (t.c_iflag != tio_a.c_iflag || t.c_oflag != tio_a.c_oflag || t.c_cflag != tio_a.c_cflag || t.c_lflag != tio_a.c_lflag ||
	    memcmp(t.c_cc, tio_a.c_cc, sizeof t.c_cc) || cfgetospeed(&t) != B4800)
		FAIL("termios of A differ (lflag %o, was %o; ospeed %u)", t.c_lflag, tio_a.c_lflag, (unsigned)cfgetospeed(&t));
	struct winsize ws;
	ioctl(10, TIOCGWINSZ, &ws);
	if (ws.ws_row != 33 || ws.ws_col != 101) FAIL("window of A is %ux%u", ws.ws_row, ws.ws_col);
	ioctl(14, TIOCGWINSZ, &ws);
	if (ws.ws_row != 24 || ws.ws_col != 80) FAIL("window of C is %ux%u", ws.ws_row, ws.ws_col);

	if (tcgetsid(11) != getpid()) FAIL("A is not the controlling terminal of this session (tcgetsid %d)", (int)tcgetsid(11));
	if (tcgetpgrp(11) != getpgrp()) FAIL("A's foreground group is %d", (int)tcgetpgrp(11));
	int tty = open("/dev/tty", O_RDWR);
	if (tty < 0) FAIL("open /dev/tty: %s", strerror(errno));
	close(tty);
	fstat(11, &st);
	fstat(12, &st2);
	if (major(st2.st_rdev) != 5 || minor(st2.st_rdev) != 0) FAIL("fd 12 is not /dev/tty");
	if (write(12, "via tty", 7) != 7 || !expect(10, "via tty", msg, size, "/dev/tty to master A")) return 0;
	if (write(10, "ping", 4) != 4 || !expect(11, "ping", msg, size, "master A to slave A")) return 0;
	if (write(11, "pong", 4) != 4 || !expect(10, "pong", msg, size, "slave A to master A")) return 0;

	int v = 0;
	if (ioctl(13, TIOCGPTLCK, &v) || v != 1) FAIL("pty B is not locked");
	if (ioctl(13, TIOCGPKT, &v) || v != 1) FAIL("pty B is not in packet mode");
	if (write(14, "hi\n", 3) != 3 || !expect(14, "hi\r\n", msg, size, "echo of C") || !expect(15, "hi\n", msg, size, "line to slave C")) return 0;
	return 1;
}

static int open_master(int at, int flags)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || dup2(m, at) != at) return -1;
	close(m);
	if (flags) fcntl(at, F_SETFL, flags);
	return index_of(at);
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	if (getsid(0) != getpid()) return 9;
	char p[64];
	if ((idx_a = open_master(10, O_NONBLOCK)) < 0 || unlockpt(10)) return 10;
	snprintf(p, sizeof p, "/dev/pts/%d", idx_a);
	int s = open(p, O_RDWR | O_NOCTTY);
	if (s < 0 || dup2(s, 11) != 11 || ioctl(11, TIOCSCTTY, 0)) return 11;
	close(s);
	fcntl(11, F_SETFD, FD_CLOEXEC);
	tcgetattr(11, &tio_a);
	tio_a.c_lflag &= ~(ICANON | ECHO);
	tio_a.c_cc[VMIN] = 1;
	tio_a.c_cc[VTIME] = 0;
	cfsetospeed(&tio_a, B4800);
	if (tcsetattr(11, TCSANOW, &tio_a)) return 12;
	tcgetattr(11, &tio_a);
	struct winsize ws = { 33, 101, 0, 0 };
	ioctl(10, TIOCSWINSZ, &ws);
	int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (tty < 0 || dup2(tty, 12) != 12) return 13;
	close(tty);
	fcntl(12, F_SETFD, FD_CLOEXEC);

	int one = 1;
	if ((idx_b = open_master(13, 0)) < 0 || ioctl(13, TIOCPKT, &one)) return 14;
	if ((idx_c = open_master(14, 0)) < 0 || unlockpt(14)) return 15;
	snprintf(p, sizeof p, "/dev/pts/%d", idx_c);
	s = open(p, O_RDWR | O_NOCTTY | O_NONBLOCK);
	if (s < 0 || dup2(s, 15) != 15) return 16;
	close(s);
	ws = (struct winsize){ 24, 80, 0, 0 };
	ioctl(14, TIOCSWINSZ, &ws);
	for (int fd = 3; fd < 10; fd++) close(fd);

	char facts[64];
	snprintf(facts, sizeof facts, "ptys=%d,%d,%d", idx_a, idx_b, idx_c);
	proto_ready(facts);
	proto_run(check_all);
}

/*
 * halfpipe: pipes with one end closed, as a shell holds one between its
 * command substitution's child exiting and reading to the end.
 *
 *   halfpipe WORKDIR [outside]
 *
 * Pipe A: the read end is kept with 16 bytes in it, its write end closed.
 * Pipe B: the write end is kept, its read end closed. SIGPIPE is ignored.
 * Checks: A still holds the 16 bytes (FIONREAD, nothing read) and reports
 * POLLHUP, no writer; B reports POLLERR, no reader, and a write to it fails
 * with EPIPE; 1 MiB of pseudo-random memory against its checksum.
 * With `outside`, a grandchild that init adopted (outside the process's tree)
 * holds A's write end too, and pauses: A then has a writer, no POLLHUP.
 * Report: "PASS counter=N a=FD b=FD"; ready also says writer=PID (outside).
 */
#include "protocol.h"
#include "pattern.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>

#define AREA_PAGES 256
#define HELD "left in the pipe"
enum { SALT_AREA = 9 };

static struct pattern_area area;
static int a_read = -1, b_write = -1, outside;

static short revents(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

static int check_pipes(char *msg, size_t size)
{
	int held = -1;
	if (ioctl(a_read, FIONREAD, &held) != 0 || held != (int)strlen(HELD)) {
		snprintf(msg, size, "pipe A (fd %d) holds %d bytes, want %zu", a_read, held, strlen(HELD));
		return 0;
	}
	short a = revents(a_read, POLLIN), b = revents(b_write, POLLOUT);
	int hup = (a & POLLHUP) != 0;
	if (!(a & POLLIN) || hup == outside) {
		snprintf(msg, size, "pipe A (fd %d): revents 0x%x, want POLLIN%s", a_read, a, outside ? " without POLLHUP" : "|POLLHUP");
		return 0;
	}
	if (!(b & POLLERR)) {
		snprintf(msg, size, "pipe B (fd %d): revents 0x%x, want POLLERR (no reader)", b_write, b);
		return 0;
	}
	if (write(b_write, "x", 1) != -1 || errno != EPIPE) {
		snprintf(msg, size, "pipe B (fd %d): a write did not fail with EPIPE (%s)", b_write, strerror(errno));
		return 0;
	}
	return 1;
}

static int check_all(char *msg, size_t size)
{
	if (!area_intact(&area, msg, size) || !check_pipes(msg, size))
		return 0;
	snprintf(msg, size, "a=%d b=%d", a_read, b_write);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	outside = argc > 2 && strcmp(argv[2], "outside") == 0;
	signal(SIGPIPE, SIG_IGN);
	if (area_init(&area, AREA_PAGES, SALT_AREA) != 0)
		return 10;

	int a[2], b[2];
	if (pipe(a) != 0 || pipe(b) != 0)
		return 11;
	if (write(a[1], HELD, strlen(HELD)) != (ssize_t)strlen(HELD))
		return 12;
	char facts[64] = "";
	if (outside) {
		/* The child forks the holder and exits at once: init adopts the holder. */
		int report[2];
		if (pipe(report) != 0)
			return 13;
		pid_t child = fork();
		if (child == 0) {
			pid_t holder = fork();
			if (holder == 0) {
				close(a[0]); close(b[0]); close(b[1]); close(report[0]); close(report[1]);
				for (;;)
					pause();
			}
			_exit(write(report[1], &holder, sizeof holder) == sizeof holder ? 0 : 1);
		}
		pid_t holder = 0;
		close(report[1]);
		if (read(report[0], &holder, sizeof holder) != sizeof holder || waitpid(child, NULL, 0) != child)
			return 14;
		close(report[0]);
		snprintf(facts, sizeof facts, "writer=%d", (int)holder);
	}
	close(a[1]);
	close(b[0]);
	a_read = a[0];
	b_write = b[1];
	proto_ready(facts);

	proto_run(check_all);
}

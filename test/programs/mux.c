/*
 * mux: a pty pair shared by a tree, as a terminal multiplexer holds one
 * (issue 5: session and controlling-terminal relations).
 *
 *   mux WORKDIR
 *
 * R holds the master (window 40x120, raw mode). Its child C leads a new
 * session whose controlling terminal is the slave; C's child G is in a group
 * of its own, the terminal's foreground group, and holds /dev/tty.
 * G (in the foreground) echoes every byte it reads on the slave back as its successor.
 * Each of C and G publishes, in shared memory, whether its terminal is as set
 * up. R's check: a byte written to the master comes back from C, and both
 * verdicts are good. Report: "PASS counter=N".
 */
#include "protocol.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>

struct verdicts {
	atomic_long c_turns, g_turns;
	char c[128], g[128];
	atomic_int g_pid;
};

static struct verdicts *v;
static int master, slave;
static char slave_path[64];

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void child_g(void)
{
	setpgid(0, 0);
	atomic_store(&v->g_pid, getpid());
	int tty = open("/dev/tty", O_RDWR);
	/* Wait until C made this group the foreground one: a background read would get EIO. */
	while (tcgetpgrp(slave) != getpid())
		msleep(1);
	fcntl(slave, F_SETFL, O_NONBLOCK);
	for (;;) {
		char b;
		while (read(slave, &b, 1) == 1) {
			char r = (char)(b + 1);
			if (write(slave, &r, 1) != 1)
				break;
		}
		if (tty < 0)
			snprintf(v->g, sizeof v->g, "FAIL /dev/tty: %s", strerror(errno));
		else if (tcgetsid(tty) != getsid(0) || tcgetpgrp(tty) != getpid())
			snprintf(v->g, sizeof v->g, "FAIL /dev/tty: session %d fg %d, want %d %d", (int)tcgetsid(tty), (int)tcgetpgrp(tty), (int)getsid(0), (int)getpid());
		else
			snprintf(v->g, sizeof v->g, "PASS");
		atomic_fetch_add(&v->g_turns, 1);
		msleep(10);
	}
}

static void child_c(void)
{
	setsid();
	slave = open(slave_path, O_RDWR); /* no O_NOCTTY: it becomes the controlling terminal */
	if (slave < 0)
		_exit(30);
	close(master);
	pid_t g = fork();
	if (g == 0)
		child_g();
	while (!atomic_load(&v->g_pid))
		msleep(1);
	tcsetpgrp(slave, g);
	for (;;) {
		struct winsize ws;
		struct termios t;
		if (tcgetsid(slave) != getpid())
			snprintf(v->c, sizeof v->c, "FAIL the slave is not my controlling terminal (session %d)", (int)tcgetsid(slave));
		else if (ioctl(slave, TIOCGWINSZ, &ws) != 0 || ws.ws_row != 40 || ws.ws_col != 120)
			snprintf(v->c, sizeof v->c, "FAIL window %dx%d", ws.ws_row, ws.ws_col);
		else if (tcgetattr(slave, &t) != 0 || (t.c_lflag & (ECHO | ICANON)))
			snprintf(v->c, sizeof v->c, "FAIL not raw: lflag 0%o", t.c_lflag);
		else if (tcgetpgrp(slave) != g)
			snprintf(v->c, sizeof v->c, "FAIL foreground group %d, want %d", (int)tcgetpgrp(slave), (int)g);
		else
			snprintf(v->c, sizeof v->c, "PASS");
		atomic_fetch_add(&v->c_turns, 1);
		msleep(5);
	}
}

static unsigned char next_byte = 'a';

static int check_all(char *msg, size_t size)
{
	long c0 = atomic_load(&v->c_turns), g0 = atomic_load(&v->g_turns);
	for (int i = 0; i < 400 && (atomic_load(&v->c_turns) < c0 + 2 || atomic_load(&v->g_turns) < g0 + 2); i++)
		msleep(5);
	if (atomic_load(&v->c_turns) < c0 + 2 || atomic_load(&v->g_turns) < g0 + 2) {
		snprintf(msg, size, "C or G stopped (turns %ld %ld)", atomic_load(&v->c_turns), atomic_load(&v->g_turns));
		return 0;
	}
	if (strcmp(v->c, "PASS") != 0 || strcmp(v->g, "PASS") != 0) {
		snprintf(msg, size, "C: %s; G: %s", v->c, v->g);
		return 0;
	}
	unsigned char b = next_byte, got = 0;
	if (write(master, &b, 1) != 1) {
		snprintf(msg, size, "write to the master: %s", strerror(errno));
		return 0;
	}
	for (int i = 0; i < 400; i++) {
		if (read(master, &got, 1) == 1)
			break;
		msleep(5);
	}
	if (got != (unsigned char)(b + 1)) {
		snprintf(msg, size, "sent %c, C answered %c", b, got ? got : '?');
		return 0;
	}
	next_byte = b == 'y' ? 'a' : (unsigned char)(b + 1);
	snprintf(msg, size, "pty=%s", slave_path);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	v = mmap(NULL, sizeof *v, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (v == MAP_FAILED || master < 0 || grantpt(master) != 0 || unlockpt(master) != 0)
		return 10;
	snprintf(slave_path, sizeof slave_path, "%s", ptsname(master));
	struct winsize ws = { .ws_row = 40, .ws_col = 120 };
	ioctl(master, TIOCSWINSZ, &ws);
	struct termios t;
	tcgetattr(master, &t);
	cfmakeraw(&t);
	tcsetattr(master, TCSANOW, &t);
	pid_t c = fork();
	if (c == 0)
		child_c();
	fcntl(master, F_SETFL, O_NONBLOCK);
	while (atomic_load(&v->c_turns) < 1 || atomic_load(&v->g_turns) < 1)
		msleep(1);
	proto_ready("");
	long counter = 0;
	for (;;) {
		proto_tick(++counter, check_all);
		msleep(10);
	}
}

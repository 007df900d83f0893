/*
 * shm2: a SysV shared memory segment attached in a parent and its child
 * (issue 4: SysV shared memory attached in several processes is one object
 * again after restore). Meant to run as a container's init (ckpt run).
 *
 *   shm2 WORKDIR
 *
 * The parent creates a segment of 16 pages, fills pages 1..15 with a pattern
 * and forks; both keep the attach. The child counts in word 0, the parent in
 * word 1; the child echoes word 2 into word 3. Checks (parent): the pattern,
 * both counters moving, a value the parent writes echoed by the child.
 * Report: "PASS counter=N shmid=ID".
 */
#include "protocol.h"
#include "pattern.h"

#include <stdint.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>

enum { PAGES = 16, SALT = 31 };

static int shmid;
static volatile uint64_t *w;
static char *area;
static uint64_t last_child, last_parent, token = 500;

static void msleep(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

static int check_all(char *msg, size_t size)
{
	long bad = first_bad_page(area, PAGES - 1, SALT);
	if (bad >= 0) {
		snprintf(msg, size, "segment page %ld differs", bad + 1);
		return 0;
	}
	for (int i = 0; i < 200 && (w[0] == last_child || w[1] == last_parent); i++)
		msleep(5);
	if (w[0] == last_child || w[1] == last_parent) {
		snprintf(msg, size, "a counter stopped: child %lu parent %lu", (unsigned long)w[0], (unsigned long)w[1]);
		return 0;
	}
	last_child = w[0];
	last_parent = w[1];
	w[2] = ++token;
	for (int i = 0; i < 200 && w[3] != token; i++)
		msleep(5);
	if (w[3] != token) {
		snprintf(msg, size, "the child did not echo %lu (it has %lu)", (unsigned long)token, (unsigned long)w[3]);
		return 0;
	}
	snprintf(msg, size, "shmid=%d", shmid);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	shmid = shmget(IPC_PRIVATE, PAGES * PAGE, IPC_CREAT | 0600);
	char *seg = shmid >= 0 ? shmat(shmid, NULL, 0) : (void *)-1;
	if (seg == (void *)-1)
		return 10;
	w = (volatile uint64_t *)seg;
	area = seg + PAGE;
	fill_pages(area, PAGES - 1, SALT);
	if (fork() == 0) {
		for (;;) {
			w[0]++;
			w[3] = w[2];
			msleep(5);
		}
	}
	proto_ready("");
	long counter = 0;
	for (;;) {
		w[1]++;
		proto_tick(++counter, check_all);
		msleep(10);
	}
}

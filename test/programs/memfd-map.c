/*
 * memfd-map: one memfd that a parent holds open and that it and its child
 * both map MAP_SHARED (issue 5: memfd as an fd and as a mapping; issue 4:
 * shared memory is one object again).
 *
 *   memfd-map WORKDIR
 *
 * The memfd "ckpt-map" holds 64 pages of pattern. The child counts in word 0
 * of the mapping; the parent counts in word 1. Checks (in the parent): the
 * pattern pages read the same through pread on the fd and through the
 * mapping; both counters move; a value the parent writes with pwrite on the
 * fd is read back by the child through its mapping (it echoes it into word 3).
 * Report: "PASS counter=N".
 */
#include "protocol.h"
#include "pattern.h"

#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

enum { PAGES = 64, SALT = 21 };

static int fd;
static volatile uint64_t *words; /* page 0: counters and the echo */
static char *area;               /* pages 1..PAGES: the pattern */
static uint64_t last_child, last_parent, token = 1000;

static void msleep(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

static int check_all(char *msg, size_t size)
{
	static char page[PAGE];
	for (size_t p = 0; p < PAGES; p++) {
		if (pread(fd, page, PAGE, (off_t)((p + 1) * PAGE)) != (ssize_t)PAGE || !page_matches(page, SALT, p) || !page_matches(area + p * PAGE, SALT, p)) {
			snprintf(msg, size, "pattern page %zu differs through the fd or the mapping", p);
			return 0;
		}
	}
	for (int i = 0; i < 200 && (words[0] == last_child || words[1] == last_parent); i++)
		msleep(5);
	if (words[0] == last_child || words[1] == last_parent) {
		snprintf(msg, size, "a counter stopped: child %lu parent %lu", (unsigned long)words[0], (unsigned long)words[1]);
		return 0;
	}
	last_child = words[0];
	last_parent = words[1];
	uint64_t t = ++token;
	if (pwrite(fd, &t, sizeof t, 2 * sizeof t) != sizeof t) {
		snprintf(msg, size, "pwrite: %s", strerror(errno));
		return 0;
	}
	for (int i = 0; i < 200 && words[3] != t; i++)
		msleep(5);
	if (words[3] != t) {
		snprintf(msg, size, "the child did not see %lu written through the fd (echo %lu)", (unsigned long)t, (unsigned long)words[3]);
		return 0;
	}
	snprintf(msg, size, "child=%lu", (unsigned long)words[0]);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	fd = memfd_create("ckpt-map", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (PAGES + 1) * PAGE) != 0)
		return 10;
	char *map = mmap(NULL, (PAGES + 1) * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return 11;
	words = (volatile uint64_t *)map;
	area = map + PAGE;
	fill_pages(area, PAGES, SALT);
	if (fork() == 0) {
		close(fd);
		for (;;) {
			words[0]++;
			words[3] = words[2];
			msleep(5);
		}
	}
	proto_ready("");
	long counter = 0;
	for (;;) {
		words[1]++;
		proto_tick(++counter, check_all);
		msleep(10);
	}
}

/*
 * eventfd: a process holding an eventfd (an fd kind ckpt refuses for now; the
 * test proves the refusal leaves it running and intact).
 *
 *   eventfd WORKDIR
 *
 * The eventfd is created with the value 7. Checks: the fd still is an eventfd
 * (/proc/self/fd) and still holds 7 (read, then written back); 1 MiB of
 * pseudo-random memory against its checksum; getpid().
 * Report: "PASS counter=N eventfd=FD".
 */
#include "protocol.h"
#include "pattern.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>

#define AREA_PAGES 256
#define EVENTFD_VALUE 7
enum { SALT_AREA = 4 };

static struct pattern_area area;
static int efd = -1;

static int check_eventfd(char *msg, size_t size)
{
	char link[64], target[128];
	snprintf(link, sizeof link, "/proc/self/fd/%d", efd);
	ssize_t n = readlink(link, target, sizeof target - 1);
	target[n > 0 ? n : 0] = 0;
	if (strcmp(target, "anon_inode:[eventfd]") != 0) {
		snprintf(msg, size, "fd %d is '%s', not an eventfd", efd, target);
		return 0;
	}
	eventfd_t value = 0;
	if (eventfd_read(efd, &value) != 0 || value != EVENTFD_VALUE) {
		snprintf(msg, size, "eventfd %d holds %llu, want %d", efd, (unsigned long long)value,
			 EVENTFD_VALUE);
		return 0;
	}
	if (eventfd_write(efd, value) != 0) {
		snprintf(msg, size, "eventfd %d: write back: %s", efd, strerror(errno));
		return 0;
	}
	return 1;
}

static int check_all(char *msg, size_t size)
{
	if (!area_intact(&area, msg, size))
		return 0;
	if (!check_eventfd(msg, size))
		return 0;
	snprintf(msg, size, "eventfd=%d", efd);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);

	if (area_init(&area, AREA_PAGES, SALT_AREA) != 0)
		return 10;

	efd = eventfd(EVENTFD_VALUE, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return 11;
	char facts[32];
	snprintf(facts, sizeof facts, "eventfd=%d", efd);
	proto_ready(facts);

	proto_run(check_all);
}

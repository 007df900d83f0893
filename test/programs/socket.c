/*
 * socket: a process holding a unix socketpair (an fd kind ckpt refuses for
 * now; the test proves the refusal leaves it running and intact).
 *
 *   socket WORKDIR
 *
 * Checks: a byte sent on one end arrives on the other; 1 MiB of pseudo-random
 * memory against its checksum. Report: "PASS counter=N".
 */
#include "protocol.h"
#include "pattern.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#define AREA_PAGES 256
enum { SALT_AREA = 7 };

static struct pattern_area area;
static int sv[2];

static int check_all(char *msg, size_t size)
{
	if (!area_intact(&area, msg, size))
		return 0;
	char c = 'x', got = 0;
	if (write(sv[0], &c, 1) != 1 || read(sv[1], &got, 1) != 1 || got != 'x') {
		snprintf(msg, size, "the socketpair no longer carries a byte");
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	if (area_init(&area, AREA_PAGES, SALT_AREA) != 0)
		return 10;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 11;
	proto_ready("");
	for (long counter = 1;; counter++) {
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
		proto_tick(counter, check_all);
	}
}

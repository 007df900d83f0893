/*
 * forker: a process with a child (a process tree, which ckpt refuses for now;
 * the test proves the refusal leaves both running and intact).
 *
 *   forker WORKDIR
 *
 * The child pauses and dies with its parent (PR_SET_PDEATHSIG). Checks: 1 MiB
 * of pseudo-random memory against its checksum; the child is still alive.
 * Report: "PASS counter=N child=PID".
 */
#include "protocol.h"
#include "pattern.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>

#define AREA_PAGES 256
enum { SALT_AREA = 5 };

static struct pattern_area area;
static pid_t child;

static int check_all(char *msg, size_t size)
{
	if (!area_intact(&area, msg, size))
		return 0;
	if (kill(child, 0) != 0) {
		snprintf(msg, size, "child %d is gone", (int)child);
		return 0;
	}
	snprintf(msg, size, "child=%d", (int)child);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);

	if (area_init(&area, AREA_PAGES, SALT_AREA) != 0)
		return 10;

	child = proto_sleeping_child();
	if (child < 0)
		return 11;
	char facts[32];
	snprintf(facts, sizeof facts, "child=%d", (int)child);
	proto_ready(facts);

	proto_run(check_all);
}

/*
 * api-mem: N MiB of pseudo-random memory, for the library API tests.
 *
 *   api-mem WORKDIR [MIB]
 *
 * MIB (default 64) MiB of anonymous memory, a different pseudo-random content
 * per page, checked against the checksum taken at start (and the first bad
 * page when it differs); getpid() (protocol.h). The loop sleeps 10 ms.
 * Report: "PASS counter=N mib=MIB".
 */
#include "protocol.h"
#include "pattern.h"

#include <sys/mman.h>
#include <time.h>

enum { SALT_AREA = 11 };

static char *area;
static size_t area_pages;
static unsigned long mib;
static uint64_t area_sum;

static int check_all(char *msg, size_t size)
{
	if (checksum(area, area_pages * PAGE) != area_sum) {
		snprintf(msg, size, "area checksum differs, first bad page %ld",
			 first_bad_page(area, area_pages, SALT_AREA));
		return 0;
	}
	snprintf(msg, size, "mib=%lu", mib);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
	if (mib == 0)
		mib = 1;
	area_pages = (mib << 20) / PAGE;
	area = mmap(NULL, area_pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return 1;
	fill_pages(area, area_pages, SALT_AREA);
	area_sum = checksum(area, area_pages * PAGE);

	char facts[64];
	snprintf(facts, sizeof facts, "mib=%lu", mib);
	proto_ready(facts);

	struct timespec ts = { 0, 10 * 1000 * 1000 };
	for (long counter = 0;; counter++) {
		proto_tick(counter, check_all);
		nanosleep(&ts, NULL);
	}
}

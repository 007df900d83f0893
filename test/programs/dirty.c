/*
 * dirty: keeps rewriting pages of a large region while it is dumped, so that
 * a dump -R that copies pages while the process runs (and then only those
 * written since, while frozen) is caught if it keeps one stale page.
 *
 *   dirty WORKDIR [MIB [PER_MS]]
 *
 * MIB (64) of anonymous memory, every page filled from (page index, version)
 * by fill_page. A ledger in .bss holds each page's version. The loop bumps
 * pseudo-random pages, PER_MS (16) every millisecond: the ledger, then the page. A
 * freeze may land in the middle of one; restored, the loop finishes it before
 * the next check. A page the dump saved from before its last bump (while the
 * ledger it saved is after) fails the check.
 *
 * Checks: every page holds its ledger's version.
 * Report: "PASS counter=N updates=U".
 */
#include "protocol.h"
#include "pattern.h"

#define MAX_PAGES (256 * 256)
enum { SALT_DIRTY = 11 };

static uint64_t ledger[MAX_PAGES];
static char *area;
static size_t pages;
static long updates;

static uint64_t salt_of(uint64_t version)
{
	return SALT_DIRTY + (version << 8);
}

static int check_all(char *msg, size_t size)
{
	for (size_t p = 0; p < pages; p++) {
		const char *page = area + p * PAGE;
		if (page_matches(page, salt_of(ledger[p]), p))
			continue;
		snprintf(msg, size, "page %zu of %zu does not hold version %llu (%ld updates)", p, pages,
			 (unsigned long long)ledger[p], updates);
		return 0;
	}
	snprintf(msg, size, "updates=%ld", updates);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
	int per_ms = argc > 3 ? atoi(argv[3]) : 16;
	pages = mib * 256;
	if (pages == 0 || pages > MAX_PAGES)
		return 2;
	area = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return 10;
	for (size_t p = 0; p < pages; p++)
		fill_page(area + p * PAGE, salt_of(0), p);
	proto_ready("");

	uint64_t pick = 88172645463325252ULL;
	for (long counter = 1;; counter++) {
		for (int i = 0; i < per_ms; i++) {
			size_t p = xorshift64(&pick) % pages;
			ledger[p]++;
			fill_page(area + p * PAGE, salt_of(ledger[p]), p);
			updates++;
		}
		struct timespec ts = { 0, 1000000L };
		nanosleep(&ts, NULL);
		if (counter % 20 == 0)
			proto_tick(counter / 20, check_all);
	}
}

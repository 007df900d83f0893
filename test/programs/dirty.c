/*
 * dirty: keeps rewriting pages of a large region while it is dumped, so that
 * a dump -R that copies pages while the process runs (and then only those
 * written since, while frozen) is caught if it keeps one stale page.
 *
 *   dirty WORKDIR [MIB [PER_MS [fork|sparse]]]
 *
 * MIB (64) of anonymous memory, every page filled from (page index, version)
 * by fill_page. A ledger in .bss holds each page's version. The loop bumps
 * pseudo-random pages, PER_MS (16) every millisecond: the ledger, then the page. A
 * freeze may land in the middle of one; restored, the loop finishes it before
 * the next check. A page the dump saved from before its last bump (while the
 * ledger it saved is after) fails the check.
 *
 * fork: once the pages are filled, a child shares them copy-on-write (it
 * sleeps, and dies with the parent): a dump must not take that sharing apart.
 * sparse: also 256 MiB mapped of which one page in 16 MiB is touched: a dump
 * must not fill in the page tables of the rest (VmPTE), nor its pages.
 *
 * Checks: every page holds its ledger's version; the sparse region's touched
 * pages their pattern, and its other pages are not there (pagemap: reading
 * them would map them).
 * Report: "PASS counter=N updates=U".
 */
#include "protocol.h"
#include "pattern.h"

#define MAX_PAGES (2048 * 256)
enum { SALT_DIRTY = 11 };

static uint64_t ledger[MAX_PAGES];
static char *area;
static size_t pages;
static long updates;
static char *sparse;
#define SPARSE_BYTES (256UL << 20)
#define SPARSE_STEP (16UL << 20)

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
	if (sparse) {
		int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		uint64_t e[512];
		for (size_t at = 0; at < SPARSE_BYTES; at += sizeof e / sizeof e[0] * PAGE) {
			off_t where = (off_t)((uintptr_t)(sparse + at) / PAGE * 8);
			if (pm < 0 || pread(pm, e, sizeof e, where) != (ssize_t)sizeof e) {
				snprintf(msg, size, "reading /proc/self/pagemap: %s", strerror(errno));
				close(pm);
				return 0;
			}
			for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
				size_t page = at / PAGE + i;
				int touched = page % (SPARSE_STEP / PAGE) == 0;
				int there = (e[i] >> 63) & 1; /* present (swapped would be bit 62) */
				if (touched ? page_matches(sparse + page * PAGE, SALT_DIRTY, page) : !there && !((e[i] >> 62) & 1))
					continue;
				snprintf(msg, size, "sparse page %zu is %s", page, touched ? "not its pattern" : "there");
				close(pm);
				return 0;
			}
		}
		close(pm);
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
	if (argc > 4 && strcmp(argv[4], "sparse") == 0) {
		sparse = mmap(NULL, SPARSE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (sparse == MAP_FAILED)
			return 12;
		for (size_t at = 0; at < SPARSE_BYTES; at += SPARSE_STEP)
			fill_page(sparse + at, SALT_DIRTY, at / PAGE);
	}
	if (argc > 4 && strcmp(argv[4], "fork") == 0 && proto_sleeping_child() < 0)
		return 11;
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

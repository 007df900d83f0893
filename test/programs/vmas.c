/*
 * vmas: a process with thousands of VMAs (a JVM or a browser has as many), to
 * show that restore maps and fills them all (its remote calls go in batches
 * whose tables share a 64 KiB scratch area).
 *
 *   vmas WORKDIR [N]
 *
 * N (default 3000) anonymous one-page mappings, each its own VMA: even ones
 * read-write, odd ones read-only (their protections keep neighbours from
 * merging), each filled with its own pattern page. Checks: every page holds
 * its pattern and keeps its protection (from /proc/self/maps), and the count
 * of mappings is still at least N. Report: "PASS counter=N vmas=M".
 */
#include "protocol.h"
#include "pattern.h"

#include <stdint.h>
#include <sys/mman.h>

enum { SALT = 29 };

static char *area;
static long n;

static int check(char *msg, size_t size)
{
	for (long i = 0; i < n; i++) {
		if (!page_matches(area + i * PAGE, SALT, (size_t)i)) {
			snprintf(msg, size, "page %ld does not hold its pattern", i);
			return 0;
		}
	}
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f) {
		snprintf(msg, size, "/proc/self/maps: %s", strerror(errno));
		return 0;
	}
	char line[512];
	long maps = 0, ro = 0;
	uintptr_t lo = (uintptr_t)area, hi = lo + (uintptr_t)n * PAGE;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		char perms[8];
		maps++;
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && a >= lo && b <= hi && perms[1] == '-')
			ro += (long)((b - a) / PAGE);
	}
	fclose(f);
	if (maps < n || ro != n / 2) {
		snprintf(msg, size, "%ld mappings, %ld read-only pages of %ld", maps, ro, n);
		return 0;
	}
	snprintf(msg, size, "vmas=%ld", maps);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	n = argc > 2 ? atol(argv[2]) : 3000;
	area = mmap(NULL, (size_t)n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return 10;
	fill_pages(area, (size_t)n, SALT);
	for (long i = 1; i < n; i += 2)
		if (mprotect(area + i * PAGE, PAGE, PROT_READ) != 0)
			return 11;
	proto_ready("");
	proto_run(check);
}

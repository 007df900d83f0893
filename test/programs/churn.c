/*
 * churn: creates and joins short-lived threads in a tight loop, so that a dump
 * lands while threads are being born and dying.
 *
 *   churn WORKDIR
 *
 * Checks: 1 MiB of pseudo-random memory against its checksum; every thread
 * that was started has been joined and has added its share to the total.
 * Report: "PASS counter=N threads=T".
 */
#include "protocol.h"
#include "pattern.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#define AREA_PAGES 256
enum { SALT_AREA = 6 };

static char *area;
static uint64_t area_sum;
static atomic_long total;
static long started;

static void *work(void *arg)
{
	atomic_fetch_add(&total, (long)(intptr_t)arg);
	return NULL;
}

static int check_all(char *msg, size_t size)
{
	if (checksum(area, AREA_PAGES * PAGE) != area_sum) {
		snprintf(msg, size, "area checksum differs, first bad page %ld",
			 first_bad_page(area, AREA_PAGES, SALT_AREA));
		return 0;
	}
	if (atomic_load(&total) != started * 3) {
		snprintf(msg, size, "threads added %ld, want %ld", atomic_load(&total), started * 3);
		return 0;
	}
	snprintf(msg, size, "threads=%ld", started);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);

	area = mmap(NULL, AREA_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return 10;
	fill_pages(area, AREA_PAGES, SALT_AREA);
	area_sum = checksum(area, AREA_PAGES * PAGE);
	proto_ready("");

	for (long counter = 1;; counter++) {
		pthread_t t[4];
		for (int i = 0; i < 4; i++)
			if (pthread_create(&t[i], NULL, work, (void *)(intptr_t)3) == 0)
				started++;
			else
				t[i] = 0;
		for (int i = 0; i < 4; i++)
			if (t[i])
				pthread_join(t[i], NULL);
		if (counter % 64 == 0)
			proto_tick(counter / 64, check_all);
	}
}

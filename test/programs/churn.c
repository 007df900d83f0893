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

static struct pattern_area area;
static atomic_long total;
static long started;

static void *work(void *arg)
{
	atomic_fetch_add(&total, (long)(intptr_t)arg);
	return NULL;
}

static int check_all(char *msg, size_t size)
{
	if (!area_intact(&area, msg, size))
		return 0;
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

	if (area_init(&area, AREA_PAGES, SALT_AREA) != 0)
		return 10;
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

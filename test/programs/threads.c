/*
 * threads: a process with two threads (ckpt refuses multi-threaded processes
 * for now; the test proves the refusal leaves it running and intact).
 *
 *   threads WORKDIR
 *
 * The second thread counts its own ticks every 10 ms. Checks: 1 MiB of
 * pseudo-random memory against its checksum; the second thread is still
 * alive and ticking (its count moved since the previous check); getpid().
 * Report: "PASS counter=N worker=M".
 * Build with -pthread.
 */
#include "protocol.h"
#include "pattern.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>

#define AREA_PAGES 256
enum { SALT_AREA = 3 };

static struct pattern_area area;
static atomic_long worker_ticks;
static long ticks_at_last_check;

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
		atomic_fetch_add(&worker_ticks, 1);
	}
	return NULL;
}

static int check_all(char *msg, size_t size)
{
	if (!area_intact(&area, msg, size))
		return 0;
	/* The worker ticks every 10 ms; on a loaded machine give it a second. */
	long ticks = atomic_load(&worker_ticks);
	for (int waited = 0; ticks == ticks_at_last_check && waited < 1000; waited++) {
		struct timespec ms = { 0, 1000000L };
		nanosleep(&ms, NULL);
		ticks = atomic_load(&worker_ticks);
	}
	if (ticks == ticks_at_last_check) {
		snprintf(msg, size, "second thread stopped at %ld ticks", ticks);
		return 0;
	}
	ticks_at_last_check = ticks;
	snprintf(msg, size, "worker=%ld", ticks);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);

	if (area_init(&area, AREA_PAGES, SALT_AREA) != 0)
		return 10;

	pthread_t thread;
	if (pthread_create(&thread, NULL, worker, NULL) != 0)
		return 11;
	proto_ready("threads=2");

	proto_run(check_all);
}

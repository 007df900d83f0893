/*
 * churn-tree: creates children (each with a thread of its own) and threads
 * in a tight loop, so that a dump lands while processes and threads are
 * being born and dying (issue 4, acceptance 4).
 *
 *   churn-tree WORKDIR
 *
 * A thread of the root forks children without pause: each child starts a
 * thread, both add to a counter in memory shared with the root, and the
 * child exits with a status the root checks when it reaps it. Another thread
 * creates and joins threads. Checks: 1 MiB of pseudo-random memory; every
 * child reaped so far exited with its status and added its share; every
 * joined thread added its share. Report: "PASS counter=N children=C threads=T".
 * Build with -pthread.
 */
#include "protocol.h"
#include "pattern.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define AREA_PAGES 256
enum { SALT_AREA = 12 };

static struct pattern_area area;
static atomic_long *shared_sum; /* MAP_SHARED: children add to it */
static atomic_long reaped, bad_status, joined, thread_sum;

static void *child_thread(void *arg)
{
	atomic_fetch_add(shared_sum, 1);
	return arg;
}

static void *forker(void *arg)
{
	(void)arg;
	for (;;) {
		pid_t pid = fork();
		if (pid == 0) {
			pthread_t t;
			pthread_create(&t, NULL, child_thread, NULL);
			pthread_join(t, NULL);
			atomic_fetch_add(shared_sum, 1);
			_exit(42);
		}
		if (pid < 0)
			continue;
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 42)
			atomic_fetch_add(&bad_status, 1);
		atomic_fetch_add(&reaped, 1);
	}
	return NULL;
}

static void *work(void *arg)
{
	atomic_fetch_add(&thread_sum, (long)(intptr_t)arg);
	return NULL;
}

static void *threader(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_t t;
		if (pthread_create(&t, NULL, work, (void *)(intptr_t)3) != 0)
			continue;
		pthread_join(t, NULL);
		atomic_fetch_add(&joined, 1);
	}
	return NULL;
}

static int check_all(char *msg, size_t size)
{
	if (!area_intact(&area, msg, size))
		return 0;
	long r = atomic_load(&reaped), s = atomic_load(shared_sum), j = atomic_load(&joined), ts = atomic_load(&thread_sum);
	if (atomic_load(&bad_status)) {
		snprintf(msg, size, "%ld children exited with a wrong status", atomic_load(&bad_status));
		return 0;
	}
	/* Each reaped child added 2; one more child may be on its way. */
	if (s < 2 * r || s > 2 * r + 2) {
		snprintf(msg, size, "children added %ld, %ld reaped", s, r);
		return 0;
	}
	if (ts < 3 * j || ts > 3 * j + 3) {
		snprintf(msg, size, "threads added %ld, %ld joined", ts, j);
		return 0;
	}
	snprintf(msg, size, "children=%ld threads=%ld", r, j);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	if (area_init(&area, AREA_PAGES, SALT_AREA) != 0)
		return 10;
	shared_sum = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared_sum == MAP_FAILED)
		return 11;
	pthread_t t;
	pthread_create(&t, NULL, forker, NULL);
	pthread_create(&t, NULL, threader, NULL);
	proto_ready("");
	long counter = 0;
	for (;;) {
		proto_tick(++counter, check_all);
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
}
